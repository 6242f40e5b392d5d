"""The worker's request handler (``autograder.sandbox.worker.Runtime``), exercised in-process.

Requests are built the way the grader builds them (``codec.encode`` with ``Handle``
objects for remote references) and replies decoded with the default ``on_handle``, so
handles come back as ``codec.Handle`` values.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autograder import probes
from autograder.errors import CodecError
from autograder.sandbox import codec
from autograder.sandbox.codec import Handle
from autograder.sandbox.framing import recv_frame, send_frame
from autograder.sandbox.protocol import Op
from autograder.sandbox.worker import MAX_MESSAGE_CHARS, MAX_TRACEBACK_FRAMES, Runtime, serve

MOD = "agtest_calc"  # unlikely to clash with anything importable
HELPER = "agtest_helper"

CALC = f"""
import sys
import numpy as np
import {HELPER}

SCALE = 3
DATA = [1, 2, 3]


def double(x):
    return 2 * x


def add(a, b=10, *, c=0):
    return a + b + c


def pair(x):
    return (np.asarray(x) * 2, object())


def identity(x):
    return x


def np_strings():
    return np.array(["a", "bc"])


def is_same(a, b):
    return a is b


def fail(msg):
    raise ValueError(msg)


def fail_deep(n):
    return {HELPER}.deep(n)


def leave(code):
    sys.exit(code)


def interrupt():
    raise KeyboardInterrupt


class Boom(Exception):
    pass


def custom():
    raise Boom("custom failure")


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no")


def unprintable():
    raise Unprintable()


def recurse(n):
    return recurse(n + 1)


def where(path_suffix):
    raise FileNotFoundError(__file__.rsplit("/", 1)[0] + "/" + path_suffix)


def huge_message():
    raise ValueError("x" * 10_000)


def lots(n):
    return list(range(n))


class Model:
    def __init__(self, w):
        self.w = w

    def predict(self, x):
        return self.w * x
"""

HELPER_SRC = """
def deep(n):
    if n == 0:
        raise ZeroDivisionError("bottom")
    return deep(n - 1)
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / f"{MOD}.py").write_text(CALC)
    (work / f"{HELPER}.py").write_text(HELPER_SRC)
    return work


@pytest.fixture
def make_runtime(workdir: Path):
    made: list[Runtime] = []

    def make(modules=(MOD, HELPER), limits=codec.DEFAULT_LIMITS) -> Runtime:
        rt = Runtime(workdir, list(modules), limits)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def rt(make_runtime) -> Runtime:
    return make_runtime()


def ask(rt: Runtime, **request: Any) -> dict[str, Any]:
    request_id = 1234567
    reply = codec.decode(rt.handle(codec.encode({**request, "id": request_id})))
    assert type(reply) is dict and len(reply) == 2 and reply.pop("id") == request_id
    assert set(reply) <= {"ok", "error"}
    return reply


def ok(rt: Runtime, **request: Any) -> Any:
    reply = ask(rt, **request)
    assert "ok" in reply, reply
    return reply["ok"]


def error(rt: Runtime, **request: Any) -> dict[str, str]:
    reply = ask(rt, **request)
    assert "error" in reply, reply
    err = reply["error"]
    assert set(err) == {"type", "message", "traceback"}
    return err


def module(rt: Runtime) -> Handle:
    h = ok(rt, op="import", name=MOD)
    assert type(h) is Handle and h.type_name == "module"
    return h


def fn(rt: Runtime, name: str) -> Handle:
    h = ok(rt, op="getattr", target=module(rt), name=name)
    assert type(h) is Handle
    return h


# ------------------------------------------------------------------------- imports

def test_ping(rt):
    assert ok(rt, op="ping") == "pong"


def test_import_expected_module(rt):
    h = module(rt)
    assert ok(rt, op="getattr", target=h, name="SCALE") == 3
    assert sys.modules[MOD].__file__ == str(rt.workdir / f"{MOD}.py")


@pytest.mark.parametrize("name", ["os", "sys", "numpy", "autograder.sandbox.worker", "stray",
                                  "sitecustomize", f"{MOD}.x", ""])
def test_import_of_other_names_is_refused(rt, name):
    err = error(rt, op="import", name=name)
    assert err["type"] == "ModuleNotFoundError"
    assert "not a module of this assignment" in err["message"]


def test_stray_files_in_the_workdir_are_not_importable(make_runtime, workdir):
    (workdir / "stray.py").write_text("X = 1\n")
    (workdir / "numpy.py").write_text("raise RuntimeError('shadowed numpy')\n")
    (workdir / MOD).mkdir()  # a package dir with the module's name must not win either
    (workdir / MOD / "__init__.py").write_text("raise RuntimeError('package')\n")
    (workdir / f"{MOD}_user.py").write_text("import stray\n")
    rt = make_runtime(modules=(MOD, HELPER, f"{MOD}_user"))
    assert error(rt, op="import", name="stray")["type"] == "ModuleNotFoundError"
    assert error(rt, op="import", name=f"{MOD}_user")["type"] == "ModuleNotFoundError"
    # the student's own `import numpy` gets the real numpy, and the .py module wins
    module(rt)
    assert sys.modules[MOD].np is np
    assert ok(rt, op="call", target=fn(rt, "double"), args=(np.arange(3),)).tolist() == [0, 2, 4]


def test_module_listed_but_missing(make_runtime, workdir):
    rt = make_runtime(modules=(MOD, HELPER, "agtest_missing"))
    err = error(rt, op="import", name="agtest_missing")
    assert err["type"] == "ModuleNotFoundError"


def test_syntax_error_names_file_and_line(make_runtime, workdir):
    (workdir / f"{MOD}.py").write_text("x = 1\ndef broken(:\n    pass\n")
    rt = make_runtime()
    err = error(rt, op="import", name=MOD)
    assert err["type"] == "SyntaxError"
    assert f"{MOD}.py" in err["message"] and "line 2" in err["message"]
    assert str(workdir) not in err["message"]


def test_exception_at_import_time(make_runtime, workdir):
    (workdir / f"{MOD}.py").write_text("a = 1\nraise RuntimeError('boom at import')\n")
    rt = make_runtime()
    err = error(rt, op="import", name=MOD)
    assert err["type"] == "RuntimeError" and err["message"] == "boom at import"
    assert f'File "{MOD}.py", line 2, in <module>' in err["traceback"]


def test_close_forgets_modules_and_finder(make_runtime):
    rt = make_runtime()
    module(rt)
    assert MOD in sys.modules and rt.finder in sys.meta_path
    rt.close()
    assert MOD not in sys.modules and HELPER not in sys.modules
    assert rt.finder not in sys.meta_path
    assert rt.objects == {}


# ------------------------------------------------------------------------- operations

def test_getattr_value_and_handle(rt):
    m = module(rt)
    assert ok(rt, op="getattr", target=m, name="DATA") == [1, 2, 3]
    h = ok(rt, op="getattr", target=m, name="DATA", want="handle")
    assert type(h) is Handle and h.type_name == "list"
    assert ok(rt, op="getattr", target=m, name="double").type_name == "function"
    assert error(rt, op="getattr", target=m, name="nope")["type"] == "AttributeError"


def test_setattr(rt):
    m = module(rt)
    assert ok(rt, op="setattr", target=m, name="SCALE", value=np.arange(2)) is None
    out = ok(rt, op="getattr", target=m, name="SCALE")
    assert type(out) is np.ndarray and out.tolist() == [0, 1]


def test_getitem_and_setitem_mutate_the_remote_object(rt):
    data = ok(rt, op="getattr", target=module(rt), name="DATA", want="handle")
    assert ok(rt, op="getitem", target=data, key=1) == 2
    assert ok(rt, op="setitem", target=data, key=1, value="two") is None
    assert ok(rt, op="getattr", target=module(rt), name="DATA") == [1, "two", 3]
    assert error(rt, op="getitem", target=data, key=99)["type"] == "IndexError"
    assert ok(rt, op="getitem", target=data, key=0, want="handle").type_name == "int"


def test_call_with_args_and_kwargs(rt):
    add = fn(rt, "add")
    assert ok(rt, op="call", target=add, args=(1,)) == 11
    assert ok(rt, op="call", target=add, args=(1, 2), kwargs={"c": 3}) == 6
    err = error(rt, op="call", target=add, args=(), kwargs={"d": 1})
    assert err["type"] == "TypeError" and "add()" in err["message"]


def test_call_result_modes(rt):
    double = fn(rt, "double")
    assert ok(rt, op="call", target=double, args=(4,), want="none") is None
    h = ok(rt, op="call", target=double, args=(4,), want="handle")
    assert type(h) is Handle and h.type_name == "int"


def test_mixed_result_arrives_element_by_element(rt):
    arr, obj = ok(rt, op="call", target=fn(rt, "pair"), args=([1, 2],))
    assert type(arr) is np.ndarray and arr.tolist() == [2, 4]
    assert type(obj) is Handle and obj.type_name == "object"


def test_objects_and_methods(rt):
    model = ok(rt, op="call", target=fn(rt, "Model"), args=(3.0,))
    assert type(model) is Handle and model.type_name == "Model"
    predict = ok(rt, op="getattr", target=model, name="predict")
    assert type(predict) is Handle
    assert ok(rt, op="call", target=predict, args=(2.0,)) == 6.0
    ok(rt, op="setattr", target=model, name="w", value=-1.0)
    assert ok(rt, op="call", target=predict, args=(2.0,)) == -2.0


def test_handles_of_arrays_name_their_dtype(rt):
    """What the student is told when the grader cannot use a value: an array of strings
    stays in the worker, its handle says which dtype it has."""
    arr = ok(rt, op="call", target=fn(rt, "identity"), args=(["a", "bc"],), want="handle")
    words = ok(rt, op="call", target=fn(rt, "np_strings"), args=())
    assert type(words) is Handle and words.type_name == "ndarray (dtype <U2)"
    assert arr.type_name == "list"


def test_put_keeps_identity_in_the_worker(rt):
    big = ok(rt, op="put", value=np.zeros(1000))
    assert type(big) is Handle and big.type_name == "ndarray (dtype float64)"
    assert ok(rt, op="call", target=fn(rt, "is_same"), args=(big, big)) is True
    out = ok(rt, op="call", target=fn(rt, "identity"), args=(big,))
    assert type(out) is np.ndarray and out.shape == (1000,)


def test_unknown_handle_is_an_error(rt):
    err = error(rt, op="call", target=Handle(999, "function"), args=())
    assert err["type"] == "CodecError" and "999" in err["message"]


def test_probe_and_probe_ref(rt):
    model = ok(rt, op="call", target=fn(rt, "Model"), args=(1.0,))
    assert ok(rt, op="probe", name="type_name", args=(model,)) == "Model"
    ref = ok(rt, op="probe_ref", name="type_name")
    assert type(ref) is Handle and ref.type_name == "function"
    assert ok(rt, op="call", target=ref, args=([],)) == "list"
    assert error(rt, op="probe", name="no_such_probe")["type"] == "KeyError"
    assert set(probes.PROBES) >= {"type_name", "count_parameters"}


@pytest.mark.parametrize("request_", [
    {"op": 3}, {"nop": "x"}, {"op": "explode"}, ["op", "ping"], "ping", None,
])
def test_malformed_requests_are_errors(rt, request_):
    reply = codec.decode(rt.handle(codec.encode(request_)))
    assert reply["error"]["type"] == "CodecError"


@pytest.mark.parametrize("payload", [b"", b"\x00\x00\x00\x05{}", b"garbage" * 10])
def test_undecodable_payload_is_an_error_reply(rt, payload):
    reply = codec.decode(rt.handle(payload))
    assert reply["error"]["type"] == "CodecError"


def test_result_over_the_limits_is_an_error_not_a_crash(make_runtime):
    rt = make_runtime(limits=codec.WireLimits(max_items=100))
    err = error(rt, op="call", target=fn(rt, "lots"), args=(1000,))
    assert err["type"] == "CodecError" and "items" in err["message"]
    assert ok(rt, op="call", target=fn(rt, "lots"), args=(3,)) == [0, 1, 2]


# ------------------------------------------------------------------------- errors

def test_exception_type_message_and_trimmed_traceback(rt):
    err = error(rt, op="call", target=fn(rt, "fail"), args=("bad input",))
    assert err["type"] == "ValueError" and err["message"] == "bad input"
    assert f'File "{MOD}.py", line' in err["traceback"] and "in fail" in err["traceback"]
    assert 'raise ValueError(msg)' in err["traceback"]
    assert "autograder" not in err["traceback"] and str(Path.cwd()) not in err["traceback"]


def test_traceback_spans_student_files_only(rt):
    err = error(rt, op="call", target=fn(rt, "fail_deep"), args=(3,))
    assert err["type"] == "ZeroDivisionError" and err["message"] == "bottom"
    tb = err["traceback"]
    assert f'File "{MOD}.py"' in tb and f'File "{HELPER}.py"' in tb
    files = re.findall(r'File "([^"]*)"', tb)
    assert files and all("/" not in f and f in (f"{MOD}.py", f"{HELPER}.py") for f in files)


def test_traceback_is_capped(rt):
    err = error(rt, op="call", target=fn(rt, "recurse"), args=(0,))
    assert err["type"] == "RecursionError"
    assert 0 < err["traceback"].count('File "') <= MAX_TRACEBACK_FRAMES


def test_exception_subclass_name(rt):
    err = error(rt, op="call", target=fn(rt, "custom"))
    assert err["type"] == "Boom" and err["message"] == "custom failure"


def test_unprintable_exception(rt):
    err = error(rt, op="call", target=fn(rt, "unprintable"))
    assert err["type"] == "Unprintable" and err["message"] == "<unprintable exception>"


def test_workdir_is_removed_from_messages(rt):
    err = error(rt, op="call", target=fn(rt, "where"), args=("data.csv",))
    assert err["type"] == "FileNotFoundError"
    assert err["message"] == "data.csv" and str(rt.workdir) not in err["message"]


def test_long_messages_are_capped(rt):
    err = error(rt, op="call", target=fn(rt, "huge_message"))
    assert len(err["message"]) < MAX_MESSAGE_CHARS + 100
    assert "more characters" in err["message"]


@pytest.mark.parametrize("code", [0, 3, "bye"])
def test_system_exit_is_reported_not_raised(rt, code):
    err = error(rt, op="call", target=fn(rt, "leave"), args=(code,))
    assert err["type"] == "SystemExit"
    assert ok(rt, op="ping") == "pong"  # the runtime keeps serving


def test_keyboard_interrupt_in_student_code_is_reported(rt):
    assert error(rt, op="call", target=fn(rt, "interrupt"))["type"] == "KeyboardInterrupt"


# ------------------------------------------------------------------------- serve loop

def test_serve_answers_frames_until_the_grader_closes(rt):
    grader, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    t = threading.Thread(target=serve, args=(worker, rt), daemon=True)
    t.start()
    try:
        send_frame(grader, codec.encode({"op": "ping", "id": 7}))
        assert codec.decode(recv_frame(grader, 1 << 20, None)) == {"ok": "pong", "id": 7}
        send_frame(grader, codec.encode({"op": "import", "name": MOD}))
        reply = codec.decode(recv_frame(grader, 1 << 20, None))
        assert type(reply["ok"]) is Handle
        send_frame(grader, b"not a message")
        assert "error" in codec.decode(recv_frame(grader, 1 << 20, None))
    finally:
        grader.close()
    t.join(5)
    assert not t.is_alive()
    worker.close()


def test_serve_returns_on_oversized_frame(make_runtime):
    rt = make_runtime(limits=codec.WireLimits(max_bytes=1000))
    grader, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    t = threading.Thread(target=serve, args=(worker, rt), daemon=True)
    t.start()
    send_frame(grader, b"x" * 5000)
    t.join(5)
    assert not t.is_alive()
    grader.close()
    worker.close()



def test_a_tensor_the_worker_cannot_build_is_answered_under_the_requests_id(monkeypatch):
    """The failure comes back as this request's error (naming the fix), not as an
    unanswered frame the grader would blame on the student's code."""
    from autograder.sandbox import protocol as proto
    from autograder.sandbox import worker as worker_mod

    def refuse(spec):
        raise CodecError("torch cannot be imported in the worker; add \"torch\" to preload")

    monkeypatch.setattr(worker_mod, "make_tensor", refuse)
    rt = Runtime(Path("/nonexistent"), [], codec.DEFAULT_LIMITS)
    spec = codec.TensorSpec.of(np.ones(2, np.float32))
    payload = codec.encode(proto.request(Op.PROBE, 41, name="type_name", args=(spec,)))
    reply = codec.decode(rt.handle(payload))
    ok, info = proto.parse_reply(reply, 41)
    assert not ok and "add \"torch\" to preload" in info.message
