from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from course_cli import COURSE


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A writable copy of the tiny course (test files may override this fixture)."""
    root = tmp_path / "course"
    shutil.copytree(COURSE, root)
    return root
