"""Gradescope's "Export Submissions" as grade-all input: a zip (or its unpacked folder)
with ``submission_metadata.yml`` beside one ``submission_<id>/`` folder per submission.

The metadata maps each folder to its submitters (Ruby-style keys ``:submitters``,
``:name``, ``:email``, ``:sid``); those fields lead the submission's row in grades.csv.
The export is unpacked with the same checks as a student's zip, with limits sized for a
whole class.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from autograder.errors import ConfigError, SubmissionError
from autograder.grading.submission import extract_zip, is_zip

METADATA = "submission_metadata.yml"
MAX_EXPORT_MEMBERS = 500_000
MAX_EXPORT_BYTES = 8 * 2**30


@dataclass(frozen=True)
class Submitters:
    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    sids: tuple[str, ...] = ()
    submission_id: str = ""

    @property
    def student(self) -> str:
        return "; ".join(self.names)


@dataclass
class Export:
    root: Path  # the folder holding the metadata and the submission folders
    submitters: dict[str, Submitters] = field(default_factory=dict)  # folder -> who


def metadata_in_zip(archive: Path) -> str | None:
    """The metadata's member name when ``archive`` is an export (at its top or in its one
    top folder), else None (an ordinary submission zip, or not a zip at all)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if PurePosixPath(n).name == METADATA]
    except (OSError, zipfile.BadZipFile):
        return None
    shallow = [n for n in names if len(PurePosixPath(n).parts) <= 2]
    return min(shallow, key=len) if shallow else None


def find_export(path: Path) -> Path | None:
    """The folder of an unpacked export (``path`` or its one subfolder), else None."""
    if not path.is_dir():
        return None
    if (path / METADATA).is_file():
        return path
    subs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return subs[0] if len(subs) == 1 and (subs[0] / METADATA).is_file() else None


def unpack_export(archive: Path, dest: Path) -> Path:
    """Unpack an export zip into ``dest``; returns the folder holding the metadata."""
    try:
        extract_zip(archive, dest, max_members=MAX_EXPORT_MEMBERS, max_bytes=MAX_EXPORT_BYTES)
    except SubmissionError as exc:
        raise ConfigError(f"the Gradescope export {archive} cannot be unpacked: {exc}") from exc
    root = find_export(dest)
    if root is None:
        raise ConfigError(f"the Gradescope export {archive} has no {METADATA} at its top")
    return root


def read_export(root: Path) -> Export:
    """The submitters of each submission folder of an unpacked export."""
    import yaml

    path = root / METADATA
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}; export the submissions again "
                          "from Gradescope") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a mapping of submission folders to their "
                          "metadata; export the submissions again from Gradescope")
    export = Export(root)
    for folder, meta in data.items():
        people = _list(_get(meta, "submitters"))
        export.submitters[str(folder)] = Submitters(
            names=tuple(str(_get(p, "name") or "") for p in people),
            emails=tuple(str(_get(p, "email") or "") for p in people),
            sids=tuple(str(_get(p, "sid") or "") for p in people),
            submission_id=str(folder).removeprefix("submission_"))
    return export


def _get(mapping: Any, key: str) -> Any:
    """``:key`` (Gradescope's Ruby symbols), ``key:`` or ``key``."""
    if not isinstance(mapping, dict):
        return None
    for k in (f":{key}", key, f"{key}:", f":{key}:"):
        if k in mapping:
            return mapping[k]
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_export_zip(path: Path) -> bool:
    return is_zip(path) and metadata_in_zip(path) is not None
