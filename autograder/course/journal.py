"""grade-all's journal: a rerun skips what an earlier run graded, and loses nothing.

``OUT/journal.jsonl`` gets one JSON line per finished grading, flushed and synced as it
ends, so a run killed with SIGKILL loses only the gradings in flight. A later run into the
same folder reuses an entry when the submission's content, the hidden suite and the
harness are the same and its results.json is the one that was written (by hash); anything
else is graded again. Lines that do not parse (a line cut by a crash) are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder import __version__
from autograder.config import Layout

JOURNAL = "journal.jsonl"
# A submission with more files than this is never reused (hashing it costs as much as
# grading it); its entry carries no hash.
MAX_HASHED_FILES = 10_000
_SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".git"}


@dataclass(frozen=True)
class Entry:
    name: str
    submission: str  # the path given, for the report
    content: str  # hash of the submission's files ("" when too large to hash)
    suite: str  # hash of the hidden suite, its support files and the harness version
    results: str  # hash of the results.json written
    status: str
    score: float
    max_score: float
    seconds: float


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_hash(submission: Path) -> str:
    """Hash of a submission: a zip's bytes, or a folder's relative paths and file bytes
    (links not followed; caches left out). "" when it holds too many files."""
    if submission.is_file():
        return "zip:" + file_hash(submission)
    digest = hashlib.sha256()
    count = 0
    for folder, dirs, files in os.walk(submission):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_PARTS)
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            count += 1
            if count > MAX_HASHED_FILES:
                return ""
            rel = path.relative_to(submission).as_posix().encode()
            digest.update(len(rel).to_bytes(8, "big") + rel)
            digest.update(bytes.fromhex(file_hash(path)))
    return "dir:" + digest.hexdigest()


def harness_hash() -> str:
    """The harness's own source: a fix to it invalidates earlier gradings."""
    digest = hashlib.sha256(f"autograder {__version__}\n".encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".json", ".ini"):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(bytes.fromhex(file_hash(path)))
    return digest.hexdigest()


def suite_hash(layout: Layout, settings: str = "") -> str:
    """What decides a grading besides the submission: the hidden suite (tests, conftest,
    assignment.toml), the support and probe files copied from the solution, the harness's
    source and the grading's ``settings`` (isolation, required protections, time limit)."""
    digest = hashlib.sha256(f"{harness_hash()}\n{settings}\n".encode())
    config = layout.config()
    files = sorted(p for p in layout.reference.rglob("*") if p.is_file()
                   and not _SKIPPED_PARTS & set(p.relative_to(layout.reference).parts)
                   and p.suffix != ".pyc")
    files += [layout.solution / s for s in config.support]
    if config.probes:
        files.append(layout.solution / config.probes)
    for path in files:
        digest.update(str(path).encode() + b"\0")
        digest.update(bytes.fromhex(file_hash(path)) if path.is_file() else b"missing")
    return digest.hexdigest()


class Journal:
    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / JOURNAL
        self.entries: dict[str, Entry] = {}  # the latest per name
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except OSError:  # none yet, or unreadable: nothing is reused
            lines = []
        for line in lines:
            try:
                entry = Entry(**json.loads(line))
            except (ValueError, TypeError):
                continue  # cut short by a crash, or written by another version
            self.entries[entry.name] = entry

    def reusable(self, name: str, content: str, suite: str, results: Path) -> Entry | None:
        """The earlier entry of ``name`` if this grading would repeat it exactly."""
        entry = self.entries.get(name)
        if (entry is None or not content or entry.content != content or entry.suite != suite
                or entry.status != "graded"):
            return None
        try:
            return entry if file_hash(results) == entry.results else None
        except OSError:
            return None

    def record(self, entry: Entry) -> None:
        """Append one line, on disk before returning (an O_APPEND write of one line)."""
        line = json.dumps(asdict(entry), allow_nan=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.entries[entry.name] = entry
