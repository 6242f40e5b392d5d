"""A course coming from gradescope-utils: its unittest suite (every decorator, direct
imports of the student's module) graded by `autograder grade` in the sandbox scores as
gradescope-utils' own JSONTestRunner scores it, test by test; a submission that forges its
grade in JSONTestRunner's process gets nowhere under the harness."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from course_cli import ag

from autograder.grading import results

pytest.importorskip("gradescope_utils", reason="gradescope-utils is in the staff extra")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gradescope_utils"
SUITE = "reference_tests/g1_calc"

# JSONTestRunner as gradescope-utils' run_tests.py drives it: the submission importable,
# every test_*.py of the suite discovered, results.json written by the runner. Unsandboxed:
# the student's code runs in this very process.
REFERENCE = textwrap.dedent("""
    import sys, unittest
    submission, suite, out = sys.argv[1:4]
    sys.path.insert(0, submission)
    from gradescope_utils.autograder_utils.json_test_runner import JSONTestRunner
    tests = unittest.defaultTestLoader.discover(suite, top_level_dir=suite)
    with open(out, "w") as f:
        JSONTestRunner(stream=f, visibility="visible").run(tests)
""")


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A copy of the fixture course and its submissions, readable by the worker's user."""
    root = tmp_path / "gu"
    shutil.copytree(FIXTURES, root)
    for p in [tmp_path, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root / "course"


def grade(course: Path, submission: str, tmp_path: Path, *options: str
          ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / f"harness-{submission}.json"
    proc = ag("grade", "g1", str(course.parent / "submissions" / submission), "-o", str(out),
              "--course", str(course), *options, cwd=course)
    data = json.loads(out.read_text())
    results.validate(data)
    return proc, data


def reference(course: Path, submission: str, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / f"reference-{submission}.json"
    work = tmp_path / f"cwd-{submission}"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", REFERENCE,
                           str(course.parent / "submissions" / submission),
                           str(course / SUITE / "hidden"), str(out)],
                          cwd=work, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(out.read_text()))


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> what is compared (JSONTestRunner leaves out what no decorator set)."""
    return {t["name"]: {"score": round(float(t.get("score", 0.0)), 6),
                        "max_score": round(float(t.get("max_score", 0.0)), 6),
                        "visibility": t.get("visibility", "visible"),
                        "number": t.get("number"),
                        "tags": list(t.get("tags", []))}
            for t in data["tests"]}


def compare(harness: dict[str, Any], ref: dict[str, Any]) -> None:
    ours, theirs = by_name(harness), by_name(ref)
    assert set(theirs) <= set(ours), (sorted(ours), sorted(theirs))
    for name, want in theirs.items():
        got = dict(ours[name])
        if want["number"] is None:  # JSONTestRunner numbers only tests with @number
            got["number"] = None
        assert got == want, name
    # Only leaderboard tests are listed beside (at 0 of 0): JSONTestRunner lists them in
    # the leaderboard alone.
    assert all(ours[n]["max_score"] == 0 for n in set(ours) - set(theirs))
    assert harness["score"] == pytest.approx(ref["score"])
    assert sorted(harness.get("leaderboard", []), key=str) == \
        sorted(ref.get("leaderboard", []), key=str)


EXPECTED = {  # name -> (correct, partly wrong) points, as JSONTestRunner gives them
    "add() adds two numbers": (2, 2),
    "divide() refuses a zero divisor with ValueError": (1, 0),
    "test_mean (test_calculator.TestArithmetic.test_mean)": (1.5, 0),
    "test_constant (test_calculator.TestArithmetic.test_constant)": (0, 0),
    "Accumulator keeps a running total": (2, 2),
    "classify() labels signs: a point per right label": (4, 3),
    "A shared Accumulator starts from 0": (1, 1),  # made in setUpClass
    "A shared Accumulator keeps the first test's total": (1, 1),
}


@pytest.mark.parametrize(("submission", "column", "board"),
                         [("correct", 0, 1.0), ("partial", 1, 0.55)])
def test_same_scores_as_json_test_runner(course: Path, tmp_path: Path, submission: str,
                                         column: int, board: float) -> None:
    proc, harness = grade(course, submission, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ref = reference(course, submission, tmp_path)
    compare(harness, ref)
    assert {t["name"]: t.get("score", 0) for t in ref["tests"]} == \
        {n: pytest.approx(p[column]) for n, p in EXPECTED.items()}
    assert harness["leaderboard"] == [{"name": "accuracy", "value": board, "order": "desc"}]
    tests = {t["name"]: t for t in harness["tests"]}
    assert tests["add() adds two numbers"]["number"] == "1.1"
    assert tests["Accumulator keeps a running total"]["tags"] == ["objects", "state"]
    assert tests["test_mean (test_calculator.TestArithmetic.test_mean)"]["visibility"] == "hidden"
    # the grader never imported the student's module: every call ran in a sandboxed worker
    assert harness["extra_data"]["isolation"] == "sandbox"
    if submission == "partial":
        # @hide_errors: the student reads the message, staff the assertion
        mean = tests["test_mean (test_calculator.TestArithmetic.test_mean)"]
        assert mean["output"] == "mean() is wrong on a hidden input"
        assert "AssertionError" in mean["extra_data"]["staff_traceback"]
        # a student's ZeroDivisionError is not the ValueError that assertRaises wants
        assert "ZeroDivisionError" in tests["divide() refuses a zero divisor with ValueError"]["output"]
        classify = tests["classify() labels signs: a point per right label"]
        assert classify["status"] == "failed" and classify["score"] == 3


def test_in_process_grading_scores_the_same(course: Path, tmp_path: Path) -> None:
    """--isolation none (debugging): the student's real module is imported in this process
    by the in-process worker, beside the suite's names that route to it."""
    proc, harness = grade(course, "partial", tmp_path, "--isolation", "none")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert harness["extra_data"]["isolation"] == "none"
    compare(harness, reference(course, "partial", tmp_path))


def test_a_forging_submission_wins_under_json_test_runner_only(course: Path,
                                                               tmp_path: Path) -> None:
    ref = reference(course, "malicious", tmp_path)
    assert ref["score"] == pytest.approx(12.5)  # full marks, forged in the runner's process
    assert ref["leaderboard"][0]["value"] == 1.0
    proc, harness = grade(course, "malicious", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert harness["score"] == 0 and "leaderboard" not in harness
    assert all(t["status"] == "failed" for t in harness["tests"])
    assert not harness["extra_data"].get("harness_error")
    text = json.dumps(harness)
    assert "cannot use as a value to compare" in text  # its AlwaysEqual stayed in the worker
    assert "FORGE failed" in text  # it tried to write a results.json, and could not


def _break_suite(course: Path, old: str, new: str) -> None:
    path = course / SUITE / "hidden" / "test_calculator.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(("old", "new", "said"), [
    ("@weight(1.5)", '@weight("one and a half")',
     ("test_mean", "@weight('one and a half')", "must be a number of points", "e.g. @weight(2)")),
    ('@visibility("hidden")', '@visibility("secret")',
     ("test_mean", "@visibility('secret')", "use one of visible, hidden")),
])
def test_a_decorator_with_a_bad_value_is_named(course: Path, tmp_path: Path, old: str, new: str,
                                               said: tuple[str, ...]) -> None:
    _break_suite(course, old, new)
    proc, data = grade(course, "correct", tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    staff = results.harness_cause(data, full=True) or ""
    for text in said:
        assert text in staff, staff
        assert text in proc.stdout + proc.stderr
    assert data["score"] == 0


def test_an_import_of_a_module_the_assignment_does_not_list_is_named(course: Path,
                                                                      tmp_path: Path) -> None:
    _break_suite(course, "import calculator\n", "import calculator\nimport helpers\n")
    proc, data = grade(course, "correct", tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    staff = results.harness_cause(data, full=True) or ""
    for text in ("imports 'helpers'", "not a module of assignment g1",
                 "modules = ['calculator']", "add its name to [assignment] modules"):
        assert text in staff, staff
    assert data["score"] == 0
