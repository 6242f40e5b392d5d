"""Hidden material kept from the worker by file modes, where no mount namespace can hide it.

Under `docker run` and on Gradescope the grader is root without CAP_SYS_ADMIN and Docker's
seccomp profile refuses new namespaces, so nothing can be covered by a mount. The worker
still runs as a uid of its own with no groups: for it only the "other" permission bits
count. So the grader, as root, takes those bits off what the worker must not read (the
course's hidden tests and solutions, ``.git``, the submissions folder, the results
folder) and then checks, path by path, that the worker's uid can reach none of it.

A folder that holds the harness or its interpreter (a checkout with ``.venv/`` inside)
keeps ``o+x`` so the worker can still import Python; everything else in it loses every
"other" bit. Shared temp folders (mode 1777, like /tmp) are never changed: other users
need them; what the worker writes there is removed by the monitor after each worker.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

OTHER_BITS = stat.S_IRWXO
MAX_CHANGES = 10_000  # entries changed in one folder that holds the harness


@dataclass
class PermissionReport:
    """What :func:`hide_by_permissions` did and what it could not do."""

    changed: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)  # shared temp folders left as they are
    exposed: list[str] = field(default_factory=list)  # still reachable: protection failed

    @property
    def ok(self) -> bool:
        return not self.exposed

    def detail(self) -> str:
        if self.exposed:
            return ("file permissions could not hide " + ", ".join(self.exposed[:5])
                    + ": the worker's uid can still read them")
        text = "file permissions (no mount namespace): other users cannot read "
        text += ", ".join(self.changed[:8]) if self.changed else "the hidden folders"
        if len(self.changed) > 8:
            text += f" and {len(self.changed) - 8} more"
        if self.shared:
            text += "; shared temp folders left as they are: " + ", ".join(self.shared)
        return text


def is_shared_tmp(path: Path) -> bool:
    """A folder everybody may write to with the sticky bit (/tmp, /var/tmp, /dev/shm)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) and bool(mode & stat.S_ISVTX) and bool(mode & stat.S_IWOTH)


def reachable_by_others(path: Path, *, fully: bool = False) -> bool:
    """True if a user with no special rights and no groups can open ``path`` (read a
    file, list or enter a folder); ``fully``: read a file, list and enter a folder."""
    path = Path(os.path.abspath(path))
    try:
        for parent in reversed(path.parents):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode):
        return False  # the target is judged where it lies
    if fully:
        need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        return mode & need == need
    return bool(mode & (stat.S_IROTH | stat.S_IXOTH))


def _take_other_bits(path: Path, report: PermissionReport, keep_x: bool = False) -> None:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return
    wanted = stat.S_IMODE(mode) & ~OTHER_BITS
    if keep_x:
        wanted |= stat.S_IXOTH
    if wanted != stat.S_IMODE(mode):
        try:
            os.chmod(path, wanted)
        except OSError:
            return  # a read-only file system: _still_reachable reports it if it matters
        report.changed.append(str(path))


def hide_by_permissions(hide: list[Path], keep: list[Path]) -> PermissionReport:
    """Take the "other" bits off each folder of ``hide``; in a folder that holds one of
    ``keep`` (the interpreter's prefix, the harness), off each entry but the way to it.
    Then check that nothing of ``hide`` but ``keep`` is reachable by other users."""
    report = PermissionReport()
    keep = [Path(os.path.abspath(k)) for k in keep]
    for h in dict.fromkeys(Path(os.path.abspath(p)) for p in hide):
        if not h.exists() or h.is_symlink():
            continue
        if is_shared_tmp(h):
            report.shared.append(str(h))
            continue
        _hide_one(h, keep, report)
    for h in dict.fromkeys(Path(os.path.abspath(p)) for p in hide):
        if str(h) not in report.shared:
            report.exposed += _still_reachable(h, keep)
    return report


def _holds(folder: Path, keep: list[Path]) -> bool:
    return any(folder == k or folder in k.parents for k in keep)


def _hide_one(h: Path, keep: list[Path], report: PermissionReport) -> None:
    if not _holds(h, keep):
        _take_other_bits(h, report)
        return
    if h in keep:
        return
    # The way to the harness: others may pass (o+x), not list; every other entry closes.
    _take_other_bits(h, report, keep_x=True)
    if not h.is_dir():
        return
    for entry in sorted(h.iterdir()):
        if len(report.changed) > MAX_CHANGES:
            report.exposed.append(f"{h} (more than {MAX_CHANGES} entries)")
            return
        if entry.is_symlink():
            continue
        if _holds(entry, keep):
            _hide_one(entry, keep, report)
        else:
            _take_other_bits(entry, report)


def _still_reachable(h: Path, keep: list[Path]) -> list[str]:
    if not h.exists():
        return []
    if not _holds(h, keep):
        return [str(h)] if reachable_by_others(h) else []
    if h in keep:
        return []
    if os.stat(h).st_mode & stat.S_IROTH:
        return [f"{h} (listable)"]
    out: list[str] = []
    if h.is_dir():
        for entry in h.iterdir():
            if entry.is_symlink():
                continue
            out += _still_reachable(entry, keep) if _holds(entry, keep) else (
                [str(entry)] if reachable_by_others(entry) else [])
    return out
