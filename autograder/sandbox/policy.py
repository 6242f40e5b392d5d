"""Which protections a grading requires, and the check that stops it where one is missing.

A guarantee is what the course relies on; each can be given by more than one mechanism
(a protection in the worker's list): hidden material by a mount namespace or by file
modes, no network by a network namespace or by the seccomp filter. ``grade`` as root
(Gradescope, Docker, CI) requires the defaults below and stops with a harness error where
the platform cannot give one; ``check`` on a laptop only says what is off.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class Guarantee(enum.StrEnum):
    HIDDEN_MATERIAL = "hidden-material"
    NO_NETWORK = "no-network"
    OWN_UID = "own-uid"
    NAMESPACES = "namespaces"
    SYSCALL_FILTER = "syscall-filter"
    LOOPBACK = "loopback"  # required wherever an assignment declares [sandbox] loopback


# The protection names (see namespaces.Protection) that give each guarantee.
PROVIDED_BY: dict[Guarantee, tuple[str, ...]] = {
    Guarantee.HIDDEN_MATERIAL: ("hidden-paths",),
    Guarantee.NO_NETWORK: ("network",),
    Guarantee.OWN_UID: ("unprivileged-user",),
    Guarantee.NAMESPACES: ("pid-namespace", "ipc-namespace", "private-tmp", "host-folders",
                           "read-only-filesystems"),
    Guarantee.SYSCALL_FILTER: ("syscall-filter",),
    Guarantee.LOOPBACK: ("loopback",),
}
DEFAULT_AS_ROOT = frozenset({Guarantee.HIDDEN_MATERIAL, Guarantee.NO_NETWORK, Guarantee.OWN_UID})

FIXES: dict[Guarantee, str] = {
    Guarantee.HIDDEN_MATERIAL: (
        "grade where the sandbox can make a mount namespace (root with CAP_SYS_ADMIN, e.g. "
        "`docker run --cap-add SYS_ADMIN --security-opt seccomp=unconfined`), or make the "
        "folders named above unreadable to other users (chmod -R o-rwx)"),
    Guarantee.NO_NETWORK: (
        "install libseccomp (Debian: apt-get install libseccomp2) and pyseccomp so the "
        "filter refuses sockets, or grade with CAP_SYS_ADMIN for a network namespace"),
    Guarantee.OWN_UID: (
        "run the grader as root (the worker then drops to a uid of its own) from a "
        "Python every user can read (e.g. a venv made with /usr/bin/python3.11)"),
    Guarantee.NAMESPACES: (
        "grade as root with CAP_SYS_ADMIN and without a seccomp profile that refuses "
        "unshare (`docker run --cap-add SYS_ADMIN --security-opt seccomp=unconfined`)"),
    Guarantee.SYSCALL_FILTER: (
        "install libseccomp (Debian: apt-get install libseccomp2) and pyseccomp"),
    Guarantee.LOOPBACK: (
        "this assignment's code runs servers ([sandbox] loopback): grade it where the "
        "sandbox can make network namespaces (root with CAP_SYS_ADMIN, e.g. `docker run "
        "--cap-add SYS_ADMIN --security-opt seccomp=unconfined`), not under Docker's or "
        "Gradescope's defaults; the host's network is never opened instead"),
}


def parse_guarantees(values: Iterable[str], *, source: str) -> frozenset[Guarantee]:
    """Names from a config or the command line; ValueError naming ``source`` otherwise."""
    out = set()
    for v in values:
        try:
            out.add(Guarantee(v))
        except ValueError:
            known = ", ".join(g.value for g in Guarantee)
            raise ValueError(f"{source}: unknown protection {v!r}; use one of {known}") from None
    return frozenset(out)


@dataclass(frozen=True)
class Policy:
    required: frozenset[Guarantee]

    @classmethod
    def build(cls, *, as_root: bool, enforce: bool, require: Iterable[Guarantee] = (),
              allow_missing: Iterable[Guarantee] = ()) -> Policy:
        """The defaults (as root, for grading: DEFAULT_AS_ROOT; else none), tightened by
        ``require`` and relaxed by ``allow_missing`` (the config's, then the CLI's)."""
        base = set(DEFAULT_AS_ROOT) if as_root and enforce else set()
        return cls(frozenset((base | set(require)) - set(allow_missing)))

    def missing(self, protections: list[dict[str, Any]]) -> list[tuple[Guarantee, str]]:
        """The required guarantees that no active protection gives, each with why."""
        active = {p["name"] for p in protections if p.get("active")}
        why = {p["name"]: str(p.get("detail", "")) for p in protections if not p.get("active")}
        out = []
        for g in sorted(self.required):
            names = PROVIDED_BY[g]
            need_all = g is Guarantee.NAMESPACES
            ok = all(n in active for n in names) if need_all else any(n in active for n in names)
            if not ok:
                grouped: dict[str, list[str]] = {}
                for n in names:
                    if n in why:
                        grouped.setdefault(why[n], []).append(n)
                reasons = "; ".join(f"{', '.join(ns)}: {w}" for w, ns in grouped.items())
                reasons = reasons or "not reported"
                out.append((g, reasons))
        return out

    def refusal(self, protections: list[dict[str, Any]]) -> str | None:
        """The staff message that stops a grading, or None when everything required holds."""
        missing = self.missing(protections)
        if not missing:
            return None
        names = ", ".join(g.value for g, _ in missing)
        first, why = missing[0]
        lines = [f"refusing to grade: the sandbox cannot give {names} here ({why}). "
                 f"Fix: {FIXES[first]}"]
        for g, why in missing[1:]:
            lines.append(f"  - {g.value} ({why}). Fix: {FIXES[g]}")
        lines.append("To grade without one anyway, pass --allow-missing NAME (or list it in "
                     "assignment.toml [sandbox] allow_missing); never for a real course.")
        return "\n".join(lines)
