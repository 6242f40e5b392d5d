"""The tiny course of tests/fixtures/authoring/course and the CLI run on it as users do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

COURSE = Path(__file__).resolve().parent.parent / "fixtures" / "authoring" / "course"


def ag(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)
