"""The grader's view of a submission: the ``student`` fixture and remote handles.

Every call is a request to a worker; results come back through the codec as plain data
or as :class:`RemoteObject` handles. Nothing the worker built is ever evaluated here.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from autograder import probes
from autograder.errors import (
    AuthoringError,
    CodecError,
    StudentError,
    StudentTimeout,
    UnusableValue,
    WorkerDied,
)
from autograder.grading.submission import Submission
from autograder.sandbox import codec
from autograder.sandbox.local import Printed
from autograder.sandbox.protocol import ErrorInfo, Op, Want, parse_reply, request

PUT_LABEL = "value"  # handles of the grader's own data, sent with put()
PLAIN_DATA = ("numbers, strings, numpy arrays of numbers or booleans, and lists, tuples and "
              "dicts of these")

IMPORT_LABEL = "the import of "  # label of a module import, shown to students


def _refuse(need: str) -> Callable[..., Any]:
    def refuse(self: RemoteObject, *args: Any, **kwargs: Any) -> Any:
        raise self._ag_unusable(need)

    refuse.__doc__ = f"The grader cannot use a value that stays in the worker as {need}."
    return refuse


class RemoteObject:
    """An object that lives in the worker. Attribute names starting with ``_ag_`` are ours.

    It is never evaluated here: using it as a number, an array or a truth value raises
    :class:`UnusableValue`, which names what the student's code returned.
    """

    __slots__ = ("_ag_student", "_ag_handle", "_ag_generation", "_ag_label", "_ag_probe")

    def __init__(self, student: StudentProxy, handle: codec.Handle, label: str) -> None:
        object.__setattr__(self, "_ag_student", student)
        object.__setattr__(self, "_ag_handle", handle)
        object.__setattr__(self, "_ag_generation", student._generation)
        object.__setattr__(self, "_ag_label", label)
        object.__setattr__(self, "_ag_probe", None)  # the probe's name for a probe_ref

    def _ag_unusable(self, need: str) -> UnusableValue:
        label, type_name = self._ag_label, self._ag_handle.type_name
        if label.endswith("()"):
            what = f"your code returned a value of type {type_name} from {label[:-2]}"
        else:
            what = f"{label} is a value of type {type_name} of your code"
        return UnusableValue(
            "UnusableValue",
            f"{what}, which the grader cannot use as {need}: it stays in the worker, because "
            f"only plain data comes back from your code ({PLAIN_DATA}). Return one of these, "
            f"e.g. a float or a numpy array of floats", where=label)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # keep copy/pickle/introspection from calling out
        return self._ag_student._getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ag_student.setattr(self, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        student = self._ag_student
        label = student._call_label(self, args)
        return student._request(Op.CALL, {"target": self, "args": args, "kwargs": kwargs},
                                label=label, handle_label=f"{label}()")

    def __getitem__(self, key: Any) -> Any:
        return self._ag_student.getitem(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ag_student.setitem(self, key, value)

    def __repr__(self) -> str:
        return f"<remote {self._ag_handle.type_name} {self._ag_label}>"

    # Python would otherwise fall back to remote obj[0], obj[1], ... without end. Usually a
    # student's value of the wrong type (an array of strings): the message is for them.
    def __iter__(self) -> Any:
        raise self._ag_unusable("a sequence to iterate over (it cannot be iterated here)")

    def __len__(self) -> int:
        raise self._ag_unusable("a sequence to take the length of")

    def __contains__(self, item: Any) -> bool:
        raise self._ag_unusable("a sequence to search")

    # Numbers, arrays, truth values, comparisons: the grader judges only plain data.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, RemoteObject):
            return self is other  # handles can still be looked up in lists and dicts
        raise self._ag_unusable("a value to compare")

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = object.__hash__
    __float__ = __int__ = __index__ = __complex__ = __round__ = _refuse("a number")
    __bool__ = _refuse("a truth value")
    __lt__ = __le__ = __gt__ = __ge__ = _refuse("a number to compare")
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse("a number")
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _refuse("a number")
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _refuse("a number")
    __matmul__ = __rmatmul__ = _refuse("an array")

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise self._ag_unusable("an array")

    # numpy asks these before running a function or ufunc on an argument; np.array_equal
    # would otherwise catch the error from __array__ and quietly answer False.
    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise self._ag_unusable(f"an argument of numpy.{getattr(func, '__name__', 'function')}")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        raise self._ag_unusable(f"an argument of numpy.{getattr(ufunc, '__name__', 'ufunc')}")

    def __format__(self, spec: str) -> str:
        if spec:
            raise self._ag_unusable(f"a number to format with {spec!r}")
        return repr(self)


class StudentProxy:
    """The ``student`` fixture. One worker per test, started at the first request."""

    def __repr__(self) -> str:
        # stable: Hypothesis prints the fixture in failure reports, which must not differ
        # from one grading to the next
        return "<student>"

    def __init__(self, submission: Submission, spawn: Callable[[], Any], call_timeout: float,
                 limits: codec.WireLimits = codec.DEFAULT_LIMITS, *, student_code: bool = True,
                 hung_imports: dict[str, StudentTimeout] | None = None,
                 spawn_clean: Callable[[], Any] | None = None,
                 pause_student: Callable[[], AbstractContextManager[None]] | None = None,
                 torch_in_worker: bool | None = None,
                 worker_cuda: Callable[[], bool] | None = None) -> None:
        self.submission = submission
        # What the grading knows of the worker (None: not known): tensors it cannot build
        # are the suite's mistake, said before anything is sent.
        self.torch_in_worker = torch_in_worker
        self.worker_cuda = worker_cuda
        # The yardstick worker: a uid of its own where the sandbox drops privileges, and the
        # student's processes paused while it is timed (they cannot slow it down).
        self._spawn_clean = spawn_clean or spawn
        self._pause_student = pause_student or contextlib.nullcontext
        # Shared by the tests of one grading: a module whose import ran out of time is not
        # imported again by every later test (55 tests x 10 s for one endless loop).
        self.hung_imports = {} if hung_imports is None else hung_imports
        self.student_code = student_code
        self._clean: StudentProxy | None = None
        self._spawn = spawn
        self.call_timeout = call_timeout
        self.limits = limits
        self._worker: Any = None
        self._generation = 0
        # This worker's imported modules, and the functions and classes looked up on them:
        # one round trip each per test, not one per use (a test's loop calls a function
        # hundreds of times).
        self._modules: dict[str, RemoteObject] = {}
        self._lookups: dict[tuple[int, str], RemoteObject] = {}
        self.protections: list[dict[str, Any]] = []
        self.outputs: list[Printed] = []
        # How the student's exceptions are raised here (gradescope-utils suites: one that
        # assertRaises(ValueError) catches); None: as StudentError.
        self.map_error: Callable[[StudentError], StudentError] | None = None

    # -- plumbing --------------------------------------------------------------------
    def _ensure_worker(self) -> Any:
        if self._worker is None:
            self._worker = self._spawn()
            self._generation += 1
            self._modules.clear()
            self._lookups.clear()
            self.protections = list(self._worker.protections)
        return self._worker

    def _current(self, obj: RemoteObject) -> bool:
        return self._worker is not None and obj._ag_generation == self._generation

    def _getattr(self, obj: RemoteObject, name: str) -> Any:
        key = (id(obj), name)
        known = self._lookups.get(key)
        if known is not None and self._current(known):
            return known
        value = self._request(Op.GETATTR, {"target": obj, "name": name},
                              label=f"{obj._ag_label}.{name}")
        if isinstance(value, RemoteObject) and any(m is obj for m in self._modules.values()):
            self._lookups[key] = value  # by value (numbers, arrays) is always read afresh
        return value

    def _to_handle(self, obj: Any) -> codec.Handle:
        if isinstance(obj, RemoteObject):
            if obj._ag_student is not self or obj._ag_generation != self._generation:
                raise StudentError("StaleHandle", f"{obj!r} belongs to a worker that was replaced")
            return obj._ag_handle
        raise CodecError(
            f"cannot send a {type(obj).__qualname__} to the student's code; send plain data "
            "(numbers, strings, lists, dicts, numpy arrays) or a remote handle")

    def _request(self, op: Op, fields: dict[str, Any], *, label: str, want: Want = Want.VALUE,
                 timeout: float | None = None, handle_label: str | None = None) -> Any:
        worker = self._ensure_worker()
        # A random id the reply must echo: frames that student code writes to the socket
        # cannot pass for the answer to a later request.
        request_id = secrets.randbits(62)
        # The grader's own torch tensors arrive in the worker as tensors (TensorSpec), never
        # quietly as numpy arrays.
        payload = codec.encode(request(op, request_id, want=want, **fields), limits=self.limits,
                               on_opaque=self._to_handle, on_torch=codec.TensorSpec.from_torch)
        reply = worker.request(payload, timeout or self.call_timeout, label)
        if handle_label is None:
            handle_label = f"{label}()" if op is Op.CALL else label
        try:
            # The default on_tensor refuses tensor tags: nothing from the worker becomes torch.
            message = codec.decode(reply, limits=self.limits,
                                   on_handle=lambda h: RemoteObject(self, h, handle_label))
            ok, value = parse_reply(message, request_id)
        except CodecError as exc:
            self.close()
            raise WorkerDied("ProtocolError", f"the worker's reply during {label} was not valid "
                             f"({exc}); did your code write to the harness's socket?") from None
        if ok:
            return value
        err: ErrorInfo = value
        raised = StudentError(err.type_name, err.message, err.traceback, where=label)
        raise raised if self.map_error is None else self.map_error(raised)

    def _probe_table(self) -> dict[str, int | None] | None:
        """The probes the worker has (generic and the course's), as the zygote reported
        them before any worker ran; None for a worker that does not say (a test double)."""
        table = getattr(self._ensure_worker(), "probes", None)
        return table if isinstance(table, dict) and table else None

    def _check_probe(self, name: str) -> None:
        table = self._probe_table()
        if type(name) is not str or (table is not None and name not in table):
            known = ", ".join(sorted(table or ())) or "none"
            raise AuthoringError(
                f"student.probe({name!r}): no such probe; known probes: {known}. Course probes "
                "are declared in assignment.toml ([assignment] probes = \"probes.py\") and "
                "registered with @autograder.probes.probe(\"name\")")

    def close(self, output_limit: int = 64 * 1024) -> None:
        """End the worker; keep the first ``output_limit`` bytes of what it printed."""
        if self._clean is not None:
            self._clean.close()
            self._clean = None
        if self._worker is not None:
            self.outputs.append(self._worker.output(output_limit))
            self._worker.close()
            self._worker = None
        self._modules.clear()
        self._lookups.clear()

    # -- the API hidden tests use ---------------------------------------------------------
    def module(self, name: str) -> RemoteObject:
        """Import the submission's module ``name`` in the worker; a handle to it.

        ``name`` must be one of the assignment's modules (``[assignment] modules``): anything
        else (``"torch"``, a typo) is the suite's mistake, an :class:`AuthoringError`."""
        if not self.student_code:
            raise RuntimeError("this worker is kept free of student code (yardsticks only)")
        if name not in self.submission.modules and name not in self.submission.problems:
            raise AuthoringError(
                f"student.module({name!r}): {name!r} is not a module of this assignment "
                f"(modules = {list(self.submission.modules)} in assignment.toml); libraries "
                "such as torch are used through the student's objects or a probe")
        problem = self.submission.module_problem(name)
        if problem is not None:
            raise StudentError(*problem)
        known = self._modules.get(name)
        if known is not None and self._current(known):
            return known
        label = f"{IMPORT_LABEL}{name}"
        hung = self.hung_imports.get(name)
        if hung is not None:
            raise StudentTimeout(hung.type_name, f"{hung.message} (in an earlier test; not "
                                 "tried again)", hung.student_traceback, where=label,
                                 import_of=name)
        try:
            module = self._request(Op.IMPORT, {"name": name}, label=label, handle_label=name)
        except StudentError as exc:
            exc.import_of = name  # the plugin summarizes import failures once
            if isinstance(exc, StudentTimeout):
                self.hung_imports[name] = exc
            raise
        if isinstance(module, RemoteObject):
            self._modules[name] = module
        return module

    def put(self, value: Any) -> RemoteObject:
        """Store ``value`` in the worker once; a handle to pass to later calls."""
        return self._request(Op.PUT, {"value": value}, label=PUT_LABEL)

    def tensor(self, array: Any, dtype: Any = None, *, requires_grad: bool = False,
               device: str = "cpu") -> codec.TensorSpec:
        """A value that arrives in the worker as a ``torch.Tensor`` (an argument of any
        call, by value): ``array`` (array-like) converted to ``dtype`` (a torch dtype or its
        name, e.g. "float32"; default: the array's dtype), a leaf with ``requires_grad``,
        on ``device`` ("cpu", or "cuda" in a test marked ``gpu``). Nothing is sent yet."""
        try:  # the arguments the test chose: their mistakes are the suite's
            codec.check_tensor_args("float32" if dtype is None else codec.dtype_name(dtype),
                                    requires_grad, device)
        except CodecError as exc:
            raise AuthoringError(f"student.tensor(...): {exc}") from None
        if self.torch_in_worker is False:
            raise AuthoringError('student.tensor(...) needs torch in the worker: add "torch" '
                                 "to [assignment] preload in assignment.toml")
        if device != "cpu" and self.worker_cuda is not None and not self.worker_cuda():
            raise AuthoringError(f"student.tensor(..., device={device!r}) in a test that runs "
                                 "without CUDA: mark it @pytest.mark.gpu")
        try:
            return codec.TensorSpec.of(array, dtype, requires_grad, device)
        except CodecError as exc:  # the array itself, often the student's own value
            raise UnusableValue("UnusableValue", f"this value cannot be sent to your code as "
                                f"a tensor: {exc}", where="student.tensor") from None

    def getattr(self, obj: RemoteObject, name: str, *, by: str = "value") -> Any:
        """``obj.name``; ``by="handle"`` keeps it in the worker even if it is plain data."""
        return self._request(Op.GETATTR, {"target": obj, "name": name}, want=_want(by),
                             label=f"{obj._ag_label}.{name}")

    def setattr(self, obj: RemoteObject, name: str, value: Any) -> None:
        """``obj.name = value`` in the worker."""
        self._lookups.pop((id(obj), name), None)
        self._request(Op.SETATTR, {"target": obj, "name": name, "value": value},
                      label=f"{obj._ag_label}.{name} = ...")

    def getitem(self, obj: RemoteObject, key: Any, *, by: str = "value") -> Any:
        """``obj[key]``; ``by="handle"`` keeps it in the worker."""
        return self._request(Op.GETITEM, {"target": obj, "key": key}, want=_want(by),
                             label=f"{obj._ag_label}[{key!r}]")

    def setitem(self, obj: RemoteObject, key: Any, value: Any) -> None:
        """``obj[key] = value`` in the worker."""
        self._request(Op.SETITEM, {"target": obj, "key": key, "value": value},
                      label=f"{obj._ag_label}[{key!r}] = ...")

    def _call_label(self, fn: RemoteObject, args: tuple[Any, ...] | list[Any]) -> str:
        """What students read for a call of ``fn``: the student's function, also where a
        probe (``setitem_call``) calls it on the grader's behalf."""
        student_fn = self._student_callable(fn._ag_probe, args) if fn._ag_probe else None
        return fn._ag_label if student_fn is None else student_fn

    def call(self, fn: RemoteObject, *args: Any, want: str = "value", **kwargs: Any) -> Any:
        """Call with an explicit result mode: 'value', 'handle' or 'none'."""
        label = self._call_label(fn, args)
        return self._request(Op.CALL, {"target": fn, "args": args, "kwargs": kwargs},
                             want=_want(want), label=label, handle_label=f"{label}()")

    def map(self, fn: RemoteObject, args_list: list[tuple[Any, ...]], *,
            kwargs: dict[str, Any] | None = None, timeout: float | None = None) -> list[Any]:
        """``[fn(*args, **kwargs) for args in args_list]`` in one round trip.

        For many small calls (finite differences): the whole batch shares one timeout
        (the call timeout unless given), and the first exception stops it.
        """
        if not args_list:
            return []
        calls_args = [tuple(a) for a in args_list]
        fields = {"target": fn, "args_list": calls_args, "kwargs": kwargs or {}}
        name = self._call_label(fn, calls_args[0])
        calls = "1 call" if len(args_list) == 1 else f"{len(args_list)} calls"
        result = self._request(Op.MAP, fields, label=f"{name} ({calls})", timeout=timeout,
                               handle_label=f"{name}()")
        return list(result)

    def probe(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run the probe ``name`` (generic, or the course's own) in the student's worker.

        Its result is data from an untrusted process, like any student call. A name the
        worker does not have is an :class:`AuthoringError`, raised before the worker is
        asked."""
        self._check_probe(name)
        return self._request(Op.PROBE, {"name": name, "args": args, "kwargs": kwargs},
                             label=self._probe_label(name, args))

    def probe_ref(self, name: str) -> RemoteObject:
        """A handle to the probe ``name`` in the worker (for :meth:`map`, :meth:`time_call`)."""
        self._check_probe(name)
        ref = self._request(Op.PROBE_REF, {"name": name}, label=name)
        object.__setattr__(ref, "_ag_probe", name)
        return ref

    def time_call(self, fn: RemoteObject, *args: Any, repeat: int = 5, warmup: int = 1,
                  results: list[Any] | None = None, **kwargs: Any) -> list[float]:
        """Wall time of each call, measured here around the whole round trip.

        The arguments travel with each call and the result comes back by value, both inside
        the timed window: pass arrays themselves, not :meth:`put` handles, so the worker
        cannot work on an input before the clock starts, and a lazy result (an array
        subclass that computes when it is converted) pays for its work. ``results=[]``
        collects the timed results (a timed call must also be a correct one).
        """
        fields = {"target": fn, "args": args, "kwargs": kwargs}
        label = self._call_label(fn, args)
        times = []
        for i in range(warmup + repeat):
            start = time.perf_counter()
            value = self._request(Op.CALL, fields, label=label, handle_label=f"{label}()")
            if i >= warmup:
                times.append(time.perf_counter() - start)
                if results is not None:
                    results.append(value)
        return times

    def fetch(self, obj: RemoteObject) -> Any:
        """The value of a remote object, by value where the codec allows it."""
        return self._request(Op.VALUE, {"target": obj}, label=obj._ag_label)

    def time_probe(self, name: str, *args: Any, repeat: int = 5, warmup: int = 1,
                   **kwargs: Any) -> list[float]:
        """Like :meth:`time_call` for the probe ``name`` (arguments and result cross in the
        timed window too, so both sides of a ratio pay the same transfer), run in a second
        worker that never loads student code, so a submission cannot slow its own
        yardstick down."""
        if self._clean is None:
            self._clean = StudentProxy(self.submission, self._spawn_clean, self.call_timeout,
                                       self.limits, student_code=False)
        clean = self._clean
        ref = clean.probe_ref(name)
        with self._pause_student():
            return clean.time_call(ref, *args, repeat=repeat, warmup=warmup, **kwargs)

    def fresh(self) -> None:
        """Replace the worker; handles from the old one become stale."""
        self.close()

    def _student_callable(self, probe: str, args: tuple[Any, ...] | list[Any]) -> str | None:
        """The label of the student function that the probe calls for the grader, if any."""
        table = self._probe_table() or {}
        index = table[probe] if probe in table else probes.STUDENT_CALLABLE.get(probe)
        if index is not None and index < len(args) and isinstance(args[index], RemoteObject):
            return str(args[index]._ag_label)
        return None

    def _probe_label(self, name: str, args: tuple[Any, ...] | list[Any]) -> str:
        """A probe's label names the student's code it runs: the function it calls for the
        grader (``setitem_call``), else the student object it works on."""
        student_fn = self._student_callable(name, args)
        if student_fn is not None:
            return student_fn
        objects = [a._ag_label for a in args
                   if isinstance(a, RemoteObject) and a._ag_label != PUT_LABEL]
        return f"{name}({objects[0]})" if objects else f"probe {name}"


def _want(by: str) -> Want:
    try:
        return Want(by)
    except ValueError:
        raise ValueError(f"by/want={by!r}: use one of {', '.join(w.value for w in Want)}") from None
