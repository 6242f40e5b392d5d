"""Grader-side preparation of a submission: find the expected modules, convert notebooks,
list everything else. Reads files; never imports or executes them.
"""

from __future__ import annotations

import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import AssignmentConfig
from .errors import SubmissionError
from .notebooks import ConvertedNotebook, notebook_to_source

MAX_FILE_BYTES = 8 * 1024 * 1024
# Files of the generated assignment folder: students often submit the whole folder.
TEMPLATE_FILES = ("README.md", "assignment.toml")
MAX_LISTED = 50


@dataclass
class Submission:
    root: Path
    modules: tuple[str, ...]
    pristine: Path
    found: dict[str, str] = field(default_factory=dict)  # module -> file name used
    problems: dict[str, tuple[str, str]] = field(default_factory=dict)  # module -> (type, msg)
    ignored: list[str] = field(default_factory=list)  # files never loaded, with the reason
    stripped: list[str] = field(default_factory=list)  # notebook lines not executed
    notebooks: dict[str, ConvertedNotebook] = field(default_factory=dict)  # module -> source map
    twins: list[str] = field(default_factory=list)  # notebooks not graded: their .py is (a tie)

    def locate(self, text: str) -> str:
        """Point lines of converted notebooks back at their cells in student messages."""
        for name, nb in self.notebooks.items():
            def cell(m: re.Match[str], nb: ConvertedNotebook = nb, name: str = name) -> str:
                where = nb.cell_line_of(int(m.group(2)))
                if where is None:
                    return m.group(0)
                return m.group(1).replace(f"{name}.py", f"{name}.ipynb") + f"cell {where[0]}, line {where[1]}"
            text = re.sub(rf'(File "{name}\.py", |\({name}\.py, )line (\d+)', cell, text)
        return text

    def module_problem(self, name: str) -> tuple[str, str] | None:
        if name in self.problems:
            return self.problems[name]
        if name not in self.modules:
            return ("ModuleNotFoundError", f"{name!r} is not a module of this assignment")
        return None

    def report(self) -> str:
        lines = []
        if self.found:
            lines.append("Files graded: " + ", ".join(self.found[m] for m in self.modules if m in self.found))
        for module, (_kind, msg) in self.problems.items():
            lines.append(f"Problem with module {module}: {msg}")
        if self.stripped:
            lines.append("Notebook lines not executed (magics / shell escapes):")
            lines += [f"  {s}" for s in self.stripped[:MAX_LISTED]]
        if self.twins:  # the template ships both twins: one line, not one per module
            lines.append(f"Notebook twins not graded ({', '.join(self.twins)}): the .py files "
                         "are; a notebook is graded instead when it has fewer TODO stubs")
        if self.ignored:
            lines.append("Files in your submission that are never loaded:")
            lines += [f"  {s}" for s in self.ignored[:MAX_LISTED]]
            if len(self.ignored) > MAX_LISTED:
                lines.append(f"  ... and {len(self.ignored) - MAX_LISTED} more")
        return "\n".join(lines)


def module_files(folder: Path, name: str) -> tuple[Path, Path]:
    """The two files that may provide module ``name``: NAME.py and NAME.ipynb."""
    return folder / f"{name}.py", folder / f"{name}.ipynb"


def holds_a_module(folder: Path, modules: Iterable[str]) -> bool:
    """True if ``folder`` provides at least one of ``modules`` (as .py or .ipynb)."""
    return any(p.is_file() for m in modules for p in module_files(folder, m))


def _regular_file(path: Path) -> bool:
    # lstat: a symlink could point at hidden tests, which the grader (root) can read.
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


TODO_STUB = 'raise NotImplementedError("TODO'  # what `autograder template` leaves


def _load(path: Path) -> tuple[str | None, tuple[str, str] | None, ConvertedNotebook | None]:
    """(source, problem, notebook) of one candidate file; reads, never runs it."""
    if not _regular_file(path):
        return None, ("SubmissionError", f"{path.name} is not a regular file (symlink?); "
                                         "submit the file itself"), None
    if path.stat().st_size > MAX_FILE_BYTES:
        return None, ("SubmissionError", f"{path.name} is larger than "
                                         f"{MAX_FILE_BYTES // 2**20} MB; remove outputs or data from it"), None
    if path.suffix == ".ipynb":
        try:
            converted = notebook_to_source(path)
        except SubmissionError as exc:
            return None, ("InvalidNotebook", str(exc)), None
        return converted.source, None, converted
    return path.read_bytes().decode("utf-8", errors="replace"), None, None


def _choose(py: Path, nb: Path, loaded: dict[Path, Any], sub: Submission) -> Path:
    """Both NAME.py and NAME.ipynb: students often upload the whole generated folder, which
    holds both twins; grade the one with fewer template TODO stubs left (the .py on a tie)."""
    py_source, nb_source = loaded[py][0], loaded[nb][0]
    py_todo = py_source.count(TODO_STUB) if py_source is not None else 10**9
    nb_todo = nb_source.count(TODO_STUB) if nb_source is not None else 10**9
    if nb_todo < py_todo:
        sub.ignored.append(f"{py.name} (ignored: {nb.name} is graded instead, as {py.name} "
                           f"still has {py_todo} TODO stub(s); submit only one of the two)")
        return nb
    if nb_todo == py_todo:
        sub.twins.append(nb.name)
        return py
    sub.ignored.append(f"{nb.name} (ignored: {py.name} is graded instead, {nb.name} still has "
                       f"{nb_todo} TODO stub(s); submit only one of the two)")
    return py


def prepare_submission(root: Path, config: AssignmentConfig, support_dir: Path | None,
                       dest: Path) -> Submission:
    """Copy the expected modules (notebooks converted to .py) and the official support
    files into ``dest``; record what is missing, broken or ignored."""
    if not root.exists():
        raise SubmissionError(f"submission {root} does not exist; pass the folder that holds "
                              f"{', '.join(m + '.py' for m in config.modules)}")
    if not root.is_dir():
        raise SubmissionError(f"submission {root} is not a folder; pass the folder with your files")
    dest.mkdir(parents=True, exist_ok=True)
    sub = Submission(root=root, modules=config.modules, pristine=dest)
    used: set[str] = set()
    for name in config.modules:
        py, nb = module_files(root, name)
        candidates = [p for p in (py, nb) if p.exists() or p.is_symlink()]
        if not candidates:
            sub.problems[name] = ("ModuleNotFoundError",
                                  f"{name}.py (or {name}.ipynb) is missing from your submission")
            continue
        loaded = {p: _load(p) for p in candidates}
        src = _choose(py, nb, loaded, sub) if len(candidates) == 2 else candidates[0]
        used.update(p.name for p in candidates)
        source, problem, converted = loaded[src]
        if problem is not None:
            sub.problems[name] = problem
            continue
        assert source is not None
        (dest / f"{name}.py").write_text(source)
        if converted is not None:
            sub.notebooks[name] = converted
            sub.stripped += [f"{src.name} cell {s.cell} line {s.line}: {s.text.strip()} ({s.reason})"
                             for s in converted.stripped]
        sub.found[name] = src.name
    for fname in config.support:
        if support_dir is not None and (support_dir / fname).is_file():
            shutil.copyfile(support_dir / fname, dest / fname)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (rel in used or path.is_dir() or rel in TEMPLATE_FILES
                or (rel.startswith("tests/test_") and rel.count("/") == 1)
                or "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts):
            continue
        if rel in config.support:
            official = dest / rel
            if official.is_file() and _regular_file(path) and path.read_bytes() == official.read_bytes():
                continue
            reason = "the official copy is used"
        else:
            reason = "not part of the assignment"
        sub.ignored.append(f"{rel} ({reason})")
    return sub
