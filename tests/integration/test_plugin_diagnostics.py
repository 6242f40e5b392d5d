"""What students are told when their code hits a limit: where a timed-out call was stuck,
output floods (the worker is stopped), truncated output, batched calls named after the
student's function, values the grader cannot use. Both isolation modes where they apply.

The graded runs use tests/fixtures/plugin/diagnostics (every hidden test there fails on
purpose); the helpers of the proxy and the worker pool are also checked directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autograder.errors import StudentTimeout, UnusableValue, WorkerDied
from autograder.grading import results
from autograder.grading.plugin import printed_section
from autograder.grading.proxy import RemoteObject, StudentProxy
from autograder.sandbox import codec
from autograder.sandbox.pool import (
    LocalWorker,
    OutputDrain,
    Printed,
    StudentFrame,
    frames_from_dump,
    timeout_error,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "plugin" / "diagnostics"
from autograder.grading.runner import GRADING_INI  # noqa: E402

SOURCE = (FIXTURE / "sub" / "diag.py").read_text().splitlines()
SANDBOX_ONLY = ("test_output_flood", "test_output_flood_of_gigabytes", "test_junk_output")  # prints reach the terminal in-process


def line_of(marker: str) -> int:
    return next(i for i, text in enumerate(SOURCE, start=1) if marker in text)


def run_graded(base: Path, sub: Path, isolation: str, *tests: str) -> dict[str, Any]:
    ref = base / "ref"
    out = base / f"results-{isolation}-{sub.name}.json"
    picked = [f"{ref}/test_diag.py::{t}" for t in tests] or [str(ref)]
    deselect = [] if isolation == "sandbox" else [
        a for t in SANDBOX_ONLY for a in ("--deselect", f"{ref}/test_diag.py::{t}")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *picked, "-c", str(GRADING_INI), "--rootdir", str(ref),
         "--submission", str(sub), "--ag-results", str(out), "--isolation", isolation, "-q",
         "-p", "no:randomly", *deselect],
        capture_output=True, text=True, timeout=180, cwd=base, env=env)
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    results.validate(data)
    assert "harness_error" not in data["extra_data"], data["tests"][-1]["output"]
    return {t["name"]: t for t in data["tests"]}


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("diagnostics")
    shutil.copytree(FIXTURE / "ref", base / "ref", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(FIXTURE / "sub", base / "sub")
    for p in [base, *base.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return base


@pytest.fixture(scope="module")
def runs(course: Path) -> Any:
    """The fixture suite graded once per isolation mode (on first use)."""
    done: dict[str, dict[str, Any]] = {}

    def run(mode: str) -> tuple[str, dict[str, Any]]:
        if mode not in done:
            done[mode] = run_graded(course, course / "sub", mode)
        return mode, done[mode]

    return run


@pytest.fixture(params=["sandbox", "none"])
def graded(request: pytest.FixtureRequest, runs: Any) -> tuple[str, dict[str, Any]]:
    return runs(request.param)


@pytest.fixture
def sandboxed(runs: Any) -> tuple[str, dict[str, Any]]:
    """Output is captured and counted only in the sandbox (in-process prints reach the
    terminal)."""
    return runs("sandbox")


def output(graded: tuple[str, dict[str, Any]], name: str) -> str:
    tests = graded[1]
    assert name in tests, sorted(tests)
    assert tests[name]["status"] == "failed" and tests[name]["score"] == 0, tests[name]
    return str(tests[name]["output"])


# ------------------------------------------------------------------ timeouts say where

def test_timeout_names_the_students_line(graded):
    out = output(graded, "Timeout in a Python loop")
    caller = line_of("SPIN-CALLER")
    spin = next(n for n in (line_of("SPIN-LINE"), line_of("SPIN-BODY"))
                if f"(diag.py, line {n})" in out)  # the loop's line or its body's
    assert out.startswith(f"your code exceeded 1 s in diag.spin; it was running helper_spin "
                          f"(diag.py, line {spin})"), out
    assert (f'Where (your files):\n  File "diag.py", line {caller}, in spin\n'
            f"    return helper_spin()  # SPIN-CALLER\n"
            f'  File "diag.py", line {spin}, in helper_spin\n') in out, out
    assert "autograder" not in out and "worker.py" not in out


def test_timeout_in_a_blocking_call_names_the_line(graded):
    out = output(graded, "Timeout in a blocking call")
    assert out.startswith(f"your code exceeded 1 s in diag.nap; it was running nap "
                          f"(diag.py, line {line_of('NAP-LINE')})"), out


def test_timeout_of_a_notebook_points_at_its_cell(tmp_path):
    """The located line goes through the notebook mapping like other student tracebacks."""
    shutil.copytree(FIXTURE / "ref", tmp_path / "ref")
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Diag"]},
             {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": ["def helper_spin():\n", "    while True:\n", "        pass\n"]},
             {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": ["def spin():\n", "    return helper_spin()\n"]}]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "diag.ipynb").write_text(json.dumps(nb))
    tests = run_graded(tmp_path, tmp_path / "nb", "sandbox", "test_timeout_in_python")
    out = tests["Timeout in a Python loop"]["output"]
    # the loop's line or its body's
    assert re.search(r"it was running helper_spin \(diag\.ipynb, cell 2, line [23]\)", out), out
    assert 'File "diag.ipynb", cell 3, line 2, in spin' in out, out


# ------------------------------------------------------------------ batches name the student's function

def test_batched_calls_are_named_after_the_students_function(graded):
    out = output(graded, "Timeout in a batch of calls")
    assert out.startswith("your code exceeded 1 s in diag.slow_add (4 calls)"), out
    out = output(graded, "Exception in a batch of calls")
    assert "Your code raised ValueError in diag.fail_on (3 calls): two is not allowed" in out, out


def test_setitem_call_batches_name_the_students_method(graded):
    for name, start in [("Timeout in a batch of parameter perturbations",
                         "your code exceeded 1 s in diag.Model().loss (4 calls)"),
                        ("Exception in a batch of parameter perturbations",
                         "Your code raised ValueError in diag.Model().bad_loss (3 calls): bad loss")]:
        out = output(graded, name)
        assert out.startswith(start), out
        assert "setitem_call" not in out and "probe" not in out, out


# ------------------------------------------------------------------ values the grader cannot use

@pytest.mark.parametrize("name, need", [
    ("float() of an array of strings", "a number"),
    ("Array comparison of an array of strings", "an array"),
    ("pytest.approx of an array of strings", "a value to compare"),
    ("Truth value of an array of strings", "a truth value"),
    ("Arithmetic on an array of strings", "a number"),
])
def test_unusable_value_says_what_the_code_returned(graded, name, need):
    out = output(graded, name)
    assert out.startswith(f"your code returned a value of type ndarray (dtype <U1) from diag.names, which the "
                          f"grader cannot use as {need}"), out
    assert "numbers, strings, numpy arrays of numbers or booleans" in out, out
    assert "RemoteObject" not in out and "Your code raised" not in out, out


# ------------------------------------------------------------------ output

def test_output_flood_stops_the_worker(sandboxed):
    out = output(sandboxed, "A print loop of 20 MB")
    assert out.startswith("your code printed more than 16 MB during diag.shout; the worker was "
                          "stopped. Remove the print calls in loops"), out
    assert "Your code printed:\nshout shout" in out
    m = re.search(r"\[output truncated: (\d+) bytes left out; the first (\d+) of (\d+) bytes "
                  r"are shown\]", out)
    assert m, out
    left, shown, total = map(int, m.groups())
    assert shown == results.MAX_STUDENT_STDOUT and left == total - shown
    assert 16 * 2**20 < total < 20 * 2**20  # stopped before the loop's end
    assert len(out) <= results.MAX_TEST_OUTPUT


def test_control_characters_in_output_are_escaped(sandboxed):
    out = output(sandboxed, "Terminal escapes in the output")
    assert "before\\x1b[2J\\x1b]0;title\\x07after\\x00end" in out, out
    assert "\x1b" not in out and "\x00" not in out and "\x07" not in out


@pytest.mark.timeout(240)  # a hang guard: draining 4 GB takes many minutes here
def test_a_flood_of_gigabytes_is_stopped_at_the_cap(course):
    tests = run_graded(course, course / "sub", "sandbox", "test_output_flood_of_gigabytes")
    out = tests["A print loop of 4 GB"]["output"]
    assert out.startswith("your code printed more than 16 MB during diag.shout"), out
    total = int(re.search(r"the first \d+ of (\d+) bytes are shown", out).group(1))
    assert total < 20 * 2**20  # read up to the cap (and what was in the pipe), no further


def test_printed_section_counts_what_is_left_out():
    assert printed_section([Printed(b"", 0)]) == ""
    assert printed_section([Printed(b"hello\n", 6)]) == "Your code printed:\nhello"
    head = b"x" * results.MAX_STUDENT_STDOUT
    text = printed_section([Printed(head, 10_000), Printed(b"more", 4)])
    assert text.endswith(f"[output truncated: {10_004 - len(head)} bytes left out; the first "
                         f"{len(head)} of 10004 bytes are shown]")
    # escaping cannot make the section longer than the limit, and the count stays right
    junk = printed_section([Printed(b"\x00" * 5000, 5000)])
    body = junk.split("\n")[1]
    assert len(body) <= results.MAX_STUDENT_STDOUT and set(body) <= set("\\x0")
    assert f"{5000 - len(body) // 4} bytes left out" in junk


def test_output_drain_calls_on_flood_once():
    read, write = os.pipe()
    drain = OutputDrain(read, limit=1000)
    calls = []
    drain.on_flood = lambda: calls.append(drain.total)
    drain.start()
    for _ in range(10):
        os.write(write, b"y" * 500)
    os.close(write)
    drain.join(5)
    assert drain.flooded and len(calls) == 1 and calls[0] > 1000
    assert drain.total == 5000 and bytes(drain.head) == b"y" * 5000


# ------------------------------------------------------------------ helpers, directly

DUMP = """\
Thread 0x00007f0000000001 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 320 in wait
  File "/work/diag.py", line 3 in background
Current thread 0x00007f0000000002 (most recent call first):
  File "/usr/lib/python3/numpy/core/fromnumeric.py", line 88 in sum
  File "/work/layers.py", line 2 in relu_backward
  File "/work/train.py", line 1 in train
  File "/venv/lib/autograder/sandbox/worker.py", line 130 in _dispatch
  File "/venv/lib/autograder/sandbox/worker.py", line 80 in handle
"""


def test_frames_from_dump_prefers_the_serving_thread(tmp_path):
    (tmp_path / "layers.py").write_text("import numpy as np\nreturn_value = np.sum(x)\n")
    frames = frames_from_dump(DUMP, "/work", tmp_path)
    assert frames == [StudentFrame("train.py", 1, "train", ""),
                      StudentFrame("layers.py", 2, "relu_backward", "return_value = np.sum(x)")]
    assert frames_from_dump(DUMP, "/elsewhere") == []
    assert frames_from_dump("junk\n  File \"/work/x.py\", line 1 in f\n", "/work") == []


def test_source_lines_come_from_the_trusted_copy_only(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden test line\n")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "layers.py").symlink_to(secret)
    dump = 'Stack (most recent call first):\n  File "/w/layers.py", line 1 in f\n' \
           '  File "/w/../secret.txt", line 1 in g\n'
    frames = frames_from_dump(dump, "/w", tmp_path / "copy")
    assert [f.source for f in frames] == ["", ""]


def test_timeout_error_message():
    err = timeout_error(10, "train.train", [StudentFrame("train.py", 9, "train", "step()"),
                                            StudentFrame("layers.py", 42, "relu_backward", "")])
    assert isinstance(err, StudentTimeout) and err.where == "train.train"
    assert err.message == ("your code exceeded 10 s in train.train; it was running relu_backward "
                           "(layers.py, line 42)")
    assert err.student_traceback == ('  File "train.py", line 9, in train\n    step()\n'
                                     '  File "layers.py", line 42, in relu_backward\n')
    assert timeout_error(2, "m.f", []).message == "your code exceeded 2 s in m.f"
    top = timeout_error(2, "the import of m", [StudentFrame("m.py", 3, "<module>")])
    assert top.message.endswith("it was running module-level code (m.py, line 3)")


class _Submission:
    modules = ("agdiag_mod",)
    problems: dict[str, tuple[str, str]] = {}

    def module_problem(self, name: str) -> None:
        return None


def _proxy(tmp_path: Path, source: str) -> StudentProxy:
    (tmp_path / "agdiag_mod.py").write_text(source)
    return StudentProxy(_Submission(), lambda: LocalWorker(tmp_path, ["agdiag_mod"],  # type: ignore[arg-type]
                                                           codec.DEFAULT_LIMITS), 5.0)


def test_remote_object_refuses_numeric_use_clearly(tmp_path):
    proxy = _proxy(tmp_path, "import numpy as np\n\n\ndef names():\n    return np.array(['a'])\n\n\n"
                             "class Thing:\n    pass\n")
    try:
        mod = proxy.module("agdiag_mod")
        arr, thing = mod.names(), mod.Thing()
        assert isinstance(arr, RemoteObject) and isinstance(thing, RemoteObject)
        uses = [float, int, complex, bool, round, abs, np.asarray, lambda v: v < 1,
                lambda v: 1 + v, lambda v: v - 1, lambda v: np.ones(1) * v, lambda v: -v,
                lambda v: f"{v:.3f}", lambda v: [0, 1][v], lambda v: np.ones(2) @ v,
                lambda v: v == 1, lambda v: v != 1, lambda v: 1 in [v],
                lambda v: v == pytest.approx(1.0),
                # numpy functions that would catch the error and answer quietly
                lambda v: np.array_equal(v, np.ones(1)), lambda v: np.array_equiv(v, 1),
                lambda v: np.allclose(v, 1.0), lambda v: np.isclose(v, 1.0),
                lambda v: np.add(v, 1), lambda v: np.testing.assert_allclose(v, 1.0)]
        for use in uses:
            with pytest.raises(UnusableValue) as info:
                use(arr)
            assert info.value.message.startswith(
                "your code returned a value of type ndarray (dtype <U1) from agdiag_mod.names, which the "
                "grader cannot use as"), info.value.message
        with pytest.raises(UnusableValue, match="a value of type Thing from agdiag_mod.Thing, which "
                                                "the grader cannot use as a number"):
            float(thing)
        # identity comparisons and reprs still work (handles in lists, pytest's reports)
        assert arr == arr and arr != thing and arr in [thing, arr]
        assert repr(arr) == "<remote ndarray (dtype <U1) agdiag_mod.names()>" == f"{arr}"
    finally:
        proxy.close()


def test_probe_labels_name_the_students_code(tmp_path):
    proxy = _proxy(tmp_path, "class M:\n    def __init__(self):\n        self.p = {'w': 1.0}\n\n"
                             "    def loss(self, x):\n        raise ValueError('no')\n")
    try:
        m = proxy.module("agdiag_mod").M()
        params = proxy.getattr(m, "p", by="handle")
        loss = proxy.getattr(m, "loss", by="handle")
        setitem_call = proxy.probe_ref("setitem_call")
        for run in (lambda: setitem_call(params, "w", 2.0, loss, 1.0),
                    lambda: proxy.call(setitem_call, params, "w", 2.0, loss, 1.0),
                    lambda: proxy.probe("setitem_call", params, "w", 2.0, loss, 1.0)):
            with pytest.raises(Exception) as info:
                run()
            assert getattr(info.value, "where", None) == "agdiag_mod.M().loss"
        with pytest.raises(Exception) as info:
            proxy.map(setitem_call, [(params, "w", 2.0, loss, 1.0)] * 2)
        assert getattr(info.value, "where", None) == "agdiag_mod.M().loss (2 calls)"
        with pytest.raises(Exception) as info:
            proxy.probe("count_parameters", loss)
        assert getattr(info.value, "where", None) == "count_parameters(agdiag_mod.M().loss)"
        with pytest.raises(Exception) as info:  # the grader's own data names no student code
            proxy.probe("count_parameters", proxy.put(np.ones(2)))
        assert getattr(info.value, "where", None) == "probe count_parameters"
    finally:
        proxy.close()


def test_in_process_timeout_names_the_line(tmp_path):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGALRM needs the main thread")
    proxy = _proxy(tmp_path, "def inner():\n    while True:\n        pass\n\n\n"
                             "def outer():\n    return inner()\n")
    proxy.call_timeout = 0.3
    old = signal.getsignal(signal.SIGALRM)
    try:
        with pytest.raises(StudentTimeout) as info:
            proxy.module("agdiag_mod").outer()
        assert info.value.message == ("your code exceeded 0.3 s in agdiag_mod.outer; it was "
                                      "running inner (agdiag_mod.py, line 2)")
        assert 'File "agdiag_mod.py", line 7, in outer\n    return inner()' in \
            info.value.student_traceback
    finally:
        proxy.close()
        assert signal.getsignal(signal.SIGALRM) is old


def test_a_reply_whose_id_is_a_handle_is_a_protocol_error(tmp_path):
    """A forged reply (student code writing to the harness's socket) may carry a handle
    where the id belongs: that is a broken protocol, not an UnusableValue."""
    proxy = _proxy(tmp_path, "def one():\n    return 1\n")

    class Forging:
        def request(self, payload, timeout, what):
            return codec.encode({"id": codec.Handle(1, "x"), "ok": 2})

        def close(self):
            pass

        def output(self, limit):
            return Printed(b"", 0)

        protections: list = []

    try:
        proxy._worker = Forging()
        with pytest.raises(WorkerDied, match="ProtocolError|was not valid"):
            proxy.module("agdiag_mod")
    finally:
        proxy.close()


def test_truncation_note_counts_invalid_utf8_bytes_exactly():
    """Bytes that are not UTF-8 are shown as \\xff, one byte each: the note stays and its
    counts are exact (they were off when such bytes were counted as three)."""
    data = b"\xff" * 2048 + b"\x01" * 2048
    section = printed_section([Printed(data, len(data))])
    shown = section.split("\n")[1].count("\\x")
    assert section.endswith(f"[output truncated: {len(data) - shown} bytes left out; the first "
                            f"{shown} of {len(data)} bytes are shown]"), section[-200:]
    assert "\ufffd" not in section
