"""`make demo`: grade the bundled Assignment 1 examples and print a score table.

Submissions: the reference solution, the generated template, a buggy submission (the
reference with two shipped mutants applied), the reference as Jupyter notebooks (with
magics and shell escapes that the harness strips), and a malicious submission that tries
to forge results.json. Results go to demo-results/<name>/results.json.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat

from autograder.cli import main
from autograder.config import Layout
from autograder.course.mutants import apply_mutant, load_mutants
from autograder.grading.notebooks import source_to_notebook, write_notebook

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo-results"


def buggy(layout: Layout, dest: Path) -> Path:
    """The solution with two realistic bugs in two different files."""
    mutants = load_mutants(layout.solution)
    picked = [mutants[0]] + [m for m in mutants if m.file != mutants[0].file][:1]
    current = layout.solution
    for i, mutant in enumerate(picked):
        current = apply_mutant(current, mutant, dest.with_name(f"{dest.name}-{i}"))
    shutil.rmtree(dest, ignore_errors=True)
    current.rename(dest)
    for i in range(len(picked) - 1):
        shutil.rmtree(dest.with_name(f"{dest.name}-{i}"), ignore_errors=True)
    bugs = "; ".join(f"{m.name} ({m.description})" for m in picked)
    print(f"'buggy' is the reference solution with two shipped mutants applied: {bugs}")
    return dest


def notebooks(layout: Layout, dest: Path) -> Path:
    """Every module as a notebook, with a magic and a shell escape a student might leave."""
    dest.mkdir(parents=True, exist_ok=True)
    for module in layout.config().modules:
        nb = source_to_notebook((layout.solution / f"{module}.py").read_text(), title=module)
        nb.cells.insert(0, nbformat.v4.new_code_cell("%matplotlib inline\n!pip install numpy"))
        write_notebook(nb, dest / f"{module}.ipynb")
    return dest


def run() -> int:
    layout = Layout(ROOT, "a1_numpy_nn")
    subs = OUT / "submissions"
    shutil.rmtree(subs, ignore_errors=True)
    subs.mkdir(parents=True)
    targets = {
        "reference": layout.solution,
        "template": layout.template,
        "buggy": buggy(layout, subs / "buggy"),
        "notebook": notebooks(layout, subs / "notebook"),
        "malicious": ROOT / "examples" / "a1_numpy_nn" / "malicious",
    }
    return main(["grade-all", "a1", *[f"{k}={v}" for k, v in targets.items()], "-o", str(OUT),
                 "--course", str(ROOT)])


if __name__ == "__main__":
    sys.exit(run())
