"""Landlock scopes in a forked child (a domain cannot be left): abstract UNIX sockets and
signals reach only the worker's own processes."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from child import in_child

from autograder.sandbox import landlock

needs_scopes = pytest.mark.skipif(landlock.abi_version() < landlock.MIN_ABI,
                                  reason=f"this kernel's Landlock has no scopes (ABI "
                                         f"{landlock.abi_version()} < {landlock.MIN_ABI})")


def _in_scoped_child(outside: str, outside_pid: int,
                     scopes: landlock.Scopes | None = None) -> dict:
    def body():
        out: dict = {}
        (scopes or landlock.scopes()).restrict()
        for name, target in (("outside", outside), ("own", None)):
            try:
                if target is None:  # a listener made inside the domain: still usable
                    target = f"agll-own-{os.getpid()}"
                    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    srv.bind("\0" + target)
                    srv.listen(1)
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect("\0" + target)
                c.close()
                out[name] = "connected"
            except OSError as exc:
                out[name] = exc.errno
        try:
            os.kill(outside_pid, 0)
            out["signal"] = "sent"
        except OSError as exc:
            out["signal"] = exc.errno
        os.kill(os.getpid(), 0)  # its own process: allowed
        out["self"] = "sent"
        return out

    return in_child(body)


def _listen() -> tuple[str, socket.socket]:
    name = f"agll-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen(1)
    return name, server


@needs_scopes
def test_scoped_worker_cannot_reach_outside_abstract_sockets_or_signal_out():
    name, server = _listen()
    try:
        got = _in_scoped_child(name, os.getpid())
    finally:
        server.close()
    import errno

    assert got == {"outside": errno.EPERM, "own": "connected", "signal": errno.EPERM,
                   "self": "sent"}


def test_the_check_says_why_when_it_cannot():
    got = landlock.scopes()
    if landlock.abi_version() >= landlock.MIN_ABI:
        assert got.active and "Landlock" in got.detail
    else:
        assert not got.active and "Landlock" in got.detail




def test_without_scopes_the_attack_works():
    """The control: unscoped (a kernel before 6.12), the same child reaches the listener,
    so the test above is not vacuous; such workers report the protection off."""
    name, server = _listen()
    try:
        got = _in_scoped_child(name, os.getpid(), landlock.Scopes(False, "off"))
    finally:
        server.close()
    assert got["outside"] == "connected" and got["signal"] == "sent"


def _read_in_restricted_child(rules: landlock.FsRules, paths: list[str]) -> dict:
    def body():
        landlock.scopes().restrict(rules)
        out: dict = {}
        for p in paths:
            try:
                with open(p) as f:
                    out[p] = f.read()
            except OSError as exc:
                out[p] = exc.errno
        return out

    return in_child(body)


@pytest.mark.skipif(landlock.abi_version() < 1, reason="this kernel has no Landlock")
def test_filesystem_rules_allow_listed_folders_only_and_leave_a_package_out(tmp_path):
    """Without a mount namespace: only the granted folders can be read, and a forbidden
    package below one of them cannot, while its siblings still can."""
    import errno

    root = tmp_path / "site"
    (root / "torch").mkdir(parents=True)
    (root / "numpy").mkdir()
    (root / "torch" / "__init__.py").write_text("torch")
    (root / "numpy" / "__init__.py").write_text("numpy")
    (root / "six.py").write_text("six")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("secret")
    rules = landlock.FsRules(read=(str(root),), hidden=(str(root / "torch"),))
    paths = [str(root / "numpy" / "__init__.py"), str(root / "six.py"),
             str(root / "torch" / "__init__.py"), str(outside)]
    got = _read_in_restricted_child(rules, paths)
    assert got == {paths[0]: "numpy", paths[1]: "six", paths[2]: errno.EACCES,
                   paths[3]: errno.EACCES}
