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
from types import FrameType, ModuleType


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
        if matched is not None and _importing():
            raise ImportError(refusal(fullname, matched, self.forbidden), name=fullname)
        # Not an import but a probe (importlib.util.find_spec: torch._dynamo asks for
        # tensorflow and sklearn at import): an ImportError there would break the library;
        # the import that may follow is refused here.
        return None


def _importing() -> bool:
    """Whether the import system is loading a module (an import statement, __import__,
    importlib.import_module), as opposed to a lookup by importlib.util.find_spec."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(6):
        if frame is None:
            return False
        if frame.f_code.co_name in ("_find_and_load_unlocked", "_find_and_load"):
            return True
        frame = frame.f_back
    return False


def _loaded(forbidden: Sequence[str]) -> list[str]:
    """The forbidden modules in ``sys.modules``."""
    # By top-level name where possible: thousands of modules (torch and scipy bring 1400).
    whole = {f for f in forbidden if "." not in f}
    dotted = [f for f in forbidden if "." in f]
    tops = {f.partition(".")[0] for f in dotted}
    return [name for name in list(sys.modules)
            if (top := name.partition(".")[0]) in whole
            or (top in tops and forbidden_match(name, dotted) is not None)]


def _take(names: Iterable[str]) -> dict[str, ModuleType]:
    """Take ``names`` out of ``sys.modules``; returns what was taken."""
    return {n: m for n in names if (m := sys.modules.pop(n, None)) is not None}


def install(forbidden: Sequence[str]) -> ImportGuard | None:
    """For good (the sandboxed worker, before any student code runs): the guard first on
    ``sys.meta_path``, the forbidden modules out of ``sys.modules``. None if nothing is
    forbidden."""
    if not forbidden:
        return None
    guard = ImportGuard(forbidden)
    _take(_loaded(guard.forbidden))
    sys.meta_path.insert(0, guard)
    return guard


class TemporaryGuard:
    """For a while (in-process: while student code runs, around every call): the grader's
    own modules come back afterwards, so the grader keeps what it imported."""

    def __init__(self, forbidden: Sequence[str]) -> None:
        self.guard = ImportGuard(forbidden) if forbidden else None
        # Which forbidden modules a set of loaded modules holds, from the last scan: the
        # set rarely changes between calls, and comparing it costs microseconds where
        # scanning it costs a millisecond.
        self._keys: set[str] = set()
        self._names: list[str] = []

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        if self.guard is None:
            yield
            return
        keys = set(sys.modules)
        if keys != self._keys:
            self._keys, self._names = keys, _loaded(self.guard.forbidden)
        taken = _take(self._names)
        sys.meta_path.insert(0, self.guard)
        try:
            yield
        finally:
            try:
                sys.meta_path.remove(self.guard)
            except ValueError:  # student code removed it: what it then imported does not stay
                _take(_loaded(self.guard.forbidden))
            sys.modules.update(taken)
