"""What is the suite's fault fails closed; what is the student's fails only their tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from course_cli import run_one_file_suite

from autograder.errors import ExitCode
from autograder.grading import results
from autograder.grading.runner import Outcome, Suite, run_suite

CONFIG = '[assignment]\nid = "f1"\ntitle = "f"\nmodules = ["m"]\n\n[limits]\ncall_timeout = 5\n'
LIMITS = "call_timeout = 5\n"


def grade(tmp_path: Path, tests: str, module: str, limits: str = "",
          isolation: str = "sandbox") -> Outcome:
    return run_one_file_suite(tmp_path, tests, module, limits=LIMITS + limits,
                              isolation=isolation, assignment_id="f1")


GOOD = "def f(x):\n    return x + 1\n"


def test_broken_fixture_is_a_harness_error(tmp_path: Path) -> None:
    out = grade(tmp_path, (
        "import pytest\n\n"
        "@pytest.fixture\ndef data():\n    raise KeyError('staff bug')\n\n"
        "def test_a(student, data):\n    '''a'''\n    assert student.module('m').f(1) == 2\n\n"
        "def test_b(student):\n    '''b'''\n    assert student.module('m').f(1) == 2\n"), GOOD)
    assert out.exit_code == ExitCode.HARNESS_ERROR
    assert out.data["extra_data"]["harness_error"] is True
    staff = [t for t in out.data["tests"] if t["visibility"] == "hidden"]
    assert staff and "staff bug" in staff[0]["output"]
    assert all("staff bug" not in t["output"] for t in out.data["tests"] if t["visibility"] != "hidden")


@pytest.mark.parametrize("bug", ["layerz.f(1)", "import no_such_helper"])
def test_a_bug_in_a_hidden_test_body_is_a_harness_error(tmp_path: Path, bug: str) -> None:
    """A typo in a test is the staff's, not 0 points for the student."""
    out = grade(tmp_path, (
        "def test_a(student):\n    '''a'''\n    assert student.module('m').f(1) == 2\n"
        f"    {bug}\n"), GOOD)
    assert out.exit_code == ExitCode.HARNESS_ERROR
    assert out.data["extra_data"]["harness_error"] is True


def test_a_students_own_name_error_is_the_students(tmp_path: Path) -> None:
    out = grade(tmp_path, "def test_a(student):\n    '''a'''\n    assert student.module('m').f(1) == 2\n",
                "def f(x):\n    return y\n")
    assert out.exit_code == ExitCode.OK
    assert "NameError" in out.data["tests"][0]["output"]


def test_control_characters_in_student_messages_are_escaped(tmp_path: Path) -> None:
    """Terminal escapes and lone surrogates in an exception message reach neither
    `autograder check`'s terminal nor results.json."""
    out = grade(tmp_path, "def test_a(student):\n    '''a'''\n    student.module('m').f(1)\n",
                "def f(x):\n    raise ValueError('\\x1b[2J\\x07\\x00 \\udcff\\ud800 end')\n")
    text = out.data["tests"][0]["output"]
    assert "ValueError" in text and "end" in text
    assert "\\x1b[2J" in text and "\\udcff" in text
    assert all(c.isprintable() or c in "\n\t" for c in text), repr(text)
    json.dumps(out.data, ensure_ascii=False).encode("utf-8")  # no lone surrogates


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_os_exit_fails_the_test_in_both_modes(tmp_path: Path, isolation: str) -> None:
    """In-process, os._exit would end the grader itself: no table, no results.json. Run in
    a child process, so that a regression cannot end this test run early (and green)."""
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from pathlib import Path\n"
        "from test_fail_closed import grade\n"
        "out = grade(Path(sys.argv[2]), \"def test_a(student):\\n    student.module('m').f(1)\\n\\n\"\n"
        "            \"def test_b(student):\\n    assert student.module('m').g() == 2\\n\",\n"
        "            'import os\\ndef f(x):\\n    os._exit(0)\\ndef g():\\n    return 2\\n',\n"
        "            isolation=sys.argv[3])\n"
        "print('RESULT ' + json.dumps([out.exit_code, out.data['tests']]))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path),
                           isolation], capture_output=True, text=True, timeout=300, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"the grading process ended early (rc={proc.returncode}):\n{proc.stderr[-2000:]}"
    code, (a, b) = json.loads(lines[-1][len("RESULT "):])
    assert code == ExitCode.OK
    assert a["status"] == "failed" and b["status"] == "passed"
    assert "exit" in a["output"] and "0" in a["output"], a["output"]


def test_in_process_a_stopped_debugger_does_not_count_as_a_timeout(tmp_path: Path) -> None:
    """`check --isolation none` with breakpoint(): the student stepping in pdb for longer
    than the call timeout is not stuck (the alarm sees a bdb debugger tracing)."""
    tests = ("import pytest\n\n@pytest.mark.call_timeout(0.5)\n"
             "def test_a(student):\n    '''a'''\n    assert student.module('m').f() == 1\n\n"
             "@pytest.mark.call_timeout(0.5)\n"
             "def test_b(student):\n    '''b'''\n    assert student.module('m').g() == 1\n")
    module = ("import bdb, sys, time\n\n"
              "class Stepping(bdb.Bdb):  # a debugger that stays stopped for 1.5 s\n"
              "    def user_line(self, frame):\n        pass\n\n"
              "def f():\n    d = Stepping()\n    d.reset()\n    sys.settrace(d.trace_dispatch)\n"
              "    try:\n        time.sleep(1.5)\n    finally:\n        sys.settrace(None)\n"
              "    return 1\n\n"
              "def g():\n    time.sleep(1.5)\n    return 1\n")
    out = grade(tmp_path, tests, module, isolation="none")
    a, b = out.data["tests"]
    assert a["status"] == "passed", a["output"]
    assert b["status"] == "failed" and "exceeded 0.5 s" in b["output"], b["output"]


def test_a_leftover_breakpoint_is_skipped_with_a_note(tmp_path: Path) -> None:
    """Without a terminal pdb would raise BdbQuit with no message; the sandbox goes on."""
    out = grade(tmp_path, "def test_a(student):\n    '''a'''\n    assert student.module('m').f(1) == 2\n",
                "def f(x):\n    breakpoint()\n    return x + 1\n")
    (test,) = out.data["tests"]
    assert test["status"] == "passed", test["output"]
    assert "breakpoint() skipped (m.py, line 2)" in test["output"]
    assert "--isolation none" in test["output"]


def test_an_import_that_hangs_is_not_retried_by_every_test(tmp_path: Path) -> None:
    """An endless loop at import costs one call timeout, not one per test."""
    tests = "import pytest\n\n" + "".join(
        f"@pytest.mark.call_timeout(1)\ndef test_{n}(student):\n    '''{n}'''\n"
        "    student.module('m')\n\n" for n in "abc")
    out = grade(tmp_path, tests, "while True:\n    pass\n")
    first, *later = [t["output"] for t in out.data["tests"]]
    assert "exceeded 1 s in the import of m" in first and "not tried again" not in first
    assert all("exceeded 1 s in the import of m" in o and "not tried again" in o for o in later)
    assert out.data["output"].count("(m.py, line") == 1, out.data["output"]  # named once


def test_jupyter_only_names_get_a_hint(tmp_path: Path) -> None:
    out = grade(tmp_path, "def test_a(student):\n    '''a'''\n    student.module('m')\n",
                "x = 1\ndisplay(x)\n")
    assert "exists only inside Jupyter" in out.data["tests"][0]["output"]
    assert "exists only inside Jupyter" in out.data["output"]


def test_skipped_hidden_test_is_a_harness_error(tmp_path: Path) -> None:
    out = grade(tmp_path, (
        "import pytest\n\n"
        "def test_a(student):\n    '''a'''\n    pytest.skip('needs a package the image lacks')\n"), GOOD)
    assert out.exit_code == ExitCode.HARNESS_ERROR
    assert "needs a package" in out.data["tests"][-1]["output"]


def test_student_exit_code_70_is_the_students_failure(tmp_path: Path) -> None:
    """Exit 70 once meant 'sandbox setup failed'; the ready handshake tells them apart."""
    out = grade(tmp_path, "def test_a(student):\n    '''a'''\n    student.module('m')\n",
                "import os\nos._exit(70)\n")
    assert out.exit_code == ExitCode.OK
    (test,) = out.data["tests"]
    assert test["score"] == 0 and "exited with code 70" in test["output"]


def test_remote_objects_cannot_be_iterated(tmp_path: Path) -> None:
    """Iterating a handle would fall back to obj[0], obj[1], ... in the worker forever."""
    tests = (
        "import pytest\nfrom autograder.errors import UnusableValue\n\n"
        "def test_a(student):\n    '''a'''\n"
        "    box = student.module('m').Box()\n"
        "    with pytest.raises(UnusableValue, match='cannot be iterated'):\n"
        "        sorted(box)\n"
        "    with pytest.raises(UnusableValue, match='length'):\n"
        "        len(box)\n"
        "    with pytest.raises(UnusableValue, match='type Box from m.Box'):\n"
        "        1 in box\n")
    module = ("class Box:\n    def __getitem__(self, i):\n"
              "        return [0.0] * 1000\n")
    out = grade(tmp_path, tests, module)
    assert out.exit_code == ExitCode.OK
    assert out.data["tests"][0]["status"] == "passed", out.data["tests"][0]["output"]


@pytest.mark.parametrize("kind", ["OrderedDict", "namedtuple"])
def test_container_subclasses_arrive_as_plain_containers(tmp_path: Path, kind: str) -> None:
    module = ("from collections import OrderedDict, namedtuple\n"
              "P = namedtuple('P', 'a b')\n"
              "def make():\n"
              + ("    return OrderedDict(a=1, b=2)\n" if kind == "OrderedDict" else
                 "    return P(1, 2)\n"))
    expected = "{'a': 1, 'b': 2}" if kind == "OrderedDict" else "(1, 2)"
    tests = ("def test_a(student):\n    '''a'''\n"
             "    v = student.module('m').make()\n"
             f"    assert type(v) in (dict, tuple) and v == {expected}\n")
    out = grade(tmp_path, tests, module)
    assert out.data["tests"][0]["status"] == "passed", out.data["tests"][0]["output"]


def test_printing_a_lot_costs_nothing_but_the_truncated_output(tmp_path: Path) -> None:
    """Output goes through a pipe: no file size limit applies to it."""
    out = grade(tmp_path, "def test_a(student):\n    '''a'''\n"
                          "    assert student.module('m').f(1) == 2\n",
                "def f(x):\n    for _ in range(30000):\n        print('x' * 100)\n"
                "    return x + 1\n", limits="file_size_mb = 1\n")
    (test,) = out.data["tests"]
    assert test["status"] == "passed", test["output"][-500:]
    assert "output truncated" in test["output"] and len(test["output"]) < 20_000


def test_a_hidden_file_that_does_not_parse_still_lists_its_tests(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "assignment.toml").write_text(CONFIG)
    name = "".join(c if c.isalnum() else "_" for c in tmp_path.name)
    (ref / f"test_ok_{name}.py").write_text("def test_ok(student):\n    '''ok'''\n")
    (ref / f"test_broken_{name}.py").write_text(
        "def test_one(student):\n    pass\n\ndef test_two(student:\n    pass\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.py").write_text(GOOD)
    out = run_suite(suite=Suite(tests=[ref], config=ref / "assignment.toml", support=None,
                                rootdir=ref, hide=[]), submission=sub, output=tmp_path / "r.json")
    results.validate(out.data)
    assert out.exit_code == ExitCode.HARNESS_ERROR
    names = {t["name"] for t in out.data["tests"]}
    assert {"ok", "test_one", "test_two"} <= names
    assert all(t["score"] == 0 for t in out.data["tests"])
