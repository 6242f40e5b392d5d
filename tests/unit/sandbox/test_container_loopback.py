"""A grading container without network lends its loopback to [sandbox] loopback workers:
only when `grade --image` says so *and* the network namespace holds nothing but lo."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.sandbox import namespaces

HEADER = ("Inter-|   Receive                                                |  Transmit\n"
          " face |bytes    packets errs drop fifo frame compressed multicast|bytes\n")


def _devices(tmp_path: Path, *names: str) -> str:
    f = tmp_path / "dev"
    f.write_text(HEADER + "".join(f"{n:>6}: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n" for n in names))
    return str(f)


def test_only_loopback_and_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(namespaces.CONTAINER_ENV, "1")
    assert namespaces.networkless_container(_devices(tmp_path, "lo"))


def test_an_interface_besides_lo_means_a_network(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The flag is not proof: a container (or host) with eth0 keeps IP sockets refused."""
    monkeypatch.setenv(namespaces.CONTAINER_ENV, "1")
    assert not namespaces.networkless_container(_devices(tmp_path, "lo", "eth0"))


def test_without_the_flag_a_lone_lo_is_not_enough(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose only interface is lo may still serve on it (databases, Docker's API)."""
    monkeypatch.delenv(namespaces.CONTAINER_ENV, raising=False)
    assert not namespaces.networkless_container(_devices(tmp_path, "lo"))


def test_unreadable_device_list_is_no(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(namespaces.CONTAINER_ENV, "1")
    assert not namespaces.networkless_container(str(tmp_path / "missing"))
