"""The per-submission template: the submission imported once, one forked worker per test.

A template is an ordinary sandboxed worker (namespaces, uid, seccomp, limits) that the
grader asks, before any test, to import every module of the submission and then to fork
on request. Module bodies and notebook cells (a scratch cell's sleep, a training cell)
run once per grading instead of once per test; a fork keeps the sandbox and gets a copy
of the imported modules, so tests stay apart. The template has run student code: what it
says (a fork's pid, its exit status) is used for messages and for finding the fork among
its own children, never for a verdict. Where it fails or dies, tests fall back to a fresh
worker from the zygote each, as without a template.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from typing import Any

from autograder.errors import CodecError
from autograder.sandbox.framing import PeerClosed, recv_frame, send_frame
from autograder.sandbox.pool import MONITOR_WAIT, OutputDrain, Printed, SandboxedWorker
from autograder.sandbox.worker import BECOME_TEMPLATE
from autograder.sandbox.zygote import READY

FORK_WAIT = 10.0  # seconds a fork gets to say it is ready
TEMPLATE_END_WAIT = 1.0  # a fork ends just before its template when the template is stopped
# The imports' output is flushed before the reply, so it is in the pipe already: read once
# the pipe is empty and nothing came for this long (a background printer may still add some).
IMPORT_OUTPUT_QUIET = 0.003


class TemplateGone(Exception):
    """The template cannot fork (it died, timed out importing, or misbehaved)."""


def host_pid(parent: int, inner: int) -> int | None:
    """The pid, as this process sees it, of ``parent``'s child whose pid in its own pid
    namespace is ``inner`` (NSpid's last field); ``None`` if it has no such child."""
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return None
    for child in children:
        try:
            with open(f"/proc/{child}/status") as f:
                line = next((ln for ln in f if ln.startswith("NSpid:")), "")
        except OSError:
            continue
        if line.split()[-1:] == [str(inner)]:
            return child
    return None


class Template:
    def __init__(self, worker: SandboxedWorker, import_timeout: float) -> None:
        self.worker = worker
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}  # inner pid -> wait status, as the template says
        self.dead = False
        try:
            send_frame(worker.sock, BECOME_TEMPLATE, time.monotonic() + 10)
            reply = json.loads(recv_frame(worker.sock, 1 << 20,
                                          time.monotonic() + import_timeout))
            self.imports: dict[str, str | None] = dict(reply["imports"])
        except (OSError, PeerClosed, CodecError, ValueError, KeyError, TypeError) as exc:
            self.close()
            raise TemplateGone(f"the submission could not be imported once ({exc!r})") from None
        # What the imports printed reaches every test's output, as when each test imported
        # the submission itself: read once the pipe is empty and quiet.
        drain, seen, quiet_since = worker.drain, -1, time.monotonic()
        while time.monotonic() - quiet_since < IMPORT_OUTPUT_QUIET and not drain.flooded:
            if drain.total != seen or drain.unread():
                seen, quiet_since = drain.total, time.monotonic()
            time.sleep(0.001)
        self.import_output = bytes(drain.head)
        self.import_total = drain.total

    def _read(self, deadline: float) -> dict[str, Any]:
        msg = json.loads(recv_frame(self.worker.sock, 4096, deadline))
        if "exited" in msg:
            if len(self.statuses) > 1000:  # statuses nobody asked for (closed forks)
                self.statuses.clear()
            self.statuses[int(msg["exited"])] = int(msg["status"])
        return dict(msg)

    def fork(self, output_limit: int, max_bytes: int) -> ForkedWorker:
        with self.lock:
            if self.dead:
                raise TemplateGone("the template is gone")
            parent_w, child_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            out_read, out_fd = os.pipe()
            stack_read, stack_fd = os.pipe()
            os.set_blocking(stack_read, False)
            try:
                socket.send_fds(self.worker.sock, [b"f"], [child_w.fileno(), out_fd, stack_fd])
                deadline = time.monotonic() + FORK_WAIT
                while "forked" not in (msg := self._read(deadline)):
                    pass
                inner = int(msg["forked"])
                self.statuses.pop(inner, None)  # an earlier fork's, should the pid recur
            except (OSError, PeerClosed, CodecError, ValueError, KeyError, TypeError) as exc:
                for fd in (out_read, stack_read):
                    os.close(fd)
                parent_w.close()
                self.close()
                raise TemplateGone(f"the template did not fork ({exc!r})") from None
            finally:
                child_w.close()
                os.close(out_fd)
                os.close(stack_fd)
            pid = host_pid(self.worker.pid, inner)
            drain = OutputDrain(out_read, output_limit)
            drain.start()
            if pid is None:
                parent_w.close()
                os.close(stack_read)
                self.close()
                raise TemplateGone(f"the template's fork {inner} is not its child")
            forked = ForkedWorker(self, inner, pid, parent_w, drain, max_bytes, stack_read)
        try:
            ready = recv_frame(parent_w, 64, time.monotonic() + FORK_WAIT)
        except (OSError, PeerClosed, CodecError) as exc:
            forked.close()
            raise TemplateGone(f"the fork did not start ({exc!r})") from None
        if bytes(ready) != READY:
            forked.close()
            raise TemplateGone("the fork sent something else than its ready message")
        return forked

    def status_of(self, inner: int, wait: float) -> int | None:
        """The fork's wait status as the template reports it (informational)."""
        deadline = time.monotonic() + wait
        with self.lock:
            while inner not in self.statuses and not self.dead:
                try:
                    self._read(deadline)
                except (OSError, PeerClosed, CodecError, ValueError, KeyError, TypeError):
                    break
            return self.statuses.pop(inner, None)

    def stop_reason(self) -> str:
        """Why the template's monitor stopped it, and with it every fork (its uid's files in
        the shared temp folders): from root's side of the sandbox, never from the template."""
        base = self.worker
        if base.status_seen or base.closed or base.pidfd is None:
            return base.stop_reason
        ended = select.poll()  # the template's own end, not its monitor's say-so
        ended.register(base.pidfd, select.POLLIN)
        if ended.poll(TEMPLATE_END_WAIT * 1000):
            base._exit_status(wait=MONITOR_WAIT)
        return base.stop_reason

    def close(self) -> None:
        self.dead = True
        self.worker.close()


class ForkedWorker(SandboxedWorker):
    """A test's worker forked from the template: the same interface as a fresh one."""

    def __init__(self, template: Template, inner: int, pid: int, sock: socket.socket,
                 drain: OutputDrain, max_bytes: int, stack_fd: int) -> None:
        base = template.worker
        # The status socket is the template's own: never closed through a fork.
        super().__init__(pid, sock, base.status_sock, drain, base.protections, max_bytes,
                         base.workdir, stack_fd=stack_fd, inner_workdir=base.inner_workdir,
                         sources=base.sources)
        self.template = template
        self.inner = inner
        self.probes = base.probes

    def output(self, limit: int) -> Printed:
        """What the imports printed (in the template), then what this test's fork printed."""
        own = super().output(limit)
        head = (self.template.import_output + own.head)[:limit]
        return Printed(head, self.template.import_total + own.total, own.root)

    def _exit_status(self, wait: float = 2.0) -> int | None:
        self.status_seen = True
        status = self.template.status_of(self.inner, wait)
        if status is None:  # the template is gone too: perhaps its monitor stopped it
            self.stop_reason = self.template.stop_reason()
        return status

    def close(self) -> None:
        """Not the template's status socket nor the shared work folder; its exit status is
        not waited for (the next fork request reads it on the way)."""
        self.kill()
        self.drain.on_flood = None
        self._release()
