"""`autograder grade-all` on export layouts (zips, zipped folders) and with --timeout, as
instructors run it, on the tiny course of tests/fixtures/authoring/course."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from course_cli import ag

from autograder.errors import ExitCode
from autograder.grading import results


def zip_folder(folder: Path, archive: Path, *, under: str = "") -> Path:
    """``archive`` with ``folder``'s files, inside ``under``/ when given (what zipping the
    folder itself gives), plus the metadata macOS adds."""
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{under}/{path.relative_to(folder)}" if under
                         else str(path.relative_to(folder)))
        zf.writestr(f"__MACOSX/{under or '.'}/._ops.py", "\0")
    return archive


def read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    results.validate(data)
    return data


def test_grade_all_grades_zips_and_zipped_folders(course: Path, tmp_path: Path) -> None:
    solution = course / "solutions" / "a9_tiny"
    subs = tmp_path / "subs"
    subs.mkdir()
    zip_folder(solution, subs / "alice.zip")  # files at the zip's top level
    zip_folder(solution, subs / "bob.zip", under="a9_tiny")  # the folder zipped
    (subs / "carol.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    shutil.copytree(course / "assignments" / "a9_tiny", subs / "dave")
    (subs / "submission_metadata.yml").write_text("alice: {}\n")
    graded = tmp_path / "graded"
    proc = ag("grade-all", "a9", str(subs), "-o", str(graded), cwd=course)
    assert proc.returncode == int(ExitCode.OK), proc.stdout + proc.stderr
    assert "4 submissions" in proc.stdout
    assert "left out: " in proc.stdout and "submission_metadata.yml" in proc.stdout
    assert "alice.zip" not in proc.stdout.split("left out: ")[1].splitlines()[0]
    data = {name: read(graded / name / "results.json") for name in ("alice", "bob", "carol", "dave")}
    assert {name: d["score"] for name, d in data.items()} == {"alice": 2, "bob": 2, "carol": 0,
                                                             "dave": 0}
    assert "graded the files in a9_tiny/" in data["bob"]["output"]
    assert "__MACOSX" not in data["bob"]["output"] + data["alice"]["output"]
    # The broken zip: the student is told, every expected test is listed at 0 points, and
    # it is no harness error (no staff-only harness entry, exit 0 above).
    carol = data["carol"]
    assert carol["output"].startswith("Your submission could not be graded: carol.zip could "
                                      "not be unpacked, it is not a valid zip file")
    assert [t["name"] for t in carol["tests"]] == [t["name"] for t in data["alice"]["tests"]]
    assert [t["max_score"] for t in carol["tests"]] == [1, 1]
    assert all(t["score"] == 0 and "carol.zip" in t["output"] for t in carol["tests"])
    assert not carol["extra_data"].get("harness_error") and results.harness_cause(carol) is None


def test_a_submission_stopped_by_the_timeout_is_told_why(course: Path, tmp_path: Path) -> None:
    """An endless loop at import: stopped by --timeout, 0 points, every test listed, the
    student told that the code may hang and during which test; not a harness error."""
    ok = tmp_path / "ok"
    shutil.copytree(course / "solutions" / "a9_tiny", ok)
    slow = tmp_path / "slow"
    shutil.copytree(course / "solutions" / "a9_tiny", slow)
    (slow / "ops.py").write_text((slow / "ops.py").read_text() + "\nwhile True:\n    pass\n")
    graded = tmp_path / "g"
    proc = ag("grade-all", "a9", f"ok={ok}", f"slow={slow}", "-o", str(graded),
              "--timeout", "3", cwd=course)
    assert proc.returncode == int(ExitCode.OK), proc.stdout + proc.stderr
    assert "grading took longer than 3 s and was stopped" in proc.stdout
    assert read(graded / "ok" / "results.json")["score"] == 2
    data = read(graded / "slow" / "results.json")
    assert data["score"] == 0
    first = "relu zeroes negative values (hidden)"
    assert data["output"].startswith("Stopped: the grading ran past its time limit of 3 s; "
                                     f"your code may hang or be too slow (during the test "
                                     f"'{first}')"), data["output"]
    assert "Importing ops failed" not in data["output"]  # stopped, not broken
    assert "problem in the grader" not in data["output"]
    assert [t["name"] for t in data["tests"]] == [first, "relu keeps positive values"]
    assert all(t["max_score"] == 1 and t["score"] == 0 for t in data["tests"])
    assert data["tests"][0]["output"].startswith("Stopped: the grading ran past its time limit")
    assert data["tests"][1]["output"].startswith("Not run: the grading ran past its time limit")
    assert data["extra_data"]["timed_out"] == {"limit": 3.0, "during": first}
    assert not data["extra_data"].get("harness_error") and results.harness_cause(data) is None
    rows = (graded / "grades.csv").read_text().splitlines()
    assert any(r.startswith("slow,") and ",timed out," in r for r in rows), rows


def test_the_timeout_keeps_the_points_of_tests_that_finished(course: Path, tmp_path: Path) -> None:
    """A hang in the second test: the first keeps its point, `grade` takes --timeout and a
    zip too, and the output names the test that was running."""
    sub = tmp_path / "late"
    shutil.copytree(course / "solutions" / "a9_tiny", sub)
    ops = sub / "ops.py"
    ops.write_text(ops.read_text().replace(
        "    return np.maximum(x, 0)",
        "    while (x > 0).all():  # hangs on the second test's input only\n"
        "        pass\n    return np.maximum(x, 0)"))
    archive = shutil.make_archive(str(tmp_path / "late"), "zip", sub)
    proc = ag("grade", "a9", archive, "-o", str(tmp_path / "r.json"), "--timeout", "4",
              cwd=course)
    assert proc.returncode == int(ExitCode.OK), proc.stdout + proc.stderr
    data = read(tmp_path / "r.json")
    assert [t["score"] for t in data["tests"]] == [1, 0], data["tests"]
    assert data["score"] == 1
    assert "(during the test 'relu keeps positive values')" in data["output"]
    assert data["tests"][1]["output"].startswith("Stopped: the grading ran past its time limit "
                                                 "of 4 s; your code may hang or be too slow; "
                                                 "this test was running then.")


def test_grade_tells_the_student_when_a_zip_cannot_be_unpacked(course: Path,
                                                               tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all")
    proc = ag("grade", "a9", str(bad), "-o", str(tmp_path / "r.json"), cwd=course)
    assert proc.returncode == int(ExitCode.OK), proc.stdout + proc.stderr
    data = read(tmp_path / "r.json")
    assert data["output"].startswith("Your submission could not be graded: bad.zip could not "
                                     "be unpacked")
    assert [t["max_score"] for t in data["tests"]] == [1, 1] and data["score"] == 0


@pytest.mark.parametrize("value", ["0", "-1", "-0.5"])
def test_a_timeout_that_is_not_positive_is_bad_usage(course: Path, tmp_path: Path,
                                                     value: str) -> None:
    proc = ag("grade-all", "a9", "solutions/a9_tiny", "-o", str(tmp_path / "g"),
              f"--timeout={value}", cwd=course)
    said = proc.stdout + proc.stderr
    assert proc.returncode == int(ExitCode.USAGE), said
    assert "--timeout" in said and "positive number of seconds" in said and value in said
    assert not (tmp_path / "g").exists()


def test_a_test_expecting_an_error_does_not_pass_on_the_deadline_kill(course: Path,
                                                                      tmp_path: Path) -> None:
    hidden = course / "reference_tests" / "a9_tiny" / "hidden"
    (hidden / "test_zz_raises.py").write_text(
        "import pytest\n\n\n"
        "def test_bad_input(student):\n"
        "    '''clipped_sum refuses text'''\n"
        "    with pytest.raises(Exception):\n"
        "        student.module('ops').clipped_sum('xx', 1.0)\n")
    sub = tmp_path / "loops"
    shutil.copytree(course / "solutions" / "a9_tiny", sub)
    ops = sub / "ops.py"
    ops.write_text(ops.read_text().replace(
        '    """Sum of ``xs`` with each term clipped to ``limit``."""',
        '    """Sum of ``xs`` with each term clipped to ``limit``."""\n'
        '    while isinstance(xs, str):\n        pass'))
    proc = ag("grade", "a9", str(sub), "-o", str(tmp_path / "r.json"), "--timeout", "4",
              cwd=course)
    assert proc.returncode == int(ExitCode.OK), proc.stdout + proc.stderr
    by_name = {t["name"]: t for t in read(tmp_path / "r.json")["tests"]}
    stuck = by_name["clipped_sum refuses text"]
    assert stuck["score"] == 0 and stuck["status"] == "failed", stuck
    assert stuck["output"].startswith("Stopped: the grading ran past its time limit")


def test_the_timeout_is_reported_with_parallel_tests(course: Path, tmp_path: Path) -> None:
    slow = tmp_path / "slow"
    shutil.copytree(course / "solutions" / "a9_tiny", slow)
    (slow / "ops.py").write_text((slow / "ops.py").read_text() + "\nwhile True:\n    pass\n")
    proc = ag("grade", "a9", str(slow), "-o", str(tmp_path / "r.json"), "--timeout", "3",
              "--test-workers", "2", cwd=course)
    assert proc.returncode == int(ExitCode.OK), proc.stdout + proc.stderr
    data = read(tmp_path / "r.json")
    assert data["extra_data"]["timed_out"]["limit"] == 3.0
    assert data["output"].startswith("Stopped: the grading ran past its time limit")
    assert all(t["output"].startswith(("Stopped:", "Not run:")) for t in data["tests"]), \
        [t["output"][:80] for t in data["tests"]]
