"""The tiny course of tests/fixtures/authoring/course and the CLI run on it as users do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autograder.grading import results
from autograder.grading.runner import Outcome, Suite, run_suite

COURSE = Path(__file__).resolve().parent.parent / "fixtures" / "authoring" / "course"


def ag(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def run_one_file_suite(tmp_path: Path, tests: str, module: str, *, limits: str = "",
                       isolation: str = "sandbox", assignment_id: str = "t1") -> Outcome:
    """Grade module ``m`` (source ``module``) with a one-file hidden suite (``tests``)
    under ``[limits]`` ``limits``, in this process as `autograder grade` does; the
    results are validated against the schema."""
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "assignment.toml").write_text(
        f'[assignment]\nid = "{assignment_id}"\ntitle = "t"\nmodules = ["m"]\n\n[limits]\n{limits}')
    # A unique module name: pytest runs in this process, where an earlier test_t is cached.
    name = "".join(c if c.isalnum() else "_" for c in tmp_path.name)
    (ref / f"test_{name}.py").write_text(tests)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.py").write_text(module)
    for p in (tmp_path, ref, sub):
        p.chmod(0o755)
    out = run_suite(suite=Suite(tests=[ref], config=ref / "assignment.toml", support=None,
                                rootdir=ref, hide=[]), submission=sub,
                    output=tmp_path / "r.json", isolation=isolation)
    results.validate(out.data)
    return out
