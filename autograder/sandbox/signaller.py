"""Signals to every process of a grading's uid, through one helper process of that uid.

The grader pauses the student's processes (SIGSTOP, then SIGCONT) around each timed
yardstick call. ``namespaces.signal_uid`` does it with a fork of the grader per signal,
a few milliseconds each for a process of the grader's size; a performance test times
its yardstick a dozen times. The helper here is started once: a small interpreter that
drops to the uid itself (root until then, so no student process can touch it before;
the change of credentials leaves it non-dumpable, so afterwards one of the same uid can
signal it but not trace it or read its memory) and answers each signal byte with an ack.

Where the helper fails (a student process stopped or killed it, it did not start), it is
killed and reaped, so that a late signal of its own cannot follow, and each signal is
sent by ``signal_uid`` from then on: never a pause that silently does not happen.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys

from autograder.sandbox.namespaces import signal_uid

ACK_WAIT = 5.0  # seconds for an ack (the first includes the helper's start)

# kill(-1) from the helper reaches every process it may signal but itself.
_HELPER = """
import os, sys
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
while True:
    b = os.read(0, 1)
    if not b:
        break
    try:
        os.kill(-1, b[0])
    except ProcessLookupError:
        pass
    os.write(1, b"k")
"""


class UidSignaller:
    def __init__(self, uid: int, gid: int) -> None:
        self.uid = uid
        self.proc: subprocess.Popen[bytes] | None = None
        if uid in (0, os.getuid()) or os.getuid() != 0:
            return  # signal_uid refuses these too
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _HELPER, str(uid), str(gid)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                cwd="/", env={}, close_fds=True)
        except OSError:
            self.proc = None

    def send(self, sig: int) -> None:
        """``sig`` to every process of the uid; returns once they have been signalled."""
        proc = self.proc
        if proc is not None and proc.stdin is not None and proc.stdout is not None:
            try:
                os.write(proc.stdin.fileno(), bytes([sig]))
                ready, _, _ = select.select([proc.stdout], [], [], ACK_WAIT)
                if ready and os.read(proc.stdout.fileno(), 1) == b"k":
                    return
            except OSError:
                pass
            self.close()
        signal_uid(self.uid, sig)

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
