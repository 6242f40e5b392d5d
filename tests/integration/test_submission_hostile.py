"""`autograder grade` on a submission built to break the grader's preparation step:
a thousand nested folders, a 2 GB sparse file, thousands of long file names. The
grading completes (exit 0) with full marks for the modules at the top level, says what
it left out and why, and results.json stays small."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from course_cli import COURSE

from autograder.errors import ExitCode
from autograder.grading import results


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Path]:
    """The a9 solution plus 1100 nested folders (made and removed without recursion: even
    shutil.rmtree would recurse past Python's limit), a 2 GB sparse data.py and 2000 files
    with 240-character names."""
    sub = tmp_path / "hostile"
    shutil.copytree(COURSE / "solutions" / "a9_tiny", sub)
    with (sub / "data.py").open("wb") as f:
        f.truncate(2 * 1024**3)
    for i in range(2000):
        (sub / (f"z{i:05}_" + "n" * 240)).write_text("")
    fds = [os.open(sub, os.O_RDONLY)]
    try:
        for _ in range(1100):
            os.mkdir("d", dir_fd=fds[-1])
            fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
        yield sub
    finally:
        for parent in reversed(fds[:-1]):
            os.rmdir("d", dir_fd=parent)
        for fd in fds:
            os.close(fd)


def test_grading_a_hostile_submission_completes(hostile: Path, tmp_path: Path) -> None:
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "a9", str(hostile),
                           "-o", str(out)], cwd=course, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == int(ExitCode.OK), proc.stdout + proc.stderr
    assert "2 / 2 points" in proc.stdout
    data = json.loads(out.read_text())
    results.validate(data)
    assert data["score"] == 2
    assert "folders nested deeper than 32 levels, the limit" in data["output"]
    assert "data.py (the official copy is used)" in data["output"]
    assert "... and " in data["output"]
    ignored = data["extra_data"]["submission"]["ignored"]
    assert len(ignored) <= 101 and all(len(s) <= 200 for s in ignored)
    assert out.stat().st_size < 64 * 1024
