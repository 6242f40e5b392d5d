"""Landlock scopes for the worker: no abstract UNIX sockets and no signals outside it.

Abstract UNIX sockets have no permissions and belong to the network namespace, so where
the platform gives the worker none (Docker, Gradescope) the seccomp filter's AF_UNIX
exception would let it reach any abstract listener of the host or of a concurrent
grading; seccomp cannot read a connect() address. Landlock's scopes (ABI 6, Linux 6.12)
close both that and signals to processes outside the worker's own domain (the yardstick's
worker), without root or namespaces. Python has no binding: the three system calls go
through ctypes.
"""

from __future__ import annotations

import ctypes
import os
import stat
from dataclasses import dataclass

from autograder.sandbox import forked

SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture (new-style calls)
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1
MIN_ABI = 6
PR_SET_NO_NEW_PRIVS = 38
DETAIL = "no abstract UNIX sockets or signals outside the worker (Landlock scopes)"


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def abi_version() -> int:
    """The kernel's Landlock ABI, or a negative errno (not built in, disabled, refused)."""
    v = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                      ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return int(v) if v >= 0 else -ctypes.get_errno()


# Filesystem rights (landlock.h) and the ABI that brought them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
TRUNCATE, IOCTL_DEV = 1 << 14, 1 << 15
FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
FS_RIGHTS_LATEST = (1 << 16) - 1  # ABI 5 and later
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR
SYS_LANDLOCK_ADD_RULE = 445
RULE_PATH_BENEATH = 1
MAX_RULES = 4000  # rules in one ruleset (a folder walked to leave one package out)


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@dataclass(frozen=True)
class FsRules:
    """What a worker without a mount namespace may touch: ``read`` beneath (and execute),
    ``devices`` read and write existing files (/dev), ``write`` everything (the shared temp
    folders, cleaned after the worker); ``hidden`` never, even below a read folder (the
    assignment's forbidden packages). Everything else of the host is out of reach."""

    read: tuple[str, ...]
    devices: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scopes:
    """Whether this kernel can scope the worker, and what to report."""

    active: bool
    detail: str
    abi: int = 0

    def ruleset(self, fs: FsRules | None = None) -> int | None:
        """A ruleset fd (scopes, and ``fs`` where given), to apply with :meth:`apply`."""
        fs_rights = (FS_RIGHTS_BY_ABI.get(self.abi, FS_RIGHTS_LATEST) if fs is not None
                     and self.abi >= 1 else 0)
        scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if self.active else 0
        if not scoped and not fs_rights:
            return None
        attr = _RulesetAttr(fs_rights, 0, scoped)
        fd = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                           ctypes.c_size_t(ctypes.sizeof(attr) if scoped else 16),
                           ctypes.c_uint32(0))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
        if fs is not None and fs_rights:
            try:
                _FsRuleWriter(int(fd), fs_rights, fs).write()
            except BaseException:
                os.close(fd)
                raise
        return int(fd)

    def restrict(self, fs: FsRules | None = None) -> None:
        """In the worker, after no_new_privs: its process and every child get the scopes."""
        fd = self.ruleset(fs)
        if fd is not None:
            try:
                apply(fd)
            finally:
                os.close(fd)


def apply(fd: int) -> None:
    """Enforce a ruleset on this process (after no_new_privs) and its future children."""
    if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")


class _FsRuleWriter:
    def __init__(self, fd: int, handled: int, fs: FsRules) -> None:
        self.fd, self.handled, self.fs, self.count = fd, handled, fs, 0
        self.hidden = [os.path.realpath(h) for h in fs.hidden]

    def write(self) -> None:
        for path in self.fs.read:
            self._grant(path, READ)
        for path in self.fs.devices:
            self._grant(path, READ | WRITE_FILE | TRUNCATE | IOCTL_DEV)
        for path in self.fs.write:
            self._grant(path, self.handled)

    def _grant(self, path: str, access: int) -> None:
        real = os.path.realpath(path)
        if not os.path.exists(real) or real in self.hidden:
            return
        if not any(h.startswith(real.rstrip("/") + "/") for h in self.hidden):
            self._add(real, access)
            return
        # A folder holding a hidden package: listable, and each other entry granted.
        self._add(real, READ_DIR)
        for name in sorted(os.listdir(real)):
            child = os.path.join(real, name)
            if not os.path.islink(child):
                self._grant(child, access)

    def _add(self, path: str, access: int) -> None:
        self.count += 1
        if self.count > MAX_RULES:
            raise OSError(f"more than {MAX_RULES} Landlock rules to leave {self.hidden} out")
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            allowed = access & self.handled & (~0 if is_dir else FILE_RIGHTS)
            rule = _PathBeneath(allowed, fd)
            if _libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(self.fd),
                             ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule),
                             ctypes.c_uint32(0)) != 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule {path} failed")
        finally:
            os.close(fd)


def scopes() -> Scopes:
    """Checked once (in the zygote) in a forked child, as the seccomp filter is: a worker
    must not fail its setup over what the platform cannot give."""
    abi = abi_version()
    if abi < 0:
        return Scopes(False, f"Landlock unavailable ({os.strerror(-abi)}): abstract UNIX "
                             "sockets of the host stay reachable without a network namespace")
    if abi < MIN_ABI:
        return Scopes(False, f"Landlock ABI {abi} has no scopes (needs {MIN_ABI}, Linux 6.12)",
                      abi)
    candidate = Scopes(True, DETAIL, abi)

    def restrict() -> None:
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        candidate.restrict()

    why = forked.try_in_child(restrict)
    if why is not None:  # abi 0: no filesystem rules either
        return Scopes(False, f"the platform refused Landlock ({why}; a seccomp profile "
                             "without the landlock_* calls?)")
    return candidate
