"""Mutants and variants: edits applied to a copy of the reference solution.

``solutions/NAME/mutants.toml`` lists ``[[mutant]]`` tables (realistic bugs): ``autograder
validate`` grades each mutated copy and requires that it loses points.
``solutions/NAME/variants.toml`` lists ``[[variant]]`` tables (other correct ways to write
the solution), in the same format: each must get full marks, so a hidden suite that
rejects a right answer written differently is caught too.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autograder.errors import CourseError

MUTANTS_FILE = "mutants.toml"
VARIANTS_FILE = "variants.toml"
_FIELDS = ("name", "description", "file", "find", "replace")
_SLUG = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")
VARIANTS_DIR = "variants"  # folder variants: solutions/NAME/variants/<variant>/<files>
_NOT_COPIED = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
_TOP_LEVEL_ONLY = {MUTANTS_FILE, VARIANTS_FILE, VARIANTS_DIR}  # a data/variants/ is the solution's


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    file: str  # relative to the solution folder, "/"-separated
    find: str  # occurs exactly once in ``file``
    replace: str
    kind: str = "mutant"  # or "variant"
    # A variant may instead be a folder of whole files that replace the solution's own
    # (another vectorization of a module): ``folder`` relative to the solution folder.
    folder: str = ""
    # A variant that is correct but slow (loops where the solution vectorizes): it may lose
    # the tests tagged "performance", and `validate` checks that those verdicts do not
    # change when a busy neighbour process shares the machine.
    slow: bool = False


def _occurrences(solution_dir: Path, mutant: Mutant) -> int:
    target = solution_dir / mutant.file
    if not target.is_file():
        raise CourseError(
            f"mutant {mutant.name!r}: file {mutant.file!r} does not exist in {solution_dir}; "
            "give a path relative to the solution folder"
        )
    try:
        return target.read_bytes().decode("utf-8").count(mutant.find)
    except UnicodeDecodeError as exc:
        raise CourseError(f"mutant {mutant.name!r}: {mutant.file} is not UTF-8 text") from exc


def _check_unique(solution_dir: Path, mutant: Mutant) -> None:
    kind = mutant.kind
    if mutant.folder:
        _check_overlay(solution_dir, mutant)
        return
    count = _occurrences(solution_dir, mutant)
    if count == 0:
        raise CourseError(
            f"{kind} {mutant.name!r}: find text {mutant.find!r} does not occur in "
            f"{mutant.file}; update it to match the solution"
        )
    if count > 1:
        raise CourseError(
            f"{kind} {mutant.name!r}: find text {mutant.find!r} occurs {count} times in "
            f"{mutant.file}; it must occur exactly once, so include more of the line"
        )


def _overlay_files(solution_dir: Path, mutant: Mutant) -> list[Path]:
    root = solution_dir / mutant.folder
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.is_file() and not _NOT_COPIED & set(p.relative_to(root).parts)
                  and p.suffix != ".pyc")


def _check_overlay(solution_dir: Path, mutant: Mutant) -> None:
    label = f"variant {mutant.name!r}"
    root = solution_dir / mutant.folder
    if not root.is_dir():
        raise CourseError(f"{label}: folder {mutant.folder!r} does not exist in {solution_dir}; "
                          f"put the variant's files in {VARIANTS_DIR}/{mutant.name}/")
    files = _overlay_files(solution_dir, mutant)
    if not files:
        raise CourseError(f"{label}: folder {mutant.folder!r} holds no files; put the "
                          "variant's versions of the solution's modules there")
    stray = [f.as_posix() for f in files if not (solution_dir / f).is_file()]
    if stray:
        raise CourseError(f"{label}: {stray} in {mutant.folder!r} replace no file of the "
                          "solution; a variant's files stand in for the solution's own "
                          "(same names), so that grading sees no unexpected files")


def _parse(entry: object, index: int, shown: str, kind: str) -> Mutant:
    where = f"{shown}: [[{kind}]] #{index}"
    if not isinstance(entry, dict):
        raise CourseError(f"{where} is not a table; write it as [[{kind}]] with key = value lines")
    label = f"{where} ({entry['name']!r})" if isinstance(entry.get("name"), str) else where
    slow = False
    if kind == "variant" and "slow" in entry:
        entry = dict(entry)
        slow = entry.pop("slow")
        if not isinstance(slow, bool):
            raise CourseError(f"{label}: slow = {slow!r}; write true or false")
    folder = kind == "variant" and "folder" in entry
    fields = ("name", "description", "folder") if folder else _FIELDS
    unknown = sorted(set(entry) - set(fields))
    if unknown:
        shape = "a folder variant has" if folder else "allowed keys are"
        raise CourseError(f"{label}: unknown keys {unknown}; {shape} {list(fields)}")
    for key in fields:
        if not isinstance(entry.get(key), str):
            raise CourseError(f"{label}: {key} = {entry.get(key)!r}; it must be a string")
    mutant = Mutant(**{"file": "", "find": "", "replace": "",
                       **{key: entry[key] for key in fields}}, kind=kind, slow=slow)
    if not _SLUG.fullmatch(mutant.name):
        raise CourseError(
            f"{where}: name {mutant.name!r} is not a slug; use lowercase letters, digits, "
            "'_' or '-' (e.g. 'relu_backward_passes_negative')"
        )
    if not mutant.description.strip():
        raise CourseError(f"{label}: description is empty; say which "
                          + ("bug it simulates" if kind == "mutant" else "correct way it shows"))
    if folder:
        path = PurePosixPath(mutant.folder)
        if ("\\" in mutant.folder or path.is_absolute() or ".." in path.parts
                or not path.parts or path.parts[0] != VARIANTS_DIR or len(path.parts) < 2):
            raise CourseError(f"{label}: folder = {mutant.folder!r}; give a folder below "
                              f"{VARIANTS_DIR}/, e.g. '{VARIANTS_DIR}/{mutant.name}'")
        return mutant
    path = PurePosixPath(mutant.file)
    if not mutant.file or "\\" in mutant.file or path.is_absolute() or ".." in path.parts:
        raise CourseError(
            f"{label}: file = {mutant.file!r}; give a path inside the solution folder "
            "with '/' separators, e.g. 'layers.py'"
        )
    if (path.name in (MUTANTS_FILE, VARIANTS_FILE) or _NOT_COPIED & set(path.parts)
            or path.parts[0] == VARIANTS_DIR):
        raise CourseError(f"{label}: file = {mutant.file!r} is not part of the solution copy")
    if not mutant.find:
        raise CourseError(f"{label}: find is empty; give the exact solution text to change")
    if mutant.find == mutant.replace:
        raise CourseError(f"{label}: replace equals find, so nothing changes; fix replace")
    return mutant


def load_mutants(solution_dir: Path) -> list[Mutant]:
    """The mutants of a solution (at least one), validated against its files."""
    return _load(Path(solution_dir), MUTANTS_FILE, "mutant", required=True)


def load_variants(solution_dir: Path) -> list[Mutant]:
    """The correct variants of a solution (none when it has no variants.toml)."""
    return _load(Path(solution_dir), VARIANTS_FILE, "variant", required=False)


def _load(solution_dir: Path, filename: str, kind: str, *, required: bool) -> list[Mutant]:
    path = solution_dir / filename
    shown = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        if not required:
            return []
        raise CourseError(
            f"{path} is missing; every assignment ships mutants (see docs/authoring.md)"
        ) from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CourseError(f"{shown} cannot be read: {exc}") from exc
    extra = sorted(set(data) - {kind})
    if extra:
        raise CourseError(f"{shown}: unknown top-level keys {extra}; write each as [[{kind}]]")
    entries = data.get(kind, [])
    if not isinstance(entries, list) or not entries:
        raise CourseError(f"{shown} defines no [[{kind}]] tables; add at least one")
    mutants = [_parse(entry, i, shown, kind) for i, entry in enumerate(entries, start=1)]
    seen: set[str] = set()
    for mutant in mutants:
        if mutant.name in seen:
            raise CourseError(f"{shown}: {kind} name {mutant.name!r} is used twice; rename one")
        seen.add(mutant.name)
        _check_unique(solution_dir, mutant)
    return mutants


def _ignorer(root: Path) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        top = Path(directory) == root
        return {n for n in names if n in _NOT_COPIED or n.endswith(".pyc")
                or (top and n in _TOP_LEVEL_ONLY)}
    return ignore


def apply_mutant(solution_dir: Path, mutant: Mutant, dest_dir: Path) -> Path:
    """Copy the solution's files into ``dest_dir`` with the mutant (or variant) applied;
    returns dest_dir.

    ``dest_dir`` may exist but must be empty, so stale files cannot leak into a run.
    """
    solution_dir, dest_dir = Path(solution_dir), Path(dest_dir)
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise CourseError(f"{dest_dir} is not empty; apply {mutant.kind} {mutant.name!r} to a new folder")
    _check_unique(solution_dir, mutant)  # the solution may have changed since loading
    shutil.copytree(solution_dir, dest_dir, ignore=_ignorer(solution_dir), dirs_exist_ok=True)
    if mutant.folder:
        for rel in _overlay_files(solution_dir, mutant):
            shutil.copyfile(solution_dir / mutant.folder / rel, dest_dir / rel)
        return dest_dir
    target = dest_dir / mutant.file
    text = target.read_bytes().decode("utf-8")
    target.write_bytes(text.replace(mutant.find, mutant.replace, 1).encode("utf-8"))
    return dest_dir
