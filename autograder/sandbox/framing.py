"""Length-prefixed frames over a stream socket, with a deadline and a size cap.

Every proxy call is two frames, so the syscall count matters: one sendmsg for header and
payload, one recv that usually brings a whole small frame, and socket timeouts changed
only when the deadline needs it.
"""

from __future__ import annotations

import socket
import struct
import time

from autograder.errors import CodecError

_HEADER = struct.Struct(">Q")
_INITIAL = 1 << 20


class PeerClosed(EOFError):
    """The other side closed the connection (for the grader: the worker died)."""


def _set_deadline(sock: socket.socket, deadline: float | None) -> None:
    if deadline is None:
        if sock.gettimeout() is not None:
            sock.settimeout(None)
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    sock.settimeout(remaining)


def send_frame(sock: socket.socket, payload: bytes, deadline: float | None = None) -> None:
    """Send one frame; TimeoutError if the peer does not drain it before ``deadline``."""
    _set_deadline(sock, deadline)
    header = _HEADER.pack(len(payload))
    try:
        sent = sock.sendmsg([header, payload])
        total = len(header) + len(payload)
        if sent < total:  # large frames: finish with sendall on what is left
            rest = memoryview(header + payload if sent < len(header) else payload)
            offset = sent if sent < len(header) else sent - len(header)
            while offset < len(rest):
                _set_deadline(sock, deadline)
                offset += sock.send(rest[offset:])
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise PeerClosed from exc


def _recv_into(sock: socket.socket, view: memoryview, deadline: float | None) -> int:
    _set_deadline(sock, deadline)
    try:
        k = sock.recv_into(view)
    except ConnectionResetError as exc:
        raise PeerClosed from exc
    if k == 0:
        raise PeerClosed
    return k


def recv_frame(sock: socket.socket, max_bytes: int, deadline: float | None = None) -> bytearray:
    """Read one frame; TimeoutError past ``deadline`` (a time.monotonic() value).

    Reads at most the frame's own bytes, so a following frame is never consumed.
    """
    head = bytearray(_HEADER.size)
    got = 0
    while got < _HEADER.size:
        got += _recv_into(sock, memoryview(head)[got:], deadline)
    (size,) = _HEADER.unpack(head)
    if size > max_bytes:
        raise CodecError(f"incoming message of {size} bytes exceeds the {max_bytes}-byte limit "
                         "(the assignment's message_mb limit)")
    # Grow with the data actually received: an announced size costs nothing by itself.
    buf = bytearray(min(size, _INITIAL))
    got = 0
    while got < size:
        if got == len(buf):
            buf.extend(bytes(min(len(buf), size - len(buf))))
        with memoryview(buf) as view:
            got += _recv_into(sock, view[got:], deadline)
    return buf
