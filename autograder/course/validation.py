"""`autograder validate`: prove that a hidden suite separates right from wrong.

For each assignment: the reference solution gets full marks, the template gets zero,
every shipped mutant loses points, every shipped correct variant gets full marks (a
variant marked ``slow = true`` may lose only the tests tagged "performance"), and two
runs of the solution give equal scores. Each grading is a separate `autograder grade`
process (clean state, runs in parallel); a mutant's stops at its first failed test.
Then, where a suite has performance tests, the solution and each slow variant are graded
once more beside a busy neighbour (one spinning process per CPU): a performance verdict
that flips under load fails validation (its time limit or ratio band sits too close to
the code it judges).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder.config import Isolation, Layout, assignment_names, find_course_root, resolve_name
from autograder.course.bulk import grade_in_subprocess
from autograder.course.mutants import apply_mutant, load_mutants, load_variants

TIMED_TAG = "performance"


@dataclass
class Row:
    assignment: str
    subject: str  # solution, solution (2nd run), template, mutant <name>, variant <name>
    expect: str  # full | zero | less | equal
    score: float = 0.0
    max_score: float = 0.0
    ok: bool = False
    note: str = ""
    broken: bool = False  # the harness failed: never counts as "caught" or "zero"
    per_test: tuple[tuple[str, float, str], ...] = ()
    timed: tuple[str, ...] = ()  # the tests tagged "performance" (timing-sensitive)
    reference: Row | None = None  # the unloaded grading a busy-neighbour row compares with
    seconds: float = 0.0  # the grading's wall time (what makes a validate slow)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)


def validate(*, assignments: list[str], jobs: int = 0, isolation: Isolation = Isolation.SANDBOX,
             root: Path | None = None, grade_args: list[str] | None = None,
             on_start: Callable[[int], None] | None = None,
             on_done: Callable[[Row], None] | None = None) -> Report:
    """``on_start(n)``: the number of gradings, once known; ``on_done(row)`` after each."""
    root = root or find_course_root()
    names = [resolve_name(root, a) for a in assignments] or assignment_names(root)
    with tempfile.TemporaryDirectory(prefix="autograder-validate-") as tmp_name:
        return _validate(root, names, Path(tmp_name), jobs, isolation, grade_args or [],
                         on_start or (lambda n: None), on_done or (lambda row: None))


def _validate(root: Path, names: list[str], tmp: Path, jobs: int, isolation: Isolation,
              grade_args: list[str], on_start: Callable[[int], None],
              on_done: Callable[[Row], None]) -> Report:
    jobs_spec: list[tuple[Row, Path]] = []
    for name in names:
        layout = Layout(root, name)
        layout.config()  # a bad config fails here, once, not in every grading
        jobs_spec.append((Row(name, "solution", "full"), layout.solution))
        jobs_spec.append((Row(name, "solution (2nd run)", "equal"), layout.solution))
        jobs_spec.append((Row(name, "template", "zero"), layout.template))
        for mutant in load_mutants(layout.solution):
            dest = apply_mutant(layout.solution, mutant, tmp / name / "mutants" / mutant.name)
            jobs_spec.append((Row(name, f"mutant {mutant.name}", "less", note=mutant.description), dest))
        for variant in load_variants(layout.solution):
            dest = apply_mutant(layout.solution, variant, tmp / name / "variants" / variant.name)
            jobs_spec.append((Row(name, f"variant {variant.name}",
                                  "full but speed" if variant.slow else "full"), dest))

    solution_results: dict[str, Path] = {}

    def run(item: tuple[int, tuple[Row, Path]]) -> None:
        i, (row, sub) = item
        if row.subject == "solution":
            solution_results[row.assignment] = tmp / f"r{i}.json"
        # A mutant only has to lose points: its first failed test proves it. The quickest
        # tests (by the solution's grading) run first, so that failure comes soon.
        extra = ["--first-failure"] if row.expect == "less" else []
        if extra and row.assignment in solution_results:
            extra.append(f"--quickest-first={solution_results[row.assignment]}")
        start = time.monotonic()
        g = grade_in_subprocess(row.assignment, sub, tmp / f"r{i}.json", isolation=isolation,
                                course=root, grade_args=[*grade_args, *extra])
        row.seconds = time.monotonic() - start
        row.score, row.max_score, row.broken = g.score, g.max_score, g.broken
        row.per_test = g.per_test
        row.timed = _timed_tests(g.results)
        note = g.error or (f"failed: {', '.join(g.failed[:4])}" + (" ..." if len(g.failed) > 4 else "")
                           if g.failed else "")
        if row.expect != "less" or not row.note or row.broken:
            row.note = note
        on_done(row)

    # The solution first: when its grading breaks (a hidden test that does not import, a
    # bad config), every other run would break the same way; say it once.
    numbered = list(enumerate(jobs_spec))
    on_start(len(numbered))
    solutions = [item for item in numbered if item[1][0].subject == "solution"]
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        list(pool.map(run, solutions))
        failed = {row.assignment for _, (row, _) in solutions if row.broken}
        for row, _ in jobs_spec:
            if row.assignment in failed and row.subject != "solution":
                row.broken, row.note = True, "not run: grading the solution failed (row above)"
        rest = [item for item in numbered if item[1][0].subject != "solution"
                and item[1][0].assignment not in failed]
        # Slowest first (full runs of the suite), so the pool does not end on a long tail.
        rest.sort(key=lambda item: item[1][0].expect not in ("full", "equal"))
        list(pool.map(run, rest))
    # Beside a busy neighbour, one at a time (nothing else of validate's own running).
    busy = []
    for row, sub in jobs_spec:
        if (row.subject == "solution" or row.expect == "full but speed") and row.timed \
                and not row.broken:
            busy.append((Row(row.assignment, f"{row.subject} (busy neighbour)", "steady",
                             reference=row), sub))
    if busy:
        on_start(len(numbered) + len(busy))
        base = len(numbered)
        with _busy_neighbour():
            for i, item in enumerate(busy):
                run((base + i, item))
        jobs_spec += busy
    first = {row.assignment: row for _, (row, _) in solutions}
    for row, _ in jobs_spec:
        if row.broken:
            row.ok = False
        elif row.expect == "full":
            ref = first[row.assignment]
            row.ok = row.max_score > 0 and row.score == row.max_score and not row.note
            if row.ok and row is not ref and row.max_score != ref.max_score:
                row.ok, row.note = False, (f"graded out of {row.max_score:g}, the solution out "
                                           f"of {ref.max_score:g}: some tests did not run")
        elif row.expect == "full but speed":
            ref_score = {name: score for name, score, _ in first[row.assignment].per_test}
            short = [name for name, score, _ in row.per_test
                     if name not in row.timed and score < ref_score.get(name, 0.0)]
            row.ok = row.max_score > 0 and not short
            row.note = (f"loses points outside the performance tests: {', '.join(short[:3])}"
                        if short else row.note or "a slow variant: only speed tests may fail")
        elif row.expect == "steady":
            assert row.reference is not None
            calm = {name: status for name, _, status in row.reference.per_test}
            flipped = [name for name, _, status in row.per_test
                       if name in row.timed and status != calm.get(name)]
            row.ok = not flipped
            row.note = (f"verdict flips under load: {', '.join(flipped[:3])}" if flipped
                        else f"{len(row.timed)} performance tests: same verdicts under load")
        elif row.expect == "zero":
            row.ok = row.score == 0 and row.max_score > 0
        elif row.expect == "less":
            # Caught where a test that ran scored less than on the solution (a failure, or
            # less partial credit); a test the stop left unrun proves nothing.
            ref = first[row.assignment]
            ref_score = {name: score for name, score, _ in ref.per_test}
            caught = [name for name, score, status in row.per_test
                      if status != "not run" and score < ref_score.get(name, 0.0)]
            row.ok = row.score < row.max_score and bool(caught)
            row.note = (f"caught by {caught[0]!r}: {row.note}" if caught
                        else f"not caught (no test that the solution passes fails): {row.note}")
        elif row.expect == "equal":
            # Equal test by test, not only in total: flaky tests could cancel out.
            ref = first[row.assignment]
            row.ok = not ref.broken and row.per_test == ref.per_test
            diff = [a[0] for a, b in zip(row.per_test, ref.per_test, strict=False) if a != b]
            row.note = (f"differs from the first run: {', '.join(diff[:3])}" if diff else
                        row.note or f"first run {ref.score:g}")
    return Report([r for r, _ in jobs_spec])


def _timed_tests(results: Path) -> tuple[str, ...]:
    try:
        tests = json.loads(results.read_text())["tests"]
        return tuple(t["name"] for t in tests if TIMED_TAG in t.get("tags", []))
    except (OSError, ValueError, KeyError, TypeError):
        return ()


class _busy_neighbour:  # noqa: N801 - used as a context manager, like a function
    """One process per CPU spinning at normal priority for as long as the block runs."""

    def __enter__(self) -> None:
        # Each spinner stops as soon as validate is gone (even after SIGKILL): it checks
        # that its parent is still the one that started it.
        spin = f"import os\nwhile os.getppid() == {os.getpid()}: pass"
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.procs = [subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for _ in range(cpus or 1)]

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
