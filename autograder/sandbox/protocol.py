"""The request/reply messages between the grader's proxy and the worker, for both sides.

Every message is a dict encoded with :mod:`autograder.sandbox.codec` (so only plain data
and handles travel; enums travel as their ``.value`` strings)::

    grader (proxy.StudentProxy)                         worker (worker.Runtime)
    request(Op.CALL, id, target=h, args=.., kwargs=..)  -->  parse_request() -> Request
                                                        <--  ok_reply(value, id)
    parse_reply(message, id) -> value / ErrorInfo       <--  error_reply(info, id)

The proxy builds requests with :func:`request`; the worker checks them with
:func:`parse_request` before dispatching, so an op name or a field is spelled once, here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from autograder.errors import CodecError


class Op(enum.StrEnum):
    """What the worker is asked to do (the ``op`` field)."""

    PING = "ping"
    IMPORT = "import"  # name: a module of the assignment -> handle
    PUT = "put"  # value -> handle
    GETATTR = "getattr"  # target, name
    SETATTR = "setattr"  # target, name, value
    GETITEM = "getitem"  # target, key
    SETITEM = "setitem"  # target, key, value
    CALL = "call"  # target, args, kwargs
    VALUE = "value"  # target: the object itself, by value where the codec allows it
    MAP = "map"  # target, args_list, kwargs: one call per argument tuple
    PROBE = "probe"  # name, args, kwargs: run a probe next to the student's objects
    PROBE_REF = "probe_ref"  # name -> handle to the probe function


class Want(enum.StrEnum):
    """How the result comes back (the ``want`` field; default ``value``)."""

    VALUE = "value"  # by value where the codec can send it, else a handle
    HANDLE = "handle"  # always a handle (the object stays in the worker)
    NONE = "none"  # nothing (the call's side effect is what matters)


# The fields each op needs besides op, id and want; optional ones get these defaults.
REQUIRED: dict[Op, tuple[str, ...]] = {
    Op.PING: (),
    Op.IMPORT: ("name",),
    Op.PUT: ("value",),
    Op.GETATTR: ("target", "name"),
    Op.SETATTR: ("target", "name", "value"),
    Op.GETITEM: ("target", "key"),
    Op.SETITEM: ("target", "key", "value"),
    Op.CALL: ("target",),
    Op.VALUE: ("target",),
    Op.MAP: ("target", "args_list"),
    Op.PROBE: ("name",),
    Op.PROBE_REF: ("name",),
}
OPTIONAL: dict[str, Any] = {"args": (), "kwargs": {}}
_TYPES: dict[str, tuple[type, ...]] = {"name": (str,), "args": (tuple, list),
                                      "kwargs": (dict,), "args_list": (list, tuple)}

OK = "ok"  # reply field holding the value
ERROR = "error"  # reply field holding an ErrorInfo dict


@dataclass(frozen=True)
class Request:
    """A request as the worker sees it, fields checked."""

    op: Op
    id: int | None  # echoed in the reply (the grader checks it)
    want: Want
    fields: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.fields[name] if name in self.fields else OPTIONAL[name]


def request(op: Op, request_id: int, *, want: Want = Want.VALUE, **fields: Any) -> dict[str, Any]:
    """The wire form of a request (the grader side)."""
    missing = [f for f in REQUIRED[op] if f not in fields]
    if missing:
        raise TypeError(f"{op.value} request needs {', '.join(missing)}")
    return {"op": op.value, "id": request_id, "want": want.value, **fields}


def request_id_of(message: Any) -> int | None:
    """The id of a decoded request, if it has one (errors echo it back)."""
    if type(message) is dict and type(message.get("id")) is int:
        return int(message["id"])
    return None


def parse_request(message: Any) -> Request:
    """Check a decoded request (the worker side); CodecError names what is wrong."""
    if type(message) is not dict or type(message.get("op")) is not str:
        raise CodecError("malformed request")
    try:
        op = Op(message["op"])
    except ValueError:
        raise CodecError(f"unknown operation {message['op']!r}") from None
    try:
        want = Want(message.get("want", Want.VALUE.value))
    except ValueError:
        raise CodecError(f"unknown result mode {message.get('want')!r}") from None
    request_id = request_id_of(message)
    fields = {k: v for k, v in message.items() if k not in ("op", "id", "want")}
    for name in REQUIRED[op]:
        if name not in fields:
            raise CodecError(f"{op.value} request without {name!r}")
    for name, kinds in _TYPES.items():
        if name in fields and type(fields[name]) not in kinds:
            raise CodecError(f"{op.value} request: {name} is a {type(fields[name]).__name__}")
    return Request(op, request_id, want, fields)


def ok_reply(value: Any, request_id: int | None) -> dict[str, Any]:
    return {OK: value, "id": request_id}


def error_reply(type_name: str, message: str, traceback: str,
                request_id: int | None) -> dict[str, Any]:
    return {ERROR: {"type": type_name, "message": message, "traceback": traceback},
            "id": request_id}


MAX_TYPE_CHARS = 200  # an exception type's name, as the grader keeps it
MAX_ERROR_CHARS = 8000  # the worker sends at most 4000 (worker.MAX_MESSAGE_CHARS) and notes
MAX_TRACE_CHARS = 16000


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised in the worker, as text (never the exception object)."""

    type_name: str
    message: str
    traceback: str


def parse_reply(message: Any, request_id: int) -> tuple[bool, Any]:
    """``(True, value)`` or ``(False, ErrorInfo)`` for the reply to ``request_id`` (the
    grader side); CodecError for anything else (a forged or stale frame)."""
    # type() first: a forged id could be a handle whose == refuses to compare
    if type(message) is not dict or type(message.get("id")) is not int \
            or message["id"] != request_id:
        raise CodecError("reply does not answer the request")
    if OK in message:
        return True, message[OK]
    err = message.get(ERROR)
    if type(err) is not dict:
        raise CodecError("reply carries neither a value nor an error")
    fields = []
    for key, default, cap in (("type", "Exception", MAX_TYPE_CHARS),
                              ("message", "", MAX_ERROR_CHARS), ("traceback", "", MAX_TRACE_CHARS)):
        value = err.get(key, default)
        # Only text, and bounded here: a forged error of 60 MB of bytes would become
        # 240 MB of str, kept by pytest for every failing test.
        if type(value) is not str:
            raise CodecError(f"error reply field {key!r} is not text")
        fields.append(value if len(value) <= cap else
                      value[:cap] + f"... [{len(value) - cap} more characters]")
    return False, ErrorInfo(*fields)
