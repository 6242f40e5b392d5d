"""Worker side of the proxy: imports student modules and executes the grader's requests.

Runs inside the sandboxed worker process (or in the grader process with
``--isolation none``). Everything it returns goes through the codec; objects that are not
plain data stay in ``self.objects`` and travel as handles.
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import select
import signal
import socket
import sys
import traceback
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autograder import probes
from autograder.errors import CodecError
from autograder.sandbox import codec
from autograder.sandbox.framing import PeerClosed, recv_frame, send_frame
from autograder.sandbox.protocol import (
    Op,
    Want,
    error_reply,
    ok_reply,
    parse_request,
    request_id_of,
)

MAX_MESSAGE_CHARS = 4000
MAX_TRACEBACK_FRAMES = 12


class SubmissionFinder(importlib.abc.MetaPathFinder):
    """Resolves exactly the assignment's module names to files in the work directory.

    The work directory is never put on sys.path, so stray files in a submission
    (numpy.py, sitecustomize.py, helpers) can never be imported.
    """

    def __init__(self, workdir: Path, names: Sequence[str]) -> None:
        self.workdir = workdir
        self.names = frozenset(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        file = self.workdir / f"{fullname}.py"
        if not file.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, file)


def make_tensor(spec: codec.TensorSpec) -> Any:
    """The worker's side of the codec's tensor tag: a real ``torch.Tensor``."""
    try:
        import torch
    except ImportError as exc:
        raise CodecError("the grader sent a tensor (student.tensor) but torch cannot be "
                         f"imported in the worker ({exc}); add \"torch\" to [assignment] "
                         "preload in assignment.toml") from None
    if spec.device != "cpu" and not torch.cuda.is_available():
        raise CodecError(f"the grader sent a tensor for device {spec.device!r}, but this worker "
                         "has no CUDA; mark the test @pytest.mark.gpu so that it runs only "
                         "where CUDA works")
    tensor = torch.from_numpy(spec.array).to(dtype=getattr(torch, spec.dtype), device=spec.device)
    return tensor.requires_grad_(True) if spec.requires_grad else tensor


class Runtime:
    def __init__(self, workdir: Path, modules: Sequence[str], limits: codec.WireLimits,
                 probe_set: probes.ProbeSet | None = None) -> None:
        self.workdir = workdir
        self.modules = tuple(modules)
        self.limits = limits
        # The generic probes, plus the course's where the zygote (or LocalWorker) loaded them.
        self.probes = probe_set or probes.generic()
        self.objects: dict[int, Any] = {}
        self.finder = SubmissionFinder(workdir, modules)
        sys.meta_path.insert(0, self.finder)
        # Set in a per-submission template: what each module's one import raised, raised
        # again (not re-executed) when a test forked from it imports the module.
        self.failed_imports: dict[str, BaseException] = {}
        self.stack_fd: int | None = None  # the faulthandler's pipe (a forked test's own)
        self.ready_message = b""  # what a forked test worker says first (the zygote's READY)

    def close(self) -> None:
        """Forget the student's modules (matters only when running in-process)."""
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        for name in self.finder.names:
            sys.modules.pop(name, None)
        self.objects.clear()

    # -- object table -------------------------------------------------------------
    def _register(self, obj: Any) -> codec.Handle:
        key = len(self.objects) + 1
        self.objects[key] = obj
        return codec.Handle(key, _type_name(obj))

    # -- requests -----------------------------------------------------------------
    def handle(self, payload: bytes | bytearray) -> bytes:
        request_id = None
        unknown: list[int] = []

        def resolve(handle: codec.Handle) -> Any:
            if handle.id not in self.objects:
                unknown.append(handle.id)  # reported once the request id is known
            return self.objects.get(handle.id)

        failed: list[BaseException] = []

        def build(spec: codec.TensorSpec) -> Any:
            try:
                return make_tensor(spec)
            except Exception as exc:  # noqa: BLE001 - raised once the request id is known
                failed.append(exc)
                return None

        try:
            message = codec.decode(payload, limits=self.limits, on_handle=resolve,
                                   on_tensor=build)
            request_id = request_id_of(message)
            if unknown:
                raise CodecError(f"unknown handle {unknown[0]}")
            if failed:
                raise failed[0]
            result = self._dispatch(message)
        except BaseException as exc:  # noqa: BLE001 - SystemExit from student code included
            return self._error(exc, request_id)
        try:
            return codec.encode(ok_reply(result, request_id), limits=self.limits,
                                on_opaque=self._register)
        except CodecError as exc:
            return self._error(CodecError(f"the value your code returned cannot be sent to the "
                                          f"grader: {exc}"), request_id)
        except BaseException as exc:  # noqa: BLE001
            return self._error(exc, request_id)

    def _dispatch(self, message: Any) -> Any:
        req = parse_request(message)
        op, want = req.op, req.want
        if op is Op.PING:
            return "pong"
        if op is Op.IMPORT:
            name = req["name"]
            if name not in self.modules:
                raise ModuleNotFoundError(f"{name!r} is not a module of this assignment")
            if name in self.failed_imports:
                raise self.failed_imports[name]
            return self._register(importlib.import_module(name))
        if op is Op.PUT:
            return self._register(req["value"])
        if op is Op.GETATTR:
            value = getattr(req["target"], req["name"])
        elif op is Op.SETATTR:
            setattr(req["target"], req["name"], req["value"])
            return None
        elif op is Op.GETITEM:
            value = req["target"][req["key"]]
        elif op is Op.SETITEM:
            req["target"][req["key"]] = req["value"]
            return None
        elif op is Op.CALL:
            target = req["target"]
            try:
                value = target(*req["args"], **req["kwargs"])
            except TypeError as exc:
                if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                    # Raised by the call itself (wrong signature): point at the definition.
                    exc.add_note(self._definition(target))
                raise
        elif op is Op.VALUE:
            value = req["target"]
        elif op is Op.MAP:
            target, kwargs = req["target"], req["kwargs"]
            value = [target(*args, **kwargs) for args in req["args_list"]]
        elif op is Op.PROBE:
            value = self.probes.functions[req["name"]](*req["args"], **req["kwargs"])
        elif op is Op.PROBE_REF:
            value = self.probes.functions[req["name"]]
            want = Want.HANDLE
        else:  # parse_request knows every Op; a new one must be handled here
            raise CodecError(f"operation {op.value!r} is not implemented by this worker")
        if want is Want.HANDLE:
            return self._register(value)
        if want is Want.NONE:
            return None
        return value

    def _definition(self, target: Any) -> str:
        fn: Any = target
        if isinstance(target, type):
            fn = fn.__init__
        code = getattr(getattr(fn, "__func__", fn), "__code__", None)
        if code is None or not str(code.co_filename).startswith(str(self.workdir)):
            return "check the function's signature against the assignment's README"
        name = str(code.co_filename)[len(str(self.workdir)) + 1:]
        return f"defined in {name}, line {code.co_firstlineno}; check its signature against the README"

    def _error(self, exc: BaseException, request_id: int | None) -> bytes:
        notes = [n for n in getattr(exc, "__notes__", ()) if type(n) is str]
        info = {
            "type": _safe(lambda: type(exc).__qualname__, "Exception")[:200],
            "message": self._clean(_safe(lambda: "\n".join([str(exc), *notes]), "<unprintable exception>")),
            "traceback": self._student_traceback(exc),
        }
        try:
            return codec.encode(error_reply(info["type"], info["message"], info["traceback"],
                                            request_id), limits=self.limits)
        except BaseException:  # noqa: BLE001
            return codec.encode(error_reply("Exception", "<error>", "", request_id))

    def _clean(self, text: str) -> str:
        text = text.replace(str(self.workdir) + "/", "")
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS] + f"... [{len(text) - MAX_MESSAGE_CHARS} more characters]"
        return text

    def _student_traceback(self, exc: BaseException) -> str:
        """Only frames in the student's files: the harness's own frames are noise to them."""
        try:
            root = str(self.workdir) + "/"
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(root)]
            frames = frames[-MAX_TRACEBACK_FRAMES:]
            lines = [
                f'  File "{f.filename[len(root):]}", line {f.lineno}, in {f.name}\n'
                + (f"    {f.line}\n" if f.line else "")
                for f in frames
            ]
            return self._clean("".join(lines))
        except BaseException:  # noqa: BLE001
            return ""


def _type_name(obj: Any) -> str:
    """The handle's type name, shown to the student when the grader cannot use the value:
    ``Model``, ``ndarray (dtype <U5)`` for an array the codec refused for its dtype."""
    name = type(obj).__qualname__
    if not isinstance(name, str):
        return "?"
    if isinstance(obj, np.ndarray | np.generic):
        return f"{name} (dtype {_safe(lambda: str(obj.dtype), '?')})"
    return name


def _safe(fn: Any, default: str) -> str:
    try:
        value = fn()
        return value if type(value) is str else default
    except BaseException:  # noqa: BLE001
        return default


# The grader's first frame to a worker that is to become the submission's template.
BECOME_TEMPLATE = b"autograder-become-template"


def serve(sock: socket.socket, runtime: Runtime) -> None:
    """Answer requests until the grader closes the socket."""
    while True:
        try:
            payload = recv_frame(sock, runtime.limits.max_bytes)
        except (PeerClosed, OSError, CodecError):
            return
        if payload == BECOME_TEMPLATE and not runtime.objects:
            serve_template(sock, runtime)
            return
        reply = runtime.handle(payload)
        for stream in (sys.stdout, sys.stderr):  # student prints reach the grader's capture file
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - student code may have replaced the streams
                pass
        send_frame(sock, reply)


def _import_all(runtime: Runtime) -> dict[str, str | None]:
    """Every module of the submission, imported once (student code: module bodies, notebook
    cells); what failed is kept for the tests, which raise it again."""
    outcome: dict[str, str | None] = {}
    for name in runtime.modules:
        if not runtime.finder.find_spec(name):
            outcome[name] = None  # not submitted: each test that asks says so
            continue
        try:
            importlib.import_module(name)
            outcome[name] = None
        except Exception as exc:  # noqa: BLE001 - raised again in each test that imports it
            runtime.failed_imports[name] = exc
            sys.modules.pop(name, None)
            outcome[name] = _safe(lambda exc=exc: type(exc).__qualname__, "Exception")
        except BaseException:  # noqa: BLE001 - sys.exit at import: no template, tests as before
            os._exit(0)
    torch = sys.modules.get("torch")
    if torch is not None and _safe(lambda: str(torch.cuda.is_initialized()), "True") != "False":
        os._exit(0)  # CUDA started at import does not survive a fork: no template
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    return outcome


def serve_template(sock: socket.socket, runtime: Runtime) -> None:
    """The per-submission template: import the submission once, then fork one worker per
    test on the grader's request. A fork keeps the sandbox (namespaces, uid, filter,
    limits) and gets a copy of the imported modules; copy-on-write keeps tests apart.
    Requests carry three descriptors (the test's socket, output pipe and stack pipe);
    replies are JSON frames: {"forked": pid} and {"exited": pid, "status": s}."""
    send_frame(sock, json.dumps({"imports": _import_all(runtime)}).encode())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # What the template holds now is shared by every fork: kept out of the collector, whose
    # passes would otherwise write to (and so copy) each of those pages in every test.
    gc.freeze()
    while True:
        _report_exits(sock)
        ready, _, _ = select.select([sock], [], [], 0.05)
        if not ready:
            continue
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 64, 3)
        except OSError:
            return
        if not msg:
            return
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            _become_test_worker(sock, runtime, fds)
        for fd in fds:
            os.close(fd)
        send_frame(sock, json.dumps({"forked": pid}).encode())


def _report_exits(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        send_frame(sock, json.dumps({"exited": pid, "status": status}).encode())


def _become_test_worker(template: socket.socket, runtime: Runtime, fds: list[int]) -> None:
    try:
        template.close()
        os.setsid()  # its own group: the grader ends it and what it starts, not the template
        wsock = socket.socket(fileno=fds[0])
        os.dup2(fds[1], 1)
        os.dup2(fds[1], 2)
        os.close(fds[1])
        if runtime.stack_fd is not None:
            os.dup2(fds[2], runtime.stack_fd)
        os.close(fds[2])
        send_frame(wsock, runtime.ready_message)
    except BaseException:  # noqa: BLE001
        os._exit(70)
    serve(wsock, runtime)
    os._exit(0)
