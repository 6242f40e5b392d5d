"""The CLI as users run it, on a tiny course repository (tests/fixtures/authoring/course)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import results

COURSE = Path(__file__).resolve().parent.parent / "fixtures" / "authoring" / "course"


@pytest.fixture
def course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    shutil.copytree(COURSE, root)
    return root


def ag(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def test_grade_solution_full_marks_and_valid_results(course: Path) -> None:
    proc = ag("grade", "a9", "solutions/a9_tiny", "-o", "out/results.json", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((course / "out" / "results.json").read_text())
    results.validate(data)
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) == 2
    assert "2 / 2 points" in proc.stdout


def test_grade_template_scores_zero_but_exits_zero(course: Path) -> None:
    proc = ag("grade", "a9", "assignments/a9_tiny", "-o", "r.json", cwd=course)
    assert proc.returncode == 0
    data = json.loads((course / "r.json").read_text())
    assert data["score"] == 0
    assert all("NotImplementedError" in t["output"] for t in data["tests"])


def test_grade_unknown_assignment_is_usage_error_with_results(course: Path) -> None:
    proc = ag("grade", "a7", "solutions/a9_tiny", "-o", "r.json", cwd=course)
    assert proc.returncode == 3
    assert "unknown assignment 'a7'" in proc.stdout and "a9_tiny" in proc.stdout
    results.validate(json.loads((course / "r.json").read_text()))


def test_grade_missing_submission_folder_names_it(course: Path) -> None:
    proc = ag("grade", "a9", "nowhere", "-o", "r.json", cwd=course)
    assert proc.returncode == 2
    assert "nowhere" in proc.stdout
    results.validate(json.loads((course / "r.json").read_text()))


def test_check_in_student_folder_prints_table_and_fails_on_template(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    proc = ag("check", "a9", cwd=folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "relu keeps positive values" in proc.stdout
    assert "FAIL" in proc.stdout and "NotImplementedError" in proc.stdout


def test_check_passes_on_solution_files(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    for name in ("ops.py", "stats.py"):
        shutil.copy(course / "solutions" / "a9_tiny" / name, folder / name)
    proc = ag("check", "a9", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "score on public tests: 1 / 1" in proc.stdout


def test_validate_reports_uncaught_mutant(course: Path) -> None:
    proc = ag("validate", "a9", cwd=course)
    # The tiny course's hidden suite never tests stats.mean: that mutant survives.
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any("mean-off-by-one" in ln and "NO" in ln for ln in lines), proc.stdout
    assert any("solution" in ln and "yes" in ln for ln in lines)
    assert "1 check(s) failed" in proc.stdout


def test_template_check_detects_drift(course: Path) -> None:
    assert ag("template", "--check", cwd=course).returncode == 0
    ops = course / "solutions" / "a9_tiny" / "ops.py"
    ops.write_text(ops.read_text() + "\n\ndef extra(x):\n    return x\n")
    proc = ag("template", "--check", cwd=course)
    assert proc.returncode == 1 and "ops.py" in proc.stdout
    assert ag("template", cwd=course).returncode == 0
    assert ag("template", "--check", cwd=course).returncode == 0


def test_grade_all_table(course: Path) -> None:
    proc = ag("grade-all", "a9", "ref=solutions/a9_tiny", "tmpl=assignments/a9_tiny",
              "-o", "graded", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2/2" in proc.stdout and "0/2" in proc.stdout
    for name in ("ref", "tmpl"):
        results.validate(json.loads((course / "graded" / name / "results.json").read_text()))


def test_grade_all_rejects_duplicate_names(course: Path) -> None:
    proc = ag("grade-all", "a9", "solutions/a9_tiny", "assignments/a9_tiny", cwd=course)
    assert proc.returncode == 3
    assert "a9_tiny" in proc.stdout and "NAME=PATH" in proc.stdout


def test_test_timeout_fails_only_that_test(tmp_path: Path) -> None:
    """[limits] test_timeout bounds a whole test (many calls each under call_timeout)."""
    from autograder.grading import Suite, run_suite

    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "assignment.toml").write_text(
        '[assignment]\nid = "t1"\ntitle = "t"\nmodules = ["m"]\n\n'
        "[limits]\ncall_timeout = 5\ntest_timeout = 2\n")
    (ref / "test_t.py").write_text(
        "def test_slow(student):\n"
        "    '''many short calls'''\n"
        "    for _ in range(100):\n"
        "        student.module('m').nap()\n\n"
        "def test_fast(student):\n"
        "    '''one call'''\n"
        "    assert student.module('m').nap() is None\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.py").write_text("import time\n\ndef nap():\n    time.sleep(0.1)\n")
    out = run_suite(suite=Suite(tests=[ref], config=ref / "assignment.toml", support=None,
                                rootdir=ref, hide=[]), submission=sub,
                    output=tmp_path / "r.json")
    results.validate(out.data)
    by_name = {t["name"]: t for t in out.data["tests"]}
    assert by_name["many short calls"]["status"] == "failed"
    assert "Timeout" in by_name["many short calls"]["output"]
    assert by_name["one call"]["status"] == "passed"
