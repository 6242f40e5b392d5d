"""The zygote: imports numpy/torch once, then forks one sandboxed worker per request.

Started by the grader as ``python -I -m autograder.sandbox.zygote FD MODULE...`` with one end of
a control socket. Per request it receives the worker's socket, a status socket, the
output pipe and a stack pipe as file descriptors, and forks a monitor which enters fresh
namespaces and forks the worker (pid 1 of its own pid namespace, so all its descendants
die with it). The monitor, which never runs student code, tells the grader the worker's
pid, its work folder as the worker sees it, the protections in force and finally the
worker's exit status. The worker registers faulthandler for STACK_SIGNAL on the stack
pipe: on a timeout the grader asks for the student's stack before it kills the worker.
"""

from __future__ import annotations

import faulthandler
import gc
import importlib
import importlib.abc
import json
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from autograder import probes
from autograder.errors import CourseError
from autograder.sandbox import codec, import_guard, landlock, namespaces
from autograder.sandbox.framing import send_frame
from autograder.sandbox.syscall_filter import NETWORK_DETAIL, CompiledFilter, compile_filter

READY = b"autograder-worker-ready"
# Asks a worker for its stack. Should student code unregister the handler, the worker
# ignores it (init of a pid namespace) or ends (no namespace): it is killed next anyway.
STACK_SIGNAL = signal.SIGUSR1


def _send_json(sock: socket.socket, obj: object) -> None:
    """One JSON document per message (the sockets are SOCK_SEQPACKET)."""
    try:
        sock.send(json.dumps(obj).encode())
    except OSError:
        pass


class _HarnessBlocker(importlib.abc.MetaPathFinder):
    """Submissions may not import the harness (its probes, its socket helpers)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "autograder" or fullname.startswith("autograder."):
            raise ImportError(f"{fullname} is the grading harness; submissions cannot import it")
        return None


def _hide_harness() -> None:
    # Everything the worker needs is imported by now and referenced directly.
    for name in [n for n in sys.modules if n == "autograder" or n.startswith("autograder.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, _HarnessBlocker())


def _breakpoint_in_sandbox(*args: object, **kwargs: object) -> None:
    """A leftover breakpoint() goes on, with a note in the test's output (the worker has no
    terminal: pdb would read end-of-file and raise BdbQuit, an error with no message)."""
    caller = sys._getframe(1)
    print(f"[autograder] breakpoint() skipped ({os.path.basename(caller.f_code.co_filename)}, "
          f"line {caller.f_lineno}): the sandbox has no terminal; to stop there, run "
          "`autograder check` with --isolation none", file=sys.stderr, flush=True)


def _worker(spec: namespaces.SandboxSpec, wsock: socket.socket, out_fd: int, stack_fd: int,
            limits: codec.WireLimits, workdir: str, private_proc: bool,
            syscalls: CompiledFilter, ruleset: int | None) -> None:
    from autograder.sandbox.worker import Runtime, serve

    try:
        namespaces.enter_worker(spec, out_fd, workdir, private_proc, gpu=namespaces.cuda_capable())
        # Where the student's code is stuck when a call times out (read by the grader;
        # informational only, so a worker without it still grades).
        try:
            faulthandler.register(STACK_SIGNAL, file=stack_fd, all_threads=True, chain=False)
        except (OSError, RuntimeError, ValueError):
            pass
        if ruleset is not None:  # before the filter: it may refuse nothing Landlock needs
            landlock.apply(ruleset)
        syscalls.load()
        keep = {0, 1, 2, wsock.fileno(), stack_fd}
        for fd in os.listdir("/proc/self/fd"):
            if int(fd) not in keep:
                try:
                    os.close(int(fd))
                except OSError:
                    pass
        import_guard.install(spec.forbidden_imports)  # also drops preloaded forbidden modules
        runtime = Runtime(Path(workdir), spec.modules, limits, _probe_set)
        runtime.stack_fd, runtime.ready_message = stack_fd, READY
        sys.breakpointhook = _breakpoint_in_sandbox
        _hide_harness()
        # Before any student code runs: after this, whatever ends the worker is the student's.
        send_frame(wsock, READY)
    except BaseException as exc:  # noqa: BLE001 - report and die, never run student code
        os.write(2, f"[autograder] sandbox setup failed: {exc!r}\n".encode())
        os._exit(namespaces.SETUP_FAILED)
    serve(wsock, runtime)
    os._exit(0)


def _monitor(spec: namespaces.SandboxSpec, wsock: socket.socket, ssock: socket.socket, out_fd: int,
             stack_fd: int, limits: codec.WireLimits, syscalls: CompiledFilter,
             ruleset: Ruleset) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    namespaces.become_subreaper()
    protections, workdir = namespaces.enter_namespaces(spec)
    private_proc = any(p.name == "private-proc" and p.active for p in protections)
    if any(p.name == "loopback" and p.active for p in protections):
        if _inet is not None and _inet.active:
            syscalls = _inet  # IP sockets reach nothing but the worker's own loopback
        else:  # the strict filter stays: IP sockets refused, and the loopback says so
            protections = [namespaces.Protection("loopback", False, "the seccomp filter that "
                                                 "admits IP sockets is unavailable here")
                           if p.name == "loopback" else p for p in protections]
    pid = os.fork()
    if pid == 0:
        ssock.close()
        _worker(spec, wsock, out_fd, stack_fd, limits, workdir, private_proc, syscalls,
                ruleset.fd)
    wsock.close()
    os.close(out_fd)
    os.close(stack_fd)
    planned = namespaces.worker_protections(spec, gpu=namespaces.cuda_capable()) + [
        namespaces.Protection("syscall-filter", syscalls.active, syscalls.detail),
        namespaces.Protection("landlock-scopes", _scopes.active, _scopes.detail)]
    by_name = {p.name: p for p in protections}
    if not by_name["network"].active and syscalls.active and syscalls is _inet:
        # IP sockets admitted without a namespace: only in a grading container with no network.
        by_name["network"] = namespaces.Protection(
            "network", True, "the grading container has no network, only its own loopback; "
            "the seccomp filter refuses every socket but AF_UNIX and IP")
    elif not by_name["network"].active and syscalls.active:
        # No network namespace (Docker, Gradescope): the filter's socket rule closes it.
        by_name["network"] = namespaces.Protection(
            "network", True, NETWORK_DETAIL + ("; abstract UNIX sockets scoped by Landlock"
                                               if _scopes.active else "; abstract UNIX sockets "
                                               "of the host stay reachable (Landlock scopes "
                                               "need Linux 6.12)"))
    if ruleset.files:
        # No mount namespace: Landlock gives the allow-list, the read-only host and the
        # forbidden packages' absence instead.
        by_name["host-folders"] = namespaces.Protection("host-folders", True, ruleset.detail)
        by_name["read-only-filesystems"] = namespaces.Protection(
            "read-only-filesystems", True, "Landlock: writes only in "
            + ", ".join(dict.fromkeys([*namespaces.SHARED_WRITABLE, *spec.private_tmp])))
        if "forbidden-packages" in by_name:
            by_name["forbidden-packages"] = namespaces.Protection(
                "forbidden-packages", True, "Landlock: unreadable, and refused by the import "
                "hook: " + ", ".join(spec.forbidden_paths))
    elif ruleset.files is False:
        by_name["host-folders"] = namespaces.Protection("host-folders", False, ruleset.detail)
    # The grading's own uid, where the worker has no private /tmp or pid namespace to
    # take along what it leaves: the monitor watches and cleans up by that uid.
    own_uid = spec.uid if spec.uid is not None and os.getuid() == 0 else None
    shared_tmp_uid = own_uid if not by_name["private-tmp"].active else None
    if shared_tmp_uid is not None:
        by_name["tmp-cleanup"] = namespaces.Protection(
            "tmp-cleanup", True, "no private /tmp: what the worker's uid leaves in "
            + ", ".join(namespaces.SHARED_WRITABLE) + " is removed after it")
    _send_json(ssock, {"pid": pid, "workdir": workdir,
                       "protections": namespaces.protections_to_json(
                           list(by_name.values()) + planned)})
    shared = [*namespaces.SHARED_WRITABLE, *spec.private_tmp]
    reason = ""
    if shared_tmp_uid is not None:
        status, reason = _wait_watching_tmp(pid, shared_tmp_uid, shared,
                                            TMP_BUDGET_FILES * spec.limits.file_size_mb)
    else:
        _, status = os.waitpid(pid, 0)
    if own_uid is not None and not by_name["pid-namespace"].active:
        # Whatever runs as this grading's uid now was started by the worker (the grader
        # waits for this monitor before it starts the next worker of the uid).
        namespaces.kill_uid(own_uid)
    _kill_orphans()
    if shared_tmp_uid is not None:
        namespaces.remove_leftovers(shared_tmp_uid, shared)
    _send_json(ssock, {"status": status, "reason": reason})
    os._exit(0)


# Without a private /tmp (a tmpfs of file_size_mb each for /tmp and /dev/shm), what the
# worker's uid keeps in the shared temp folders, in all, is bounded by this many files'
# worth; polled, so a burst between two looks can pass it briefly.
TMP_BUDGET_FILES = 2
TMP_POLL = 0.2


def _wait_watching_tmp(pid: int, uid: int, folders: list[str], budget_mb: int) -> tuple[int, str]:
    """waitpid, meanwhile stopping the worker once its uid's files in the shared temp
    folders pass ``budget_mb`` (disk, or RAM for /dev/shm, outside any rlimit)."""
    reason = ""
    try:  # wakes at the worker's end, not at the next poll
        exited = select.poll()
        exited.register(os.pidfd_open(pid), select.POLLIN)
    except OSError:
        exited = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, reason
        owned = None if reason else namespaces.owned_by(uid, folders)
        # Not a walk cut short: other gradings' files can fill a folder, and a flood of
        # this worker's own is caught by the file count (each folder its own entry budget).
        if owned is not None and (owned.bytes > budget_mb * 2**20
                                  or owned.files > namespaces.MAX_FILES_OWNED):
            what = (f"more than {budget_mb} MB" if owned.bytes > budget_mb * 2**20
                    else f"more than {namespaces.MAX_FILES_OWNED} files")
            reason = (f"your code wrote {what} to the shared temp folders (/tmp, /dev/shm...); "
                      "the worker was stopped")
            for target in (pid, -pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass
        if exited is not None:
            exited.poll(TMP_POLL * 1000)
        else:
            time.sleep(TMP_POLL)


def _kill_orphans() -> None:
    """Processes the worker left (daemons) were reparented to us, the subreaper: end them.
    With a pid namespace the kernel already did; without one (no root) this is the cleanup."""
    me = str(os.getpid())
    for _ in range(50):
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[1] == me:
                            children.append(int(entry))
                except (OSError, IndexError):
                    continue
        if not children:
            return
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


# The probes every worker gets: the generic ones and the course's (set once, in main()).
_probe_set: probes.ProbeSet | None = None
_scopes = landlock.Scopes(False, "not checked yet")  # set once in main()
# Landlock rulesets built by the zygote (root, before any fork), one per set of paths.
@dataclass(frozen=True)
class Ruleset:
    """A worker's Landlock ruleset (scopes; without a mount namespace also files) and
    whether its filesystem part stands in for the mount namespace (None: not asked)."""

    fd: int | None
    files: bool | None = None
    detail: str = ""


_rulesets: dict[landlock.FsRules | None, Ruleset] = {}


def _ruleset_for(spec: namespaces.SandboxSpec) -> Ruleset:
    """Built once per set of paths (root, before any fork): scopes always; without a
    mount namespace also the host allow-list, read-only folders but the shared temp ones,
    and the forbidden packages out of reach."""
    fs = None
    if not spec.namespaces and spec.uid is not None and os.getuid() == 0:
        workers = os.path.dirname(spec.workdir.rstrip("/"))
        fs = landlock.FsRules(
            read=tuple(dict.fromkeys([*(f"/{n}" for n in namespaces.SYSTEM_FOLDERS
                                         if n not in ("tmp", "dev")),
                                      *map(str, namespaces.interpreter_paths()), workers])),
            devices=("/dev",),
            write=tuple(dict.fromkeys([*namespaces.SHARED_WRITABLE, *spec.private_tmp])),
            hidden=tuple(spec.forbidden_paths))
    if fs not in _rulesets:
        if fs is None or _scopes.abi < 1:
            _rulesets[fs] = Ruleset(_scopes.ruleset(None))
        else:
            try:
                _rulesets[fs] = Ruleset(_scopes.ruleset(fs), True, (
                    f"Landlock: of the host only the system folders ({', '.join(fs.read[:4])}"
                    "...), the interpreter and the workers' folder are readable"))
            except OSError as exc:  # the scopes still apply
                _rulesets[fs] = Ruleset(_scopes.ruleset(None), False,
                                        f"Landlock rules could not be built: {exc}")
    return _rulesets[fs]


# The filter for workers with a loopback of their own: built in the zygote at its start
# (checking it forks a child, which in a monitor's fresh pid namespace would be its init
# and end the namespace with it).
_inet: CompiledFilter | None = None


def main(argv: list[str]) -> None:
    global _probe_set
    control = socket.socket(fileno=int(argv[0]))
    os.environ.pop("GLIBC_TUNABLES", None)  # this process's malloc only (pool.MALLOC_TUNABLES)
    for name in argv[1:]:
        importlib.import_module(name)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    # The grader's first message: the course's probe module (a path, kept off the command
    # line), imported here, as root and before any fork, so no student code precedes it.
    setup = json.loads(control.recv(1 << 16) or b"{}")
    try:
        _probe_set = (probes.load_course_probes(Path(setup["probes"])) if setup.get("probes")
                      else probes.generic())
    except CourseError as exc:
        _send_json(control, {"error": str(exc)})
        return
    # Import what the worker needs now, so a worker that cannot read the harness still works.
    from autograder.sandbox import worker  # noqa: F401
    syscalls = compile_filter().checked()  # once: each worker only loads it
    global _inet
    _inet = compile_filter(inet=True).checked()  # for workers with a loopback of their own
    global _scopes
    _scopes = landlock.scopes()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped automatically
    gc.freeze()  # shared by every fork: kept out of the collector's passes (and so uncopied)
    _send_json(control, {"ready": True, "probes": _probe_set.table()})
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(control, 1 << 20, 4)
        except OSError:  # the grader went away (maybe before it needed any worker)
            return
        if not msg:
            return
        request = json.loads(msg)
        spec = namespaces.SandboxSpec.from_json(request["spec"])
        limits = codec.WireLimits(**request["limits"])
        wsock = socket.socket(fileno=fds[0])
        ssock = socket.socket(fileno=fds[1])
        ruleset = _ruleset_for(spec)
        if os.fork() == 0:
            control.close()
            _monitor(spec, wsock, ssock, fds[2], fds[3], limits, syscalls, ruleset)
        wsock.close()
        ssock.close()
        os.close(fds[2])
        os.close(fds[3])


if __name__ == "__main__":
    main(sys.argv[1:])
