"""The assignment's import policy inside the worker: forbidden packages cannot be imported.

A finder placed first on ``sys.meta_path`` refuses every module that an assignment's
``forbidden_imports`` names (``"scipy"`` refuses ``scipy`` and ``scipy.special``), and the
forbidden modules already loaded (by a preload, or by the grader in-process) leave
``sys.modules``, where Python would otherwise find them without asking any finder.

This is the second of two checks: the grader also scans the submission's sources for such
imports (autograder.grading.import_policy) and reports them with file and line. A hook in
the student's own process cannot stop a determined bypass (removing the finder, loading a
file by path); it turns honest mistakes and indirect imports into a clear error.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType


def forbidden_match(name: str, forbidden: Iterable[str]) -> str | None:
    """The entry of ``forbidden`` that covers module ``name`` (itself or a parent), if any."""
    return next((f for f in forbidden if name == f or name.startswith(f + ".")), None)


def refusal(name: str, matched: str, forbidden: Sequence[str]) -> str:
    """What the student reads when an import is refused."""
    what = name if name == matched else f"{name} (part of {matched})"
    return (f"this assignment does not allow importing {what}; it forbids "
            f"{', '.join(forbidden)}. Remove the import and use what the assignment allows")


class ImportGuard(importlib.abc.MetaPathFinder):
    """Refuses the forbidden modules with an ImportError that names the policy."""

    def __init__(self, forbidden: Sequence[str]) -> None:
        self.forbidden = tuple(forbidden)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        matched = forbidden_match(fullname, self.forbidden)
        if matched is not None:
            raise ImportError(refusal(fullname, matched, self.forbidden), name=fullname)
        return None


def _purge(forbidden: Sequence[str]) -> dict[str, ModuleType]:
    """Take the forbidden modules out of ``sys.modules``; returns what was taken."""
    names = [n for n in list(sys.modules) if forbidden_match(n, forbidden) is not None]
    return {n: m for n in names if (m := sys.modules.pop(n, None)) is not None}


def install(forbidden: Sequence[str]) -> ImportGuard | None:
    """For good (the sandboxed worker, before any student code runs): the guard first on
    ``sys.meta_path``, the forbidden modules out of ``sys.modules``. None if nothing is
    forbidden."""
    if not forbidden:
        return None
    guard = ImportGuard(forbidden)
    _purge(guard.forbidden)
    sys.meta_path.insert(0, guard)
    return guard


@contextlib.contextmanager
def guarded(forbidden: Sequence[str]) -> Iterator[None]:
    """For a while (in-process: while student code runs): the grader's own modules come
    back afterwards, so the grader keeps what it imported."""
    if not forbidden:
        yield
        return
    guard = ImportGuard(forbidden)
    taken = _purge(guard.forbidden)
    sys.meta_path.insert(0, guard)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # student code may have removed it
            sys.meta_path.remove(guard)
        _purge(guard.forbidden)  # whatever got in despite the guard does not stay
        sys.modules.update(taken)
