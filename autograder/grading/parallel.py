"""A grading's tests spread over pytest-xdist workers, each with its own sandboxed workers.

Data flow::

    controller (no GradingSession, no sandbox)        xdist worker k (a GradingSession)
      collection ids, in order  <-- node_collection_finished --  collects the suite
      runs nothing                                               runs its share of tests
      merges the Outcomes       <-- workeroutput["autograder"] -- Outcome.to_json()
      writes results.json once

Outcomes cross the boundary as plain JSON-able dicts (execnet's serializer), never pickles.
A worker that dies, or tests no worker reported, make the grading a harness error with
every test listed at 0, as a serial grading that breaks.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autograder.grading import results

WORKER_KEY = "autograder"


@dataclass
class Outcome:
    records: list[results.TestRecord]
    errors: list[str]  # non-empty: the harness failed (fail closed)
    extra: dict[str, Any]
    output: str
    leaderboard: list[dict[str, Any]]
    elapsed: float

    def to_results(self) -> dict[str, Any]:
        if self.errors:
            return results.fail_closed(self.records, "\n\n".join(self.errors),
                                       execution_time=self.elapsed, extra_data=self.extra)
        return results.build(self.records, execution_time=self.elapsed, output=self.output,
                             extra_data=self.extra, leaderboard=self.leaderboard)

    def to_json(self) -> dict[str, Any]:
        return {"records": [dataclasses.asdict(r) for r in self.records], "errors": self.errors,
                "extra": self.extra, "output": self.output, "leaderboard": self.leaderboard,
                "elapsed": self.elapsed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls([results.TestRecord(**r) for r in data["records"]], list(data["errors"]),
                   dict(data["extra"]), str(data["output"]), list(data["leaderboard"]),
                   float(data["elapsed"]))


def merge(parts: list[Outcome], order: list[str], elapsed: float) -> Outcome:
    """One Outcome of the workers' parts: records in collection order, every test listed
    (a test that no worker reported is a harness error), output lines once each."""
    by_id: dict[str, results.TestRecord] = {}
    for part in parts:
        for rec in part.records:
            # every worker collects (and lists) the whole suite: the one that ran a test has
            # it; for a test none ran, the one that says why (a deadline) is kept
            held = by_id.get(rec.nodeid)
            if (held is None or (held.outcome == "not run" and rec.outcome != "not run")
                    or (held.outcome == rec.outcome == "not run" and rec.output
                        and not held.output)):
                by_id[rec.nodeid] = rec
    errors = [e for part in parts for e in part.errors]
    missing = [n for n in order if n not in by_id]
    if missing:
        errors.append(f"no xdist worker reported {len(missing)} tests: {', '.join(missing[:5])}")
        for nodeid in missing:
            by_id[nodeid] = results.TestRecord(nodeid=nodeid, name=nodeid, max_score=0.0,
                                               visibility="visible")
    if not parts:
        errors.append("no xdist worker finished")
    records = [by_id[n] for n in order] + [r for n, r in by_id.items() if n not in order]
    extra: dict[str, Any] = dict(parts[0].extra) if parts else {}
    stopped = [s for part in parts for s in part.extra.get("stopped", [])]
    if stopped:
        extra["stopped"] = stopped[:50]
    for part in parts:
        if "timed_out" in part.extra:
            extra["timed_out"] = part.extra["timed_out"]
    lines: dict[str, None] = {}
    for part in parts:
        for line in part.output.splitlines():
            lines.setdefault(line)
    return Outcome(records, errors, extra, "\n".join(lines),
                   [entry for part in parts for entry in part.leaderboard], elapsed)


class Controller:
    """The xdist controller's side of a grading: collects and writes, runs no student code."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.start = time.monotonic()
        self.order: list[str] = []
        self.parts: list[Outcome] = []
        self.crashed: list[str] = []

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.order:
            self.order = list(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get(WORKER_KEY)
        if error or data is None:
            self.crashed.append(f"xdist worker {getattr(node, 'gateway', node)} ended without "
                                f"its results: {error or 'no report'}")
            return
        self.parts.append(Outcome.from_json(data))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        path = self.config.getoption("ag_results")
        if not path:
            return
        outcome = merge(self.parts, self.order, time.monotonic() - self.start)
        outcome.errors += self.crashed
        results.write(outcome.to_results(), Path(path))


def is_controller(config: pytest.Config) -> bool:
    """The xdist controller of a parallel run (its workers have ``workerinput``)."""
    return (not hasattr(config, "workerinput")
            and (config.getoption("numprocesses", None) or 0) not in (0, "0"))


__all__ = ["Controller", "Outcome", "WORKER_KEY", "is_controller", "merge"]
