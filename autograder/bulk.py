"""Bulk grading: many submissions, each graded by its own `autograder grade` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


@dataclass
class Graded:
    name: str
    submission: Path
    results: Path
    score: float = 0.0
    max_score: float = 0.0
    exit_code: int = 0
    seconds: float = 0.0
    failed: tuple[str, ...] = ()
    per_test: tuple[tuple[str, float, str], ...] = ()  # (name, score, status) in order
    error: str = ""

    @property
    def broken(self) -> bool:
        return self.exit_code != 0 or bool(self.error)


def grade_in_subprocess(assignment: str, submission: Path, out: Path, *, isolation: str = "sandbox",
                        name: str | None = None) -> Graded:
    proc = subprocess.run(
        # -I: the current folder (maybe a submission) never lands on the grader's sys.path.
        [sys.executable, "-I", "-m", "autograder", "grade", assignment, str(submission), "-o", str(out),
         "--isolation", isolation], capture_output=True, text=True, check=False)
    g = Graded(name or submission.name, submission, out, exit_code=proc.returncode)
    if not out.exists():
        g.error = f"no results.json (exit {proc.returncode}): {proc.stderr[-500:]}"
        return g
    data = json.loads(out.read_text())
    g.score = float(data["score"])
    g.max_score = float(sum(t["max_score"] for t in data["tests"]))
    g.seconds = float(data["execution_time"])
    g.failed = tuple(t["name"] for t in data["tests"] if t["status"] != "passed")
    g.per_test = tuple((t["name"], float(t["score"]), t["status"]) for t in data["tests"])
    if proc.returncode != 0:
        g.error = f"harness error (exit {proc.returncode})"
    return g


def parse_targets(specs: list[str]) -> list[tuple[str, Path]]:
    """``NAME=PATH`` or ``PATH``; a folder of folders expands to its subfolders."""
    out: list[tuple[str, Path]] = []
    for spec in specs:
        name, _, path_text = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(path_text)
        if not path.is_dir():
            raise ConfigError(f"submission {path} is not a folder; pass submission folders "
                              "(or one folder that holds them)")
        subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        has_files = any(p.is_file() for p in path.iterdir())
        if not name and subdirs and not has_files:
            out += [(p.name, p) for p in subdirs]
        else:
            out.append((name or path.name, path))
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"two submissions are named {', '.join(dup)}; name them with NAME=PATH")
    return out


def grade_all(*, assignment: str, targets: list[tuple[str, Path]], out_dir: Path,
              jobs: int = 0, isolation: str = "sandbox") -> list[Graded]:
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[str, Path]) -> Graded:
        name, path = item
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        return grade_in_subprocess(assignment, path, folder / "results.json",
                                   isolation=isolation, name=name)

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        return list(pool.map(one, targets))
