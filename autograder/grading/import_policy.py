"""The assignment's import policy, checked in the grader: the submission's sources are
scanned (never run) for imports of the packages ``forbidden_imports`` names.

Found: ``import X``, ``from X import y``, ``from X.y import z`` (also ``from X import y``
when ``X.y`` is the forbidden name), ``__import__("X")``, ``importlib.import_module("X")``
and ``importlib.__import__("X")``, also through aliases (``import importlib as il``,
``from importlib import import_module as load``). Relative imports (the student's own
files) and names computed at run time are left to the worker's import hook
(autograder.sandbox.import_guard), which refuses them when they run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autograder.grading.notebooks import ConvertedNotebook
from autograder.sandbox.import_guard import forbidden_match

MAX_SHOWN = 5  # violations spelled out in one module's message
MAX_FOUND = 100  # violations kept per module
MAX_PARSED_CHARS = 256 * 1024  # larger sources are scanned line by line
MAX_LINE_TRIES = 10_000  # lines of a large source looked at
MAX_LINE_CHARS = 4096  # longest line of a large source that is parsed


@dataclass(frozen=True)
class Violation:
    """One forbidden import, where the student wrote it."""

    file: str  # the file as submitted: layers.py, or layers.ipynb for a notebook
    line: int  # line in the file, or in the cell for a notebook
    module: str  # what is imported: scipy.special
    cell: int | None = None  # the notebook's cell (as numbered in messages)

    @property
    def where(self) -> str:
        cell = f"cell {self.cell}, " if self.cell is not None else ""
        return f"{self.file}, {cell}line {self.line}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.file, "line": self.line, "module": self.module}
        if self.cell is not None:
            data["cell"] = self.cell
        return data


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module name) of every absolute import in ``tree`` whose name is a literal;
    ``from X import a, b`` gives ``X``, ``X.a`` and ``X.b`` (a name may be a submodule)."""
    # Names bound to the importlib module, and to functions that import by name.
    modules = {"importlib"}
    importers = {"__import__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "importlib")
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module == "importlib":
                importers.update(a.asname or a.name for a in node.names
                                 if a.name in ("import_module", "__import__"))
            elif node.module == "builtins":
                importers.update(a.asname or a.name for a in node.names if a.name == "__import__")
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:  # level > 0: relative, the student's own
                found.append((node.lineno, node.module))
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                          if a.name != "*"]
        elif isinstance(node, ast.Call) and _imports_by_name(node.func, modules, importers):
            arg = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "name"), None)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                    and arg.value and not arg.value.startswith("."):
                found.append((node.lineno, arg.value))
    return found


def _imports_by_name(func: ast.expr, modules: set[str], importers: set[str]) -> bool:
    """``__import__``, ``importlib.import_module``, ``importlib.__import__``,
    ``builtins.__import__``, or an alias of one of them."""
    if isinstance(func, ast.Name):
        return func.id in importers
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if func.value.id in modules:
            return func.attr in ("import_module", "__import__")
        return func.value.id == "builtins" and func.attr == "__import__"
    return False


def scan(source: str, forbidden: Sequence[str]) -> list[tuple[int, str]]:
    """(line, module) of each forbidden import in ``source``, in source order, one per
    line and package, at most MAX_FOUND.

    Bounded for the grader's sake (ast takes some 400 times the text's size): a source
    that never names a forbidden package is not parsed; one larger than MAX_PARSED_CHARS
    is parsed line by line, only the lines that name one (imports spread over several
    lines, and aliases of importlib, are then left to the worker's hook). A source that
    does not parse yields nothing: importing it fails in the worker with the same error,
    which says more, and the hook still refuses the packages."""
    if not forbidden:
        return []
    tops = sorted({f.partition(".")[0] for f in forbidden})
    mention = re.compile(r"\b(?:" + "|".join(map(re.escape, tops)) + r")\b")
    if mention.search(source) is None:
        return []  # a literal import names the package
    if len(source) <= MAX_PARSED_CHARS:
        tree = _parse(source)
        return _forbidden_only(imported_modules(tree) if tree else [], forbidden)
    found: list[tuple[int, str]] = []
    line, at, tries = 1, 0, 0
    for m in mention.finditer(source):
        if m.start() < at:
            continue  # another mention on a line already looked at
        if tries >= MAX_LINE_TRIES or len(found) >= MAX_FOUND:
            break
        start = source.rfind("\n", 0, m.start()) + 1
        end = source.find("\n", m.start())
        end = len(source) if end < 0 else end
        line += source.count("\n", at, start)
        at, tries = end, tries + 1
        text = source[start:end].strip()
        tree = _parse(text) if len(text) <= MAX_LINE_CHARS else None
        if tree is not None:
            found += [(line, name) for _, name in imported_modules(tree)]
    return _forbidden_only(found, forbidden)


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _forbidden_only(imports: list[tuple[int, str]], forbidden: Sequence[str]) -> list[tuple[int, str]]:
    hits: dict[tuple[int, str], str] = {}
    for line, name in sorted(imports):
        matched = forbidden_match(name, forbidden)
        if matched is not None:
            # "from scipy import special" gives scipy and scipy.special: report the first
            hits.setdefault((line, matched), name)
    return [(line, name) for (line, _), name in hits.items()][:MAX_FOUND]


def scan_module(source: str, forbidden: Sequence[str], *, file: str,
                notebook: ConvertedNotebook | None = None) -> list[Violation]:
    """The violations of one graded module; ``file`` is the name the student submitted
    (``layers.ipynb``), lines of a converted notebook are mapped back to its cells."""
    out = []
    for line, name in scan(source, forbidden):
        where = notebook.cell_line_of(line) if notebook is not None else None
        if where is not None:
            out.append(Violation(file, where[1], name, cell=where[0]))
        else:
            out.append(Violation(file, line, name))
    return out


def describe(violations: Sequence[Violation], assignment: str, forbidden: Sequence[str]) -> str:
    """The student's message for one module's violations: file, line, module, the fix."""
    policy = f"(assignment {assignment} forbids {', '.join(forbidden)})"
    if len(violations) == 1:
        v = violations[0]
        return (f"{v.where}: imports {v.module}, which assignment {assignment} does not "
                f"allow. Remove the import {policy}")
    shown = "; ".join(f"{v.where}: imports {v.module}" for v in violations[:MAX_SHOWN])
    more = len(violations) - MAX_SHOWN
    shown += f"; and {more} more" if more > 0 else ""
    return (f"{shown}. Assignment {assignment} does not allow these imports: remove them "
            f"{policy}")
