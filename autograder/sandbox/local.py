"""``--isolation none``: student code in the grader's process, and what both modes share
(the student's frames of a timeout, what a worker printed).

Portable on purpose: no pwd, resource, namespaces or libc here, so that `autograder check`
runs in-process on a machine where the Linux sandbox cannot load (macOS, Windows).
"""

from __future__ import annotations

import bdb
import contextlib
import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple, NoReturn, Protocol

from autograder.errors import StudentTimeout
from autograder.sandbox import codec, import_guard

MAX_TIMEOUT_FRAMES = 12
# The worker's request loop, to pick the serving thread out of a stack dump.
WORKER_FILE_TAIL = "/autograder/sandbox/worker.py"


@dataclass(frozen=True)
class StudentFrame:
    """One frame of the student's code: a file of the submission, shown by its name."""

    file: str
    line: int
    function: str
    source: str = ""


def timeout_error(timeout: float | None, what: str, frames: list[StudentFrame]) -> StudentTimeout:
    """'your code exceeded 10 s in train.train; it was running relu_backward (layers.py,
    line 42)', the student's frames (outermost first) as its traceback.

    The frames only help the student: student code can fake them (a worker's stack dump is
    whatever its process writes), so nothing may ever judge by them.
    """
    limit = "its time limit" if timeout is None else f"{timeout:g} s"
    message = f"your code exceeded {limit} in {what}"
    frames = frames[-MAX_TIMEOUT_FRAMES:]
    if frames:
        last = frames[-1]
        running = "module-level code" if last.function == "<module>" else last.function
        message += f"; it was running {running} ({last.file}, line {last.line})"
    trace = "".join(f'  File "{f.file}", line {f.line}, in {f.function}\n'
                    + (f"    {f.source}\n" if f.source else "") for f in frames)
    return StudentTimeout("Timeout", message, trace, where=what)


_DUMP_HEADER = ("Current thread 0x", "Thread 0x", "Stack (most recent call first)")
_DUMP_FRAME = re.compile(r'  File "(.{1,4096})", line (\d{1,9}) in (.{1,300})')


def frames_from_dump(dump: str, root: str, sources: Path | None = None) -> list[StudentFrame]:
    """The student's frames (outermost first) in a faulthandler dump of the worker.

    ``root`` is the worker's own path of its work directory (only files below it are the
    submission's); ``sources`` a trusted copy of the submission for the source lines. Of
    several threads, the one serving the grader's request is preferred.
    """
    blocks: list[list[tuple[str, int, str]]] = []
    for line in dump.splitlines():
        if line.startswith(_DUMP_HEADER):
            blocks.append([])
        elif blocks and (m := _DUMP_FRAME.fullmatch(line)):
            blocks[-1].append((m.group(1), int(m.group(2)), m.group(3)))
    serving = [b for b in blocks if any(f.endswith(WORKER_FILE_TAIL) for f, _, _ in b)]
    prefix = root.rstrip("/") + "/"
    for block in serving + blocks:
        mine = [(f[len(prefix):], n, fn) for f, n, fn in reversed(block) if f.startswith(prefix)]
        if mine:
            return [StudentFrame(name[:200], n, fn[:200], _source_line(sources, name, n))
                    for name, n, fn in mine]
    return []


def frames_from_stack(frame: FrameType | None, root: Path) -> list[StudentFrame]:
    """The student's frames (outermost first) of a live stack (the in-process mode)."""
    prefix = str(root) + "/"
    return [StudentFrame(f.filename[len(prefix):], f.lineno or 0, f.name, (f.line or "").strip())
            for f in traceback.extract_stack(frame) if f.filename.startswith(prefix)]


def _source_line(sources: Path | None, name: str, lineno: int) -> str:
    """Line ``lineno`` of the submission's file ``name``, read from the trusted copy only
    (never from the worker's folder, where student code may have put a symlink)."""
    if sources is None or not name.endswith(".py") or "/" in name or name.startswith("."):
        return ""
    path = sources / name
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 4 * 2**20:
            return ""
        lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return lines[lineno - 1].strip()[:200] if 1 <= lineno <= len(lines) else ""


class Printed(NamedTuple):
    """What a worker printed: the first bytes, and how many bytes in all; ``root`` is the
    worker's own path of its copy of the submission (a warning names ``/tmp/work/layers.py``),
    which the grader shows as the student's file (``layers.py``)."""

    head: bytes
    total: int
    root: str = ""


class Worker(Protocol):
    protections: list[dict[str, Any]]
    # The probes it can run, name -> position of the student function a probe calls: from
    # the zygote (trusted, before any fork) or the in-process loader, never from the worker.
    probes: dict[str, int | None]

    def request(self, payload: bytes, timeout: float | None, what: str) -> bytearray: ...

    def output(self, limit: int) -> Printed: ...

    def close(self) -> None: ...


ALARM_TICK = 0.25  # seconds between the in-process timeout's checks


class LocalWorker:
    """``--isolation none``: student code in this process, same codec round trip."""

    def __init__(self, workdir: Path, modules: list[str], limits: codec.WireLimits,
                 probes_file: Path | None = None, *,
                 forbidden_imports: Sequence[str] = ()) -> None:
        from autograder import probes
        from autograder.sandbox.worker import Runtime

        probe_set = _course_probes(probes_file) if probes_file else probes.generic()
        self.probes = probe_set.table()
        self.runtime = Runtime(workdir, modules, limits, probe_set)
        # Refused only while a request runs: the grader keeps its own imports.
        self.import_guard = import_guard.TemporaryGuard(forbidden_imports)
        self.protections = [{"name": "isolation", "active": False,
                             "detail": "--isolation none: student code runs in the grader process"}]

    def request(self, payload: bytes, timeout: float | None, what: str) -> bytearray:
        with _exit_refused(), self.import_guard.active(), self._warnings_printed():
            if not timeout or threading.current_thread() is not threading.main_thread() \
                    or not hasattr(signal, "setitimer"):  # Windows: no alarm, no timeout
                return bytearray(self.runtime.handle(payload))
            return self._timed(payload, timeout, what)

    @contextlib.contextmanager
    def _warnings_printed(self) -> Iterator[None]:
        """Warnings of the student's code printed to stderr, as a sandboxed worker prints them
        (pytest would otherwise keep them for its own summary, which `check` does not show)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                yield
            finally:
                for w in caught:
                    sys.stderr.write(warnings.formatwarning(w.message, w.category, w.filename,
                                                            w.lineno, w.line))

    def _timed(self, payload: bytes, timeout: float, what: str) -> bytearray:
        # Best effort in-process timeout: an alarm interrupts Python code (not C loops). It
        # ticks, so that time spent stopped in a debugger (breakpoint(), pdb) restarts the
        # clock: the student is stepping, not stuck.
        fired = False
        where: list[StudentFrame] = []
        deadline = time.monotonic() + timeout

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            nonlocal fired, deadline
            now = time.monotonic()
            if isinstance(getattr(sys.gettrace(), "__self__", None), bdb.Bdb):
                deadline = now + timeout
            if now < deadline:
                signal.setitimer(signal.ITIMER_REAL, min(ALARM_TICK, deadline - now))
                return
            fired = True
            where.extend(frames_from_stack(frame, self.runtime.workdir))
            raise TimeoutError(f"exceeded {timeout:g} s")

        start = time.monotonic()
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, min(ALARM_TICK, timeout))
        try:
            reply = self.runtime.handle(payload)
        except TimeoutError:
            if not fired:
                raise
            reply = b""  # the alarm hit the worker's own code after the student's returned
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            if old_delay:  # give pytest-timeout's alarm back what is left of it
                left = max(old_delay - (time.monotonic() - start), 1e-3)
                signal.setitimer(signal.ITIMER_REAL, left, old_interval)
        if fired:
            raise timeout_error(timeout, what, where)
        return bytearray(reply)

    def output(self, limit: int) -> Printed:
        # prints went to pytest's capture, which the plugin shows with the test
        return Printed(b"", 0, str(self.runtime.workdir))

    def close(self) -> None:
        self.runtime.close()


def _course_probes(path: Path) -> Any:
    """The course's probes, loaded once per process and file version, as the zygote loads
    them once per grading: in-process, every worker (the clean one of time_probe too)
    shares them, as it shares everything else with the student's code."""
    from autograder import probes

    if not path.is_file():
        return probes.load_course_probes(path)  # says what is missing
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _COURSE_PROBES:
        _COURSE_PROBES[key] = probes.load_course_probes(path)
    return _COURSE_PROBES[key]


_COURSE_PROBES: dict[tuple[str, int, int], Any] = {}


@contextlib.contextmanager
def _exit_refused() -> Iterator[None]:
    """In-process, os._exit would end the grader without a results.json or a table:
    raised as SystemExit instead, which fails the test as the sandbox's dead worker does."""
    real = os._exit
    grader = os.getpid()

    def refused(status: int) -> NoReturn:
        if os.getpid() != grader:  # a child the student forked (multiprocessing): let it go
            real(status)
        raise SystemExit(f"os._exit({status}) called; in the sandbox this ends the worker")

    os._exit = refused
    try:
        yield
    finally:
        os._exit = real




def as_root() -> bool:
    """Whether this process runs as root (never on Windows, which has no uids)."""
    getuid = getattr(os, "getuid", None)
    return getuid is not None and getuid() == 0


def sandbox_unavailable() -> str | None:
    """Why the Linux sandbox cannot run on this machine at all, or None where it can (it may
    still lack some protections, which its workers report). Then a student's `check` runs
    in-process and `grade` refuses."""
    if not sys.platform.startswith("linux"):
        name = {"darwin": "macOS", "win32": "Windows"}.get(sys.platform, sys.platform)
        return f"{name} has no Linux namespaces or seccomp"
    missing = []
    for name in ("pwd", "resource", "fcntl"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        return f"this Python has no {', '.join(missing)} module"
    if not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"):
        return "this Python cannot fork processes"
    try:
        from autograder.sandbox import namespaces, pool  # noqa: F401
    except (ImportError, OSError, AttributeError) as exc:
        return f"the sandbox cannot load ({type(exc).__name__}: {exc})"
    return None
