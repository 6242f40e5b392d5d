"""Grader-side preparation of submissions: which file is graded, what is reported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat

from autograder.config import AssignmentConfig
from autograder.grading.notebooks import mark_template, source_to_notebook, write_notebook
from autograder.grading.submission import prepare_submission

CONFIG = AssignmentConfig(id="s1", title="s", modules=("ops",))
STUB = 'def relu(x):\n    raise NotImplementedError("TODO: relu")\n'
DONE = "def relu(x):\n    y = x * (x > 0)\n    raise ValueError('boom')\n"


def _twins(sub: Path, py: str, nb: str, *, template: str | None = STUB) -> None:
    """ops.py and ops.ipynb; ``template``: the source `autograder template` generated both
    from (recorded in the notebook's metadata), None for a notebook made elsewhere."""
    sub.mkdir()
    (sub / "ops.py").write_text(py)
    notebook = source_to_notebook(nb)
    if template is not None:
        generated = mark_template(source_to_notebook(template), template)
        notebook.metadata["autograder"] = generated.metadata["autograder"]
    write_notebook(notebook, sub / "ops.ipynb")


def test_a_notebook_twin_unchanged_from_the_template_is_ignored_silently(tmp_path: Path) -> None:
    """The README's way: the template has layers.py and layers.ipynb, the student edits one."""
    _twins(tmp_path / "sub", DONE, STUB)
    prepared = prepare_submission(tmp_path / "sub", CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.py"} and prepared.ignored == []
    assert "ipynb" not in prepared.report()


def test_a_py_twin_unchanged_from_the_template_is_ignored_silently(tmp_path: Path) -> None:
    _twins(tmp_path / "sub", STUB, DONE)
    prepared = prepare_submission(tmp_path / "sub", CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.ipynb"} and prepared.ignored == []
    assert "ValueError('boom')" in (tmp_path / "out" / "ops.py").read_text()
    assert "ops.py" not in prepared.report().replace("Files graded: ops.ipynb", "")


def test_the_untouched_template_says_nothing_about_twins(tmp_path: Path) -> None:
    _twins(tmp_path / "sub", STUB, STUB)
    prepared = prepare_submission(tmp_path / "sub", CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.py"} and prepared.ignored == []
    assert prepared.report() == "Files graded: ops.py"


def test_both_twins_edited_says_which_is_graded_and_why(tmp_path: Path) -> None:
    half = STUB + "\n\ndef extra():\n    return 1\n"
    _twins(tmp_path / "sub", half, DONE)
    prepared = prepare_submission(tmp_path / "sub", CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.ipynb"}
    assert prepared.ignored == [
        "ops.py (not graded: ops.py and ops.ipynb were both edited; ops.ipynb is graded, as "
        "it has fewer TODO stubs left (0, against 1 in ops.py); keep your work in one of them)"]
    _twins(tmp_path / "tie", DONE + "\n", DONE)
    prepared = prepare_submission(tmp_path / "tie", CONFIG, None, tmp_path / "out2")
    assert prepared.found == {"ops": "ops.py"}
    assert prepared.ignored == [
        "ops.ipynb (not graded: ops.py and ops.ipynb were both edited; ops.py is graded, as "
        "both have 0 TODO stub(s) left, and the .py file wins a tie; keep your work in one "
        "of them)"]


def test_twins_without_a_template_fingerprint_fall_back_to_the_todo_count(tmp_path: Path) -> None:
    _twins(tmp_path / "sub", STUB, DONE, template=None)
    prepared = prepare_submission(tmp_path / "sub", CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.ipynb"}
    assert prepared.ignored[0].startswith("ops.py (not graded: ops.py and ops.ipynb are both "
                                          "there; ops.ipynb is graded, as it has fewer TODO")


def test_cells_tagged_or_commented_skip_are_kept_out_of_grading(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    nb = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell("import time\ntime.sleep(30)")
    tagged.metadata["tags"] = ["skip-grading"]
    nb.cells = [nbformat.v4.new_code_cell("import numpy as np"), tagged,
                nbformat.v4.new_code_cell("\n# Autograder: skip (a plot)\nimport matplotlib"),
                nbformat.v4.new_code_cell("def relu(x):\n    return np.maximum(0, x)")]
    write_notebook(nb, sub / "ops.ipynb")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    source = (tmp_path / "out" / "ops.py").read_text()
    assert "sleep" not in source and "matplotlib" not in source and "def relu" in source
    assert prepared.notebooks["ops"].skipped == (2, 3)
    assert ("Kept out of grading in ops.ipynb (tag skip-grading or '# autograder: skip'): "
            "cells 2, 3") in prepared.report()


def test_notebook_lines_point_at_cells(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    write_notebook(source_to_notebook("import numpy as np\n\n\n" + DONE), sub / "ops.ipynb")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    source = (tmp_path / "out" / "ops.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "raise ValueError" in text)
    message = f'  File "ops.py", line {line}, in relu\nSyntaxError: bad (ops.py, line {line})'
    located = prepared.locate(message)
    cell, cell_line = prepared.notebooks["ops"].cell_line_of(line) or (0, 0)
    assert f'File "ops.ipynb", cell {cell}, line {cell_line}' in located
    assert f"(ops.ipynb, cell {cell}, line {cell_line})" in located
    assert "ops.py" not in located


def test_symlinked_module_is_refused_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.py"
    secret.write_text("HIDDEN = 1\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ops.py").symlink_to(secret)
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert prepared.problems["ops"][0] == "SubmissionError"
    assert not (tmp_path / "out" / "ops.py").exists()


TWO = AssignmentConfig(id="s2", title="s", modules=("ops", "stats"))
DEEP = "[" * 200_000 + "]" * 200_000  # valid JSON, 400 KB: nbformat used to recurse to death


def test_deeply_nested_notebook_is_a_problem_of_its_module_only(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ops.ipynb").write_text(DEEP)
    (sub / "stats.py").write_text("def mean(x):\n    return 0\n")
    prepared = prepare_submission(sub, TWO, None, tmp_path / "out")
    kind, message = prepared.problems["ops"]
    assert kind == "InvalidNotebook"
    assert message.startswith("ops.ipynb is not a valid notebook: its JSON is nested 200000")
    assert message.endswith("re-save it from Jupyter or submit ops.py instead")
    assert prepared.found == {"stats": "stats.py"}
    assert f"Problem with module ops: {message}" in prepared.report()
    assert not (tmp_path / "out" / "ops.py").exists()


def _with_cell_above_imports(source: str) -> nbformat.NotebookNode:
    """The twin of ``source`` after a student adds a code cell above its import cell."""
    nb = source_to_notebook(source)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import math"))
    return nb


def test_future_import_below_a_new_cell_grades_like_jupyter_runs_it(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    source = "from __future__ import annotations\n\nimport numpy as np\n\n\n" + DONE
    write_notebook(_with_cell_above_imports(source), sub / "ops.ipynb")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert prepared.problems == {}
    module = (tmp_path / "out" / "ops.py").read_text()
    compile(module, "ops.py", "exec")  # was: from __future__ imports must occur at the beginning
    assert module.startswith("from __future__ import annotations")
    assert prepared.locate("SyntaxError: oops (ops.py, line 1)") == (
        "SyntaxError: oops (ops.ipynb, cell 2, line 1)"
    )
    line = module.splitlines().index("    raise ValueError('boom')") + 1
    assert prepared.locate(f'File "ops.py", line {line}') == 'File "ops.ipynb", cell 3, line 3'


COURSE = Path(__file__).resolve().parents[2] / "fixtures" / "authoring" / "course"


def _grade(course: Path, submission: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "a9", str(submission), "-o", "r.json"],
        cwd=course, capture_output=True, text=True, timeout=300, check=False,
    )
    return proc, json.loads((course / "r.json").read_text())


def test_grade_end_to_end_with_problem_notebooks(tmp_path: Path) -> None:
    """`autograder grade`: a deeply nested notebook costs its module's tests only (exit 0,
    not a harness error); a notebook whose __future__ import is below a new cell grades."""
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    sub = tmp_path / "sub"
    shutil.copytree(course / "solutions" / "a9_tiny", sub)
    (sub / "ops.py").unlink()
    (sub / "ops.ipynb").write_text(DEEP)
    proc, data = _grade(course, sub)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert data["score"] == 0 and data["tests"]
    assert all(t["max_score"] > 0 for t in data["tests"])
    assert all("InvalidNotebook: ops.ipynb is not a valid notebook" in t["output"]
               for t in data["tests"])
    assert "Files graded: stats.py" in data["output"]

    source = (course / "solutions" / "a9_tiny" / "ops.py").read_text()
    write_notebook(_with_cell_above_imports(source), sub / "ops.ipynb")
    proc, data = _grade(course, sub)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0, data["output"]


# ------------------------------------------------------------ files in a subfolder

def _files(folder: Path, *names: str) -> Path:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(DONE if name.endswith(".py") else "x\n")
    return folder


def test_files_in_one_subfolder_are_graded_and_the_output_says_so(tmp_path: Path) -> None:
    """What students get when they zip their folder: every file one level down."""
    sub = _files(tmp_path / "submission_1002", "a1_numpy_nn/ops.py", "a1_numpy_nn/stats.py",
                 "a1_numpy_nn/README.md", "a1_numpy_nn/tests/test_ops.py", "a1_numpy_nn/x.txt",
                 "__MACOSX/a1_numpy_nn/._ops.py", ".git/ops.py")
    prepared = prepare_submission(sub, TWO, None, tmp_path / "out")
    assert prepared.problems == {}
    assert prepared.found == {"ops": "a1_numpy_nn/ops.py", "stats": "a1_numpy_nn/stats.py"}
    assert (tmp_path / "out" / "ops.py").read_text() == DONE
    report = prepared.report()
    assert "graded the files in a1_numpy_nn/" in report
    assert "Files graded: a1_numpy_nn/ops.py, a1_numpy_nn/stats.py" in report
    # The template's own files stay unlisted there too; macOS metadata is never listed.
    assert prepared.ignored == [".git/ops.py (not part of the assignment)",
                                "a1_numpy_nn/x.txt (not part of the assignment)"]


def test_module_in_a_subfolder_beside_graded_files_says_move_it(tmp_path: Path) -> None:
    sub = _files(tmp_path / "sub", "stats.py", "work/ops.py")
    prepared = prepare_submission(sub, TWO, None, tmp_path / "out")
    assert prepared.found == {"stats": "stats.py"}
    kind, message = prepared.problems["ops"]
    assert kind == "ModuleNotFoundError"
    assert "found work/ops.py" in message and "move it to the top level" in message
    assert "work/ops.py (not graded: move it to the top level of your submission)" in prepared.ignored


def test_two_subfolders_with_modules_grade_neither_and_name_both(tmp_path: Path) -> None:
    sub = _files(tmp_path / "sub", "v1/ops.py", "v2/ops.py", "v2/stats.py")
    prepared = prepare_submission(sub, TWO, None, tmp_path / "out")
    assert prepared.found == {}
    assert "found v1/ops.py, v2/ops.py in a subfolder" in prepared.problems["ops"][1]
    assert "move it to the top level" in prepared.problems["stats"][1]
    assert "graded the files in" not in prepared.report()


def test_a_module_at_the_top_level_is_graded_and_a_stale_copy_below_is_only_listed(tmp_path: Path) -> None:
    sub = _files(tmp_path / "sub", "ops.py", "stats.py", "old/ops.py")
    prepared = prepare_submission(sub, TWO, None, tmp_path / "out")
    assert prepared.problems == {} and "graded the files in" not in prepared.report()
    assert prepared.ignored == ["old/ops.py (not part of the assignment)"]


def test_a_forged_huge_line_number_is_left_as_it_is(tmp_path: Path) -> None:
    """A worker's error text can carry any number; int() of 5,000 digits would raise."""
    sub = tmp_path / "sub"
    sub.mkdir()
    write_notebook(_with_cell_above_imports(DONE), sub / "ops.ipynb")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    text = 'File "ops.py", line ' + "9" * 5000
    assert prepared.locate(text) == text


def test_the_course_probe_module_shipped_with_the_template_is_not_a_stray_file(tmp_path: Path) -> None:
    """A student who submits the whole template folder sends probes.py back: unchanged it
    goes unmentioned; changed, the student is told the official copy is used."""
    official = tmp_path / "official"
    official.mkdir()
    (official / "probes.py").write_text("# the course's yardsticks\n")
    config = AssignmentConfig(id="s1", title="s", modules=("ops",), probes="probes.py")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ops.py").write_text(DONE)
    shutil.copy(official / "probes.py", sub / "probes.py")
    assert prepare_submission(sub, config, official, tmp_path / "out1").ignored == []
    (sub / "probes.py").write_text("# faster yardsticks, honest\n")
    assert prepare_submission(sub, config, official, tmp_path / "out2").ignored == [
        "probes.py (the official copy is used)"]


def test_file_names_reach_the_report_as_one_line_of_printable_text(tmp_path: Path) -> None:
    """A stray file's name is the student's text: a newline must not forge a report line,
    and terminal escapes or undecodable bytes must not reach `check`'s terminal."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ops.py").write_text(DONE)
    (sub / "a\nFiles graded: everything\x1b[31m.txt").write_text("x")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    (entry,) = prepared.ignored
    assert "\n" not in entry and "\x1b" not in entry and "\\n" in entry and "\\x1b" in entry
    graded = [ln for ln in prepared.report().splitlines() if ln.startswith("Files graded:")]
    assert graded == ["Files graded: ops.py"], prepared.report()
