"""Length-prefixed frames over a socketpair: boundaries, size cap, deadlines, closed peers."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from autograder.errors import CodecError
from autograder.sandbox.framing import PeerClosed, recv_frame, send_frame

MB = 1024 * 1024


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield a, b
    a.close()
    b.close()


def in_thread(fn, *args):
    """Run ``fn`` in a thread; returns a joiner that re-raises its exception."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout=10):
        t.join(timeout)
        assert not t.is_alive(), "thread did not finish"
        if "error" in box:
            raise box["error"]
        return box.get("value")

    return join


@pytest.mark.parametrize("size", [0, 1, 7, 65_536, 3 * MB])
def test_frame_round_trip(pair, size):
    a, b = pair
    payload = bytes(i % 251 for i in range(size))
    join = in_thread(send_frame, a, payload, time.monotonic() + 10)
    got = recv_frame(b, max_bytes=4 * MB, deadline=time.monotonic() + 10)
    join()
    assert type(got) is bytearray and got == payload


def test_frames_keep_their_boundaries(pair):
    a, b = pair
    frames = [b"first", b"", b"x" * 1000, b"last"]
    for f in frames:
        send_frame(a, f)
    assert [bytes(recv_frame(b, 10_000)) for _ in frames] == frames


def test_header_is_eight_byte_big_endian_length(pair):
    a, b = pair
    send_frame(a, b"abc")
    b.settimeout(1)
    assert b.recv(100) == struct.pack(">Q", 3) + b"abc"


def test_frames_both_ways_without_deadline(pair):
    a, b = pair
    send_frame(a, b"ping")
    assert recv_frame(b, 100) == b"ping"
    send_frame(b, b"pong")
    assert recv_frame(a, 100) == b"pong"


def test_size_cap_allows_exact_limit(pair):
    a, b = pair
    send_frame(a, b"x" * 1000)
    assert len(recv_frame(b, max_bytes=1000)) == 1000


def test_size_cap_refuses_bigger_frames(pair):
    a, b = pair
    send_frame(a, b"x" * 1001)
    with pytest.raises(CodecError, match="1001"):
        recv_frame(b, max_bytes=1000)


def test_size_cap_is_checked_before_reading_or_allocating(pair):
    """A header claiming 2**60 bytes fails at once: no wait for data, no allocation."""
    a, b = pair
    a.sendall(struct.pack(">Q", 2**60))
    start = time.monotonic()
    with pytest.raises(CodecError):
        recv_frame(b, max_bytes=MB, deadline=time.monotonic() + 5)
    assert time.monotonic() - start < 1


def test_recv_deadline_with_no_data(pair):
    _, b = pair
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        recv_frame(b, 100, deadline=time.monotonic() + 0.2)
    assert 0.15 < time.monotonic() - start < 2


def test_recv_deadline_with_a_partial_frame(pair):
    a, b = pair
    a.sendall(struct.pack(">Q", 100) + b"only part")
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        recv_frame(b, 1000, deadline=time.monotonic() + 0.2)
    assert time.monotonic() - start < 2


def test_recv_deadline_with_a_partial_header(pair):
    a, b = pair
    a.sendall(b"\x00\x00\x00")
    with pytest.raises(TimeoutError):
        recv_frame(b, 1000, deadline=time.monotonic() + 0.1)


def test_recv_deadline_covers_a_slow_trickle(pair):
    """The deadline bounds the whole frame, not each recv: a trickling peer cannot extend it."""
    a, b = pair
    stop = threading.Event()

    def trickle():
        a.sendall(struct.pack(">Q", 1000))
        while not stop.is_set():
            try:
                a.sendall(b"x")
            except OSError:
                return
            time.sleep(0.02)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    start = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            recv_frame(b, 10_000, deadline=time.monotonic() + 0.3)
        assert time.monotonic() - start < 2
    finally:
        stop.set()
        t.join(2)


def test_recv_deadline_in_the_past(pair):
    a, b = pair
    send_frame(a, b"data")
    with pytest.raises(TimeoutError):
        recv_frame(b, 100, deadline=time.monotonic() - 1)


def test_send_deadline_when_the_peer_does_not_read(pair):
    a, _b = pair
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        send_frame(a, b"x" * (16 * MB), deadline=time.monotonic() + 0.3)
    assert time.monotonic() - start < 3


def test_peer_closed_before_anything(pair):
    a, b = pair
    a.close()
    with pytest.raises(PeerClosed):
        recv_frame(b, 100, deadline=time.monotonic() + 5)


def test_peer_closed_mid_header(pair):
    a, b = pair
    a.sendall(b"\x00\x00")
    a.close()
    with pytest.raises(PeerClosed):
        recv_frame(b, 100)


def test_peer_closed_mid_payload(pair):
    a, b = pair
    a.sendall(struct.pack(">Q", 50) + b"half")
    a.close()
    with pytest.raises(PeerClosed):
        recv_frame(b, 100, deadline=time.monotonic() + 5)


def test_peer_closed_while_waiting(pair):
    a, b = pair
    closer = threading.Timer(0.1, a.close)
    closer.start()
    start = time.monotonic()
    with pytest.raises(PeerClosed):
        recv_frame(b, 100, deadline=time.monotonic() + 5)
    assert time.monotonic() - start < 2
    closer.join()


def test_send_to_closed_peer(pair):
    a, b = pair
    b.close()
    with pytest.raises(PeerClosed):
        send_frame(a, b"x" * 100_000)


def test_peer_closed_is_an_eof_error():
    assert issubclass(PeerClosed, EOFError)
