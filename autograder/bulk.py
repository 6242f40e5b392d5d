"""Bulk grading: many submissions, each graded by its own `autograder grade` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import results
from .errors import ConfigError
from .results import harness_cause
from .submission import holds_a_module


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


DEFAULT_TIMEOUT = 3600.0  # seconds one submission may take in bulk grading


def grade_in_subprocess(assignment: str, submission: Path, out: Path, *, isolation: str = "sandbox",
                        name: str | None = None, course: Path | None = None,
                        timeout: float = DEFAULT_TIMEOUT) -> Graded:
    cmd = [sys.executable, "-I", "-m", "autograder", "grade", assignment, str(submission),
           "-o", str(out), "--isolation", isolation]
    if course is not None:
        cmd += ["--course", str(course)]
    # -I: the current folder (maybe a submission) never lands on the grader's sys.path.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    overdue = False
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM: `grade` fails closed (results.json with every test at 0); then the group.
        overdue = True
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
    g = Graded(name or submission.name, submission, out, exit_code=proc.returncode)
    if overdue:
        g.error = f"grading took longer than {timeout:g} s and was stopped"
        if not out.exists():  # stopped before it could fail closed itself (still starting)
            results.write(results.fail_closed([], g.error, execution_time=timeout), out)
    if not out.exists():
        g.error = f"no results.json (exit {proc.returncode}): {stderr[-500:]}"
        return g
    data = json.loads(out.read_text())
    g.score = float(data["score"])
    g.max_score = float(sum(t["max_score"] for t in data["tests"]))
    g.seconds = float(data["execution_time"])
    g.failed = tuple(t["name"] for t in data["tests"] if t["status"] != "passed")
    g.per_test = tuple((t["name"], float(t["score"]), t["status"]) for t in data["tests"])
    if proc.returncode != 0 and not overdue:
        cause = harness_cause(data) or stderr.strip()[-300:]
        g.error = f"harness error (exit {proc.returncode}): {cause}"
    return g


def parse_targets(specs: list[str], modules: Collection[str] = (),
                  ) -> tuple[list[tuple[str, Path]], list[Path]]:
    """``NAME=PATH`` or ``PATH`` -> (name, folder) pairs, and the files left out.

    A folder that holds one of the assignment's modules (NAME.py or NAME.ipynb) is one
    submission; otherwise a folder with subfolders is a folder of submissions, and the
    files beside them (an export's metadata, .DS_Store, notes) are left out and listed."""
    out: list[tuple[str, Path]] = []
    ignored: list[Path] = []
    for spec in specs:
        name, _, path_text = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(path_text)
        if not path.is_dir():
            raise ConfigError(f"submission {path} is not a folder; pass submission folders "
                              "(or one folder that holds them)")
        entries = sorted(path.iterdir())
        subdirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
        is_submission = holds_a_module(path, modules) or not subdirs
        if name or is_submission:
            out.append((name or path.resolve().name, path))
        else:
            out += [(p.name, p) for p in subdirs]
            ignored += [p for p in entries if p not in subdirs]
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"two submissions are named {', '.join(dup)}; name them with NAME=PATH")
    return out, ignored


def grade_all(*, assignment: str, targets: list[tuple[str, Path]], out_dir: Path,
              jobs: int = 0, isolation: str = "sandbox", course: Path | None = None,
              timeout: float = DEFAULT_TIMEOUT) -> list[Graded]:
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[str, Path]) -> Graded:
        name, path = item
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        return grade_in_subprocess(assignment, path, folder / "results.json",
                                   isolation=isolation, name=name, course=course,
                                   timeout=timeout)

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        return list(pool.map(one, targets))
