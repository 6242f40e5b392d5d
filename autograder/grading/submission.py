"""Grader-side preparation of a submission: find the expected modules, convert notebooks,
list everything else. Reads files; never imports or executes them.
"""

from __future__ import annotations

import ast
import errno
import os
import re
import shutil
import stat
import traceback
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from autograder.config import AssignmentConfig, is_project_file
from autograder.errors import SubmissionError
from autograder.grading import import_policy
from autograder.grading.notebooks import (
    SKIP_TAG,
    ConvertedNotebook,
    notebook_to_source,
    source_sha256,
)

MAX_FILE_BYTES = 8 * 1024 * 1024
# Files of the generated assignment folder: students often submit the whole folder.
TEMPLATE_FILES = ("README.md", "assignment.toml")
MAX_LISTED = 50  # lines of each list in the student's output
# The lists kept (and copied into results.json): at most this many entries, each at most
# this long, so that 20,000 long file names or a 4 MB notebook line stay a few KB.
MAX_ENTRIES = 100
MAX_ENTRY_CHARS = 200
# Walking a submission: folders nested deeper than this are not looked into, and the walk
# stops after this many files and folders (the modules at the top level are still graded).
MAX_DEPTH = 32
MAX_WALKED = 10_000
# Never descended into nor listed: caches and the metadata macOS adds to zips.
SKIPPED_DIRS = ("__pycache__", ".ipynb_checkpoints", "__MACOSX")
# Zips of submissions (grade-all): bounds on what one may unpack to.
MAX_ZIP_BYTES = 256 * 1024 * 1024
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_DEPTH = 64  # folders a member may be nested in


@dataclass
class Submission:
    root: Path
    modules: tuple[str, ...]
    pristine: Path
    found: dict[str, str] = field(default_factory=dict)  # module -> file used (relative to root)
    problems: dict[str, tuple[str, str]] = field(default_factory=dict)  # module -> (type, msg)
    ignored: list[str] = field(default_factory=list)  # files never loaded, with the reason
    stripped: list[str] = field(default_factory=list)  # notebook lines not executed
    notebooks: dict[str, ConvertedNotebook] = field(default_factory=dict)  # module -> source map
    base: str = ""  # the subfolder graded ("a1_numpy_nn") when the files sit in one, else ""
    # How many entries ``ignored`` and ``stripped`` had before they were capped.
    ignored_total: int = 0
    stripped_total: int = 0
    # Imports the assignment's forbidden_imports refuses; their modules are in ``problems``
    # too, so that the tests using them fail before any worker is asked.
    import_violations: list[import_policy.Violation] = field(default_factory=list)
    # Modules whose source does not compile: module -> the error as Python prints it
    # (file, line, the source line and a caret), shown once for the whole grading.
    syntax_errors: dict[str, str] = field(default_factory=dict)
    # Files of the submission that a graded module imports but the assignment does not
    # expect (helpers.py): import name -> (the file, the module importing it, its line).
    helpers: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    # [assignment] files: the project files copied (relative to the graded folder), and the
    # literal entries (not patterns) the submission lacks.
    project_files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)

    def violations_json(self) -> list[dict[str, Any]]:
        """``import_violations`` as results.json's extra_data holds them (capped)."""
        return [v.to_json() for v in self.import_violations[:MAX_ENTRIES]]

    def locate(self, text: str) -> str:
        """Point lines of converted notebooks back at their cells in student messages."""
        for name, nb in self.notebooks.items():
            def cell(m: re.Match[str], nb: ConvertedNotebook = nb, name: str = name) -> str:
                where = nb.cell_line_of(int(m.group(2)))
                if where is None:
                    return m.group(0)
                return m.group(1).replace(f"{name}.py", f"{name}.ipynb") + f"cell {where[0]}, line {where[1]}"
            text = re.sub(rf'(File "{name}\.py", |\({name}\.py, )line (\d{{1,9}})\b', cell, text)
        return text

    def explain_import_failure(self, type_name: str, message: str) -> str | None:
        """A short line for a test whose import failed for a cause that report() explains
        once (a syntax error, a helper module the assignment does not expect), else None."""
        if type_name in ("SyntaxError", "IndentationError", "TabError"):
            for module, error in self.syntax_errors.items():
                if f"({module}.py, line " in message:
                    at = re.search(r'File "[^"]+", line (\d+)', error)
                    where = f" ({module}.py, line {at.group(1)})" if at else ""
                    return self.locate(f"a syntax error{where}, shown once above the "
                                       "failures: fix it first")
        if type_name == "ModuleNotFoundError":
            for name, (file, module, _line) in self.helpers.items():
                if message.startswith(f"No module named '{name}'"):
                    return (f"No module named '{name}': {file} is not part of the "
                            f"assignment (see above); move its code into {module}.py")
        return None

    def module_problem(self, name: str) -> tuple[str, str] | None:
        if name in self.problems:
            return self.problems[name]
        if name not in self.modules:
            return ("ModuleNotFoundError", f"{name!r} is not a module of this assignment")
        return None

    def report(self) -> str:
        lines = []
        if self.base:
            lines.append(f"No file of the assignment at the top level of your submission: "
                         f"graded the files in {shorten(self.base, 100)}/ (the one folder "
                         "that holds them)")
        if self.found:
            lines.append("Files graded: " + ", ".join(self.found[m] for m in self.modules if m in self.found))
        if self.project_files:
            lines.append("Project files: " + ", ".join(self.project_files))
        if self.missing_files:
            lines.append("Project files missing from your submission: "
                         + ", ".join(self.missing_files))
        for module, (_kind, msg) in self.problems.items():
            lines.append(f"Problem with module {module}: {msg}")
        for module, error in self.syntax_errors.items():
            lines.append(f"{self.found.get(module, module + '.py')} has a syntax error, so it "
                         "cannot be imported: every test that uses it fails until you fix "
                         "it.\n" + self.locate(error).rstrip())
        for name, (file, module, line) in self.helpers.items():
            graded = ", ".join(f"{m}.py" for m in self.modules)
            lines.append(self.locate(
                f"{file} is not part of the assignment, so the graders never load it: "
                f"`import {name}` ({module}.py, line {line}) fails with ModuleNotFoundError "
                f"in every test that uses {module}. Only the assignment's files ({graded}) "
                f"are graded: move what {module}.py needs from {file} into {module}.py."))
        if self.stripped:
            lines.append("Notebook lines not executed (magics / shell escapes):")
            lines += _listing(self.stripped, self.stripped_total)
        for module, nb in self.notebooks.items():
            if nb.skipped:
                cells = ", ".join(str(c) for c in nb.skipped[:20]) + (
                    " ..." if len(nb.skipped) > 20 else "")
                lines.append(f"Kept out of grading in {module}.ipynb (tag {SKIP_TAG} or "
                             f"'# autograder: skip'): cell{'s' if len(nb.skipped) > 1 else ''} "
                             f"{cells}")
        if self.ignored:
            lines.append("Files in your submission that are never loaded:")
            lines += _listing(self.ignored, self.ignored_total)
        return "\n".join(lines)


def _listing(entries: list[str], total: int) -> list[str]:
    """The first MAX_LISTED entries of a capped list, then how many more there were."""
    shown = [f"  {s}" for s in entries[:MAX_LISTED]]
    more = max(total, len(entries)) - len(shown)
    if more > 0:
        shown.append(f"  ... and {more} more")
    return shown


def shorten(text: str, limit: int = MAX_ENTRY_CHARS) -> str:
    """``text`` at most ``limit`` characters: its middle replaced by "..." (both ends of a
    file name or a line say the most). One line of printable text: control characters,
    newlines and lone surrogates of a file name are escaped (no fake report lines)."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) <= limit:
        return text
    head = (limit - 3) * 2 // 3
    return text[:head] + "..." + text[len(text) - (limit - 3 - head):]


def _capped(entries: list[str]) -> list[str]:
    """At most MAX_ENTRIES entries of at most MAX_ENTRY_CHARS, then "... and N more"."""
    out = [shorten(s) for s in entries[:MAX_ENTRIES]]
    if len(entries) > MAX_ENTRIES:
        out.append(f"... and {len(entries) - MAX_ENTRIES} more")
    return out


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


def _same_content(path: Path, official: Path) -> bool:
    """True if ``path`` (a regular file) has the bytes of ``official``; sizes first, then
    in chunks: a 2 GB file of the submission is never read whole into the grader."""
    try:
        if path.lstat().st_size != official.stat().st_size:
            return False
        with path.open("rb") as a, official.open("rb") as b:
            while chunk := b.read(1 << 16):
                if a.read(len(chunk)) != chunk:
                    return False
            return a.read(1) == b""  # (it may have grown since its size was read)
    except OSError:
        return False


@dataclass
class _Walk:
    files: list[str] = field(default_factory=list)  # everything but folders, relative, posix
    limits: list[str] = field(default_factory=list)  # where a bound of the walk was reached


def _walk(root: Path) -> _Walk:
    """Everything below ``root`` that is not a folder, breadth first, without recursion and
    without following symlinks; bounded by MAX_DEPTH and MAX_WALKED (an adversarial
    submission can hold a million files or a thousand nested folders)."""
    walk = _Walk()
    queue: deque[tuple[Path, str, int]] = deque([(root, "", 0)])
    seen = 0
    while queue:
        folder, prefix, depth = queue.popleft()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_WALKED:
                        walk.limits.append(
                            f"{shorten(prefix, 120) or './'}... (not looked into: your "
                            f"submission holds more than {MAX_WALKED} files and folders, "
                            "the limit; submit only your assignment's files)")
                        return walk
                    rel = prefix + entry.name
                    try:
                        is_dir = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        is_dir = False
                    if not is_dir:
                        walk.files.append(rel)
                    elif entry.name in SKIPPED_DIRS:
                        continue
                    elif depth + 1 > MAX_DEPTH:
                        walk.limits.append(
                            f"{shorten(rel, 120)}/ (not looked into: folders nested deeper "
                            f"than {MAX_DEPTH} levels, the limit)")
                    else:
                        queue.append((Path(entry.path), rel + "/", depth + 1))
        except OSError as exc:
            walk.limits.append(f"{prefix or './'} (could not be read: {exc.strerror or exc})")
    walk.files.sort()
    return walk


TODO_STUB = 'raise NotImplementedError("TODO'  # how each stub `autograder template` leaves starts


def todo_stub(owner: str) -> str:
    """The line `autograder template` puts in place of a solution block of ``owner`` (a
    function's qualified name); it starts with TODO_STUB, which counts the stubs left."""
    return f'{TODO_STUB}: {owner}")'


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
    """Both NAME.py and NAME.ipynb, as the template ships them. A twin unchanged from the
    template (its fingerprint in the notebook's metadata) is ignored silently: the student
    edited the other. When both were edited (or the notebook carries no fingerprint), the
    one with fewer template TODO stubs left is graded, the .py on a tie, and a line says so."""
    py_source, nb_source, converted = loaded[py][0], loaded[nb][0], loaded[nb][2]
    template = converted.template if converted is not None else {}
    if nb_source is not None and converted is not None and converted.unchanged_from_template():
        return py
    if py_source is not None and template.get("py_sha256") == source_sha256(py_source):
        return nb
    py_todo = py_source.count(TODO_STUB) if py_source is not None else 10**9
    nb_todo = nb_source.count(TODO_STUB) if nb_source is not None else 10**9
    graded, other = (nb, py) if nb_todo < py_todo else (py, nb)
    edited = "were both edited" if template else "are both there"
    if nb_todo == py_todo and nb_todo < 10**9:
        why = f"both have {py_todo} TODO stub(s) left, and the .py file wins a tie"
    elif max(nb_todo, py_todo) < 10**9:
        why = (f"it has fewer TODO stubs left ({min(nb_todo, py_todo)}, against "
               f"{max(nb_todo, py_todo)} in {other.name})")
    else:
        why = f"{other.name} could not be read"
    sub.ignored.append(f"{other.name} (not graded: {py.name} and {nb.name} {edited}; "
                       f"{graded.name} is graded, as {why}; keep your work in one of them)")
    return graded


def _module_of(rel: str, modules: Iterable[str]) -> str | None:
    """The module a file provides by its name (``x/layers.ipynb`` -> ``layers``), if any."""
    p = PurePosixPath(rel)
    return p.stem if p.suffix in (".py", ".ipynb") and p.stem in modules else None


def _base_folder(root: Path, walk: _Walk, modules: tuple[str, ...]) -> str:
    """"" (grade the top level), or the one subfolder that holds the assignment's modules
    when the top level holds none (what students get when they zip their folder)."""
    if any(p.exists() or p.is_symlink() for m in modules for p in module_files(root, m)):
        return ""
    holders = {rel.split("/")[0] for rel in walk.files
               if rel.count("/") == 1 and not rel.startswith(".") and _module_of(rel, modules)}
    return holders.pop() if len(holders) == 1 else ""


def _check_imports(sub: Submission, name: str, source: str, config: AssignmentConfig,
                   file: str, converted: ConvertedNotebook | None) -> None:
    """The grader's static half of the import policy (the worker's hook is the other)."""
    found = import_policy.scan_module(source, config.forbidden_imports, file=file,
                                      notebook=converted)
    if found:
        sub.import_violations += found
        sub.problems[name] = ("ImportError", import_policy.describe(
            found, config.id, config.forbidden_imports))


def prepare_submission(root: Path, config: AssignmentConfig, support_dir: Path | None,
                       dest: Path) -> Submission:
    """Copy the expected modules (notebooks converted to .py) and the official support
    files into ``dest``; record what is missing, broken or ignored.

    The modules are taken from the top level of ``root``, or, when it holds none of them,
    from the one subfolder that does (a zipped folder). Files elsewhere are listed, not
    read (support files are compared with the official copy without being read whole)."""
    if not root.exists():
        raise SubmissionError(f"submission {root} does not exist; pass the folder that holds "
                              f"{', '.join(m + '.py' for m in config.modules)}")
    if not root.is_dir():
        raise SubmissionError(f"submission {root} is not a folder; pass the folder with your files")
    dest.mkdir(parents=True, exist_ok=True)
    sub = Submission(root=root, modules=config.modules, pristine=dest)
    walk = _walk(root)
    sub.base = _base_folder(root, walk, config.modules)
    base = root / sub.base if sub.base else root
    prefix = f"{sub.base}/" if sub.base else ""
    shown_base = shorten(sub.base, 60)
    where = f"{shown_base}/, the folder graded" if sub.base else "the top level of your submission"
    move = f"move it into {shown_base}/" if sub.base else "move it to the top level of your submission"
    # Files named like a module that is missing from the folder graded: the student
    # probably meant them (in a subfolder, or beside the one folder graded).
    missing = tuple(m for m in config.modules
                    if not any(p.exists() or p.is_symlink() for p in module_files(base, m)))
    misplaced = {rel for rel in walk.files
                 if _module_of(rel, missing) and PurePosixPath(rel).parent.as_posix() != (sub.base or ".")}
    used: set[str] = set()
    for name in config.modules:
        py, nb = module_files(base, name)
        candidates = [p for p in (py, nb) if p.exists() or p.is_symlink()]
        if not candidates:
            elsewhere = sorted(rel for rel in misplaced if _module_of(rel, (name,)))
            if elsewhere:
                shown = ", ".join(shorten(rel, 120) for rel in elsewhere[:3])
                more = f" and {len(elsewhere) - 3} more" if len(elsewhere) > 3 else ""
                sub.problems[name] = ("ModuleNotFoundError",
                                      f"{name}.py (or {name}.ipynb) is missing from {where}: "
                                      f"found {shown}{more} in a subfolder, which is not "
                                      f"graded; {move}")
            else:
                sub.problems[name] = ("ModuleNotFoundError",
                                      f"{name}.py (or {name}.ipynb) is missing from your submission")
            continue
        loaded = {p: _load(p) for p in candidates}
        src = _choose(py, nb, loaded, sub) if len(candidates) == 2 else candidates[0]
        used.update(prefix + p.name for p in candidates)
        source, problem, converted = loaded[src]
        if problem is not None:
            sub.problems[name] = problem
            continue
        assert source is not None
        (dest / f"{name}.py").write_text(source)
        if converted is not None:
            sub.notebooks[name] = converted
            sub.stripped += [f"{src.name} cell {s.cell} line {s.line}: "
                             f"{shorten(s.text.strip(), MAX_ENTRY_CHARS // 2)} ({s.reason})"
                             for s in converted.stripped]
        sub.found[name] = shorten(prefix + src.name, 200)  # shown to the student, as text
        _check_imports(sub, name, source, config, src.name, converted)
        tree = _parse(sub, name, source)
        if tree is not None:
            for imported, line in _top_level_imports(tree):
                helper = _helper_file(base, imported, config)
                if helper is not None and imported not in sub.helpers:
                    sub.helpers[imported] = (helper, name, line)
    _copy_project_files(sub, base, prefix, walk, config, dest, used)
    for fname in config.support:
        if support_dir is not None and (support_dir / fname).is_file():
            shutil.copyfile(support_dir / fname, dest / fname)
    ignored: list[str] = []
    for rel in walk.files:
        if rel in used:
            continue
        inner = rel[len(prefix):] if rel.startswith(prefix) else None  # relative to base
        if inner is not None and (inner in TEMPLATE_FILES
                                  or (inner.startswith("tests/test_") and inner.count("/") == 1)):
            continue
        if rel in misplaced:
            reason = f"not graded: {move}"
        elif inner is not None and inner in config.support:
            official = dest / inner
            if official.is_file() and _regular_file(root / rel) and _same_content(root / rel, official):
                continue
            reason = "the official copy is used"
        elif inner is not None and inner == config.probes:
            # The course's probe module, shipped with the template: the grader loads its own.
            shipped = support_dir / inner if support_dir is not None else None
            if shipped is not None and shipped.is_file() and _regular_file(root / rel) \
                    and _same_content(root / rel, shipped):
                continue
            reason = "the official copy is used"
        elif inner is not None and any(inner == h or (h.endswith("/") and inner.startswith(h))
                                       for h, _, _ in sub.helpers.values()):
            continue  # one message in report() says both why it is not loaded and what fails
        else:
            reason = "not part of the assignment"
        ignored.append(f"{shorten(rel, max(60, MAX_ENTRY_CHARS - len(reason) - 3))} ({reason})")
    sub.ignored = walk.limits + sub.ignored + ignored  # limits first: the cap must not hide them
    sub.ignored_total, sub.stripped_total = len(sub.ignored), len(sub.stripped)
    sub.ignored, sub.stripped = _capped(sub.ignored), _capped(sub.stripped)
    return sub


def _copy_project_files(sub: Submission, base: Path, prefix: str, walk: _Walk,
                        config: AssignmentConfig, dest: Path, used: set[str]) -> None:
    """Copy the files of ``[assignment] files`` from the graded folder into ``dest`` (same
    relative paths): regular files only, each at most MAX_FILE_BYTES; what is refused is
    listed with the reason."""
    if not config.files:
        return
    copied = []
    for rel in walk.files:
        inner = rel[len(prefix):] if rel.startswith(prefix) else None
        if inner is None or not is_project_file(inner, config.files):
            continue
        if inner in config.support or inner == config.probes or any(
                inner in (f"{m}.py", f"{m}.ipynb") for m in config.modules):
            continue
        used.add(rel)
        source = base / inner
        if not _regular_file(source):
            sub.ignored.append(f"{shorten(rel, 120)} (not a regular file (symlink?); submit "
                               "the file itself)")
        elif source.stat().st_size > MAX_FILE_BYTES:
            sub.ignored.append(f"{shorten(rel, 120)} (larger than "
                               f"{MAX_FILE_BYTES // 2**20} MB: leave data and outputs out)")
        else:
            target = dest / inner
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied.append(shorten(rel, 200))
    sub.project_files = copied[:MAX_ENTRIES]
    literal = [f for f in config.files if not any(c in f for c in "*?[")]
    present = set(walk.files)
    sub.missing_files = [f for f in literal if prefix + f not in present]


def _parse(sub: Submission, name: str, source: str) -> ast.Module | None:
    """The module's syntax tree; a syntax error is kept as Python prints it (the grader
    compiles the text, never runs it), to be shown once instead of in every test."""
    try:
        return ast.parse(source, filename=f"{name}.py")
    except SyntaxError as exc:
        exc.filename = f"{name}.py"
        text = "".join(traceback.format_exception_only(type(exc), exc))
        sub.syntax_errors[name] = shorten_lines(text, 2000)
    except (ValueError, RecursionError, MemoryError):
        pass  # the worker's import reports it
    return None


def shorten_lines(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def _top_level_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """(top-level name, line) of each absolute import in the module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def _helper_file(base: Path, name: str, config: AssignmentConfig) -> str | None:
    """The file beside the graded modules that ``import name`` meant, when the assignment
    neither expects it nor ships it (a student's helpers.py), else None."""
    support = {PurePosixPath(s).stem for s in config.support if "/" not in s}
    if config.probes:
        support.add(PurePosixPath(config.probes).stem)
    if name in config.modules or name in support:
        return None
    for candidate in (f"{name}.py", f"{name}.ipynb", name):
        path = base / candidate
        if (path.is_dir() and (path / "__init__.py").is_file()) or _regular_file(path):
            return candidate + ("/" if path.is_dir() else "")
    return None


def is_zip(path: Path) -> bool:
    """A file named *.zip (a submission as students upload it, or an export holds it)."""
    return path.suffix.lower() == ".zip" and path.is_file() and not path.name.startswith(".")


def _member_parts(archive: str, member: str) -> list[str]:
    """The path of a zip member as parts, refused when it could land outside the folder."""
    name = member.replace("\\", "/")  # zips made on Windows
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise SubmissionError(f"{archive} holds a file with an absolute path ({shorten(member, 100)!r}); "
                              "zip your files again from the folder that holds them")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SubmissionError(f"{archive} holds a file whose path leaves the folder "
                              f"({shorten(member, 100)!r}, with '..'); zip your files again "
                              "from the folder that holds them")
    if len(parts) - 1 > MAX_ZIP_DEPTH:
        raise SubmissionError(f"{archive} holds a file nested in more than {MAX_ZIP_DEPTH} "
                              f"folders, the limit ({shorten(member, 100)!r}); zip only your "
                              "assignment's files")
    return parts


def extract_zip(archive: Path, dest: Path, *, max_members: int | None = None,
                max_bytes: int | None = None) -> None:
    """Unpack a submission's zip into ``dest`` (an empty folder owned by the grading).

    Only files and folders: absolute paths, ``..`` and symlinks are refused, and so is a
    zip that holds more than ``max_members`` (MAX_ZIP_MEMBERS) entries, members nested deeper
    than MAX_ZIP_DEPTH, or unpacks to more than ``max_bytes`` (MAX_ZIP_BYTES) (counted while writing too: the
    sizes a zip declares can lie). __MACOSX is skipped.
    Raises SubmissionError with a message for the student (it names the zip and the fix)."""
    label = archive.name
    # looked up at each call (not bound as defaults): a whole class's export has its own
    max_members = MAX_ZIP_MEMBERS if max_members is None else max_members
    max_bytes = MAX_ZIP_BYTES if max_bytes is None else max_bytes
    limit_mb = max_bytes // 2**20
    too_big = SubmissionError(f"{label} unpacks to more than {limit_mb} MB, the limit for a "
                              "submission; leave datasets, checkpoints and outputs out of it")
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > max_members:
                raise SubmissionError(f"{label} holds {len(infos)} files and folders, more than "
                                      f"{max_members}, the limit for a submission; zip only "
                                      "your assignment's files")
            if sum(i.file_size for i in infos) > max_bytes:
                raise too_big
            written = 0
            seen: set[Path] = set()
            for info in infos:
                parts = _member_parts(label, info.filename)
                if not parts or parts[0] == "__MACOSX":
                    continue
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise SubmissionError(f"{label} holds a symbolic link "
                                          f"({shorten(info.filename, 100)!r}); put the file "
                                          "itself in the zip")
                target = dest.joinpath(*parts)
                if target in seen:
                    raise SubmissionError(f"{label} holds {shorten('/'.join(parts), 100)!r} "
                                          "twice; zip your files again")
                seen.add(target)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if info.flag_bits & 0x1:
                    raise SubmissionError(f"{label} is protected by a password; zip your files "
                                          "again without one")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("xb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            raise too_big
                        out.write(chunk)
    except SubmissionError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise  # the grading machine's problem, not the student's
        raise SubmissionError(f"{label} could not be unpacked ({exc.strerror or exc}: "
                              f"{shorten(Path(exc.filename or '?').name, 100)}); zip your "
                              "files again with short, plain file names") from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, RuntimeError,
            NotImplementedError, ValueError, zlib.error) as exc:
        raise SubmissionError(_not_a_zip(label, exc)) from exc


def _not_a_zip(label: str, exc: BaseException) -> str:
    return (f"{label} could not be unpacked, it is not a valid zip file "
            f"({shorten(str(exc), 150)}); create it again (for example with your system's "
            "'compress' command) and resubmit")

