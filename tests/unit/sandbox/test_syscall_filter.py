"""The worker's seccomp filter, loaded in a forked child (a filter cannot be unloaded)."""

from __future__ import annotations

import ctypes
import errno
import os
import sys

from child import in_child

from autograder.sandbox import syscall_filter

SYS_CLONE3 = 435  # x86_64
SYS_PTRACE = 101


def in_filtered_child(body) -> dict:
    """Run ``body()`` in a forked child after loading the filter; return its JSON result."""
    compiled = syscall_filter.compile_filter()
    assert compiled.active, compiled.detail

    def filtered():
        compiled.load()
        return body()

    return in_child(filtered)


def test_denied_calls_fail_with_eperm_and_clone3_with_enosys():
    def body():
        libc = ctypes.CDLL(None, use_errno=True)

        def err(result):
            return 0 if result == 0 else ctypes.get_errno()

        def raised(fn, *args):
            try:
                fn(*args)
            except OSError as exc:
                return exc.errno
            return 0

        return {"unshare": err(libc.unshare(0x10000000)),
                "ptrace": err(libc.syscall(SYS_PTRACE, 16, os.getppid(), 0, 0)),
                "clone3": err(libc.syscall(SYS_CLONE3, 0, 0)),
                # IPC_PRIVATE, 1 MiB, IPC_CREAT | 0o600: would outlive the worker
                "shmget": 0 if libc.shmget(0, 1 << 20, 0o1600) >= 0 else ctypes.get_errno(),
                "msgget": 0 if libc.msgget(0, 0o1600) >= 0 else ctypes.get_errno(),
                "memfd_create": raised(os.memfd_create, "x")}

    assert in_filtered_child(body) == {"unshare": errno.EPERM, "ptrace": errno.EPERM,
                                       "clone3": errno.ENOSYS, "shmget": errno.EPERM,
                                       "msgget": errno.EPERM, "memfd_create": errno.EPERM}


def test_torch_multiprocessing_and_shared_memory_still_work():
    """What a DataLoader with workers uses: POSIX shared memory in /dev/shm, not memfd."""
    def body():
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        shared = torch.arange(4.0).share_memory_()
        loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4, num_workers=2)
        total = float(sum(batch[0].sum() for batch in loader))
        return {"shared": bool(shared.is_shared()), "total": total}

    assert in_filtered_child(body) == {"shared": True, "total": 28.0}


def test_ordinary_work_still_runs():
    def body():
        import subprocess
        import threading

        import numpy as np

        seen = []
        t = threading.Thread(target=seen.append, args=(1,))
        t.start()
        t.join()
        echo = subprocess.run(["/bin/echo", "ok"], capture_output=True, text=True).stdout
        pid = os.fork()
        if pid == 0:
            os._exit(9)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        return {"thread": seen, "echo": echo.strip(), "fork": code,
                "numpy": float(np.ones((64, 64)).dot(np.ones(64)).sum())}

    assert in_filtered_child(body) == {"thread": [1], "echo": "ok", "fork": 9,
                                       "numpy": 4096.0}


def test_every_denied_name_is_known_to_libseccomp():
    import pyseccomp

    arch = pyseccomp.system_arch()
    for name in syscall_filter.DENIED:
        assert pyseccomp.resolve_syscall(arch, name) >= 0, name


def test_pyseccomp_loads_by_soname_and_leaves_find_library_alone(monkeypatch):
    import ctypes.util

    searched: list[str] = []
    monkeypatch.delitem(sys.modules, "pyseccomp", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: searched.append(name))
    patched = ctypes.util.find_library
    seccomp = syscall_filter._import_pyseccomp()
    assert seccomp.SyscallFilter is not None
    assert searched == []  # libc and libseccomp found by soname: no `ldconfig -p` run
    assert ctypes.util.find_library is patched


def test_missing_library_is_reported_not_silent(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # makes the import fail
    compiled = syscall_filter.compile_filter()
    assert not compiled.active
    assert "pyseccomp" in compiled.detail and "pip install" in compiled.detail
    compiled.load()  # loading nothing is a no-op, reported as inactive by the monitor


def test_a_filter_the_kernel_refuses_is_reported_inactive():
    """Under an outer sandbox that forbids seccomp(), workers must still start: the zygote
    checks the filter once in a child and reports it off, with the reason."""
    compiled = syscall_filter.compile_filter()

    class Refused:
        def load(self):
            raise OSError(125, "Operation canceled")

    checked = syscall_filter.CompiledFilter(Refused(), compiled.detail).checked()
    assert not checked.active
    assert "the kernel refused the filter" in checked.detail and "Operation canceled" in checked.detail
    assert compiled.checked() is compiled  # loadable here: kept as it is


def test_only_unix_sockets_are_allowed():
    """No network without a network namespace (Docker, Gradescope): IP sockets, loopback
    included, raw and netlink sockets fail with EPERM; AF_UNIX pairs still work
    (multiprocessing, DataLoader workers)."""
    import socket

    def body():
        out = {}
        for name, args in {"inet-tcp": (socket.AF_INET, socket.SOCK_STREAM),
                           "inet-udp": (socket.AF_INET, socket.SOCK_DGRAM),
                           "inet6": (socket.AF_INET6, socket.SOCK_STREAM),
                           "netlink": (socket.AF_NETLINK, socket.SOCK_RAW, 0),
                           "packet": (socket.AF_PACKET, socket.SOCK_RAW, 0)}.items():
            try:
                socket.socket(*args).close()
                out[name] = 0
            except OSError as exc:
                out[name] = exc.errno
        a, b = socket.socketpair()
        a.sendall(b"ok")
        out["unix-pair"] = b.recv(2).decode()
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.close()
        out["unix"] = "ok"
        return out

    assert in_filtered_child(body) == {"inet-tcp": errno.EPERM, "inet-udp": errno.EPERM,
                                       "inet6": errno.EPERM, "netlink": errno.EPERM,
                                       "packet": errno.EPERM, "unix-pair": "ok", "unix": "ok"}


def test_the_loopback_filter_admits_ip_sockets_only():
    """compile_filter(inet=True), for workers whose network namespace holds only their own
    loopback: IP sockets open; netlink, packet, vsock, alg and unknown families do not."""
    import errno
    import socket

    compiled = syscall_filter.compile_filter(inet=True)
    assert compiled.active, compiled.detail
    assert "AF_UNIX and IP" in compiled.detail

    def body():
        out = {}
        for name, family, kind in (("inet", socket.AF_INET, socket.SOCK_STREAM),
                                   ("inet6", socket.AF_INET6, socket.SOCK_DGRAM),
                                   ("unix", socket.AF_UNIX, socket.SOCK_STREAM),
                                   ("netlink", socket.AF_NETLINK, socket.SOCK_RAW),
                                   ("packet", socket.AF_PACKET, socket.SOCK_RAW),
                                   ("vsock", 40, socket.SOCK_STREAM),
                                   ("alg", 38, socket.SOCK_SEQPACKET),
                                   ("unspec", 0, socket.SOCK_STREAM)):
            try:
                socket.socket(family, kind).close()
                out[name] = 0
            except OSError as exc:
                out[name] = exc.errno
        return out

    def filtered():
        compiled.load()
        return body()

    got = in_child(filtered)
    assert got["inet"] == got["inet6"] == got["unix"] == 0, got
    for name in ("netlink", "packet", "vsock", "alg", "unspec"):
        assert got[name] == errno.EPERM, got
