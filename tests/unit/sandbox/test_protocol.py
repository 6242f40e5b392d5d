"""The wire protocol (autograder.sandbox.protocol): one spelling of each op for both sides."""

from __future__ import annotations

import json

import pytest

from autograder.errors import CodecError
from autograder.sandbox import codec, protocol
from autograder.sandbox.codec import Handle
from autograder.sandbox.protocol import Op, Want


def test_ops_and_modes_are_plain_strings_on_the_wire():
    assert {op.value for op in Op} == {"ping", "import", "put", "getattr", "setattr", "getitem",
                                       "setitem", "call", "value", "map", "probe", "probe_ref"}
    assert {w.value for w in Want} == {"value", "handle", "none"}
    wire = protocol.request(Op.CALL, 5, want=Want.HANDLE, target=Handle(1, "f"), args=(1,))
    assert wire["op"] == "call" and type(wire["op"]) is str and type(wire["want"]) is str
    decoded = codec.decode(codec.encode(wire))  # the codec sends only exact str
    json.dumps({k: v for k, v in decoded.items() if k != "target"})
    req = protocol.parse_request(decoded)
    assert req.op is Op.CALL and req.want is Want.HANDLE and req.id == 5
    assert req["args"] == (1,) and req["kwargs"] == {}  # optional fields get defaults


def test_every_op_has_its_fields_listed():
    assert set(protocol.REQUIRED) == set(Op)


def test_request_without_a_required_field_is_refused_on_both_sides():
    with pytest.raises(TypeError, match="name"):
        protocol.request(Op.PROBE, 1)
    with pytest.raises(CodecError, match="without 'name'"):
        protocol.parse_request({"op": "probe", "id": 1})


@pytest.mark.parametrize("message, why", [
    ({"op": "explode", "id": 1}, "unknown operation 'explode'"),
    ({"op": "ping", "id": 1, "want": "all"}, "unknown result mode"),
    ({"op": 3}, "malformed request"),
    ("ping", "malformed request"),
    ({"op": "call", "id": 1, "target": 1, "args": "ab"}, "args is a str"),
    ({"op": "probe", "id": 1, "name": 7}, "name is a int"),
])
def test_malformed_requests_name_the_problem(message, why):
    with pytest.raises(CodecError, match=why):
        protocol.parse_request(message)


def test_replies_answer_only_their_request():
    assert protocol.parse_reply(protocol.ok_reply([1], 9), 9) == (True, [1])
    ok, err = protocol.parse_reply(protocol.error_reply("ValueError", "bad", "tb", 9), 9)
    assert not ok and err == protocol.ErrorInfo("ValueError", "bad", "tb")
    for forged in (protocol.ok_reply(1, 8), {"id": 9}, {"ok": 1}, [9], {"id": True, "ok": 1}):
        with pytest.raises(CodecError):
            protocol.parse_reply(forged, 9)


def test_error_replies_carry_bounded_text_only():
    """A forged error reply (student code can write to the socket) of bytes or a huge
    string must not become hundreds of MB of text kept for every failing test."""
    big = "x" * (10 * protocol.MAX_ERROR_CHARS)
    ok, info = protocol.parse_reply({"id": 7, "error": {"type": "T" * 10_000, "message": big,
                                                        "traceback": big}}, 7)
    assert not ok and len(info.type_name) < protocol.MAX_TYPE_CHARS + 40
    assert len(info.message) < protocol.MAX_ERROR_CHARS + 40 and info.message.endswith("characters]")
    assert len(info.traceback) < protocol.MAX_TRACE_CHARS + 40
    for field in ("type", "message", "traceback"):
        with pytest.raises(CodecError, match=f"{field!r} is not text"):
            protocol.parse_reply({"id": 7, "error": {field: b"\0" * 100}}, 7)
