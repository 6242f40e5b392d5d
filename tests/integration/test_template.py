"""The per-submission template: the submission is imported once per grading, each test's
worker is forked from it (autograder.sandbox.template).

Module bodies (a notebook's scratch cells) run once; a test's changes to module state do
not reach the next test; an import error is raised again in every test that imports the
module, without running the module again; a test that times out costs its fork only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="the sandbox forks as root here")

OPS = '''

import os as _os

IMPORTED_BY = _os.getpid()
STATE = []


def who():
    return IMPORTED_BY, _os.getppid(), _os.getpid()


def remember(x):
    STATE.append(x)
    return list(STATE)


def hang():
    while True:
        pass


def uid():
    return _os.getuid()


def heap_flags():
    import ctypes
    block = bytearray(8 << 20)  # malloc's own mapping (past its mmap threshold)
    address = ctypes.addressof((ctypes.c_char * len(block)).from_buffer(block))
    flags, inside = "", False
    with open("/proc/self/smaps") as maps:
        for line in maps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(x, 16) for x in head.split("-"))
                inside = start <= address < end
            elif inside and head == "VmFlags:":
                flags = line.split(":", 1)[1]
    return flags.split(), sorted(_os.environ)
'''

STATS_BROKEN = '''
raise RuntimeError("stats cannot be imported: " + str(len(open(__file__).read()) > 0))
'''

TESTS = '''
import os

import pytest
from autograder.errors import StudentError, StudentTimeout

SEEN = []
TEMPLATE = os.environ.get("AUTOGRADER_NO_TEMPLATE") != "1"


def test_a_first(student):
    """first: module state changed here"""
    ops = student.module("ops")
    SEEN.append(ops.who())
    assert ops.remember(1) == [1]


def test_b_times_out(student):
    """second: a call that times out"""
    with pytest.raises(StudentTimeout):
        student.module("ops").hang()


def test_c_second(student):
    """third: the first test's state is not here"""
    ops = student.module("ops")
    SEEN.append(ops.who())
    assert ops.remember(2) == [2]
    (imp1, parent1, me1), (imp2, parent2, me2) = SEEN
    if TEMPLATE:  # both tests' workers are forks of the process that imported the module
        assert imp1 == parent1 == imp2 == parent2 and me1 != me2, SEEN
    else:  # each worker imported the module itself
        assert imp1 == me1 and imp2 == me2, SEEN


def test_d_import_error(student):
    """fourth: an import error arrives as the student's"""
    with pytest.raises(StudentError) as err:
        student.module("stats")
    assert "stats cannot be imported: True" in str(err.value)
    print("IMPORT-ERROR-SEEN")


def test_e_import_error_again(student):
    """fifth: the same error again"""
    with pytest.raises(StudentError) as err:
        student.module("stats")
    assert "stats cannot be imported: True" in str(err.value)


def test_f_heap_in_huge_pages(student):
    """sixth: malloc asks for transparent huge pages where the host leaves it to madvise"""
    flags, env = student.module("ops").heap_flags()
    assert "GLIBC_TUNABLES" not in env  # what the student's code starts runs as before
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            mode = f.read()
    except OSError:
        mode = ""
    if "[madvise]" in mode:
        assert "hg" in flags, flags
    print("THP MODE", mode.strip() or "unknown", flags)


def test_g_uid_leased(student):
    """seventh: the worker's uid is this grading's lease while the grading runs"""
    uid = student.module("ops").uid()
    assert uid != os.getuid()
    assert os.path.isfile(f"/run/autograder-uids/{uid}"), os.listdir("/run/autograder-uids")
    with open(os.environ["LEASE_NOTE"], "w") as note:  # for the check after the grading
        note.write(str(uid))
'''


def _grade(course: Path, *, template: bool) -> dict:
    ref = course / "reference_tests" / "a9_tiny"
    for old in (ref / "hidden").glob("test_*.py"):
        old.unlink()
    for old in (ref / "public").glob("test_*.py"):
        old.unlink()
    (ref / "hidden" / "test_template.py").write_text(TESTS)
    toml = ref / "assignment.toml"
    toml.write_text(toml.read_text().replace("call_timeout = 10", "call_timeout = 2"))
    sol = course / "solutions" / "a9_tiny"
    (sol / "ops.py").write_text((sol / "ops.py").read_text() + OPS)
    (sol / "stats.py").write_text(STATS_BROKEN)
    out = course / "out.json"
    env = {**os.environ, "AUTOGRADER_NO_TEMPLATE": "0" if template else "1",
           "LEASE_NOTE": str(course / "lease.txt")}
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "a9", str(sol), "-o",
                           str(out), "--course", str(course)], capture_output=True, text=True,
                          timeout=300, check=False, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {t["name"].split(":")[0]: t for t in json.loads(out.read_text())["tests"]}


@needs_root
def test_imported_once_and_forked_per_test(course: Path) -> None:
    tests = _grade(course, template=True)
    assert len(tests) == 7 and all(t["status"] == "passed" for t in tests.values()), {
        k: t["output"][-500:] for k, t in tests.items()}
    leased = (course / "lease.txt").read_text()
    assert not Path(f"/run/autograder-uids/{leased}").exists()  # given back at the end


@needs_root
def test_without_the_template_every_test_imports(course: Path) -> None:
    """The baseline (AUTOGRADER_NO_TEMPLATE=1): same verdicts, a fresh import per test."""
    tests = _grade(course, template=False)
    assert len(tests) == 7 and all(t["status"] == "passed" for t in tests.values()), {
        k: t["output"][-500:] for k, t in tests.items()}


RELATIVE_RUN = """
import sys
from pathlib import Path
from autograder.grading.runner import Suite, run_suite
ref = Path("reference_tests/a1_numpy_nn")
suite = Suite(tests=[ref], config=ref / "assignment.toml", support=Path("solutions/a1_numpy_nn"),
              rootdir=ref, hide=[])
o = run_suite(suite=suite, submission=Path("solutions/a1_numpy_nn"), output=Path(sys.argv[1]),
              extra_args=["-k", "test_train_uses_every_row_once_per_epoch"])
print(o.data["score"], [t["output"][:300] for t in o.data["tests"]])
"""


def test_course_probes_load_when_the_suite_is_given_by_relative_paths(tmp_path):
    # The zygote runs in "/": a relative probe path must reach it resolved.
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", RELATIVE_RUN, str(tmp_path / "r.json")],
                          cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    score, outputs = proc.stdout.split(" ", 1)
    assert float(score) > 0, outputs
