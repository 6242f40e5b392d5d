"""Gradescope ``results.json``: records, assembly, schema validation, fail-closed output."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema

from autograder.errors import ConfigError

MAX_TEST_OUTPUT = 8 * 1024
MAX_STUDENT_STDOUT = 4 * 1024
# The tag of the staff-only "Harness error" entry that a failed grading adds to the tests.
HARNESS_TAG = "harness"
# How a test ended: "unavailable" cannot run here (no CUDA) and is left out of the maximum.
Outcome = Literal["passed", "failed", "not run", "unavailable"]


@dataclass
class TestRecord:
    nodeid: str
    name: str
    max_score: float
    visibility: str
    tags: list[str] = field(default_factory=list)
    hint: str = ""
    outcome: Outcome = "not run"
    score: float = 0.0
    output: str = ""
    staff_output: str = ""
    partial: float | None = None
    duration: float | None = None  # seconds, when the test ran (grade-all's slowest tests)

    @property
    def counts(self) -> bool:
        """Tests that cannot run here (no CUDA) are excluded from the maximum."""
        return self.outcome != "unavailable"


def scan_test_file(path: Path, nodeid_prefix: str) -> list[TestRecord]:
    """Tests of a file pytest could not collect (it may not even parse): names from the
    text, so a fail-closed results.json still lists them, with 0 points."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    names = re.findall(r"^def (test_\w+)\(", text, flags=re.MULTILINE)
    return [TestRecord(nodeid=f"{nodeid_prefix}::{n}", name=n, max_score=0.0, visibility="visible")
            for n in dict.fromkeys(names)]


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [truncated: {len(text) - limit} more characters]"


@cache
def schema() -> dict[str, Any]:
    text = resources.files("autograder.grading").joinpath("schema/results.schema.json").read_text()
    return dict(json.loads(text))


def validate(data: dict[str, Any]) -> None:
    jsonschema.validate(data, schema())


def build(records: list[TestRecord], *, execution_time: float, output: str,
          extra_data: dict[str, Any], leaderboard: list[dict[str, Any]],
          harness_error: str | None = None) -> dict[str, Any]:
    tests = []
    for number, rec in enumerate(records, start=1):
        entry: dict[str, Any] = {
            "score": round(rec.score, 6) if rec.counts else 0,
            "max_score": rec.max_score if rec.counts else 0,
            "status": "passed" if rec.outcome == "passed" else "failed",
            "name": rec.name,
            "number": str(number),
            "tags": rec.tags,
            "visibility": rec.visibility,
            "output": truncate(rec.output, MAX_TEST_OUTPUT),
            "output_format": "text",
        }
        if rec.outcome == "unavailable":
            entry["status"] = "passed"  # not the student's fault; worth 0 of 0
        # Gradescope shows a test's extra_data to staff only
        extra: dict[str, Any] = {}
        if rec.duration is not None:
            extra["duration"] = round(rec.duration, 3)
        if rec.staff_output:
            extra["staff_traceback"] = truncate(rec.staff_output, MAX_TEST_OUTPUT)
        if extra:
            entry["extra_data"] = extra
        tests.append(entry)
    if harness_error is not None:
        tests.append({
            "score": 0, "max_score": 0, "status": "failed", "name": "Harness error (staff only)",
            "number": str(len(tests) + 1), "tags": [HARNESS_TAG], "visibility": "hidden",
            "output": truncate(harness_error, 64 * 1024), "output_format": "text",
        })
    data: dict[str, Any] = {
        "score": round(sum(t["score"] for t in tests), 6),
        "execution_time": round(max(execution_time, 0.0), 3),
        "output": truncate(output, 32 * 1024),
        "output_format": "text",
        "test_output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": extra_data,
        "tests": tests,
    }
    if leaderboard:
        data["leaderboard"] = leaderboard
    return data


def write(data: dict[str, Any], path: Path) -> None:
    """Validate, then write atomically (a half-written results.json is worse than none)."""
    validate(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"  # NaN is not JSON: refuse it
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        if path.is_dir() and not path.is_symlink():
            # Squatted: in a shared folder (mode 1777) without a mount namespace, a worker
            # can make a folder of this name before the grading ends (root may remove it).
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def fail_closed(records: list[TestRecord], error: str, *, execution_time: float,
                extra_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every expected test present with 0 points, plus a staff-only traceback."""
    for rec in records:
        rec.score = 0.0
        rec.outcome = "failed" if rec.outcome != "unavailable" else rec.outcome
        rec.output = "Not graded: the grader had an internal problem. Staff have been told; " \
                     "your submission will be regraded."
    return build(records, execution_time=execution_time,
                 output="Grading did not complete because of a problem in the grader, not in "
                        "your submission. Staff can see the details.",
                 extra_data=dict(extra_data or {}, harness_error=True), leaderboard=[],
                 harness_error=error)


def not_graded(records: list[TestRecord], *, output: str, test_output: str, staff_note: str,
               execution_time: float, extra_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every expected test present with 0 points, for a submission that could not be graded
    through its own fault (a zip that does not unpack, a grading stopped by its time
    limit): ``output`` tells the student why. Not a harness error (no staff-only harness
    entry, no ``harness_error`` flag); ``staff_note`` goes to ``extra_data``, which
    students do not see. Tests that cannot run here (no CUDA) stay out of the maximum."""
    for rec in records:
        if rec.outcome == "unavailable":
            continue
        rec.score, rec.partial, rec.outcome = 0.0, None, "failed"
        rec.output, rec.staff_output = test_output, ""
    extra = {k: v for k, v in (extra_data or {}).items() if k != "harness_error"}
    extra["staff_note"] = staff_note
    return build(records, execution_time=execution_time, output=output, extra_data=extra,
                 leaderboard=[])


def timed_out(records: list[TestRecord], *, limit: float, execution_time: float,
              extra_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json of a submission stopped by `grade-all --timeout` (``limit`` seconds for
    the whole grading): the student's code most likely hangs or is too slow."""
    return not_graded(
        records, execution_time=execution_time, extra_data=dict(extra_data or {}, timeout_s=limit),
        output=(f"Grading took longer than the limit of {limit:g} seconds for the whole "
                "submission and was stopped: every test scores 0 points. Your code may hang "
                "(an endless loop, for example when a file is imported, or code waiting for "
                "input) or be much too slow; check that importing your files and running the "
                "public tests finish quickly, then resubmit."),
        test_output=(f"Not graded: grading the whole submission took longer than the limit of "
                     f"{limit:g} seconds (see the summary above)."),
        staff_note=(f"stopped by grade-all --timeout {limit:g} after {execution_time:.0f} s; "
                    "regrade with a larger --timeout if the submission is merely slow"))


def harness_cause(data: dict[str, Any], *, full: bool = False) -> str | None:
    """The staff-only harness error of a results.json, shortened for a terminal (its
    first and last lines: what failed, and the exception that ended it)."""
    for t in data.get("tests", []):
        if HARNESS_TAG in t.get("tags", []) and t.get("visibility") == "hidden":
            text = str(t.get("output", "")).strip()
            if full:
                return text
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if not lines:
                return None
            return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return None


def durations(path: Path) -> dict[str, float]:
    """Each test's duration (seconds) in an earlier results.json, by test name."""
    try:
        tests = json.loads(Path(path).read_text())["tests"]
        return {str(t["name"]): float((t.get("extra_data") or {}).get("duration") or 0.0)
                for t in tests}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a results.json with per-test durations ({exc}); "
                          "grade the solution first and pass its results.json") from None
