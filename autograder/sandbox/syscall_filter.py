"""A seccomp filter for the worker: the kernel interfaces a submission never needs.

Namespaces and mounts are how a process escapes or reshapes the sandbox around it (a new
user namespace can lift the mounts that hide the hidden tests), ptrace and friends read
other processes, and bpf, io_uring, keyrings and module loading are the kernel's largest
attack surface. numpy, torch, threads, fork and subprocess need none of them. Sockets of any
family but AF_UNIX are refused too: the network stays closed also where the platform
cannot give the worker a network namespace (Docker's and Gradescope's defaults).

The filter is compiled once in the zygote with libseccomp (through ``pyseccomp``) and
loaded by each worker after ``no_new_privs``, so it also holds where the grader is not
root. Denied calls fail with EPERM, as under Docker's default profile; a filter cannot
read clone3's flags (they sit in a struct), so clone3 answers ENOSYS and the C library
falls back to clone, whose flags are checked.
"""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass
from typing import Any

from autograder.sandbox import forked

CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}

DENIED = (
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # kernel attack surface
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "open_by_handle_at",
    # memory and channels outside the worker's limits and lifetime: System V IPC and POSIX
    # message queues outlive the process (and reach other gradings where the grader is
    # not root, so no IPC namespace); memfd pages are not counted by RLIMIT_AS
    "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
    "semtimedop", "semctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr", "memfd_create", "memfd_secret",
    # administration (root only, denied all the same)
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "iopl", "ioperm",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "vhangup",
)

PR_SET_NO_NEW_PRIVS = 38
AF_UNIX = 1
SUMMARY = ("no namespaces, mounts, ptrace, bpf, io_uring, keyrings, kernel modules, "
           "System V IPC, message queues or memfd, no sockets but AF_UNIX (seccomp)")
# What the filter gives where no network namespace can be made (Docker, Gradescope).
NETWORK_DETAIL = ("no network namespace; the seccomp filter refuses every socket but AF_UNIX "
                  "(no TCP/UDP, loopback included, no raw or netlink sockets)")


@dataclass
class CompiledFilter:
    """A filter ready to load (``handle`` is None when libseccomp is unavailable)."""

    handle: Any
    detail: str

    @property
    def active(self) -> bool:
        return self.handle is not None

    def load(self) -> None:
        if self.handle is not None:
            self.handle.load()

    def checked(self) -> CompiledFilter:
        """This filter if a child process can load it, else an inactive one saying why
        (a kernel without seccomp, or an outer sandbox that forbids it): workers must not
        fail their setup over a protection the platform cannot give."""
        if self.handle is None:
            return self
        handle = self.handle

        def load() -> None:
            ctypes.CDLL(None).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            handle.load()

        why = forked.try_in_child(load)
        if why is None:
            return self
        return CompiledFilter(None, f"the kernel refused the filter ({why}); "
                                    "seccomp is unavailable here")


AF_INET, AF_INET6 = 2, 10


# Sonames tried before ctypes.util.find_library, which runs `ldconfig -p` in a subprocess
# for each of pyseccomp's two libraries at every zygote start.
_SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def _import_pyseccomp() -> Any:
    import ctypes.util

    search = ctypes.util.find_library

    def find(name: str) -> str | None:
        soname = _SONAMES.get(name)
        if soname is not None:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        return search(name)

    ctypes.util.find_library = find
    try:
        import pyseccomp
    finally:
        ctypes.util.find_library = search
    return pyseccomp


def compile_filter(*, inet: bool = False) -> CompiledFilter:
    """Build the worker's filter, or say why it cannot be built (never silently).
    ``inet``: IP sockets are allowed too, for a worker whose network namespace holds
    nothing but its own loopback (an assignment's [sandbox] loopback)."""
    try:
        seccomp = _import_pyseccomp()
    except ImportError:
        return CompiledFilter(None, "pyseccomp is not installed (pip install pyseccomp)")
    except (RuntimeError, OSError) as exc:  # pyseccomp raises if libseccomp.so is missing
        return CompiledFilter(None, f"libseccomp is missing ({exc}); install it "
                                    "(Debian: apt-get install libseccomp2)")
    try:
        f = seccomp.SyscallFilter(seccomp.ALLOW)
        eperm = seccomp.ERRNO(errno.EPERM)
        for name in DENIED:
            try:
                f.add_rule(eperm, name)
            except OSError as exc:  # a call this kernel/libseccomp does not know
                if exc.errno not in (errno.EINVAL, errno.EFAULT, errno.EDOM):
                    raise
        # No network without a network namespace: IP, raw, netlink, packet... sockets fail
        # with EPERM; local pipes (multiprocessing, DataLoader workers) keep AF_UNIX.
        if inet:
            # One comparison per rule (libseccomp allows one per argument): every family
            # but AF_UNIX, AF_INET and AF_INET6 is refused.
            for family in (0, *range(3, AF_INET6)):
                f.add_rule(eperm, "socket", seccomp.Arg(0, seccomp.EQ, family))
            f.add_rule(eperm, "socket", seccomp.Arg(0, seccomp.GT, AF_INET6))
            f.add_rule(eperm, "socketpair", seccomp.Arg(0, seccomp.NE, AF_UNIX))
        else:
            for call in ("socket", "socketpair"):
                f.add_rule(eperm, call, seccomp.Arg(0, seccomp.NE, AF_UNIX))
        for flag in CLONE_NAMESPACE_FLAGS.values():
            f.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    except (OSError, RuntimeError, ValueError) as exc:
        return CompiledFilter(None, f"libseccomp could not build the filter: {exc}")
    return CompiledFilter(f, SUMMARY.replace(
        "no sockets but AF_UNIX", "no sockets but AF_UNIX and IP (the worker's own loopback "
        "is all its network namespace holds)") if inet else SUMMARY)
