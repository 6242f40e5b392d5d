"""The worker's sandbox: namespaces, hidden paths, rlimits, scrubbed env, privilege drop.

Python 3.11 has no os.unshare and no mount(), so both go through libc with ctypes.
Every step records whether it took effect; the list travels to the grader, which reports
it (``extra_data`` of results.json, ``autograder check``), so nothing degrades silently.
"""

from __future__ import annotations

import collections
import ctypes
import importlib.util
import os
import resource
import shutil
import signal
import stat
import sys
import sysconfig
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder.config import Limits
from autograder.sandbox import forked, permissions

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class SandboxSpec:
    """What one worker gets; built by the grader, sent to the zygote as JSON."""

    workdir: str
    modules: list[str]
    hide: list[str] = field(default_factory=list)
    # The allow-list: entries of / outside SYSTEM_FOLDERS (see host_entries), covered
    # (folders) or masked with /dev/null (files), so copies of solutions anywhere on the
    # host stay unseen.
    cover_top: list[str] = field(default_factory=list)
    mask_files: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)  # the assignment's [limits]
    uid: int | None = None  # None: keep the current user
    gid: int | None = None
    namespaces: bool = True
    namespace_blocker: str = "needs root"  # why namespaces are off, when they are
    # Folders that get a fresh, private tmpfs in the worker (/tmp, /dev/shm, the grader's
    # temp base): nothing the worker writes there outlives it or reaches other gradings.
    private_tmp: list[str] = field(default_factory=lambda: ["/tmp", "/var/tmp", "/dev/shm"])
    # Folders the worker needs (the interpreter, the harness) that a private tmpfs may
    # cover, e.g. a checkout under /tmp: bound back at their own paths.
    keep: list[str] = field(default_factory=list)
    # The assignment's forbidden_imports: refused by an import hook before student code runs
    # and, where there is a mount namespace, their files hidden (forbidden_paths).
    forbidden_imports: list[str] = field(default_factory=list)
    forbidden_paths: list[str] = field(default_factory=list)
    # The assignment's [environment]: variables the worker gets besides the harness's own.
    env: dict[str, str] = field(default_factory=dict)
    # The assignment's [sandbox] loopback: a server in the worker (wandb's service, a
    # Streamlit app) gets a loopback of its own, in its own network namespace only.
    loopback: bool = False
    # The assignment's [sandbox] browser: memory bounded as written memory, not address
    # space (Chromium reserves terabytes of it at its start).
    browser: bool = False
    # Set where no network namespace can be made but the grader runs in a grading container
    # without network (`grade --image`): its loopback is the container's own, so a worker
    # that needs one ([sandbox] loopback) may use it.
    container_loopback: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxSpec:
        return cls(**{**data, "limits": Limits(**data["limits"])})


@dataclass
class Protection:
    name: str
    active: bool
    detail: str = ""


def _unshare(flags: int) -> str | None:
    if _libc.unshare(flags) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def _loopback_up() -> str | None:
    """Bring up ``lo`` of the new network namespace (root, in the monitor)."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("16sH14s", b"lo", 0, b"")
            flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, req)[:18])[1]
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))
    except OSError as exc:
        return f"the loopback could not be brought up ({exc.strerror})"
    return None


def _mount(source: bytes, target: bytes, fstype: bytes | None, flags: int, data: bytes | None) -> str | None:
    if _libc.mount(source, target, fstype, flags, data) != 0:
        return os.strerror(ctypes.get_errno())
    return None


CONTAINER_LOOPBACK = ("the grading container's own loopback: the container has no network "
                      "(docker --network none) and grades one submission")
# Set by `grade --image` on the grader inside its container (autograder.grading.container).
CONTAINER_ENV = "AUTOGRADER_NETWORKLESS_CONTAINER"


def networkless_container(devices: str = "/proc/net/dev") -> bool:
    """True where the grader runs in a grading container without network: the flag that
    `grade --image` sets, and checked, since a flag alone is not proof: no interface but lo."""
    if os.environ.get(CONTAINER_ENV) != "1":
        return False
    try:
        with open(devices) as f:
            names = {ln.split(":", 1)[0].strip() for ln in f.readlines()[2:] if ":" in ln}
    except OSError:
        return False
    return names == {"lo"}


INNER_WORKDIR = "/tmp/work"
# What the worker sees of the host besides the interpreter and its own folders.
SYSTEM_FOLDERS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev",
                  "proc", "sys", "tmp")
SETUP_FAILED = 70  # exit code of a worker whose sandbox could not be set up


def enter_namespaces(spec: SandboxSpec) -> tuple[list[Protection], str]:
    """In the monitor, before forking the worker: new pid, net and mount namespaces,
    hidden paths, private temp folders. Returns the protections and the worker's folder
    as the worker will see it."""
    if not spec.namespaces:
        names = ("network", "pid-namespace", "ipc-namespace", "read-only-filesystems", "hidden-paths",
                 "host-folders", "private-tmp", "private-proc")
        off = [Protection(n, False, spec.namespace_blocker) for n in names]
        if spec.loopback and spec.container_loopback:
            off.append(Protection("loopback", True, CONTAINER_LOOPBACK))
        elif spec.loopback:
            off.append(Protection("loopback", False, f"{spec.namespace_blocker}: no private "
                                  "loopback, so IP sockets stay refused (the host's loopback is "
                                  "never opened to a worker)"))
        if spec.forbidden_paths:
            off.append(Protection("forbidden-packages", False, f"{spec.namespace_blocker}; the "
                                  "import hook alone refuses them"))
        return off, spec.workdir
    out: list[Protection] = []
    err = _unshare(CLONE_NEWNET)
    if err is None and spec.loopback:
        lo_err = _loopback_up()
        out.append(Protection("network", True, "fresh network namespace, no interfaces up"
                              if lo_err else "fresh network namespace, only its own loopback up"))
        out.append(Protection("loopback", lo_err is None, lo_err or (
            "a loopback of the worker's own (127.0.0.1, ::1): nothing else shares it")))
    else:
        out.append(Protection("network", err is None,
                              err or "fresh network namespace, no interfaces up"))
        if spec.loopback:
            out.append(Protection("loopback", False, f"no network namespace ({err}): "
                                  "IP sockets stay refused, also on loopback"))
    err = _unshare(CLONE_NEWPID)
    out.append(Protection("pid-namespace", err is None, err or "all worker processes die with it"))
    err = _unshare(CLONE_NEWIPC)
    out.append(Protection("ipc-namespace", err is None,
                          err or "System V IPC and message queues die with the worker"))
    err = _unshare(CLONE_NEWNS)
    if err is None:
        err = _mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    if err is not None:
        for name in ("read-only-filesystems", "hidden-paths", "host-folders", "private-tmp",
                     "private-proc"):
            out.append(Protection(name, False, f"no mount namespace: {err}"))
        return out, spec.workdir
    # Opened before anything is covered: the work folder and the interpreter may sit
    # under a covered folder; they are bind-mounted back through these fds.
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY)
           for path in dict.fromkeys([spec.workdir, *spec.keep]) if os.path.isdir(path)}
    try:
        out.append(_read_only_filesystems())
        tmp_ok = "/tmp" in spec.private_tmp and os.path.isdir("/tmp")
        workdir = INNER_WORKDIR if tmp_ok else spec.workdir
        keep = {p: fd for p, fd in fds.items() if p != spec.workdir or not tmp_ok}
        out.append(_cover_all(spec.hide, keep, read_only=True, name="hidden-paths", size="4k"))
        out.append(_allow_list(spec, keep))
        private = _cover_all(spec.private_tmp, keep, read_only=False, name="private-tmp",
                             size=f"{spec.limits.file_size_mb}m")
        if tmp_ok:
            os.mkdir(INNER_WORKDIR, 0o755)
            _bind(fds[spec.workdir], INNER_WORKDIR)
        for path in spec.keep:  # the interpreter and harness stay read-only
            if path in fds:
                _mount(b"none", path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        # Last, once every folder the worker sees is in place: the import hook lives in
        # the student's own process, an empty folder does not.
        forbidden = _hide_forbidden(spec.forbidden_paths)
    finally:
        for fd in fds.values():
            os.close(fd)
    out.append(private if tmp_ok else Protection("private-tmp", False, "/tmp is not a folder"))
    if forbidden is not None:
        out.append(forbidden)
    pid_ns = out[1].active
    out.append(Protection("private-proc", pid_ns, "/proc shows only the worker's processes"
                          if pid_ns else "needs the pid namespace"))
    return out, workdir


def _hide_forbidden(paths: list[str]) -> Protection | None:
    """The assignment's forbidden packages (their folders, or a module's file) emptied."""
    if not paths:
        return None
    for path in paths:
        if os.path.isdir(path):
            e = _mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY,
                       b"size=4k,mode=0555")
        else:
            e = _mount(b"/dev/null", path.encode(), None, MS_BIND, None)
        if e:
            raise OSError(f"cannot hide the forbidden package at {path}: {e}")
    return Protection("forbidden-packages", True, "not importable, their files hidden: "
                      + ", ".join(paths))


def package_paths(names: list[str]) -> list[str]:
    """Where the forbidden packages lie (a package's folder, a module's file), found
    without importing them; names this interpreter does not have need no hiding."""
    out: list[str] = []
    for name in names:
        top, *rest = name.split(".")
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        roots = list(spec.submodule_search_locations or [])
        if not rest:
            out += roots if roots else ([spec.origin] if spec.origin and
                                        os.path.isfile(spec.origin) else [])
            continue
        for root in roots:
            base = os.path.join(root, *rest)
            if os.path.isdir(base):
                out.append(base)
            elif os.path.isfile(base + ".py"):
                out.append(base + ".py")
    return sorted(dict.fromkeys(os.path.realpath(p) for p in out))


def _read_only_filesystems() -> Protection:
    """Every mount read-only for the worker, its own folder included: it writes only in its
    private tmpfs (/tmp, /dev/shm; $TMPDIR and $HOME point there), and no world-writable
    corner of the host, such as /run/lock, survives it."""
    done = 0
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        target, options = fields[4].replace("\\040", " "), fields[5].split(",")
        if target.startswith(("/proc", "/sys")) or "ro" in options:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        flags |= (MS_NOSUID if "nosuid" in options else 0) | (MS_NODEV if "nodev" in options else 0)
        flags |= MS_NOEXEC if "noexec" in options else 0
        if _mount(b"none", target.encode(), None, flags, None) is None:
            done += 1
    return Protection("read-only-filesystems", True, f"{done} mounts read-only")


def _cover_all(paths: list[str], keep: dict[str, int], *, read_only: bool, name: str,
               size: str) -> Protection:
    """An empty tmpfs on each folder; kept folders below one are bound back first."""
    covered = []
    for path in dict.fromkeys(paths):
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        opts = f"size={size},mode={'0555' if read_only else '1777'}".encode()
        e = _mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts)
        if e:  # a half-covered tree could hide what the worker needs: stop (fail closed)
            raise OSError(f"cannot mount a tmpfs on {path}: {e}")
        prefix = path.rstrip("/") + "/"
        for kept, fd in keep.items():
            if kept.startswith(prefix):
                _bind(fd, kept)
        if read_only:
            e = _mount(b"none", path.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
            if e:
                raise OSError(f"cannot make {path} read-only: {e}")
        covered.append(path)
    verb = "hidden" if read_only else "fresh tmpfs"
    return Protection(name, True, f"{verb}: " + ", ".join(covered) if covered else "nothing to cover")


def _allow_list(spec: SandboxSpec, keep: dict[str, int]) -> Protection:
    _cover_all(spec.cover_top, keep, read_only=True, name="host-folders", size="4k")
    for path in spec.mask_files:
        e = _mount(b"/dev/null", path.encode(), None, MS_BIND, None)
        if e is None:
            e = _mount(b"none", path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        if e:
            raise OSError(f"cannot mask {path}: {e}")
    visible = ", ".join(f"/{n}" for n in SYSTEM_FOLDERS if os.path.lexists(f"/{n}"))
    hidden = ", ".join(spec.cover_top + spec.mask_files) or "nothing"
    return Protection("host-folders", True, f"only {visible} and the interpreter are visible; "
                      f"covered: {hidden}")


def host_entries() -> tuple[list[str], list[str]]:
    """Folders and files at / outside the allow-list (SYSTEM_FOLDERS). An interpreter
    outside it (a Python under /opt/conda, a venv under /work) is bound back at its own
    path (``keep``, see interpreter_paths), not its whole top-level folder; symlinks at /
    (bin -> usr/bin) lead into what is allowed anyway."""
    allowed = set(SYSTEM_FOLDERS)
    folders, files = [], []
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        if entry.is_symlink() or entry.name in allowed:
            continue
        if entry.is_dir():
            folders.append(entry.path)
        elif entry.is_file():
            files.append(entry.path)
    return folders, files


def _bind(fd: int, path: str) -> None:
    """Make the folder behind ``fd`` visible at ``path`` (again)."""
    try:
        if os.path.samestat(os.stat(path), os.fstat(fd)):
            return
    except FileNotFoundError:
        pass
    os.makedirs(path, mode=0o755, exist_ok=True)
    e = _mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND, None)
    if e:
        raise OSError(f"cannot bind {path} back into the sandbox: {e}")


def namespaces_blocker() -> str | None:
    """Why the monitor could not enter the worker's namespaces here, or None if it can:
    tried once in a forked child, since Docker and Gradescope refuse them to root (no
    CAP_SYS_ADMIN, a seccomp profile that refuses unshare)."""
    if os.getuid() != 0:
        return "needs root"

    def enter() -> None:
        err = _unshare(CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNS)
        if err is not None:
            raise OSError(err)
        if _mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) is not None:
            raise OSError("mounts refused in a new mount namespace")

    why = forked.try_in_child(enter)
    if why is None:
        return None
    return (f"the platform refuses new namespaces ({why}): no "
            "CAP_SYS_ADMIN or a seccomp profile that refuses unshare, as under `docker run` "
            "and on Gradescope")


# Folders everybody may write to: without a private /tmp (no mount namespace), what a
# worker leaves there is removed after it by uid (each grading has a uid of its own).
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")
# Entries looked at per shared folder: each folder its own budget, so a flood of files in
# one (/dev/shm) cannot hide another (/tmp) from the cleanup or the disk budget.
MAX_SCAN_PER_FOLDER = 20_000
MAX_FILES_OWNED = 10_000  # files a worker may keep in the shared folders


@dataclass
class Owned:
    """What ``uid`` keeps in the shared folders: entries at their top, bytes, files, and
    whether a folder held more than could be looked at (treat as over any budget)."""

    paths: list[str] = field(default_factory=list)
    bytes: int = 0
    files: int = 0
    truncated: bool = False


def owned_by(uid: int, folders: list[str], per_folder: int = MAX_SCAN_PER_FOLDER) -> Owned:
    """Walk each of ``folders`` (links not followed, another shared folder below entered,
    each with its own entry budget) for what ``uid`` owns."""
    out = Owned()
    queue = collections.deque(f for f in dict.fromkeys(folders)
                              if os.path.isdir(f) and not os.path.islink(f))
    entered = 0
    while queue and entered < 64:  # shared folders within shared folders, bounded
        folder = queue.popleft()
        entered += 1
        try:
            scan = os.scandir(folder)
        except OSError:
            continue
        with scan:
            for n, entry in enumerate(scan):
                if n >= per_folder:
                    out.truncated = True
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_uid == uid:
                    out.paths.append(entry.path)
                    if stat.S_ISDIR(st.st_mode):
                        b, f, t = _tree_size(entry.path)
                        out.bytes, out.files = out.bytes + b, out.files + f
                        out.truncated |= t
                    else:
                        out.bytes += st.st_blocks * 512
                        out.files += 1
                elif stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
                    queue.append(entry.path)  # another shared folder (e.g. /tmp/.X11-unix)
    out.truncated |= bool(queue)
    return out


def _tree_size(root: str) -> tuple[int, int, bool]:
    total = files = 0
    for n, (folder, _dirs, names) in enumerate(os.walk(root)):
        if n >= MAX_SCAN_PER_FOLDER or files >= MAX_SCAN_PER_FOLDER:
            return total, files, True
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
                files += 1
            except OSError:
                pass
    return total, files, False


def remove_leftovers(uid: int, folders: list[str]) -> int:
    """Remove what ``uid`` created in ``folders``; a truncated walk is walked again (what
    is removed no longer counts). Returns how many entries went. Only for a grading's own
    uid, never the user's."""
    if uid == os.getuid() or uid == 0:
        return 0
    removed = 0
    for _ in range(32):
        # Once per worker, so each folder whole (up to a million entries): files of other
        # gradings must not hide this one's.
        owned = owned_by(uid, folders, per_folder=1_000_000)
        for path in owned.paths:
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
                removed += 1
            except OSError:
                pass
        if not owned.truncated or not owned.paths:
            break
    return removed


def processes_of(uid: int) -> list[int]:
    """Live (not zombie) processes of ``uid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                text = f.read()
        except OSError:
            continue
        state = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("State:")), "")
        uids = next((ln.split()[1:] for ln in text.splitlines() if ln.startswith("Uid:")), [])
        if state != "Z" and str(uid) in uids:
            out.append(int(entry))
    return out


def kill_uid(uid: int, rounds: int = 100) -> int:
    """End every process of a grading's uid: all stopped first (a chain that forks anew as
    links die cannot regrow), then killed, until none is left. Without a pid namespace this
    is what ends what a worker started; the caller must not start another worker of the
    uid meanwhile. Returns the processes still alive (0 when done)."""
    if uid in (0, os.getuid()) or os.getuid() != 0:
        return 0
    for _ in range(rounds):
        if not processes_of(uid):
            return 0
        signal_uid(uid, signal.SIGSTOP)
        signal_uid(uid, signal.SIGKILL)
    return len(processes_of(uid))


def become_subreaper() -> None:
    """Orphans of the worker's processes are reparented to the caller (the monitor)."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def mount_private_proc() -> None:
    """In the worker (pid 1 of its namespace, still root): a /proc of its own processes."""
    e = _mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    if e:
        raise OSError(f"cannot mount a private /proc: {e}")


def _set_limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _memory_in_use(which: int) -> int:
    """What the preloaded interpreter already uses of the limited kind (torch maps a lot):
    the limit is on top of it."""
    if which == resource.RLIMIT_DATA:
        with open("/proc/self/status") as f:
            line = next((ln for ln in f if ln.startswith("VmData:")), "VmData: 0 kB")
        return int(line.split()[1]) * 1024
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def cuda_capable() -> bool:
    """A worker that may use CUDA: torch with CUDA preloaded and an NVIDIA device node.
    Asked without initialising CUDA (the zygote forks; CUDA must start in each worker)."""
    torch = sys.modules.get("torch")
    return (torch is not None and getattr(getattr(torch, "version", None), "cuda", None) is not None
            and os.path.exists("/dev/nvidiactl"))


def memory_limit(gpu: bool, browser: bool = False) -> tuple[int, str]:
    """Which rlimit bounds the worker's memory. CUDA and Chromium reserve terabytes of
    address space at their start, so such a worker cannot have RLIMIT_AS; RLIMIT_DATA
    counts what it writes (heap, anonymous maps: numpy and torch CPU tensors), not those
    reservations. Each process of the worker gets the limit, as with RLIMIT_AS."""
    if gpu:
        return resource.RLIMIT_DATA, "data segment (GPU worker: CUDA reserves address space)"
    if browser:
        return resource.RLIMIT_DATA, ("data segment ([sandbox] browser: Chromium reserves "
                                      "address space)")
    return resource.RLIMIT_AS, "address space"


def worker_protections(spec: SandboxSpec, gpu: bool = False) -> list[Protection]:
    """What :func:`enter_worker` will do, reported by the monitor (which runs no student code)."""
    dropped = spec.uid is not None and os.getuid() == 0
    lim = spec.limits
    kind = memory_limit(gpu, spec.browser)[1]
    return [
        Protection("rlimits", True, f"memory {lim.memory_mb} MB ({kind}), cpu {lim.cpu_seconds} s, "
                   f"open files {lim.open_files}, file size {lim.file_size_mb} MB"
                   + (f", processes {lim.processes}" if dropped else "")),
        Protection("scrubbed-env", True, "minimal PATH/HOME/LANG, no tokens"),
        Protection("process-cleanup", True, "processes left behind (daemons) are killed "
                   "when the worker ends"),
        Protection("unprivileged-user", dropped,
                   f"uid {spec.uid}, this grading's own" if dropped else "needs root"),
    ]


def enter_worker(spec: SandboxSpec, out_fd: int, workdir: str, private_proc: bool,
                 gpu: bool = False) -> None:
    """In the worker, before any student code: limits, env, cwd, privilege drop."""
    os.setsid()
    if private_proc:
        mount_private_proc()
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # die with the monitor
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(devnull)
    os.close(out_fd)

    mb = 1024 * 1024
    lim = spec.limits
    # Address space on top of what the preloaded interpreter already maps (torch maps a lot).
    which, _ = memory_limit(gpu, spec.browser)
    _set_limit(which, _memory_in_use(which) + lim.memory_mb * mb)
    _set_limit(resource.RLIMIT_CPU, lim.cpu_seconds)
    _set_limit(resource.RLIMIT_NOFILE, lim.open_files)
    _set_limit(resource.RLIMIT_FSIZE, lim.file_size_mb * mb)
    _set_limit(resource.RLIMIT_CORE, 0)

    # Files it creates are its own: in shared temp folders (no mount namespace) another
    # grading's worker must not read them.
    os.umask(0o077)
    # The submission's folder is read-only under the mount namespace, where /tmp is a
    # private tmpfs (bounded by file_size_mb): scratch files (checkpoints, caches) go there.
    home = "/tmp" if workdir == INNER_WORKDIR else workdir
    uid = spec.uid if os.getuid() == 0 else None  # the uid the worker drops to, if any
    gid = spec.gid if spec.gid is not None else uid
    if workdir != INNER_WORKDIR and uid is not None:
        # No mount namespace, and the work folder is not the worker's to write: a home of its
        # own in the shared /tmp (0700; removed after it with the rest of its uid's files).
        # Tools that do not fall back from an unwritable TMPDIR (Chromium, node) need it.
        home = tempfile.mkdtemp(prefix="autograder-home-", dir="/tmp")
        os.chown(home, uid, gid if gid is not None else uid)
    os.environ.clear()
    # The course's variables first: the harness's own win (the config refuses such names).
    os.environ.update(spec.env)
    os.environ.update({
        "PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": str(lim.threads), "MKL_NUM_THREADS": str(lim.threads),
        "OPENBLAS_NUM_THREADS": str(lim.threads),
    })
    sys.dont_write_bytecode = True
    os.chdir(workdir)

    if uid is not None:
        _set_limit(resource.RLIMIT_NPROC, lim.processes)
        os.setgroups([])
        os.setgid(gid if gid is not None else uid)
        os.setuid(uid)
    # (RLIMIT_NPROC counts every process of the user: set only for the grading's own uid.)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


# -- checks made by the grader before it starts the zygote --------------------------------

def readable_by_others(path: Path) -> bool:
    """True if a user with no special rights can reach and read ``path`` (links resolved)."""
    return permissions.reachable_by_others(path.resolve(), fully=True)


def interpreter_paths() -> list[Path]:
    """What the worker must reach to run Python: the interpreter, its prefixes (a venv's
    and the base one, which holds libpython or a conda's MKL) and the harness."""
    paths = {Path(sys.executable), Path(sysconfig.get_paths()["stdlib"]),
             Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"]),
             Path(sys.prefix), Path(sys.exec_prefix), Path(sys.base_prefix),
             Path(sys.base_exec_prefix), Path(__file__).parent.parent}
    return sorted(paths)


def privilege_drop_blocker(*, bound_back: list[Path] | None = None) -> str | None:
    """Why the worker cannot run as an unprivileged user, or None if it can.

    ``bound_back``: folders the worker's mount namespace covers and binds the interpreter
    back into (a checkout in a 0700 folder: the way to it is rebuilt traversable there),
    so below them only the interpreter's own modes count. None: no mount namespace."""
    if os.getuid() != 0:
        return "needs root"
    for p in interpreter_paths():
        p = p.resolve()
        covered = any(c == p or c in p.parents for c in (bound_back or []))
        if covered:
            try:
                mode = os.stat(p).st_mode
            except OSError:
                continue  # a prefix that does not exist is not needed
            need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
            if mode & need == need:
                continue
        elif readable_by_others(p):
            continue
        blocked = next((q for q in reversed(p.parents) if not os.stat(q).st_mode & stat.S_IXOTH),
                       None) if not covered else None
        where = f" (other users cannot enter {blocked})" if blocked else ""
        fix = ("install the harness in a venv made from a system Python where every user can "
               "read it (e.g. /usr/bin/python3.11 -m venv /opt/autograder)")
        if bound_back is None and blocked is not None:
            fix += (f", or let the sandbox bind it into the worker's mount namespace (root with "
                    f"CAP_SYS_ADMIN), or chmod o+x {blocked} and the folders above it")
        return (f"{p} is not readable by other users{where}, so an unprivileged worker could "
                f"not import Python; {fix}")
    return None


def signal_uid(uid: int, sig: int) -> None:
    """Send ``sig`` to every process of ``uid`` (kill(-1) as that uid, in a child of ours):
    how the grader pauses the student's processes while it times a yardstick. Only for a
    grading's own uid, never root's or the grader's."""
    if uid in (0, os.getuid()) or os.getuid() != 0:
        return
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, sig)
        except ProcessLookupError:
            pass  # none left
        except BaseException:  # noqa: BLE001 - reported by the exit code
            code = 1
        os._exit(code)
    os.waitpid(pid, 0)


def protections_to_json(items: list[Protection]) -> list[dict[str, Any]]:
    return [asdict(p) for p in items]
