"""Gradescope's "Export Submissions" as grade-all input: a zip (or its unpacked folder)
with ``submission_metadata.yml`` beside one ``submission_<id>/`` folder per submission.

The metadata maps each folder to its submitters (Ruby-style keys ``:submitters``,
``:name``, ``:email``, ``:sid``); those fields lead the submission's row in grades.csv.
The export is unpacked with the same checks as a student's zip, with limits sized for a
whole class.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from autograder.errors import ConfigError, SubmissionError
from autograder.grading.submission import extract_zip, is_zip

METADATA = "submission_metadata.yml"
MAX_EXPORT_MEMBERS = 500_000
MAX_EXPORT_BYTES = 8 * 2**30
MAX_METADATA_BYTES = 16 * 2**20
MAX_FIELD = 200  # characters of a name, email or sid
_FOLDER = re.compile(r"submission_\d+")


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


def metadata_in_zip(archive: Path, modules: Collection[str] = ()) -> str | None:
    """The metadata's member name when ``archive`` looks like an export (at its top or in
    its one top folder, with none of the assignment's ``modules`` beside it), else None
    (an ordinary submission zip, or not a zip at all)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    shallow = [n for n in members if PurePosixPath(n).name == METADATA
               and len(PurePosixPath(n).parts) <= 2]
    if not shallow:
        return None
    found = min(shallow, key=len)
    folder = PurePosixPath(found).parent
    beside = {PurePosixPath(n).name for n in members if PurePosixPath(n).parent == folder}
    if any(f"{m}.py" in beside or f"{m}.ipynb" in beside for m in modules):
        return None  # a student's zip with a file of that name: one submission
    return found


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
    """The submitters of each submission folder of an unpacked export. Only Gradescope's
    shape is accepted: every key a ``submission_<digits>`` folder with its submitters (a
    student's own file of that name must not name other students' rows)."""
    path = root / METADATA
    try:
        if path.stat().st_size > MAX_METADATA_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_METADATA_BYTES // 2**20} MB")
        data = _load_yaml(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}; export the submissions again "
                          "from Gradescope") from exc
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path} is not a mapping of submission folders to their "
                          "metadata; export the submissions again from Gradescope")
    export = Export(root)
    for folder, meta in data.items():
        people = _list(_get(meta, "submitters"))
        if not isinstance(folder, str) or not _FOLDER.fullmatch(folder) or not people:
            raise ConfigError(f"{path}: {str(folder)[:60]!r} is not a Gradescope submission "
                              "folder (submission_<id>) with its submitters")
        export.submitters[folder] = Submitters(
            names=tuple(_field(_get(p, "name")) for p in people),
            emails=tuple(_field(_get(p, "email")) for p in people),
            sids=tuple(_field(_get(p, "sid")) for p in people),
            submission_id=folder.removeprefix("submission_"))
    return export


def _field(value: Any) -> str:
    return "" if value is None else str(value)[:MAX_FIELD]


def _load_yaml(text: str) -> Any:
    """safe_load without aliases: a few hundred bytes of nested aliases expand to gigabytes."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise ValueError("YAML aliases are not allowed in submission metadata")
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=NoAliases)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc


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


def is_export_zip(path: Path, modules: Collection[str] = ()) -> bool:
    return is_zip(path) and metadata_in_zip(path, modules) is not None
