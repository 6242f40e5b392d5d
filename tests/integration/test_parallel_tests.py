"""`grade --test-workers N`: one submission's tests spread over pytest-xdist processes, each
with its own sandboxed workers; the results equal a serial run's, and a worker that dies is
a harness error with every test listed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from course_cli import ag

from autograder.errors import ExitCode
from autograder.grading import results


def _tests(path: Path) -> list[tuple[str, float, str, str]]:
    data = json.loads(path.read_text())
    results.validate(data)
    # object addresses in assertion messages differ from process to process
    return [(t["name"], t["score"], t["status"], re.sub(r"0x[0-9a-f]+", "0x", t["output"]))
            for t in data["tests"]]


@pytest.mark.parametrize("subject", ["solutions/a9_tiny", "assignments/a9_tiny", "mutant"])
def test_parallel_results_equal_serial(course: Path, tmp_path: Path, subject: str) -> None:
    if subject == "mutant":  # one test passes, one fails: each worker has a share
        sub = tmp_path / "mutant"
        shutil.copytree(course / "solutions" / "a9_tiny", sub)
        ops = sub / "ops.py"
        ops.write_text(ops.read_text().replace("return np.maximum(x, 0)",
                                               "return np.maximum(x, -1)"))
        subject = str(sub)
    serial = ag("grade", "a9", subject, "-o", str(tmp_path / "s.json"), cwd=course)
    par = ag("grade", "a9", subject, "-o", str(tmp_path / "p.json"), "--test-workers", "2",
             cwd=course)
    assert serial.returncode == par.returncode == 0, par.stdout + par.stderr
    assert _tests(tmp_path / "p.json") == _tests(tmp_path / "s.json")
    s, p = (json.loads((tmp_path / n).read_text()) for n in ("s.json", "p.json"))
    assert p["score"] == s["score"] and p["output"] == s["output"]
    assert ([(x["name"], x["active"]) for x in p["extra_data"]["protections"]]
            == [(x["name"], x["active"]) for x in s["extra_data"]["protections"]])


def test_a_dying_test_process_is_a_harness_error(course: Path, tmp_path: Path) -> None:
    hidden = course / "reference_tests" / "a9_tiny" / "hidden"
    (hidden / "test_zz_crash.py").write_text(
        "import os\n\n\ndef test_grader_side_crash(student):\n    os._exit(3)\n")
    proc = ag("grade", "a9", "solutions/a9_tiny", "-o", str(tmp_path / "r.json"),
              "--test-workers", "2", cwd=course)
    assert proc.returncode == int(ExitCode.HARNESS_ERROR), proc.stdout + proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["score"] == 0 and data["extra_data"]["harness_error"] is True
    names = [t["name"] for t in data["tests"]]
    assert "relu keeps positive values" in names and any("crash" in n for n in names), names
    assert "ended without its results" in results.harness_cause(data, full=True)
