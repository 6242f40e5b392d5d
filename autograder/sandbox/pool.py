"""Grader side of worker management: the zygote, sandboxed workers, in-process workers.

Both worker kinds expose ``request(payload, timeout) -> bytes`` so the proxy and the
tests behave the same whatever the isolation mode.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from autograder.config import DEFAULT_PRELOAD, Limits
from autograder.errors import (
    CodecError,
    CourseError,
    SandboxError,
    StudentError,
    WorkerDied,
)
from autograder.sandbox import codec, namespaces
from autograder.sandbox.framing import PeerClosed, recv_frame, send_frame
from autograder.sandbox.local import (  # noqa: F401 - the in-process side, re-exported
    ALARM_TICK,
    LocalWorker,
    Printed,
    StudentFrame,
    Worker,
    frames_from_dump,
    frames_from_stack,
    timeout_error,
)
from autograder.sandbox.zygote import READY, STACK_SIGNAL

# Bytes a worker may print (stdout + stderr) before it is stopped: [limits] output_mb.
OUTPUT_LIMIT = Limits().output_bytes
STACK_WAIT = 0.5  # seconds a timed-out worker gets to dump its stack before it is killed
MONITOR_WAIT = 10.0  # seconds a closing worker's monitor gets to clean up after it
STACK_QUIET = 0.05  # a dump is complete after this long without more bytes
STACK_MAX_BYTES = 256 * 1024
# Every test's worker is a fresh fork, so each page its arrays use is a new page fault
# (about 2 us here), where a long-lived in-process grader reuses its heap. Transparent huge
# pages for malloc's heap (where the host allows them, THP "madvise" or "always") cut A1's
# worker faults by about 40%. glibc reads this at start only; the zygote drops it from
# os.environ, so that what student code starts runs as before.
MALLOC_TUNABLES = "glibc.malloc.hugetlb=1"

_SIGNAL_HINTS = {
    signal.SIGKILL: "killed (memory, process or time limit)",
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded (too much output?)",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGSYS: "stopped by the sandbox: a system call it forbids",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
}


def describe_status(status: int | None) -> str:
    if status is None:
        return "the worker process ended"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = _SIGNAL_HINTS.get(signal.Signals(sig), "killed") if name != str(sig) else "killed"
        return f"the worker process was {hint} ({name})"
    code = os.WEXITSTATUS(status)
    return f"the worker process exited with code {code} (does your code call sys.exit or os._exit?)"


class OutputDrain(threading.Thread):
    """Reads the worker's stdout/stderr pipe: keeps the head, counts the rest. A pipe, not a
    file, so the output costs no disk; once more than ``limit`` bytes came through it calls
    ``on_flood`` (which kills the worker): a print loop costs a second, not minutes."""

    KEEP = 64 * 1024

    def __init__(self, fd: int, limit: int = OUTPUT_LIMIT) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.limit = limit
        self.head = bytearray()
        self.total = 0
        self.flooded = False
        self.ended = False
        self.on_flood: Callable[[], None] | None = None

    def unread(self) -> int:
        """Bytes in the pipe that this thread has not taken yet (0 once it has ended)."""
        if self.ended:  # its fd is closed, and the number maybe another file's now
            return 0
        try:
            return int(struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0" * 4))[0])
        except OSError:
            return 0

    def run(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                self.total += len(chunk)
                if len(self.head) < self.KEEP:
                    self.head += chunk[: self.KEEP - len(self.head)]
                if self.total > self.limit and not self.flooded:
                    self.flooded = True  # before on_flood: the grader sees it once the worker is gone
                    if self.on_flood is not None:
                        self.on_flood()
        except OSError:
            pass
        finally:
            self.ended = True
            os.close(self.fd)


class SandboxedWorker:
    def __init__(self, pid: int, sock: socket.socket, status: socket.socket, drain: OutputDrain,
                 protections: list[dict[str, Any]], max_bytes: int, workdir: Path, *,
                 stack_fd: int | None = None, inner_workdir: str | None = None,
                 sources: Path | None = None) -> None:
        self.pid = pid
        self.workdir = workdir
        self.sock = sock
        self.status_sock = status
        self.drain = drain
        self.protections = protections
        self.max_bytes = max_bytes
        self.stack_fd = stack_fd  # read end of the pipe the worker's faulthandler writes to
        self.inner_workdir = inner_workdir or str(workdir)  # the work folder as the worker sees it
        self.sources = sources  # trusted copy of the submission, for source lines
        self.probes: dict[str, int | None] = {}  # set by Zygote.spawn
        self.dead: StudentError | None = None
        self.stop_reason = ""  # why the monitor stopped the worker (e.g. disk in /tmp)
        self.status_seen = False  # the monitor's final message was read
        # A pidfd names this process, never a later one that reuses its pid (the output
        # drain may call kill() after the monitor has reaped the worker).
        self.closed = False
        # kill() may come from another thread (the grading's deadline, the output drain)
        # while close() closes the pidfd: never signal through a closed, reused fd number
        self._signal_lock = threading.Lock()
        self.pidfd: int | None
        try:
            self.pidfd = os.pidfd_open(pid)
        except OSError:
            self.pidfd = None  # already gone, or a kernel without pidfds: kill by pid
        drain.on_flood = self.kill
        if drain.flooded:  # it flooded before on_flood was set
            self.kill()

    def request(self, payload: bytes, timeout: float | None, what: str) -> bytearray:
        if self.dead is not None:
            raise self.dead
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            send_frame(self.sock, payload, deadline)
            reply = recv_frame(self.sock, self.max_bytes, deadline)
        except TimeoutError:
            if self.drain.flooded:
                self._died(None, what)
            frames = frames_from_dump(self._dump_stack(), self.inner_workdir, self.sources)
            self.kill()
            self.dead = timeout_error(timeout, what, frames)
            raise self.dead from None
        except (PeerClosed, OSError):
            self._died(self._exit_status(), what)
        if self.drain.flooded:  # killed, but its answer was already on its way
            self._died(None, what)
        return reply

    def _died(self, status: int | None, what: str) -> NoReturn:
        self.kill()
        if self.drain.flooded:
            self.dead = WorkerDied("OutputLimit", f"your code printed more than "
                                   f"{self.drain.limit / 2**20:g} MB during {what}; the worker "
                                   f"was stopped. Remove the print calls in loops "
                                   "(the assignment's output_mb limit)")
        elif self.stop_reason:
            self.dead = WorkerDied("DiskLimit", f"{self.stop_reason} during {what} (the "
                                   "assignment's file_size_mb limit)")
        else:
            self.dead = WorkerDied("WorkerDied", f"{describe_status(status)} during {what}")
        raise self.dead from None

    def _dump_stack(self) -> str:
        """The worker's Python stack, from the faulthandler it registered for STACK_SIGNAL
        (a C handler: it answers also while the worker is stuck in a C loop). Waits at most
        STACK_WAIT seconds; whatever the worker wrote there before is dropped first."""
        if self.stack_fd is None:
            return ""
        poller = select.poll()
        poller.register(self.stack_fd, select.POLLIN)
        for _ in range(64):  # earlier bytes (student code can write to the pipe too)
            try:
                if not os.read(self.stack_fd, 65536):
                    return ""
            except BlockingIOError:
                break
            except OSError:
                return ""
        try:
            os.kill(self.pid, STACK_SIGNAL)
        except (ProcessLookupError, PermissionError):
            return ""
        data = bytearray()
        deadline = time.monotonic() + STACK_WAIT
        while len(data) < STACK_MAX_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait = min(left, STACK_QUIET) if data else left
            if not poller.poll(wait * 1000):
                if data:
                    break  # quiet: the dump is complete
                continue
            try:
                chunk = os.read(self.stack_fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace")

    def _exit_status(self, wait: float = 2.0) -> int | None:
        """The worker's wait status from its monitor, and why the monitor stopped it, if it
        did (a message from root's side of the sandbox, never from the worker)."""
        self.status_sock.settimeout(wait)
        try:
            msg = self.status_sock.recv(4096)
            self.status_seen = True
            if not msg:
                return None
            data = json.loads(msg)
            self.stop_reason = str(data.get("reason") or "")[:500]
            return int(data["status"])
        except (OSError, ValueError, KeyError, AttributeError):
            return None

    def output(self, limit: int) -> Printed:
        """The first ``limit`` bytes of what the worker printed, and the total size. Ends the
        worker first: the pipe reaches its end only when every writer is gone."""
        self.kill()
        self.drain.join(timeout=2)
        head = bytes(self.drain.head[:limit])
        return Printed(head, max(self.drain.total, len(head)), self.inner_workdir)

    def kill(self) -> None:
        with self._signal_lock:
            self._kill()

    def _kill(self) -> None:
        # The worker is init of its pid namespace: SIGKILL to it ends every descendant.
        if self.closed:
            return
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            if self.pidfd is not None:
                return  # reaped: its pid, and so its group id, may be another process's now
        except OSError:
            pass
        try:  # without a pid namespace: what the worker started in its own group
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def close(self) -> None:
        self.kill()
        self.drain.on_flood = None  # its pid may be another process's later
        if not self.status_seen and not self.closed:
            # The monitor's last word comes after it ended what the worker left (processes
            # of its uid, files in shared temp folders): the next worker of this uid must
            # not start before, or that cleanup would take it along.
            self._exit_status(wait=MONITOR_WAIT)
        self.status_sock.close()
        self._release()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _release(self) -> None:
        """Its socket, stack pipe and pidfd (never signal through a closed, reused fd)."""
        self.sock.close()
        if self.stack_fd is not None:
            os.close(self.stack_fd)
            self.stack_fd = None
        with self._signal_lock:
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
            self.closed = True


@dataclass
class SandboxConfig:
    modules: list[str]
    pristine: Path  # prepared submission files (root-owned, readable)
    preload: list[str] = field(default_factory=lambda: list(DEFAULT_PRELOAD))
    spec: namespaces.SandboxSpec | None = None
    limits: codec.WireLimits = codec.DEFAULT_LIMITS
    output_limit: int = OUTPUT_LIMIT  # bytes printed before a worker is stopped
    probes: Path | None = None  # the course's probe module, imported by the zygote


class Zygote:
    """One zygote per grading run; forks a fresh sandboxed worker per test."""

    def __init__(self, config: SandboxConfig, *, base: Path | None = None, threads: int = 1) -> None:
        self.config = config
        self.tmp = Path(tempfile.mkdtemp(prefix="workers-", dir=base))
        os.chmod(self.tmp, 0o711)  # workers may enter their own dir, not list others
        self.control, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: v for k, v in os.environ.items()
               if k in ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                    "OPENBLAS_NUM_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1",
                    "GLIBC_TUNABLES": MALLOC_TUNABLES})
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "autograder.sandbox.zygote", str(child.fileno()), *config.preload],
            pass_fds=[child.fileno()], env=env, cwd="/", stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child.close()
        if config.probes is not None and not config.probes.is_file():
            self.close()
            raise CourseError(f"the course probe module {config.probes} does not exist; add it "
                              "or fix [assignment] probes in assignment.toml")
        try:  # the zygote's setup message, read once it has preloaded
            # A path the zygote can open: it runs in "/".
            probes = str(config.probes.resolve()) if config.probes else ""
            self.control.send(json.dumps({"probes": probes}).encode())
        except OSError:
            pass  # it died already: _wait_ready says why
        self.probes: dict[str, int | None] = {}  # from the zygote's ready message
        self._ready = False
        self._count = 0

    def _wait_ready(self) -> None:
        if self._ready:
            return
        self.control.settimeout(120)
        try:
            # One datagram, however long the course's probe table: a short read would cut it.
            msg = self.control.recv(1 << 20)
        except OSError as exc:
            raise SandboxError(f"the zygote did not start: {exc}") from exc
        if not msg:
            raise SandboxError(f"the zygote exited with code {self.proc.wait()} before it was ready "
                               f"(preloading {self.config.preload})")
        try:
            ready = json.loads(msg)
        except ValueError as exc:
            raise SandboxError(f"the zygote's ready message is not valid ({exc})") from None
        if "error" in ready:  # the course's probe module failed to load
            raise CourseError(str(ready["error"]))
        self.probes = {str(k): v if type(v) is int else None for k, v in ready["probes"].items()}
        self._ready = True

    def _workdir(self) -> Path:
        """The worker's copy of the submission: readable, owned by the grader, so the worker
        cannot write there (as in its mount namespace, where every filesystem is read-only;
        without one its writes go to the shared temp folders, cleaned after it)."""
        self._count += 1
        work = self.tmp / f"w{self._count}"
        shutil.copytree(self.config.pristine, work)
        for p in [work, *work.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
        return work

    def spawn(self, *, ids: tuple[int, int] | None = None) -> SandboxedWorker:
        """A fresh worker; ``ids``: another uid/gid than the spec's (the yardstick worker:
        the student's processes cannot signal or trace a uid of their own)."""
        self._wait_ready()
        work = self._workdir()
        base = self.config.spec or namespaces.SandboxSpec(workdir="", modules=[])
        spec = replace(base, workdir=str(work), modules=list(self.config.modules))
        if ids is not None and spec.uid is not None:
            spec = replace(spec, uid=ids[0], gid=ids[1])
        parent_w, child_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        parent_s, child_s = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_read, out_fd = os.pipe()
        stack_read, stack_fd = os.pipe()
        os.set_blocking(stack_read, False)
        drain = OutputDrain(out_read, self.config.output_limit)
        drain.start()
        lim = self.config.limits
        request = {"spec": spec.to_json(), "limits": dataclasses.asdict(lim)}
        try:
            socket.send_fds(self.control, [json.dumps(request).encode()],
                            [child_w.fileno(), child_s.fileno(), out_fd, stack_fd])
        except OSError as exc:
            os.close(stack_read)
            raise SandboxError(f"the zygote is gone (exit code {self.proc.poll()}): {exc}") from exc
        finally:
            child_w.close()
            child_s.close()
            os.close(out_fd)
            os.close(stack_fd)
        parent_s.settimeout(30)
        try:
            hello = json.loads(parent_s.recv(65536))
        except (OSError, ValueError) as exc:
            os.close(stack_read)
            raise SandboxError(f"no worker was started: {exc}") from exc
        worker = SandboxedWorker(hello["pid"], parent_w, parent_s, drain, hello["protections"],
                                 lim.max_bytes, work, stack_fd=stack_read,
                                 inner_workdir=hello.get("workdir"), sources=self.config.pristine)
        try:  # the worker says so once its sandbox is up, before any student code runs
            ready = recv_frame(parent_w, 64, time.monotonic() + 30)
        except (OSError, PeerClosed, CodecError) as exc:
            head = worker.output(2000).head.decode("utf-8", "replace")
            worker.close()
            raise SandboxError(f"the worker's sandbox could not be set up ({exc!r}): "
                               f"{head.strip()}") from None
        if bytes(ready) != READY:
            worker.close()
            raise SandboxError("the worker sent something else than its ready message")
        worker.probes = self.probes
        return worker

    def close(self) -> None:
        self.control.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
