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
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Scopes:
    """Whether this kernel can scope the worker, and what to report."""

    active: bool
    detail: str

    def restrict(self) -> None:
        """In the worker, after no_new_privs: its process and every child get the scopes."""
        if not self.active:
            return
        attr = _RulesetAttr(0, 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
        fd = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                           ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
        try:
            if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
                raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
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
        return Scopes(False, f"Landlock ABI {abi} has no scopes (needs {MIN_ABI}, Linux 6.12)")
    candidate = Scopes(True, DETAIL)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            candidate.restrict()
        except BaseException:  # noqa: BLE001 - reported by the exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return Scopes(False, "the platform refused Landlock (a seccomp profile without "
                             "landlock_* calls?)")
    return candidate
