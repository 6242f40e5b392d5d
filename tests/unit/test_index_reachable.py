"""The wheelhouse skips a package index that does not answer (pip would retry it for every
package, minutes each) and keeps one that answers, even with an HTTP error."""

from __future__ import annotations

import http.server
import socket
import threading

from autograder.packaging.images import index_reachable


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not index_reachable(f"http://127.0.0.1:{port}/simple/", timeout=2)


def test_an_http_error_is_an_answer() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:  # the bare handler answers every request with 501
        assert index_reachable(f"http://127.0.0.1:{server.server_port}/whl/cpu", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
