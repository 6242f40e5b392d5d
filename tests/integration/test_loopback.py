"""[sandbox] loopback: a server in student code gets a loopback of the worker's own.

With namespaces the worker's network namespace holds its own `lo`, up, and the seccomp
filter lets IP sockets through (they reach nothing else); the host's loopback stays out
of reach. Where namespaces are refused (Docker's defaults) there is no private loopback:
IP sockets stay refused and `grade` stops with exit 2 (a harness error, regraded
elsewhere), so students lose no points to the platform.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

DOCKER_DEFAULT = Path(__file__).resolve().parents[1] / "support" / "docker_default.py"
REPO = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="the sandbox makes namespaces as root")

SERVER = '''

def loopback_echo(host_port):
    import socket
    import threading
    try:
        srv = socket.create_server(("127.0.0.1", 0))
    except OSError as exc:
        return f"server refused: {exc}"
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        conn.sendall(conn.recv(100).upper())
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"ping")
        reply = c.recv(100).decode()
    try:
        socket.create_connection(("127.0.0.1", host_port), timeout=2).close()
        host = "host reached"
    except OSError:
        host = "host unreachable"
    return f"{reply} {host}"
'''

TEST = '''
import os


def test_server_on_own_loopback(student):
    """a server and its client on the worker's loopback; the host's stays out of reach"""
    ops = student.module("ops")
    assert ops.loopback_echo(int(os.environ["AGTEST_HOST_PORT"])) == "PING host unreachable"
'''


def _course(course: Path, loopback: bool) -> Path:
    ref = course / "reference_tests" / "a9_tiny"
    toml = ref / "assignment.toml"
    toml.write_text(toml.read_text() + f"\n[sandbox]\nloopback = {str(loopback).lower()}\n")
    (ref / "hidden" / "test_loopback.py").write_text(TEST)
    ops = course / "solutions" / "a9_tiny" / "ops.py"
    ops.write_text(ops.read_text() + SERVER)
    return course


def _grade(course: Path, *, docker: bool) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = course / "out" / "results.json"
    cmd = [sys.executable, "-m", "autograder", "grade", "a9", str(course / "solutions" / "a9_tiny"),
           "-o", str(out), "--course", str(course)]
    if docker:
        cmd = [sys.executable, str(DOCKER_DEFAULT), "--reachable", sys.executable,
               "--reachable", str(REPO), "--", *cmd]
    host = socket.create_server(("127.0.0.1", 0))  # a listener the worker must not reach
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "AGTEST_HOST_PORT": str(host.getsockname()[1])})
    finally:
        host.close()
    return proc, json.loads(out.read_text())


def _loopback_test(data: dict) -> dict:
    return next(t for t in data["tests"] if "worker's loopback" in t["name"])


@needs_root
def test_worker_gets_its_own_loopback(course: Path) -> None:
    proc, data = _grade(_course(course, True), docker=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    test = _loopback_test(data)
    assert test["status"] == "passed", test["output"]
    prot = {p["name"]: p for p in data["extra_data"]["protections"]}
    assert prot["loopback"]["active"] and "nothing else shares it" in prot["loopback"]["detail"]
    assert prot["network"]["active"] and "only its own loopback" in prot["network"]["detail"]
    assert "AF_UNIX and IP" in prot["syscall-filter"]["detail"]


@needs_root
def test_without_the_declaration_ip_sockets_stay_refused(course: Path) -> None:
    proc, data = _grade(_course(course, False), docker=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    test = _loopback_test(data)
    assert test["status"] == "failed" and "server refused" in test["output"], test["output"]
    assert "loopback" not in {p["name"] for p in data["extra_data"]["protections"]}


@needs_root
def test_no_private_loopback_under_docker_defaults_stops_the_grading(course: Path) -> None:
    """Docker's defaults refuse network namespaces: no private loopback. The host's is never
    opened instead, and the server tests must not cost students points: `grade` stops
    (exit 2, every test at 0 with a harness error to regrade) and names the fix."""
    proc, data = _grade(_course(course, True), docker=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert data["extra_data"]["harness_error"] and data["score"] == 0
    assert "loopback" in proc.stdout and "CAP_SYS_ADMIN" in proc.stdout, proc.stdout


def test_loopback_must_be_true_or_false(tmp_path: Path) -> None:
    from autograder.config import AssignmentConfig
    from autograder.errors import CourseError

    toml = tmp_path / "assignment.toml"
    toml.write_text('[assignment]\nid = "x"\ntitle = "x"\nmodules = ["m"]\n\n[sandbox]\nloopback = "yes"\n')
    with pytest.raises(CourseError, match="loopback = 'yes'; write true or false"):
        AssignmentConfig.load(toml)
