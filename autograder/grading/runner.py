"""Grade one submission: run the hidden suite under the plugin, always leave results.json.

Keyword-only functions shared by the CLI and the Python API.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autograder.config import AssignmentConfig, Isolation, Layout, find_course_root, resolve_name
from autograder.errors import AutograderError, ConfigError, CourseError, ExitCode
from autograder.grading import results

GRADING_INI = Path(__file__).with_name("grading.ini")


@dataclass(frozen=True)
class Suite:
    """What to run and against which configuration."""

    tests: list[Path]
    config: Path
    support: Path | None
    rootdir: Path
    hide: list[Path]
    # Grading (not a student's check): as root the sandbox's default protections are
    # required (autograder.sandbox.policy), else the grading stops with exit 2.
    enforce: bool = False


def hidden_suite(layout: Layout) -> Suite:
    ref = layout.reference
    public = ref / "public"
    if not any(p for p in _test_files(ref) if public not in p.parents):
        # e.g. a copy of the course that lost hidden/: every student would be graded on the
        # public tests alone, with full marks within reach and nothing said.
        raise CourseError(f"{ref} holds no hidden tests (test_*.py outside public/); "
                          f"restore {ref / 'hidden'} before grading")
    support = layout.solution if layout.solution.is_dir() else layout.template
    return Suite(tests=[layout.reference], config=layout.reference / "assignment.toml",
                 support=support, rootdir=layout.reference, hide=[layout.solution], enforce=True)


def _test_files(folder: Path) -> list[Path]:
    return [p for pattern in ("test_*.py", "*_test.py") for p in folder.rglob(pattern)]


def public_suite(folder: Path) -> Suite:
    """A student's assignment folder: tests/ and assignment.toml as generated."""
    return Suite(tests=[folder / "tests"], config=folder / "assignment.toml", support=folder,
                 rootdir=folder, hide=[])


@dataclass(frozen=True)
class Outcome:
    exit_code: ExitCode
    data: dict[str, Any]


def run_suite(*, suite: Suite, submission: Path, output: Path, isolation: Isolation = Isolation.SANDBOX,
              quiet: bool = True, extra_args: list[str] | None = None,
              require: Sequence[str] = (), allow_missing: Sequence[str] = ()) -> Outcome:
    """Run ``suite`` against ``submission``; write ``output`` whatever happens."""
    start = time.monotonic()
    output = output.resolve()
    if output.exists():
        output.unlink()
    # -c and --confcutdir: no ini file or conftest.py outside the suite's own folder applies.
    args = [*map(str, suite.tests), "-c", str(GRADING_INI), "--rootdir", str(suite.rootdir),
            "--confcutdir", str(suite.rootdir),
            "--submission", str(submission), "--ag-config", str(suite.config),
            "--ag-results", str(output), "--isolation", isolation,
            *[f"--ag-hide={h}" for h in suite.hide if h.exists()], *(extra_args or []),
            *(["--ag-enforce"] if suite.enforce else []),
            *(f"--ag-require={n}" for n in require),
            *(f"--ag-allow-missing={n}" for n in allow_missing)]
    if suite.support is not None:
        args.append(f"--ag-support={suite.support}")
    try:
        limit = AssignmentConfig.load(suite.config).limits.test_timeout
        args += ["-o", f"timeout={limit:g}"]
    except AutograderError:
        pass  # the plugin reports the broken config, failing closed
    # In-process, pytest's report is left out (-p no:terminal) instead of redirected: a
    # breakpoint() suspends pytest's capture and must reach the real terminal. Prints are
    # captured per test either way and shown with the test that made them.
    # (Under pytest-xdist, which needs the reporter and has no terminal for a debugger,
    # the report is redirected as in the sandbox.)
    redirect = quiet and (isolation != Isolation.NONE or "-n" in (extra_args or []))
    if quiet:
        args += ["-q", "--no-header"] if redirect else ["-p", "no:terminal"]
    sink = io.StringIO()
    error = None
    try:
        with contextlib.ExitStack() as stack:
            if redirect:
                stack.enter_context(contextlib.redirect_stdout(sink))
                stack.enter_context(contextlib.redirect_stderr(sink))
            stack.enter_context(_forget_suite_imports(suite))
            code = pytest.main(args, plugins=[] if redirect or not quiet else [_DebuggerOptions()])
    except BaseException:  # noqa: BLE001 - fail closed, whatever broke
        code = -1
        error = traceback.format_exc()
    if output.exists() and error is None:
        data = json.loads(output.read_text())
        broken = data.get("extra_data", {}).get("harness_error", False)
        return Outcome(ExitCode.HARNESS_ERROR if broken else ExitCode.OK, data)
    why = error or f"pytest exited with {code} before results were written\n{sink.getvalue()[-20000:]}"
    data = results.fail_closed(_expected_records(suite), why,
                               execution_time=time.monotonic() - start)
    results.write(data, output)
    return Outcome(ExitCode.HARNESS_ERROR, data)


class _DebuggerOptions:
    """``-p no:terminal`` leaves out the options pytest's debugger reads when a student's
    ``breakpoint()`` suspends the capture (--color, --code-highlight): their defaults."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        for name, default in (("color", "auto"), ("code_highlight", "yes")):
            if not hasattr(config.option, name):
                setattr(config.option, name, default)


@contextlib.contextmanager
def _forget_suite_imports(suite: Suite) -> Iterator[None]:
    """pytest leaves the suite's test modules and conftest in ``sys.modules`` (and their
    folder on ``sys.path``): a second run in this process, with another folder holding a
    file of the same name, would fail collection with "import file mismatch"."""
    path_before = list(sys.path)
    before = set(sys.modules)
    try:
        yield
    finally:
        sys.path[:] = path_before
        folders = [str(p.resolve()) for p in (*suite.tests, suite.rootdir)]
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if any(file.startswith(folder + os.sep) for folder in folders):
                del sys.modules[name]


def _expected_records(suite: Suite) -> list[results.TestRecord]:
    """Best effort list of tests for a fail-closed file when pytest itself could not run."""
    return [rec for folder in suite.tests for path in sorted(folder.rglob("test_*.py"))
            for rec in results.scan_test_file(path, path.relative_to(folder).as_posix())]


def grade(*, assignment: str, submission: Path, output: Path, isolation: Isolation = Isolation.SANDBOX,
          root: Path | None = None, require: Sequence[str] = (),
          allow_missing: Sequence[str] = (), first_failure: bool = False,
          timeout: float | None = None, test_workers: int = 0,
          metadata: Path | None = None, quickest_first: Path | None = None) -> Outcome:
    """Grade ``submission`` with the assignment's hidden suite. ``first_failure``: stop at
    the first test that loses points (the tests after it are listed as not run, at 0): for
    proving that a submission is wrong (``validate``'s mutants), never for grading students.
    ``quickest_first``: an earlier results.json of the suite; the tests run in the order of
    their durations there, quickest first (with ``first_failure``, a wrong one stops sooner).
    ``timeout``: the whole grading's limit in seconds; then the running test is stopped,
    the tests after it are not run, and the finished ones keep their points.
    ``test_workers``: run the tests in that many pytest-xdist processes, each with its own
    sandboxed workers (same scores as a serial run; for large suites).
    ``metadata``: Gradescope's submission_metadata.json, for the assignment's [policy]
    (late penalty, submission limit, best-of); without it a policy says it was not applied."""
    if not submission.is_dir():
        raise ConfigError(f"submission folder {submission} does not exist or is not a folder; "
                          "pass the folder that holds the student's files")
    root = (root or find_course_root()).resolve()
    sub = submission.resolve()
    if root == sub or sub in root.parents:
        # Found by walking up from the current folder, inside the submission: a submission
        # could ship its own reference_tests/ and run them in the grader.
        raise ConfigError(f"the course repository {root} lies inside the submission {sub}; "
                          "run the grader from outside the submission or pass --course")
    layout = Layout(root, resolve_name(root, assignment))
    config = layout.config()  # fail early on a bad config
    if quickest_first:
        results.durations(quickest_first)  # a bad file is a usage error, before grading
    outcome = run_suite(suite=hidden_suite(layout), submission=submission, output=output,
                     isolation=isolation, require=require, allow_missing=allow_missing,
                     extra_args=[*(["--ag-first-failure"] if first_failure else []),
                                 *([f"--ag-quickest-first={quickest_first}"]
                                   if quickest_first else []),
                                 *(["--ag-timeout", repr(float(timeout))] if timeout else []),
                                 *(["-p", "xdist", "-n", str(test_workers)]
                                   if test_workers > 1 else [])])
    if not config.policy.any or outcome.exit_code != ExitCode.OK:
        return outcome  # a harness error is regraded, not penalized
    from autograder.grading import policies

    meta, problem = policies.read_metadata(metadata) if metadata else (None, "no --metadata given")
    data = policies.apply(outcome.data, meta, config.policy, problem=problem)
    results.write(data, output)
    return Outcome(outcome.exit_code, data)


def expected_records(*, assignment: str, root: Path | None = None) -> list[results.TestRecord]:
    """The hidden suite's tests as found in its files (for a results.json written when the
    grading could not run, as in a container that left none)."""
    root = (root or find_course_root()).resolve()
    return _expected_records(hidden_suite(Layout(root, resolve_name(root, assignment))))


def fail_closed_on_error(output: Path, exc: AutograderError) -> dict[str, Any]:
    """Used by the CLI when grading cannot even start (bad assignment name, bad config)."""
    data = results.fail_closed([], f"{type(exc).__name__}: {exc}", execution_time=0.0)
    results.write(data, output)
    return data
