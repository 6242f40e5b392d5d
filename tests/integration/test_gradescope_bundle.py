"""`autograder gradescope`: the upload zip, and its run_autograder grading submissions laid
out as Gradescope lays them out (/autograder/source, submission, results)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from course_cli import ag

from autograder.grading import results


@pytest.fixture
def bundle(course: Path, tmp_path: Path) -> Path:
    proc = ag("gradescope", "a9", "-o", str(tmp_path / "a9.zip"), cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "upload it as the autograder of a9" in proc.stdout
    return tmp_path / "a9.zip"


def test_bundle_layout_and_no_solution_code(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        text = "\n".join(zf.read(n).decode("utf-8", "replace") for n in names
                         if n.endswith(".py"))
    assert {"setup.sh", "run_autograder"} <= set(names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert "course/reference_tests/a9_tiny/hidden/test_hidden.py" in names
    assert "harness/autograder/cli.py" in names and "harness/constraints.txt" in names
    assert not any(n.startswith("course/solutions") for n in names)
    assert "return np.maximum(x, 0)" not in text  # the solution's code is not shipped
    assert "course/assignments/a9_tiny/data.py" in names  # the support file is
    assert not any("__pycache__" in n for n in names)


def _gradescope_root(tmp_path: Path, bundle: Path, submission: Path) -> Path:
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)
    shutil.copytree(submission, root / "submission")
    (root / "results").mkdir()
    return root


def _run_autograder(root: Path) -> dict:
    # Installing (setup.sh) needs Gradescope's network; the harness of this checkout
    # stands in for /autograder/venv.
    proc = subprocess.run([str(root / "source" / "run_autograder")], capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "AUTOGRADER_ROOT": str(root),
                               "AUTOGRADER_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    results.validate(data)
    return data


def test_run_autograder_grades_the_solution_and_the_template(course: Path, bundle: Path,
                                                             tmp_path: Path) -> None:
    full = _run_autograder(_gradescope_root(tmp_path / "a", bundle,
                                            course / "solutions" / "a9_tiny"))
    assert full["score"] == 2
    zero = _run_autograder(_gradescope_root(tmp_path / "b", bundle,
                                            course / "assignments" / "a9_tiny"))
    assert zero["score"] == 0
    assert all(t["visibility"] in ("after_published", "hidden", "visible") for t in zero["tests"])


def test_run_autograder_holds_against_a_forging_submission(course: Path, bundle: Path,
                                                           tmp_path: Path) -> None:
    """Student code that writes Gradescope's results file itself, and reads the hidden
    suite from /autograder/source, gets nowhere."""
    sub = tmp_path / "evil"
    shutil.copytree(course / "assignments" / "a9_tiny", sub)
    root = tmp_path / "x" / "autograder"
    forged = json.dumps({"score": 999, "tests": []})
    (sub / "ops.py").write_text((sub / "ops.py").read_text() + f"""
import os
for path in [{str(root / "results" / "results.json")!r}]:
    try:
        with open(path, "w") as f:
            f.write({forged!r})
    except OSError as exc:
        print("FORGE failed:", exc)
try:
    print("PEEK", open({str(root / "source" / "course" / "reference_tests" / "a9_tiny" / "hidden" / "test_hidden.py")!r}).read()[:40])
except OSError as exc:
    print("PEEK failed:", exc)
""")
    data = _run_autograder(_gradescope_root(tmp_path / "x", bundle, sub))
    assert data["score"] == 0 and data["tests"], data
    text = json.dumps(data)
    assert "PEEK failed" in text and "FORGE failed" in text  # it ran, and both were refused
