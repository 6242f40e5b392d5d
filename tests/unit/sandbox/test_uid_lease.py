"""Each grading's uid is its own while the grading runs (autograder.sandbox.uid_lease)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.errors import SandboxError
from autograder.sandbox import uid_lease

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="leases are root's (/run)")


@pytest.fixture
def leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "uids"
    monkeypatch.setattr(uid_lease, "LEASES", folder)
    return folder


def _draws(monkeypatch: pytest.MonkeyPatch, *uids: int) -> None:
    """The random draw returns these uids in turn."""
    seq = iter(u - uid_lease.FIRST_UID for u in uids)
    monkeypatch.setattr(uid_lease.secrets, "randbelow", lambda n: next(seq))


@needs_root
def test_a_held_uid_is_not_leased_again(leases: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _draws(monkeypatch, 300_001, 300_001, 300_002)
    first = uid_lease.lease()
    second = uid_lease.lease()
    assert (first.uid, second.uid) == (300_001, 300_002)
    assert sorted(p.name for p in leases.iterdir()) == ["300001", "300002"]
    assert leases.stat().st_mode & 0o777 == 0o700
    first.release()
    second.release()
    assert list(leases.iterdir()) == []  # nothing piles up in /run


@needs_root
def test_another_process_holding_it_counts(leases: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock is the kernel's: another grader process's lease is seen, and freed when
    that process dies without releasing it."""
    code = ("import sys, time; from autograder.sandbox import uid_lease; "
            f"uid_lease.LEASES = __import__('pathlib').Path({str(leases)!r}); "
            "uid_lease.secrets.randbelow = lambda n: 300_007 - uid_lease.FIRST_UID; "
            "held = uid_lease.lease(); print(held.uid, flush=True); time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "300007"
        _draws(monkeypatch, 300_007, 300_008)
        mine = uid_lease.lease()
        assert mine.uid == 300_008
        mine.release()
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    _draws(monkeypatch, 300_007)
    again = uid_lease.lease()  # its holder died: the kernel dropped the lock
    assert again.uid == 300_007
    again.release()


@needs_root
def test_files_of_killed_graders_are_swept(leases: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A grader killed before its release leaves its file; the next lease removes it, and
    leaves alone the file of a lease still held."""
    _draws(monkeypatch, 300_041, 300_042, 300_043)
    held = uid_lease.lease()
    leases.joinpath("300002").touch()  # a killed grader's: nobody holds its lock
    uid_lease.lease().release()
    assert sorted(p.name for p in leases.iterdir()) == ["300041"]
    held.release()


@needs_root
def test_uids_with_an_account_or_a_process_are_skipped(leases: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # /bin/sleep: another uid may not read the checkout's venv (a 0700 home, mktemp -d)
    child = subprocess.Popen(["sleep", "60"], user=300_011, group=300_011, cwd="/")
    try:
        deadline = time.monotonic() + 10
        while not uid_lease.processes_of(300_011) and time.monotonic() < deadline:
            time.sleep(0.01)
        monkeypatch.setattr(uid_lease.pwd, "getpwuid",
                            lambda uid: object() if uid == 300_010 else _missing(uid))
        _draws(monkeypatch, 300_010, 300_011, 300_012)
        held = uid_lease.lease()
        assert held.uid == 300_012
        held.release()
    finally:
        child.kill()
        child.wait()


def _missing(uid: int) -> object:
    raise KeyError(uid)


@needs_root
def test_besides_is_never_drawn(leases: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _draws(monkeypatch, 300_020, 300_021)
    held = uid_lease.lease(besides={300_020})
    assert held.uid == 300_021
    held.release()


@needs_root
def test_a_folder_not_roots_alone_is_not_trusted(leases: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    leases.mkdir(mode=0o777)
    os.chmod(leases, 0o777)  # writable by anyone: a lease file there could be planted
    _draws(monkeypatch, 300_030)
    held = uid_lease.lease()
    assert held.uid == 300_030 and held.fd is None
    assert list(leases.iterdir()) == []


@needs_root
def test_no_free_uid_is_a_clear_error(leases: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uid_lease.secrets, "randbelow", lambda n: 0)
    monkeypatch.setattr(uid_lease.pwd, "getpwuid", lambda uid: object())
    with pytest.raises(SandboxError, match=r"no free uid .* 200000\.\.999999"):
        uid_lease.lease()
