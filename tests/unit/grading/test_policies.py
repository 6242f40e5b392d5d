"""[policy] with Gradescope's submission_metadata.json: late penalty, submission limit,
best-of. The grade is never lost to a policy; hidden tests' totals are never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.config import Policy
from autograder.errors import CourseError
from autograder.grading import policies
from autograder.grading.results import validate


def _results(score: float = 8.0) -> dict:
    tests = [{"score": score, "max_score": 10, "status": "passed", "name": "t", "number": "1",
              "tags": [], "visibility": "after_published", "output": "", "output_format": "text"}]
    return {"score": score, "execution_time": 1.0, "output": "Files graded: ops.py",
            "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
            "extra_data": {}, "tests": tests}


def _meta(created: str = "2026-12-01T10:00:00+00:00", due: str = "2026-12-01T12:00:00+00:00",
          previous: list | None = None) -> dict:
    return {"created_at": created, "assignment": {"due_date": due, "late_due_date": None},
            "users": [{"email": "s@example.com", "id": 1, "name": "S"}],
            "previous_submissions": previous or []}


def _prev(time: str, score: float) -> dict:
    return {"submission_time": time, "score": score, "results": {}}


def test_on_time_keeps_the_score() -> None:
    out = policies.apply(_results(), _meta(), Policy(late_penalty_per_day=0.2))
    validate(out)
    assert out["score"] == 8 and out["extra_data"]["policy"]["final_score"] == 8
    assert out["output"] == "Files graded: ops.py"


def test_late_penalty_per_started_day() -> None:
    # 26 hours late: two started days at 20 % each
    out = policies.apply(_results(), _meta(created="2026-12-02T14:00:00+00:00"),
                         Policy(late_penalty_per_day=0.2))
    validate(out)
    assert out["score"] == pytest.approx(8 * 0.6)
    assert "26.0 hours after the due date: 2 day(s) late, 40%" in out["output"]
    assert out["tests"][0]["score"] == 8  # the tests keep what they earned
    assert "/ 10" not in out["output"] and "8" not in out["output"].split("\n")[0]


def test_grace_minutes_and_time_zones() -> None:
    # 3 minutes late, written in another time zone: within a 5-minute grace
    meta = _meta(created="2026-12-01T13:03:00+01:00", due="2026-12-01T12:00:00+00:00")
    assert policies.apply(_results(), meta, Policy(0.5, late_grace_minutes=5))["score"] == 8
    assert policies.apply(_results(), meta, Policy(0.5))["score"] == 4


def test_penalty_never_below_zero() -> None:
    out = policies.apply(_results(), _meta(created="2026-12-30T12:00:00+00:00"), Policy(0.3))
    assert out["score"] == 0


def test_submission_limit_keeps_the_last_allowed_score() -> None:
    prev = [_prev("2026-11-30T10:00:00+00:00", 3.0), _prev("2026-11-29T10:00:00+00:00", 5.0)]
    out = policies.apply(_results(9.0), _meta(previous=prev), Policy(submission_limit=2))
    validate(out)
    # sorted by time, submission 2 is the one of 11-30 (3 points)
    assert out["score"] == 3.0
    assert "This is submission 3; the limit is 2" in out["output"]
    within = policies.apply(_results(9.0), _meta(previous=prev[:1]), Policy(submission_limit=2))
    assert within["score"] == 9.0


def test_best_of_takes_the_best_earlier_score() -> None:
    prev = [_prev("2026-11-30T10:00:00+00:00", 9.5)]
    out = policies.apply(_results(8.0), _meta(previous=prev), Policy(best_of=True))
    assert out["score"] == 9.5 and "best score counts" in out["output"]
    assert policies.apply(_results(10.0), _meta(previous=prev), Policy(best_of=True))["score"] == 10


def test_missing_or_broken_metadata_keeps_the_grade(tmp_path: Path) -> None:
    bad = tmp_path / "submission_metadata.json"
    bad.write_text("{not json")
    meta, problem = policies.read_metadata(bad)
    assert meta is None and "could not be read" in problem
    out = policies.apply(_results(), meta, Policy(0.2), problem=problem)
    validate(out)
    assert out["score"] == 8 and "were not applied" in out["output"]
    assert "could not be read" in out["extra_data"]["policy"]["not_applied"]
    no_due = _meta()
    no_due["assignment"]["due_date"] = "tomorrow"
    out = policies.apply(_results(), no_due, Policy(0.2))
    assert out["score"] == 8 and "late penalty was not applied" in out["output"]


def test_no_policy_changes_nothing() -> None:
    data = _results()
    assert policies.apply(data, _meta(created="2027-01-01T00:00:00+00:00"), Policy()) is data


@pytest.mark.parametrize("entry, fragment", [
    ("late_penalty_per_day = 10", "fraction from 0 to 1"),
    ("submission_limit = -1", "whole number of submissions"),
    ("best_of = 1", "true or false"),
    ("late_penalty = 0.1", "unknown [policy] entry 'late_penalty'"),
])
def test_bad_policy_config_is_named(tmp_path: Path, entry: str, fragment: str) -> None:
    from autograder.config import AssignmentConfig

    toml = tmp_path / "assignment.toml"
    toml.write_text(f'[assignment]\nid = "x"\ntitle = "x"\nmodules = ["m"]\n\n[policy]\n{entry}\n')
    with pytest.raises(CourseError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        AssignmentConfig.load(toml)


def test_run_autograder_applies_the_late_penalty(tmp_path: Path) -> None:
    """End to end as on Gradescope: [policy] in assignment.toml, the metadata beside
    /autograder/submission, run_autograder passes it on."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    from autograder.packaging.gradescope import build_bundle

    course = tmp_path / "course"
    shutil.copytree(Path(__file__).resolve().parents[2] / "fixtures" / "authoring" / "course", course)
    toml = course / "reference_tests" / "a9_tiny" / "assignment.toml"
    toml.write_text(toml.read_text() + "\n[policy]\nlate_penalty_per_day = 0.25\n")
    bundle = build_bundle(course, "a9_tiny", tmp_path / "a9.zip")
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    shutil.copytree(course / "solutions" / "a9_tiny", root / "submission")
    (root / "submission_metadata.json").write_text(json.dumps(
        _meta(created="2026-12-01T18:00:00+00:00")))
    for p in (tmp_path, root, root / "submission"):
        p.chmod(0o755)
    proc = subprocess.run([str(root / "source" / "run_autograder")], capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "AUTOGRADER_ROOT": str(root),
                               "AUTOGRADER_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    validate(data)
    assert sum(t["score"] for t in data["tests"]) == 2  # earned
    assert data["score"] == 1.5  # one started day late at 25 %
    assert "1 day(s) late, 25%" in data["output"]


@pytest.mark.parametrize("meta", [
    {"assignment": "x", "created_at": "2026-12-01T10:00:00+00:00"},
    {"previous_submissions": 5, "created_at": 3},
    {"previous_submissions": [None, "x", {"score": "lots"}], "assignment": None},
])
def test_malformed_metadata_never_crashes(meta: dict) -> None:
    out = policies.apply(_results(), meta, Policy(0.2, submission_limit=2, best_of=True))
    validate(out)
    assert out["score"] == 8


def test_limit_counts_every_earlier_entry_and_ignores_later_ones() -> None:
    prev = [_prev("2026-11-29T10:00:00+00:00", 4.0),
            {"submission_time": "2026-11-30T10:00:00+00:00", "score": None, "results": {}},
            _prev("2026-12-05T10:00:00+00:00", 1.0)]  # after this one: a regrade's view
    out = policies.apply(_results(9.0), _meta(previous=prev), Policy(submission_limit=2))
    assert out["score"] == 0.0 and "This is submission 3" in out["output"]
    out = policies.apply(_results(9.0), _meta(previous=prev), Policy(submission_limit=3))
    assert out["score"] == 9.0
