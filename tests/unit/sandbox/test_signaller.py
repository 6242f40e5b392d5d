"""The helper that pauses a grading's processes around yardstick calls (pause_student)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from autograder.sandbox import signaller, uid_lease
from autograder.sandbox.signaller import UidSignaller

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="signalling another uid needs root")


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(ln.split()[1] for ln in f if ln.startswith("State:"))


def _wait_state(pid: int, wanted: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while (state := _state(pid)) != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    return state


@pytest.fixture
def student() -> Iterator[tuple[int, int, int]]:
    """A sleeping process of a grading's own uid: (pid, uid, gid)."""
    held = uid_lease.lease()
    uid, gid = held.ids
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            while True:
                time.sleep(1)
        finally:
            os._exit(0)
    yield pid, uid, gid
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    held.release()


def test_stops_and_continues_every_process_of_the_uid(student: tuple[int, int, int]) -> None:
    pid, uid, gid = student
    helper = UidSignaller(uid, gid)
    try:
        helper.send(signal.SIGSTOP)
        assert _state(pid) == "T"  # stopped when send returns, not later
        helper.send(signal.SIGCONT)
        assert _wait_state(pid, "S") == "S"
        assert helper.proc is not None and helper.proc.poll() is None  # reused, not respawned
        helper.send(signal.SIGSTOP)
        assert _state(pid) == "T"
        helper.send(signal.SIGCONT)
    finally:
        helper.close()
    assert helper.proc is None


def test_a_killed_helper_falls_back_to_a_fork_per_signal(student: tuple[int, int, int]) -> None:
    """A student process of the same uid may kill the helper: the pause still happens."""
    pid, uid, gid = student
    helper = UidSignaller(uid, gid)
    try:
        helper.send(signal.SIGCONT)  # started and answering
        assert helper.proc is not None
        helper.proc.kill()
        helper.proc.wait()
        helper.send(signal.SIGSTOP)
        assert _state(pid) == "T"
        assert helper.proc is None  # given up on
        helper.send(signal.SIGCONT)
        assert _wait_state(pid, "S") == "S"
    finally:
        helper.close()


def test_a_stopped_helper_is_killed_before_the_fallback(student: tuple[int, int, int],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper stopped by the student could send its signal late, after the grader's own:
    it is killed and reaped first, so no stale SIGSTOP can follow a SIGCONT."""
    pid, uid, gid = student
    monkeypatch.setattr(signaller, "ACK_WAIT", 0.3)
    helper = UidSignaller(uid, gid)
    try:
        helper.send(signal.SIGCONT)
        proc = helper.proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        helper.send(signal.SIGSTOP)
        assert _state(pid) == "T"
        assert helper.proc is None and proc.returncode is not None  # reaped
        helper.send(signal.SIGCONT)
        assert _wait_state(pid, "S") == "S"
    finally:
        helper.close()


def test_the_helper_cannot_be_read_by_its_own_uid(student: tuple[int, int, int]) -> None:
    """It runs as the student's uid but, having changed credentials, is not dumpable:
    a student process can signal it, never trace it or read its memory."""
    _, uid, gid = student
    helper = UidSignaller(uid, gid)
    try:
        helper.send(signal.SIGCONT)
        assert helper.proc is not None
        target = helper.proc.pid
        r, w = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                with open(f"/proc/{target}/mem", "rb"):
                    os.write(w, b"read")
            except PermissionError:
                os.write(w, b"refused")
            os._exit(0)
        os.waitpid(child, 0)
        assert os.read(r, 16) == b"refused"
        os.close(r)
        os.close(w)
    finally:
        helper.close()


def test_no_helper_for_root_or_the_graders_own_uid() -> None:
    assert UidSignaller(0, 0).proc is None
    assert UidSignaller(os.getuid(), os.getgid()).proc is None
