"""Grader side of worker management: the zygote, sandboxed workers, in-process workers.

Both worker kinds expose ``request(payload, timeout) -> bytes`` so the proxy and the
tests behave the same whatever the isolation mode.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from . import codec, sandbox
from .errors import CodecError, SandboxError, StudentError, StudentTimeout, WorkerDied
from .framing import PeerClosed, recv_frame, send_frame
from .zygote import READY

_SIGNAL_HINTS = {
    signal.SIGKILL: "killed (memory, process or time limit)",
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded (too much output?)",
    signal.SIGSEGV: "segmentation fault",
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


class Worker(Protocol):
    protections: list[dict[str, Any]]

    def request(self, payload: bytes, timeout: float | None, what: str) -> bytearray: ...

    def output(self, limit: int) -> tuple[str, int]: ...

    def close(self) -> None: ...


class LocalWorker:
    """``--isolation none``: student code in this process, same codec round trip."""

    def __init__(self, workdir: Path, modules: list[str], limits: codec.Limits) -> None:
        from .worker import Runtime

        self.runtime = Runtime(workdir, modules, limits)
        self.protections = [{"name": "isolation", "active": False,
                             "detail": "--isolation none: student code runs in the grader process"}]

    def request(self, payload: bytes, timeout: float | None, what: str) -> bytearray:
        if not timeout or threading.current_thread() is not threading.main_thread():
            return bytearray(self.runtime.handle(payload))
        # Best effort in-process timeout: an alarm interrupts Python code (not C loops).
        fired = False

        def on_alarm(signum: int, frame: Any) -> None:
            nonlocal fired
            fired = True
            raise TimeoutError(f"exceeded {timeout:g} s")

        start = time.monotonic()
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            reply = self.runtime.handle(payload)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            if old_delay:  # give pytest-timeout's alarm back what is left of it
                left = max(old_delay - (time.monotonic() - start), 1e-3)
                signal.setitimer(signal.ITIMER_REAL, left, old_interval)
        if fired:
            raise StudentTimeout("Timeout", f"your code exceeded {timeout:g} s in {what}")
        return bytearray(reply)

    def output(self, limit: int) -> tuple[str, int]:
        return "", 0

    def close(self) -> None:
        self.runtime.close()


class OutputDrain(threading.Thread):
    """Reads the worker's stdout/stderr pipe: keeps the head, counts the rest. A pipe, not a
    file, so flooding the output costs the student nothing but CPU time (no size limit)."""

    KEEP = 64 * 1024

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.head = bytearray()
        self.total = 0

    def run(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                self.total += len(chunk)
                if len(self.head) < self.KEEP:
                    self.head += chunk[: self.KEEP - len(self.head)]
        except OSError:
            pass
        finally:
            os.close(self.fd)


class SandboxedWorker:
    def __init__(self, pid: int, sock: socket.socket, status: socket.socket, drain: OutputDrain,
                 protections: list[dict[str, Any]], max_bytes: int, workdir: Path) -> None:
        self.pid = pid
        self.workdir = workdir
        self.sock = sock
        self.status_sock = status
        self.drain = drain
        self.protections = protections
        self.max_bytes = max_bytes
        self.dead: StudentError | None = None

    def request(self, payload: bytes, timeout: float | None, what: str) -> bytearray:
        if self.dead is not None:
            raise self.dead
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            send_frame(self.sock, payload, deadline)
            return recv_frame(self.sock, self.max_bytes, deadline)
        except TimeoutError:
            self.kill()
            self.dead = StudentTimeout(
                "Timeout", f"your code exceeded {timeout:g} s in {what}")
            raise self.dead from None
        except (PeerClosed, OSError):
            status = self._exit_status()
            self.kill()
            self.dead = WorkerDied("WorkerDied", f"{describe_status(status)} during {what}")
            raise self.dead from None

    def _exit_status(self) -> int | None:
        self.status_sock.settimeout(2.0)
        try:
            msg = self.status_sock.recv(4096)
            return int(json.loads(msg)["status"]) if msg else None
        except (OSError, ValueError, KeyError):
            return None

    def output(self, limit: int) -> tuple[str, int]:
        """First ``limit`` bytes of what the worker printed, and the total size. Ends the
        worker first: the pipe reaches its end only when every writer is gone."""
        self.kill()
        self.drain.join(timeout=2)
        return bytes(self.drain.head[:limit]).decode("utf-8", "replace"), self.drain.total

    def kill(self) -> None:
        # The worker is init of its pid namespace: SIGKILL to it ends every descendant.
        for target in (lambda: os.kill(self.pid, signal.SIGKILL),
                       lambda: os.killpg(self.pid, signal.SIGKILL)):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        self.kill()
        for s in (self.sock, self.status_sock):
            s.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class SandboxConfig:
    modules: list[str]
    pristine: Path  # prepared submission files (root-owned, readable)
    preload: list[str] = field(default_factory=lambda: ["numpy"])
    spec: sandbox.SandboxSpec | None = None
    limits: codec.Limits = codec.DEFAULT_LIMITS


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
                    "OPENBLAS_NUM_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1"})
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "autograder.zygote", str(child.fileno()), *config.preload],
            pass_fds=[child.fileno()], env=env, cwd="/", stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child.close()
        self._ready = False
        self._count = 0

    def _wait_ready(self) -> None:
        if self._ready:
            return
        self.control.settimeout(120)
        try:
            msg = self.control.recv(4096)
        except OSError as exc:
            raise SandboxError(f"the zygote did not start: {exc}") from exc
        if not msg:
            raise SandboxError(f"the zygote exited with code {self.proc.wait()} before it was ready "
                               f"(preloading {self.config.preload})")
        self._ready = True

    def _workdir(self) -> Path:
        self._count += 1
        work = self.tmp / f"w{self._count}"
        shutil.copytree(self.config.pristine, work)
        spec = self.config.spec
        if spec is not None and spec.uid is not None and os.getuid() == 0:
            for p in [work, *work.rglob("*")]:
                os.chown(p, spec.uid, spec.gid if spec.gid is not None else spec.uid)
        return work

    def spawn(self) -> SandboxedWorker:
        self._wait_ready()
        work = self._workdir()
        base = self.config.spec or sandbox.SandboxSpec(workdir="", modules=[])
        spec = replace(base, workdir=str(work), modules=list(self.config.modules))
        parent_w, child_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        parent_s, child_s = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_read, out_fd = os.pipe()
        drain = OutputDrain(out_read)
        drain.start()
        lim = self.config.limits
        request = {"spec": spec.to_json(), "limits": dataclasses.asdict(lim)}
        try:
            socket.send_fds(self.control, [json.dumps(request).encode()],
                            [child_w.fileno(), child_s.fileno(), out_fd])
        except OSError as exc:
            raise SandboxError(f"the zygote is gone (exit code {self.proc.poll()}): {exc}") from exc
        finally:
            child_w.close()
            child_s.close()
            os.close(out_fd)
        parent_s.settimeout(30)
        try:
            hello = json.loads(parent_s.recv(65536))
        except (OSError, ValueError) as exc:
            raise SandboxError(f"no worker was started: {exc}") from exc
        worker = SandboxedWorker(hello["pid"], parent_w, parent_s, drain, hello["protections"],
                                 lim.max_bytes, work)
        try:  # the worker says so once its sandbox is up, before any student code runs
            ready = recv_frame(parent_w, 64, time.monotonic() + 30)
        except (OSError, PeerClosed, CodecError) as exc:
            head, _ = worker.output(2000)
            worker.close()
            raise SandboxError(f"the worker's sandbox could not be set up ({exc!r}): "
                               f"{head.strip()}") from None
        if bytes(ready) != READY:
            worker.close()
            raise SandboxError("the worker sent something else than its ready message")
        return worker

    def close(self) -> None:
        self.control.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
