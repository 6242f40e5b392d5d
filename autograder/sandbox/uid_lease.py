"""A uid of its own for each grading on this machine, for as long as the grading runs.

Student code runs under an unprivileged uid, and a grading ends everything of its uid
(``kill_uid``, ``remove_leftovers``, the pause helper). Two concurrent gradings under one
uid would stop each other's workers and delete each other's files. A uid drawn at random
from 800,000 makes that rare, not impossible: a course grading in parallel all term draws
many. So each uid is leased: an flock on a file named for it in a folder only root can
write, held until the grading ends (the kernel drops it if the grader dies). A uid is
leased only when no account has it and no process runs as it.

A file lock, not a registry or a database, because the kernel releases it with the
process that held it: a crash leaves no uid held, only an empty file, which the next
lease sweeps away.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import secrets
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from autograder.errors import SandboxError
from autograder.sandbox.namespaces import processes_of

LEASES = Path("/run/autograder-uids")  # under /run: root's, so no worker can plant it
FIRST_UID = 200_000
UID_COUNT = 800_000
TRIES = 1000
SWEEP = 64  # unheld lease files (of killed graders) removed per lease, at most


@dataclass
class UidLease:
    """A uid (and the gid of the same number) that no other grading here holds."""

    uid: int
    fd: int | None = None  # the flock; None where no lease folder could be used
    path: Path | None = None

    @property
    def ids(self) -> tuple[int, int]:
        return self.uid, self.uid

    def release(self) -> None:
        """Give the uid back. The file is removed while still locked, so a later lease
        of this uid locks a new file, never this one."""
        if self.fd is None:
            return
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        os.close(self.fd)
        self.fd = None


def _folder() -> Path | None:
    """The lease folder, made if needed; None if it cannot be trusted or made (not root:
    no uid switch then; /run missing or read-only)."""
    if os.geteuid() != 0:
        return None
    try:
        LEASES.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(LEASES)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        return None
    return LEASES


def _in_use(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return bool(processes_of(uid))


def _lock(folder: Path, uid: int, *, create: bool = True) -> int | None:
    """The locked lease file's descriptor, or None if another grading holds ``uid``."""
    path = folder / str(uid)
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Released (and so unlinked) between our open and our lock: that file is no lease.
        now = os.stat(path, follow_symlinks=False)
        mine = os.fstat(fd)
        if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _sweep(folder: Path, most: int = SWEEP) -> None:
    """Remove lease files that nobody holds (their grader was killed before its release),
    as a release would: locked, then unlinked."""
    try:
        names = [e.name for e in os.scandir(folder) if e.name.isdigit()][:most]
    except OSError:
        return
    for name in names:
        try:
            fd = _lock(folder, int(name), create=False)
        except OSError:
            continue
        if fd is not None:
            UidLease(int(name), fd, folder / name).release()


def lease(besides: Collection[int] = ()) -> UidLease:
    """A free uid, not one of ``besides``, held until :meth:`UidLease.release`."""
    folder = _folder()
    if folder is not None:
        _sweep(folder)
    for _ in range(TRIES):
        uid = FIRST_UID + secrets.randbelow(UID_COUNT)
        if uid in besides or _in_use(uid):
            continue
        if folder is None:
            return UidLease(uid)
        try:
            fd = _lock(folder, uid)
        except OSError:  # a read-only /run: the random draw and the checks above only
            return UidLease(uid)
        if fd is not None:
            return UidLease(uid, fd, folder / str(uid))
    raise SandboxError(f"no free uid for the student's code after {TRIES} tries in "
                       f"{FIRST_UID}..{FIRST_UID + UID_COUNT - 1}: are that many gradings "
                       f"running, or accounts defined there? ({LEASES} holds the leases)")
