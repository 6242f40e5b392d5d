"""Grader-side preparation of a submission: find the expected modules, convert notebooks,
list everything else. Reads files; never imports or executes them.
"""

from __future__ import annotations

import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .config import AssignmentConfig
from .errors import SubmissionError

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
        if self.ignored:
            lines.append("Files in your submission that are never loaded:")
            lines += [f"  {s}" for s in self.ignored[:MAX_LISTED]]
            if len(self.ignored) > MAX_LISTED:
                lines.append(f"  ... and {len(self.ignored) - MAX_LISTED} more")
        return "\n".join(lines)


def _regular_file(path: Path) -> bool:
    # lstat: a symlink could point at hidden tests, which the grader (root) can read.
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def prepare_submission(root: Path, config: AssignmentConfig, support_dir: Path | None,
                       dest: Path) -> Submission:
    """Copy the expected modules (notebooks converted to .py) and the official support
    files into ``dest``; record what is missing, broken or ignored."""
    from .notebooks import notebook_to_source

    if not root.exists():
        raise SubmissionError(f"submission {root} does not exist; pass the folder that holds "
                              f"{', '.join(m + '.py' for m in config.modules)}")
    if not root.is_dir():
        raise SubmissionError(f"submission {root} is not a folder; pass the folder with your files")
    dest.mkdir(parents=True, exist_ok=True)
    sub = Submission(root=root, modules=config.modules, pristine=dest)
    used: set[str] = set()
    for name in config.modules:
        py, nb = root / f"{name}.py", root / f"{name}.ipynb"
        candidates = [p for p in (py, nb) if p.exists() or p.is_symlink()]
        if not candidates:
            sub.problems[name] = ("ModuleNotFoundError",
                                  f"{name}.py (or {name}.ipynb) is missing from your submission")
            continue
        src = candidates[0]
        used.add(src.name)
        if len(candidates) == 2:
            sub.ignored.append(f"{nb.name} (ignored: {py.name} is graded instead)")
            used.add(nb.name)
        if not _regular_file(src):
            sub.problems[name] = ("SubmissionError", f"{src.name} is not a regular file (symlink?); "
                                  "submit the file itself")
            continue
        if src.stat().st_size > MAX_FILE_BYTES:
            sub.problems[name] = ("SubmissionError", f"{src.name} is larger than "
                                  f"{MAX_FILE_BYTES // 2**20} MB; remove outputs or data from it")
            continue
        if src.suffix == ".ipynb":
            try:
                converted = notebook_to_source(src)
            except SubmissionError as exc:
                sub.problems[name] = ("InvalidNotebook", str(exc))
                continue
            (dest / f"{name}.py").write_text(converted.source)
            sub.stripped += [f"{src.name} cell {s.cell} line {s.line}: {s.text.strip()} ({s.reason})"
                             for s in converted.stripped]
        else:
            shutil.copyfile(src, dest / f"{name}.py")
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
