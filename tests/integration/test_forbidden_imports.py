"""The import policy end to end on the tiny course: a forbidden import is reported with
file and line (notebook cells too) in results.json's output, its extra_data and the
failed tests, the same in both isolation modes; a computed import is refused in the
worker; `check` tells the student."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from course_cli import ag

from autograder.grading import results

# Packages every Python has: the policy is the same for torch or scipy.
POLICY = 'forbidden_imports = ["sqlite3", "xml.dom"]\n'
RELU = '''

def relu(x):
    """Looks the module up by a computed name: the grader's scan cannot see it."""
    importlib.import_module("sql" + "ite3")
    return np.maximum(x, 0)
'''
STATS_TEST = '''import numpy as np


def test_mean(student):
    """mean of ones is one"""
    assert student.module("stats").mean(np.ones(3)) == 1.0
'''


def forbid(folder: Path) -> None:
    toml = folder / "assignment.toml"
    text = toml.read_text()
    assert 'preload = ["numpy"]\n' in text
    toml.write_text(text.replace('preload = ["numpy"]\n', 'preload = ["numpy"]\n' + POLICY))


@pytest.fixture
def policed(course: Path) -> Path:
    """The tiny course with sqlite3 and xml.dom forbidden, and a hidden test of stats."""
    forbid(course / "reference_tests" / "a9_tiny")
    forbid(course / "assignments" / "a9_tiny")
    (course / "reference_tests" / "a9_tiny" / "hidden" / "test_stats.py").write_text(STATS_TEST)
    return course


def submission(course: Path, dest: Path) -> Path:
    """ops.py imports sqlite3 by a computed name (in relu); stats is a notebook whose
    second code cell imports xml.dom.minidom."""
    dest.mkdir()
    ops = (course / "solutions" / "a9_tiny" / "ops.py").read_text()
    ops = ops.replace("import numpy as np\n", "import importlib\n\nimport numpy as np\n")
    head, _, rest = ops.partition("\ndef relu(")
    ops = head + RELU + "\n\n" + rest[rest.index("\nclass Doubler"):]
    (dest / "ops.py").write_text(ops)
    cells = [nbformat.v4.new_markdown_cell("# Stats"),
             nbformat.v4.new_code_cell("import numpy as np"),
             nbformat.v4.new_code_cell("x = 1\nfrom xml.dom import minidom\n\n"
                                       "def mean(x):\n    return float(x.sum() / x.size)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), dest / "stats.ipynb")
    return dest


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in data["tests"]}


STATIC = "stats.ipynb, cell 3, line 2: imports xml.dom, which assignment a9 does not allow"
DYNAMIC = "this assignment does not allow importing sqlite3; it forbids sqlite3, xml.dom"


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_violations_are_reported_with_file_and_line(policed: Path, tmp_path: Path,
                                                     isolation: str) -> None:
    sub = submission(policed, tmp_path / "sub")
    out = tmp_path / "r.json"
    proc = ag("grade", "a9", str(sub), "-o", str(out), "--isolation", isolation, cwd=policed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    results.validate(data)

    assert f"Problem with module stats: {STATIC}. Remove the import" in data["output"]
    assert data["extra_data"]["submission"]["import_violations"] == [
        {"file": "stats.ipynb", "line": 2, "module": "xml.dom", "cell": 3}]
    tests = by_name(data)
    line = (sub / "ops.py").read_text().splitlines().index('    importlib.import_module("sql" + "ite3")') + 1
    mean = tests["mean of ones is one"]
    assert mean["score"] == 0 and mean["output"].startswith(f"Your code raised ImportError: {STATIC}")
    # The computed import: refused in the worker, pointing at the student's line.
    for name in ("relu zeroes negative values (hidden)", "relu keeps positive values"):
        relu = tests[name]
        assert relu["score"] == 0, relu
        assert "Your code raised ImportError in ops.relu: " + DYNAMIC in relu["output"], relu["output"]
        assert f'File "ops.py", line {line}, in relu' in relu["output"]


def test_check_tells_the_student(policed: Path) -> None:
    folder = policed / "assignments" / "a9_tiny"
    shutil.copy(policed / "solutions" / "a9_tiny" / "stats.py", folder / "stats.py")
    ops = (policed / "solutions" / "a9_tiny" / "ops.py").read_text()
    (folder / "ops.py").write_text("import sqlite3\n" + ops)
    proc = ag("check", "a9", cwd=folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())  # the console wraps long lines
    assert ("ops.py, line 1: imports sqlite3, which assignment a9 does not allow. Remove "
            "the import (assignment a9 forbids sqlite3, xml.dom)") in text


BYPASS = '''

def relu(x):
    """Takes the import hook out of its own process first, then imports by a computed name."""
    import sys
    sys.meta_path[:] = [f for f in sys.meta_path if "Guard" not in type(f).__name__]
    db = importlib.import_module("sql" + "ite3")
    db.connect(":memory:").close()
    return np.maximum(x, 0)
'''


@pytest.mark.skipif(os.getuid() != 0, reason="files are hidden in the worker's mount namespace, "
                    "which needs root (CI runs as root)")
def test_forbidden_packages_are_hidden_from_the_worker(policed: Path, tmp_path: Path) -> None:
    """The hook lives in the student's process and can be removed; the package's files
    cannot be brought back: in the worker's mount namespace its folder is empty."""
    sub = tmp_path / "sub"
    sub.mkdir()
    ops = (policed / "solutions" / "a9_tiny" / "ops.py").read_text()
    ops = ops.replace("import numpy as np\n", "import importlib\n\nimport numpy as np\n")
    head, _, rest = ops.partition("\ndef relu(")
    (sub / "ops.py").write_text(head + BYPASS + "\n\n" + rest[rest.index("\nclass Doubler"):])
    shutil.copy(policed / "solutions" / "a9_tiny" / "stats.py", sub / "stats.py")
    out = tmp_path / "r.json"
    proc = ag("grade", "a9", str(sub), "-o", str(out), cwd=policed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    relu = by_name(data)["relu keeps positive values"]
    assert relu["score"] == 0, relu
    assert "AttributeError" in relu["output"] and "connect" in relu["output"], relu["output"]
    prot = {p["name"]: p for p in data["extra_data"]["protections"]}
    assert prot["forbidden-packages"]["active"] and "sqlite3" in prot["forbidden-packages"]["detail"]
