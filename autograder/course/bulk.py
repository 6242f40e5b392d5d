"""Bulk grading: many submissions, each graded by its own `autograder grade` process."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.config import SUBMISSION_TIMEOUT, Isolation, Layout, find_course_root, resolve_name
from autograder.course.exports import (
    METADATA,
    Export,
    Submitters,
    find_export,
    is_export_zip,
    read_export,
    unpack_export,
)
from autograder.course.journal import Entry, Journal, content_hash, file_hash, suite_hash
from autograder.errors import ConfigError, SubmissionError
from autograder.grading import results
from autograder.grading.results import harness_cause
from autograder.grading.submission import extract_zip, holds_a_module, is_zip


@dataclass
class Graded:
    name: str
    submission: Path
    results: Path
    score: float = 0.0
    max_score: float = 0.0
    exit_code: int = 0  # of the `grade` process (after a timeout: whatever SIGTERM left)
    seconds: float = 0.0
    failed: tuple[str, ...] = ()
    per_test: tuple[tuple[str, float, str], ...] = ()  # (name, score, status) in order
    error: str = ""  # why it was not graded normally (shown in the table)
    # The reason in ``error`` is the submission's (stopped by --timeout, a zip that does not
    # unpack): results.json says so to the student, and it is no harness error.
    students_fault: bool = False
    timed_out: bool = False
    collision: bool = False  # another submission of the batch has the same name: not graded
    reused: bool = False  # an earlier run's results (same content, suite and harness)

    @property
    def broken(self) -> bool:
        """The harness failed on this submission (the batch exits 2)."""
        return not self.students_fault and (self.exit_code != 0 or bool(self.error))

    @property
    def status(self) -> str:
        """grades.csv's status column."""
        if self.collision:
            return "name collision"
        if self.broken:
            return "harness error"
        if self.timed_out:
            return "timed out"
        if self.students_fault:
            return "not graded"
        return "reused" if self.reused else "graded"


def check_timeout(timeout: float) -> None:
    """--timeout must be a positive, finite number of seconds (a usage error otherwise)."""
    if isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0:
        return
    shown = f"{timeout:g}" if isinstance(timeout, (int, float)) else repr(timeout)
    raise ConfigError(f"--timeout must be a positive number of seconds, not {shown}; "
                      f"pass e.g. --timeout {SUBMISSION_TIMEOUT:g}")


# Collects the hidden suite (never runs it) against an empty submission: the expected tests
# with their points, for results.json files that bulk writes itself.
_COLLECT = """\
import sys, tempfile
from pathlib import Path
from autograder.config import Isolation, Layout, find_course_root, resolve_name
from autograder.grading.runner import hidden_suite, run_suite
assignment, course, out = sys.argv[1:4]
root = find_course_root(explicit=Path(course) if course else None)
layout = Layout(root, resolve_name(root, assignment))
with tempfile.TemporaryDirectory(prefix="autograder-collect-") as tmp:
    run_suite(suite=hidden_suite(layout), submission=Path(tmp), output=Path(out),
              isolation=Isolation.NONE, extra_args=["--collect-only"])
"""


class ExpectedTests:
    """The assignment's tests (names, points, visibility, tags), collected once and only
    when needed (a zip that does not unpack, a grading stopped before it listed them)."""

    def __init__(self, assignment: str, course: Path | None) -> None:
        self.assignment = assignment
        self.course = course
        self._lock = threading.Lock()
        self._tests: list[dict[str, Any]] | None = None

    def records(self) -> list[results.TestRecord]:
        with self._lock:
            if self._tests is None:
                self._tests = self._collect()
        return _records(self._tests)

    def _collect(self) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="autograder-expected-") as tmp:
            out = Path(tmp) / "results.json"
            cmd = [sys.executable, "-I", "-c", _COLLECT, self.assignment,
                   str(self.course or ""), str(out)]
            try:
                subprocess.run(cmd, capture_output=True, timeout=600, check=False)
            except subprocess.TimeoutExpired:
                return []
            return _tests_of(out)


def _tests_of(path: Path) -> list[dict[str, Any]]:
    """The tests of a results.json (without the staff-only harness entry); [] if unusable."""
    try:
        data = json.loads(path.read_text())
        return [t for t in data["tests"] if results.HARNESS_TAG not in t.get("tags", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _records(tests: list[dict[str, Any]]) -> list[results.TestRecord]:
    recs = []
    for t in tests:
        unavailable = t.get("status") == "passed" and not t.get("max_score")  # e.g. no CUDA
        recs.append(results.TestRecord(
            nodeid=str(t["name"]), name=str(t["name"]), max_score=float(t["max_score"]),
            visibility=str(t.get("visibility", "visible")), tags=list(t.get("tags", [])),
            outcome="unavailable" if unavailable else "failed",
            output=str(t.get("output", "")) if unavailable else ""))
    return recs


def _complete(path: Path) -> bool:
    """A results.json of a grading that ran to its end (not a fail-closed one)."""
    extra = _extra_of(path)
    return bool(extra) and not extra.get("harness_error", False) and bool(_tests_of(path))


def _extra_of(path: Path) -> dict[str, Any]:
    try:
        extra = json.loads(path.read_text()).get("extra_data", {})
        return dict(extra) if isinstance(extra, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def grade_in_subprocess(assignment: str, submission: Path, out: Path, *, isolation: Isolation = Isolation.SANDBOX,
                        name: str | None = None, course: Path | None = None,
                        timeout: float = SUBMISSION_TIMEOUT,
                        expected: ExpectedTests | None = None,
                        grade_args: list[str] | None = None) -> Graded:
    """Grade one submission (a folder, or a .zip unpacked into a temp folder first) with
    `autograder grade` in a process of its own, stopped after ``timeout`` seconds."""
    check_timeout(timeout)
    expected = expected or ExpectedTests(assignment, course)
    if not is_zip(submission):
        return _grade_folder(assignment, submission, out, isolation=isolation, name=name,
                             course=course, timeout=timeout, expected=expected,
                             grade_args=grade_args or [])
    name = name or submission.stem
    with tempfile.TemporaryDirectory(prefix="autograder-zip-") as tmp:
        folder = Path(tmp) / (submission.stem or "submission")
        folder.mkdir()
        try:
            extract_zip(submission, folder)
        except SubmissionError as exc:
            write_unpack_failure(submission, exc, out, expected)
            g = Graded(name, submission, out, error=str(exc), students_fault=True)
            _read(g)
            return g
        g = _grade_folder(assignment, folder, out, isolation=isolation, name=name,
                          course=course, timeout=timeout, expected=expected,
                          grade_args=grade_args or [])
        g.submission = submission
        return g


def write_unpack_failure(submission: Path, exc: SubmissionError, out: Path,
                         expected: ExpectedTests) -> None:
    """results.json for a zip that cannot be unpacked: the student is told why, every
    expected test is listed at 0 (no harness error)."""
    out.unlink(missing_ok=True)
    data = results.not_graded(
        expected.records(), output=f"Your submission could not be graded: {exc}",
        test_output=f"Not graded: {submission.name} could not be unpacked (see above).",
        staff_note=f"{submission} was not graded: {exc}", execution_time=0.0)
    results.write(data, out)


# `grade --timeout` stops the running test and keeps the finished ones; if the grading
# still runs this much later (grader-side code stuck), the process is stopped from outside.
BACKSTOP = 60.0


def _grade_folder(assignment: str, submission: Path, out: Path, *, isolation: Isolation,
                  name: str | None, course: Path | None, timeout: float,
                  expected: ExpectedTests, grade_args: list[str]) -> Graded:
    cmd = [sys.executable, "-I", "-m", "autograder", "grade", assignment, str(submission),
           "-o", str(out), "--isolation", isolation, "--timeout", repr(float(timeout)),
           *grade_args]
    if course is not None:
        cmd += ["--course", str(course)]
    out.unlink(missing_ok=True)  # a results.json of an earlier run is not this one's
    start = time.monotonic()
    # -I: the current folder (maybe a submission) never lands on the grader's sys.path.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    overdue = False
    try:
        _, stderr = proc.communicate(timeout=timeout + BACKSTOP)
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
    if overdue and _complete(out):
        overdue = False  # it had finished (results written) as the timeout came: keep them
        g.exit_code = 0
    if overdue:
        # Most likely the submission's (an endless loop at import, very slow code): the
        # student is told so, at 0 points, with every expected test listed.
        g.error = f"grading took longer than {timeout:g} s and was stopped"
        g.students_fault = g.timed_out = True
        records = _records(_tests_of(out)) or expected.records()
        data = results.timed_out(records, limit=timeout, execution_time=time.monotonic() - start,
                                 extra_data=_extra_of(out))
        results.write(data, out)
    if not out.exists():
        g.error = f"no results.json (exit {proc.returncode}): {stderr[-500:]}"
        return g
    data = _read(g)
    extra = data.get("extra_data") or {}
    if extra.get("timed_out") and not extra.get("harness_error") and proc.returncode == 0:
        # stopped by its own --timeout, finished tests kept: the submission's, no harness error
        g.timed_out = g.students_fault = True
        g.error = f"grading took longer than {timeout:g} s and was stopped"
    if proc.returncode != 0 and not overdue:
        cause = harness_cause(data) or stderr.strip()[-300:]
        g.error = f"harness error (exit {proc.returncode}): {cause}"
    return g


def _read(g: Graded) -> dict[str, Any]:
    """Fills in the scores and failed tests of ``g.results``; returns the results read."""
    data: dict[str, Any] = json.loads(g.results.read_text())
    g.score = float(data["score"])
    g.max_score = float(sum(t["max_score"] for t in data["tests"]))
    g.seconds = float(data["execution_time"])
    g.failed = tuple(t["name"] for t in data["tests"] if t["status"] != "passed")
    # "not run" (a stop at the first failure, a deadline): neither passed nor failed
    g.per_test = tuple((t["name"], float(t["score"]),
                        "not run" if str(t.get("output", "")).startswith("Not run:")
                        else t["status"]) for t in data["tests"])
    return data


@dataclass
class Targets:
    submissions: list[tuple[str, Path]]  # (name, folder or zip), names unique
    ignored: list[Path]  # files beside the submissions (an export's metadata...)
    collisions: dict[str, list[Path]]  # a name given to several submissions: none graded
    # who submitted what, from a Gradescope export's metadata (by submission name)
    submitters: dict[str, Submitters] = field(default_factory=dict)
    unpacked: list[tempfile.TemporaryDirectory[str]] = field(default_factory=list)
    # names that cannot be an output folder ("..", "grades.csv"): not graded, a row each
    bad_names: list[tuple[str, Path]] = field(default_factory=list)

    def close(self) -> None:
        """Remove the exports unpacked for this batch."""
        for tmp in self.unpacked:
            tmp.cleanup()
        self.unpacked.clear()


def parse_targets(specs: list[str], modules: Collection[str] = ()) -> Targets:
    """``NAME=PATH`` or ``PATH`` -> (name, submission) pairs, and the files left out.

    A Gradescope export (its zip, or the folder it unpacks to: submission_metadata.yml
    beside submission_<id>/ folders) is a folder of submissions whose submitters are
    known; a zip export is unpacked into a temporary folder that ``Targets.close`` removes.

    A folder that holds one of the assignment's modules (NAME.py or NAME.ipynb) is one
    submission, and so is a zip file (named after the file: carol.zip -> carol). Otherwise
    a folder with subfolders or zips is a folder of submissions (each subfolder and each
    zip is one), and the other files beside them (an export's metadata, .DS_Store, notes)
    are left out and listed; a folder with neither is one submission."""
    out: list[tuple[str, Path]] = []
    ignored: list[Path] = []
    targets = Targets(out, ignored, {})
    for spec in specs:
        name, _, path_text = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(path_text)
        # A named spec, or one that holds the assignment's files, is one submission even
        # with a file named like an export's metadata in it.
        maybe_export = not name and not (path.is_dir() and holds_a_module(path, modules))
        export_root = find_export(path) if maybe_export else None
        if export_root is None and maybe_export and is_export_zip(path, modules):
            tmp = tempfile.TemporaryDirectory(prefix="autograder-export-")
            targets.unpacked.append(tmp)
            export_root = unpack_export(path, Path(tmp.name))
        export = (_gradescope_export(export_root) if export_root is not None
                  and not holds_a_module(export_root, modules) else None)
        if export_root is not None and export is not None:
            entries = sorted(export_root.iterdir())
            found = [(p.stem if is_zip(p) else p.name, p) for p in entries
                     if (p.is_dir() and not p.name.startswith(".")) or is_zip(p)]
            out += found
            for sub_name, _ in found:
                targets.submitters[sub_name] = export.submitters.get(sub_name, Submitters())
            ignored += [p for p in entries if p not in dict(found).values()
                        and p.name != METADATA]
            continue
        if is_zip(path):
            out.append((name or path.stem, path))
            continue
        if not path.is_dir():
            raise ConfigError(f"submission {path} is not a folder or a .zip file; pass "
                              "submission folders or zips (or one folder that holds them)")
        entries = sorted(path.iterdir())
        subdirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
        zips = [p for p in entries if is_zip(p)]
        is_submission = holds_a_module(path, modules) or not (subdirs or zips)
        if name or is_submission:
            out.append((name or path.resolve().name, path))
        else:
            out += [(p.stem if p in zips else p.name, p) for p in sorted(subdirs + zips)]
            ignored += [p for p in entries if p not in subdirs and p not in zips]
    names = [n for n, _ in out]
    dup = {n for n in names if names.count(n) > 1}
    targets.collisions = {n: [p for m, p in out if m == n] for n in sorted(dup)}
    targets.submissions = []
    for n, p in out:
        if n in dup:
            continue
        if not usable_name(n):  # e.g. "...zip" (stem ".."), "journal.jsonl.zip"
            targets.bad_names.append((n, p))
        else:
            targets.submissions.append((n, p))
    return targets


# grade-all's own files in the output folder: no submission may be named like them
RESERVED = {"journal.jsonl", "grades.csv", "report.html"}


def usable_name(name: str) -> bool:
    """A submission's name is one folder of the output: one plain path component that is
    none of grade-all's own files."""
    return (bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name
            and "\0" not in name and name not in RESERVED)


def _gradescope_export(root: Path) -> Export | None:
    """The export's submitters, when its metadata is Gradescope's (a mapping whose entries
    list submitters); None for a file of that name that is something else."""
    try:
        export = read_export(root)
    except ConfigError:
        return None
    return export if any(who.names for who in export.submitters.values()) else None


def grade_all(*, assignment: str, targets: Targets | list[tuple[str, Path]], out_dir: Path,
              jobs: int = 0, isolation: Isolation = Isolation.SANDBOX, course: Path | None = None,
              timeout: float = SUBMISSION_TIMEOUT, grade_args: list[str] | None = None,
              reuse: bool = True, on_done: Callable[[Graded], None] | None = None,
              dask: str | None = None) -> list[Graded]:
    """Grade every submission into ``out_dir/NAME/results.json``, in parallel, journaled.

    ``reuse``: take an earlier run's results where the journal says that the submission, the
    hidden suite and the harness are unchanged. An earlier results.json that is graded again
    is kept as results.previous.json. Colliding names are not graded (a row each).
    ``dask``: grade on a Dask cluster (``"local"``: a LocalCluster of ``jobs`` worker
    processes; else a scheduler address) instead of local processes; every node must see
    the course, the submissions and ``out_dir`` at the same paths, and grades each one
    with `autograder grade` as here (the same sandbox)."""
    check_timeout(timeout)
    if jobs < 0:
        raise ConfigError(f"--jobs must be 0 (one per CPU) or more, not {jobs}")
    if not isinstance(targets, Targets):
        targets = Targets(list(targets), [], {})
    out_dir.mkdir(parents=True, exist_ok=True)
    expected = ExpectedTests(assignment, course)
    root = find_course_root(explicit=course)
    # Gradings under other settings are other gradings; in-process ones (student code in
    # the grader, which it can forge) are never reused.
    reuse = reuse and isolation == Isolation.SANDBOX
    suite = suite_hash(Layout(root, resolve_name(root, assignment)),
                       f"{isolation} {timeout!r} {sorted(grade_args or [])}")
    journal = Journal(out_dir)

    def one(item: tuple[str, Path]) -> Graded:
        name, path = item
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / "results.json"
        content = content_hash(path)
        earlier = journal.reusable(name, content, suite, out) if reuse else None
        if earlier is not None:
            g = Graded(name, path, out, reused=True)
            _read(g)
        else:
            if out.exists():  # an earlier run's, graded again: nothing removed silently
                os.replace(out, folder / "results.previous.json")
            g = _grade_one(name, path, out, expected)
            if out.is_file():
                try:
                    journal.record(Entry(name=name, submission=str(path), content=content,
                                         suite=suite, results=file_hash(out), status=g.status,
                                         score=g.score, max_score=g.max_score,
                                         seconds=g.seconds))
                except OSError:
                    pass  # not journaled: a rerun grades it again, nothing is lost
        if on_done is not None:
            on_done(g)
        return g

    def _grade_one(name: str, path: Path, out: Path, expected: ExpectedTests) -> Graded:
        try:
            if client is None:
                g = grade_in_subprocess(assignment, path, out, isolation=isolation, name=name,
                                        course=course, timeout=timeout, expected=expected,
                                        grade_args=grade_args)
            else:
                # absolute paths: a node's working folder is not this one's
                g = client.submit(_grade_on_node, assignment, path.resolve(), out.resolve(),
                                  isolation, name, root.resolve(), timeout, grade_args,
                                  pure=False).result()
            problem = _unusable_results(out)
            if problem:  # a node that wrote nothing, or something that is not results.json
                raise RuntimeError(f"the results.json of {name} is {problem}")
            return g
        except Exception as exc:  # noqa: BLE001 - one submission's harness error, not the batch's
            why = f"{type(exc).__name__}: {exc}"
            results.write(results.fail_closed(expected.records(), f"grade-all: {why}\n"
                                              f"{traceback.format_exc()}", execution_time=0.0), out)
            return Graded(name, path, out, error=f"harness error: {why}")

    clashing = [Graded(name, path, out_dir / name / "results.json", collision=True,
                       students_fault=True,
                       error=f"not graded: {len(paths)} submissions are named {name} "
                             f"({', '.join(str(p) for p in paths)}); name them with NAME=PATH")
                for name, paths in targets.collisions.items() for path in paths]
    clashing += [Graded(name, path, out_dir / "-", collision=True, students_fault=True,
                        error=f"not graded: {name!r} cannot name an output folder (it is "
                              "empty, a path, or one of grade-all's own files); name it "
                              "with NAME=PATH")
                 for name, path in targets.bad_names]
    for name in targets.collisions:  # an earlier run's result of that name is not this one's
        earlier = out_dir / name / "results.json"
        if usable_name(name) and earlier.is_file():
            os.replace(earlier, earlier.with_name("results.previous.json"))
    for g in clashing:
        if on_done is not None:
            on_done(g)
    with _cluster(dask, jobs) as (slots, client):
        with ThreadPoolExecutor(max_workers=slots) as pool:
            return list(pool.map(one, targets.submissions)) + clashing


@contextlib.contextmanager
def _cluster(dask: str | None, jobs: int) -> Iterator[tuple[int, Any]]:
    """(parallel gradings, Dask client or None)."""
    if dask is None:
        yield jobs or os.cpu_count() or 1, None
        return
    from distributed import Client, LocalCluster

    cluster = None
    if dask == "local":
        cluster = LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(dask, timeout=30)
        except OSError as exc:
            raise ConfigError(f"no Dask scheduler answers at {dask} ({exc}); start one "
                              "(dask scheduler) or pass --dask local") from exc
    try:
        yield jobs or sum(client.nthreads().values()) or 1, client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _grade_on_node(assignment: str, path: Path, out: Path, isolation: Isolation, name: str,
                   course: Path | None, timeout: float, grade_args: list[str] | None) -> Graded:
    """One grading on a Dask worker: the same `autograder grade` process as locally."""
    return grade_in_subprocess(assignment, path, out, isolation=isolation, name=name,
                               course=course, timeout=timeout, grade_args=grade_args)


def _unusable_results(path: Path) -> str:
    """'' when ``path`` is a valid results.json, else what is wrong with it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as exc:
        return f"unreadable ({exc})"
    try:
        results.validate(data)
    except Exception as exc:  # noqa: BLE001 - jsonschema's ValidationError and kin
        return f"invalid ({str(exc).splitlines()[0][:200]})"
    return ""


def stale_results(out_dir: Path, names: Collection[str]) -> list[str]:
    """Folders of ``out_dir`` with a results.json of a submission not in this batch (an
    earlier run's): kept, and listed so that nobody uploads them by mistake."""
    try:
        folders = sorted(p for p in out_dir.iterdir() if (p / "results.json").is_file())
    except OSError:
        return []
    return [p.name for p in folders if p.name not in names]
