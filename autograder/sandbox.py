"""The worker's sandbox: namespaces, hidden paths, rlimits, scrubbed env, privilege drop.

Python 3.11 has no os.unshare and no mount(), so both go through libc with ctypes.
Every step records whether it took effect; the list travels to the grader, which reports
it (``extra_data`` of results.json, ``autograder check``), so nothing degrades silently.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import stat
import sys
import sysconfig
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class SandboxSpec:
    """What one worker gets; built by the grader, sent to the zygote as JSON."""

    workdir: str
    modules: list[str]
    hide: list[str] = field(default_factory=list)
    memory_mb: int = 2048
    cpu_seconds: int = 120
    processes: int = 64
    open_files: int = 256
    file_size_mb: int = 64
    threads: int = 1
    uid: int | None = None  # None: keep the current user
    gid: int | None = None
    namespaces: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Protection:
    name: str
    active: bool
    detail: str = ""


def _unshare(flags: int) -> str | None:
    if _libc.unshare(flags) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def _mount(source: bytes, target: bytes, fstype: bytes | None, flags: int, data: bytes | None) -> str | None:
    if _libc.mount(source, target, fstype, flags, data) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def enter_namespaces(spec: SandboxSpec) -> list[Protection]:
    """In the monitor process, before forking the worker: new pid, net and mount namespaces."""
    out: list[Protection] = []
    if not spec.namespaces:
        why = "needs root"
        return [Protection(n, False, why) for n in ("network", "pid-namespace", "hidden-paths")]
    err = _unshare(CLONE_NEWNET)
    out.append(Protection("network", err is None, err or "fresh network namespace, no interfaces up"))
    err = _unshare(CLONE_NEWPID)
    out.append(Protection("pid-namespace", err is None, err or "all worker processes die with it"))
    err = _unshare(CLONE_NEWNS)
    if err is None:
        err = _mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    if err is None:
        hidden = []
        for path in spec.hide:
            if os.path.isdir(path):
                e = _mount(b"tmpfs", path.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"size=4k,mode=0555")
                if e:
                    err = f"{path}: {e}"
                    break
                hidden.append(path)
        detail = err or ("hidden: " + ", ".join(hidden) if hidden else "nothing to hide")
        out.append(Protection("hidden-paths", err is None, detail))
    else:
        out.append(Protection("hidden-paths", False, f"no mount namespace: {err}"))
    return out


def _set_limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _address_space_in_use() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def enter_worker(spec: SandboxSpec, out_fd: int) -> list[Protection]:
    """In the worker, before any student code: limits, env, cwd, privilege drop."""
    out: list[Protection] = []
    os.setsid()
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # die with the monitor
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(devnull)
    os.close(out_fd)

    mb = 1024 * 1024
    # Address space on top of what the preloaded interpreter already maps (torch maps a lot).
    _set_limit(resource.RLIMIT_AS, _address_space_in_use() + spec.memory_mb * mb)
    _set_limit(resource.RLIMIT_CPU, spec.cpu_seconds)
    _set_limit(resource.RLIMIT_NOFILE, spec.open_files)
    _set_limit(resource.RLIMIT_FSIZE, spec.file_size_mb * mb)
    _set_limit(resource.RLIMIT_CORE, 0)
    out.append(Protection("rlimits", True, f"memory {spec.memory_mb} MB, cpu {spec.cpu_seconds} s, "
                          f"files {spec.open_files}, file size {spec.file_size_mb} MB"))

    home = spec.workdir
    os.environ.clear()
    os.environ.update({
        "PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": str(spec.threads), "MKL_NUM_THREADS": str(spec.threads),
        "OPENBLAS_NUM_THREADS": str(spec.threads), "WANDB_MODE": "offline",
    })
    sys.dont_write_bytecode = True
    out.append(Protection("scrubbed-env", True, "minimal PATH/HOME/LANG, no tokens"))
    os.chdir(spec.workdir)

    if spec.uid is not None and os.getuid() == 0:
        _set_limit(resource.RLIMIT_NPROC, spec.processes)
        os.setgroups([])
        os.setgid(spec.gid if spec.gid is not None else spec.uid)
        os.setuid(spec.uid)
        out.append(Protection("unprivileged-user", True, f"uid {spec.uid}, process limit {spec.processes}"))
    else:
        # RLIMIT_NPROC counts every process of the user: only safe for a dedicated uid.
        out.append(Protection("unprivileged-user", False, "needs root"))
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    return out


# -- checks made by the grader before it starts the zygote --------------------------------

def readable_by_others(path: Path) -> bool:
    """True if a user with no special rights can reach and read ``path``."""
    path = path.resolve()
    try:
        for parent in reversed(path.parents):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        mode = os.stat(path).st_mode
    except OSError:
        return False
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & need == need


def interpreter_paths() -> list[Path]:
    paths = {Path(sys.executable), Path(sysconfig.get_paths()["stdlib"]),
             Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"]),
             Path(__file__).parent}
    return sorted(paths)


def privilege_drop_blocker() -> str | None:
    """Why the worker cannot run as an unprivileged user, or None if it can."""
    if os.getuid() != 0:
        return "needs root"
    for p in interpreter_paths():
        if not readable_by_others(p):
            return (f"{p} is not readable by other users, so an unprivileged worker could not "
                    "import Python; install the harness in a venv made from a system Python "
                    "(e.g. /usr/bin/python3.11 -m venv)")
    return None


def unprivileged_ids() -> tuple[int, int]:
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def protections_to_json(items: list[Protection]) -> list[dict[str, Any]]:
    return [asdict(p) for p in items]
