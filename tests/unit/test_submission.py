"""Grader-side preparation of submissions: which file is graded, what is reported."""

from __future__ import annotations

from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.notebooks import source_to_notebook, write_notebook
from autograder.submission import prepare_submission

CONFIG = AssignmentConfig(id="s1", title="s", modules=("ops",))
STUB = 'def relu(x):\n    raise NotImplementedError("TODO: relu")\n'
DONE = "def relu(x):\n    y = x * (x > 0)\n    raise ValueError('boom')\n"


def test_whole_template_folder_grades_the_notebook_the_student_worked_in(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ops.py").write_text(STUB)
    write_notebook(source_to_notebook(DONE), sub / "ops.ipynb")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.ipynb"}
    assert "relu" in (tmp_path / "out" / "ops.py").read_text()
    assert any("ops.py (ignored: ops.ipynb is graded instead" in s for s in prepared.ignored)


def test_py_wins_a_tie_and_the_notebook_is_listed(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "ops.py").write_text(DONE)
    write_notebook(source_to_notebook(DONE), sub / "ops.ipynb")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.py"}
    assert any(s.startswith("ops.ipynb (ignored") for s in prepared.ignored)


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
