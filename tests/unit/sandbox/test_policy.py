"""Which protections a grading requires (autograder.sandbox.policy)."""

from __future__ import annotations

import pytest

from autograder.sandbox.policy import DEFAULT_AS_ROOT, Guarantee, Policy, parse_guarantees

FULL = [{"name": n, "active": True, "detail": ""} for n in (
    "network", "pid-namespace", "ipc-namespace", "read-only-filesystems", "hidden-paths",
    "host-folders", "private-tmp", "private-proc", "unprivileged-user", "syscall-filter")]


def _without(*names: str, why: str = "refused") -> list[dict]:
    return [dict(p, active=False, detail=why) if p["name"] in names else p for p in FULL]


def test_grading_as_root_requires_the_defaults_a_students_check_nothing():
    assert Policy.build(as_root=True, enforce=True).required == DEFAULT_AS_ROOT
    assert Policy.build(as_root=True, enforce=False).required == frozenset()
    assert Policy.build(as_root=False, enforce=True).required == frozenset()


def test_require_tightens_and_allow_missing_relaxes():
    p = Policy.build(as_root=True, enforce=True, require=[Guarantee.NAMESPACES],
                     allow_missing=[Guarantee.NO_NETWORK])
    assert p.required == {Guarantee.HIDDEN_MATERIAL, Guarantee.OWN_UID, Guarantee.NAMESPACES}
    # a laptop can still ask for a protection explicitly
    assert Policy.build(as_root=False, enforce=False, require=[Guarantee.NO_NETWORK]).required \
        == {Guarantee.NO_NETWORK}


def test_every_mechanism_counts_and_a_missing_one_names_its_fix():
    p = Policy.build(as_root=True, enforce=True)
    assert p.refusal(FULL) is None
    # docker-default: no namespaces, but hidden-paths/network given by other means
    docker = _without("pid-namespace", "ipc-namespace", "private-tmp", "host-folders")
    assert p.refusal(docker) is None
    msg = p.refusal(_without("hidden-paths", why="file permissions could not hide /x"))
    assert msg is not None and "hidden-material" in msg and "/x" in msg
    assert "--cap-add SYS_ADMIN" in msg and "--allow-missing" in msg
    assert Policy.build(as_root=True, enforce=True, require=[Guarantee.NAMESPACES]).refusal(docker)


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"--require: unknown protection 'netwrk'.*no-network"):
        parse_guarantees(["netwrk"], source="--require")
    assert parse_guarantees(["own-uid"], source="x") == {Guarantee.OWN_UID}
