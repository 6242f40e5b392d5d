"""The pytest plugin: markers, the ``student`` fixture, per-test records, results.json.

Registered through the ``pytest11`` entry point; inert unless ``--submission`` is given.
Per-test metadata travels on ``item.user_properties``/reports, never on functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from autograder.config import (
    DEFAULT_CATEGORIES,
    ISOLATIONS,
    VISIBILITIES,
    AssignmentConfig,
    Isolation,
)
from autograder.errors import (
    AutograderError,
    CourseError,
    SandboxError,
    StudentError,
    StudentTimeout,
    UnusableValue,
    WorkerDied,
)
from autograder.grading import parallel, results, unittest_compat
from autograder.grading.proxy import StudentProxy
from autograder.grading.submission import prepare_submission
from autograder.sandbox import codec, policy
from autograder.sandbox.local import LocalWorker, Printed, as_root, sandbox_unavailable

if TYPE_CHECKING:  # the Linux sandbox loads only where it runs (see sandbox_unavailable)
    from autograder.sandbox.pool import SandboxConfig, Zygote

GPU_REASON = "needs CUDA, which this machine does not have"
DEADLINE_STOP = "the grading's time limit ran out"  # session.shouldstop of --ag-timeout
FIRST_FAILURE_STOP = "a test lost points (--ag-first-failure)"
CUDA_CHECK_TIMEOUT = 60.0  # the check imports torch in a fresh worker
MARKERS = {
    "points(n)": "points of the test (default 1)",
    "visibility(v)": "Gradescope visibility: visible, hidden, after_due_date, after_published",
    "tags(*names)": "tags; the first one listed in [report] categories of assignment.toml is its category",
    "call_timeout(seconds)": "per-call wall timeout for student code in this test",
    "gpu": "needs CUDA; reported as unavailable (not counted) where CUDA is missing",
    "hint(text)": "hint shown by `autograder check` when the test fails",
}
SESSION_KEY = pytest.StashKey["GradingSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("autograder", "autograding harness")
    g.addoption("--submission", default=None, help="folder with the student's files")
    g.addoption("--ag-config", default=None, help="assignment.toml (default: next to the tests)")
    g.addoption("--ag-support", default=None, help="folder with the official support files")
    g.addoption("--ag-results", default=None, help="write Gradescope results.json here")
    g.addoption("--ag-hide", action="append", default=[], help="path the worker must not see")
    g.addoption("--ag-enforce", action="store_true", default=False,
                help="grading (not a student's check): as root, require the default protections")
    g.addoption("--ag-require", action="append", default=[], metavar="PROTECTION",
                help="also require this protection (see autograder.sandbox.policy.Guarantee)")
    g.addoption("--ag-allow-missing", action="append", default=[], metavar="PROTECTION",
                help="grade even where this protection cannot be had")
    g.addoption("--isolation", choices=ISOLATIONS, default=Isolation.SANDBOX.value,
                help="sandbox: student code in sandboxed workers (default); none: in-process, "
                     "for debugging")
    g.addoption("--ag-first-failure", action="store_true", default=False,
                help="stop after the first test that loses points (a test worth 0 does not "
                     "stop it); the rest are listed as not run")
    g.addoption("--ag-quickest-first", default=None, metavar="RESULTS",
                help="run the tests in the order of their durations in RESULTS (an earlier "
                     "results.json of this suite), quickest first")
    g.addoption("--ag-timeout", type=float, default=None, metavar="SECONDS",
                help="the whole grading's time limit: then the running test's worker is "
                     "stopped, the tests after it are not run, finished ones keep their points")


def pytest_configure(config: pytest.Config) -> None:
    for spec, text in MARKERS.items():
        config.addinivalue_line("markers", f"{spec}: {text}")
    if config.getoption("submission"):
        _hypothesis_profile()
        if parallel.is_controller(config):
            # xdist: the workers grade (each a GradingSession with its own sandbox); the
            # controller runs no test and writes the one results.json.
            config.pluginmanager.register(parallel.Controller(config), "autograder-controller")
            return
        try:
            session = GradingSession(config)
        except AutograderError as exc:
            # results.json now (collection could break too), then the suite is collected
            # but not run, so the file lists every test with its points and name.
            _fail_closed_at_setup(config, exc)
            config.pluginmanager.register(SetupFailure(config, exc), "autograder-setup-failure")
            return
        config.stash[SESSION_KEY] = session
        config.pluginmanager.register(session, "autograder-session")
        # gradescope-utils suites (unittest classes that import the student's modules)
        config.pluginmanager.register(session.compat, "autograder-unittest")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()
        config.pluginmanager.unregister(session)
        if config.pluginmanager.is_registered(session.compat):
            config.pluginmanager.unregister(session.compat)
        del config.stash[SESSION_KEY]


def _fail_closed_at_setup(config: pytest.Config, exc: AutograderError) -> None:
    """A grading that cannot start (a required protection missing, a broken config) still
    leaves results.json: every test of the suite at 0, the reason first in the staff entry."""
    path = config.getoption("ag_results")
    if not path or hasattr(config, "workerinput"):  # an xdist worker: SetupFailure reports
        return
    records: list[results.TestRecord] = []
    for arg in config.args:
        root = Path(arg.split("::")[0])
        files = [root] if root.is_file() else sorted(root.rglob("test_*.py"))
        for f in files:
            records += results.scan_test_file(f, f.relative_to(root if root.is_dir() else
                                                                root.parent).as_posix())
    results.write(results.fail_closed(records, f"{type(exc).__name__}: {exc}", execution_time=0.0),
                  Path(path))


class SetupFailure:
    """A grading that could not start: its tests are collected for their names and points,
    none runs, and results.json fails closed with the reason (exit 2)."""

    def __init__(self, config: pytest.Config, exc: AutograderError) -> None:
        self.config = config
        self.why = f"{type(exc).__name__}: {exc}"
        self.records: list[results.TestRecord] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            try:
                self.records.append(record_for(item, "after_published"))
            except pytest.UsageError:
                continue

    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        return True  # nothing runs: the sandbox (or the course) is not there to run it

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller fails closed
            workeroutput[parallel.WORKER_KEY] = parallel.Outcome(
                self.records, [self.why], {}, "", [], 0.0).to_json()
        else:
            path = self.config.getoption("ag_results")
            if path and self.records:
                results.write(results.fail_closed(self.records, self.why, execution_time=0.0),
                              Path(path))
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def _hypothesis_profile() -> None:
    """Graded Hypothesis runs are reproducible: derandomized, no database, no deadline."""
    from hypothesis import HealthCheck, settings

    settings.register_profile("autograder", derandomize=True, database=None, deadline=None,
                              print_blob=False, report_multiple_bugs=False,
                              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                     HealthCheck.too_slow])
    settings.load_profile("autograder")


def _find_config(config: pytest.Config) -> Path:
    explicit = config.getoption("ag_config")
    if explicit:
        return Path(explicit)
    for arg in config.args or [str(config.invocation_params.dir)]:
        start = Path(arg.split("::")[0]).resolve()
        for p in (start, *start.parents):
            if (p / "assignment.toml").is_file():
                return p / "assignment.toml"
    raise pytest.UsageError("no assignment.toml found next to the tests; pass --ag-config")


def _marker_arg(item: pytest.Item, name: str, kind: Any, check: Any, default: Any) -> Any:
    marker = item.get_closest_marker(name)
    if marker is None:
        return default
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{name} takes one argument, "
                                f"got args={marker.args!r} kwargs={marker.kwargs!r}")
    value = marker.args[0]
    if not isinstance(value, kind) or isinstance(value, bool) or not check(value):
        raise pytest.UsageError(f"{item.nodeid}: bad @pytest.mark.{name}({value!r})")
    return value


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    earlier = config.getoption("ag_quickest_first", None)
    if earlier:
        items[:] = quickest_first(items, Path(earlier))


def quickest_first(items: list[pytest.Item], earlier: Path) -> list[pytest.Item]:
    """``items`` ordered by their durations in an earlier results.json of the same suite
    (tests it lacks first, ties in collection order): with --ag-first-failure, a wrong
    submission meets a cheap failing test before the long ones (validate's mutants).
    Each test gets a worker of its own, so any order grades the same."""
    try:
        took = results.durations(earlier)
    except AutograderError as exc:
        raise pytest.UsageError(f"--ag-quickest-first: {exc}") from None

    def duration(item: pytest.Item) -> float:
        try:
            return took.get(record_for(item, "visible").name, 0.0)
        except pytest.UsageError:
            return 0.0  # reported when the records are made
    return sorted(items, key=duration)


def record_for(item: pytest.Item, default_visibility: str) -> results.TestRecord:
    """Read and check a test's markers; bad arguments fail collection naming the test."""
    points = _marker_arg(item, "points", Real, lambda v: v >= 0, 1)
    visibility = _marker_arg(item, "visibility", str, lambda v: v in VISIBILITIES, default_visibility)
    _marker_arg(item, "call_timeout", Real, lambda v: v > 0, None)
    hint = _marker_arg(item, "hint", str, lambda v: True, "")
    tags: list[str] = []
    for m in item.iter_markers("tags"):
        if not m.args or not all(isinstance(t, str) and t for t in m.args):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.tags needs non-empty strings, "
                                    f"got {m.args!r}")
        tags += [t for t in m.args if t not in tags]
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    name = doc.strip().splitlines()[0].strip() if doc and doc.strip() else item.nodeid
    callspec = getattr(item, "callspec", None)
    if callspec is not None and doc and doc.strip():
        name = f"{name} [{callspec.id}]"  # parametrized cases would otherwise share a name
    rec = results.TestRecord(nodeid=item.nodeid, name=name, max_score=float(points),
                             visibility=visibility, tags=tags, hint=hint)
    return unittest_compat.adapt(item, rec)  # gradescope-utils' decorators, if any


def category(tags: list[str], categories: Sequence[str] = DEFAULT_CATEGORIES) -> str:
    """A test's category in `autograder check`: its first tag among the assignment's
    ``[report] categories``, else "other"."""
    return next((t for t in tags if t in categories), "other")


def _failure_text(excinfo: pytest.ExceptionInfo[BaseException], memory_mb: int) -> str:
    """What the student reads about a failed test, control characters escaped: messages
    carry the student's own text (terminal escapes, lone surrogates that are not valid
    JSON text for Gradescope)."""
    return _printable(_describe_failure(excinfo, memory_mb))


def _printable(text: str) -> str:
    if text.isprintable() or all(c.isprintable() or c in "\n\t" for c in text):
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


JUPYTER_ONLY = ("display", "get_ipython")  # names a notebook has that Python has not


def _jupyter_hint(exc: StudentError) -> str:
    if exc.type_name == "NameError" and any(f"'{n}'" in exc.message for n in JUPYTER_ONLY):
        return (" (it exists only inside Jupyter, not when your notebook runs as a module: "
                "remove the call, or use print)")
    return ""


def _describe_failure(excinfo: pytest.ExceptionInfo[BaseException], memory_mb: int) -> str:
    exc = excinfo.value
    if isinstance(exc, StudentTimeout) and exc.student_traceback:
        return f"{exc.message}\nWhere (your files):\n{exc.student_traceback.rstrip()}"
    if isinstance(exc, (StudentTimeout, WorkerDied, UnusableValue)):
        return exc.message
    if isinstance(exc, StudentError):
        where = f" in {exc.where}" if exc.where else ""
        text = f"Your code raised {exc.type_name}{where}: {exc.message}{_jupyter_hint(exc)}"
        if exc.type_name == "MemoryError":
            text += f" (the memory limit for your code is {memory_mb} MB)"
        if exc.student_traceback:
            text += "\nWhere (your files):\n" + exc.student_traceback.rstrip()
        return text
    return excinfo.exconly()


@dataclass
class Covers:
    """What the worker's mount namespace covers (SandboxSpec's fields of the same names)."""

    hide: list[str]
    private_tmp: list[str]
    keep: list[str]
    cover_top: list[str]
    mask_files: list[str]

    def covered(self) -> list[Path]:
        """The folders that get an empty or fresh tmpfs (``keep`` is bound back below)."""
        return [Path(c) for c in self.hide + self.private_tmp + self.cover_top]


class GradingSession:
    """Lives for one pytest run with --submission."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.start = time.monotonic()
        self.isolation = config.getoption("isolation")
        self.records: dict[str, results.TestRecord] = {}
        self.hung_imports: dict[str, StudentTimeout] = {}
        self.leaderboard: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.import_failures: dict[str, str] = {}  # module -> why its import failed
        self.explained: set[str] = set()  # modules whose import failure report() explains
        # Tests in which the sandbox stopped the worker (timeout, memory, output, disk):
        # grade-all flags these submissions for a TA's look.
        self.stopped: list[dict[str, str]] = []
        # --ag-timeout: when it runs out, the test running then (its name) and every worker
        # alive are stopped; the tests after it are not run.
        self.timeout: float | None = config.getoption("ag_timeout", None)
        self.expired = threading.Event()
        self.running: tuple[str, str] | None = None  # (nodeid, name) of the running test
        self.expired_during: tuple[str, str] | None = None
        self.live: list[Any] = []  # workers spawned, for the deadline to stop
        self.live_lock = threading.Lock()
        self.pytest_session: pytest.Session | None = None
        self.timer: threading.Timer | None = None
        self.interrupted_from_outside = False  # SIGTERM / Ctrl-C, not the deadline
        self.uncollected: dict[str, results.TestRecord] = {}
        self.worker_protections: list[dict[str, Any]] = []
        self.static_protections: list[dict[str, Any]] = []
        self.zygote: Zygote | None = None
        # The submission imported once, forked per test (autograder.sandbox.template):
        # None until the first test asks; False once it failed (fresh workers from then on).
        self.template: Any = None
        self.signaller: Any = None  # pauses the student's processes (pause_student)
        self.cuda: bool | None = None  # asked of a worker at the first gpu-marked test
        self.clean_ids: tuple[int, int] | None = None  # the yardstick worker's uid/gid
        self.uid_leases: list[Any] = []  # the student's and the yardsticks' uids, held
        self.cuda_note = ""
        # Why `check` runs in-process although the sandbox was asked for (a machine where it
        # cannot run: macOS, Windows...); grading refuses instead.
        self.fallback = ""
        cfg_path = _find_config(config)
        self.assignment = AssignmentConfig.load(cfg_path)
        self.codec_limits = codec.WireLimits.for_assignment(self.assignment.limits)
        support = config.getoption("ag_support")
        self.support_dir = Path(support) if support else None
        # The course's probe module lies beside the support files (solutions/NAME/ when
        # grading, the student's assignment folder for `check`).
        probes = self.assignment.probes
        self.course_probes = (self.support_dir or cfg_path.parent) / probes if probes else None
        self.tmp = Path(tempfile.mkdtemp(prefix="autograder-grade-"))
        os.chmod(self.tmp, 0o711)  # workers may pass through to their own folder, not list
        try:
            self.submission = prepare_submission(
                Path(config.getoption("submission")).resolve(), self.assignment,
                self.support_dir, self.tmp / "pristine")
            # Root's copy: with no mount namespace the worker of a concurrent grading could
            # otherwise read it by its predictable name; each worker gets its own copy.
            os.chmod(self.submission.pristine, 0o700)
            self.policy = self._policy(cfg_path)
            if self.isolation == Isolation.SANDBOX:
                self._start_sandbox(cfg_path)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.compat = unittest_compat.UnittestCompat(self, str(cfg_path))

    def _start_sandbox(self, cfg_path: Path) -> None:
        """The zygote; where the sandbox cannot run here, a grading stops (exit 2) and a
        student's check runs in-process with a one-line note."""
        enforce = self.config.getoption("ag_enforce")
        why = sandbox_unavailable()
        if why is None:
            from autograder.sandbox.pool import Zygote

            try:
                self.zygote = Zygote(self._sandbox_config(cfg_path), base=self.tmp,
                                     threads=self.assignment.limits.threads)
            except SandboxError as exc:
                if enforce or as_root():
                    raise
                why = f"it could not start: {exc}"
        if why is not None:
            if enforce:
                raise SandboxError(
                    f"the sandbox cannot run on this machine ({why}); grade on Linux (the "
                    "grading image, Gradescope), or pass --isolation none to grade in-process "
                    "without any protection")
            self.fallback = why
            self.isolation = Isolation.NONE
            return
        if self.policy.required:
            self._check_policy()

    def _policy(self, cfg_path: Path) -> policy.Policy:
        try:
            course_req = policy.parse_guarantees(self.assignment.require,
                                                 source=f"{cfg_path} [sandbox] require")
            course_ok = policy.parse_guarantees(self.assignment.allow_missing,
                                                source=f"{cfg_path} [sandbox] allow_missing")
        except ValueError as exc:
            raise CourseError(str(exc)) from None
        if self.assignment.loopback:
            # Without its loopback the server tests would cost students points they did not
            # lose: such a grading stops (exit 2, regrade elsewhere) instead.
            course_req |= {policy.Guarantee.LOOPBACK}
        try:
            cli_req = policy.parse_guarantees(self.config.getoption("ag_require"), source="--require")
            cli_ok = policy.parse_guarantees(self.config.getoption("ag_allow_missing"),
                                             source="--allow-missing")
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        # The command line has the last word: --require beats the config's allow_missing.
        return policy.Policy.build(as_root=as_root(),
                                   enforce=self.config.getoption("ag_enforce"),
                                   require=(course_req - cli_ok) | cli_req,
                                   allow_missing=(course_ok - cli_req) | cli_ok)

    def _sandbox_config(self, cfg_path: Path) -> SandboxConfig:
        from autograder.sandbox import namespaces, permissions, uid_lease
        from autograder.sandbox.pool import SandboxConfig

        lim = self.assignment.limits
        root = as_root()
        ns_blocker = namespaces.namespaces_blocker()
        covers = self._covers(cfg_path)
        if root and ns_blocker is not None:
            # No mount namespace (docker run, Gradescope): hide by file modes instead.
            # ...but never the way to the interpreter or to the workers' own folders.
            keep = [*namespaces.interpreter_paths(), self.tmp]
            report = permissions.hide_by_permissions([Path(h) for h in covers.hide], keep)
            self.static_protections.append({"name": "hidden-paths", "active": report.ok,
                                             "detail": report.detail()})
        blocker = namespaces.privilege_drop_blocker(
            bound_back=covers.covered() if ns_blocker is None else None)
        uid = gid = None
        if blocker is None:
            self.uid_leases.append(uid_lease.lease())
            self.uid_leases.append(uid_lease.lease(besides={self.uid_leases[0].uid}))
            uid, gid = self.uid_leases[0].ids
            self.clean_ids = self.uid_leases[1].ids
        elif root:
            # Student code as root could read or unmount what hides the tests: never.
            raise SandboxError(f"refusing to run student code as root: {blocker}")
        else:
            self.static_protections.append({"name": "unprivileged-user", "active": False,
                                            "detail": blocker})
        spec = namespaces.SandboxSpec(
            workdir="", modules=self.importable(), limits=lim, uid=uid, gid=gid,
            namespaces=ns_blocker is None, namespace_blocker=ns_blocker or "",
            forbidden_imports=list(self.assignment.forbidden_imports),
            forbidden_paths=namespaces.package_paths(list(self.assignment.forbidden_imports)),
            env=dict(self.assignment.environment), loopback=self.assignment.loopback,
            browser=self.assignment.browser,
            container_loopback=ns_blocker is not None and namespaces.networkless_container(),
            **dataclasses.asdict(covers))
        return SandboxConfig(modules=self.importable(), pristine=self.submission.pristine,
                             preload=list(self.assignment.preload), spec=spec,
                             probes=self.course_probes,
                             limits=self.codec_limits, output_limit=lim.output_bytes)

    def _covers(self, cfg_path: Path) -> Covers:
        """What the worker must not see (the course, submissions and results by name, and
        everything at / outside the allow-list), which temp folders it gets fresh, and which
        interpreter folders below those are bound back (read-only)."""
        ref = cfg_path.parent.resolve()
        # The whole course checkout (every assignment's hidden tests and solutions, .git,
        # demo output...), the results folder, and the folder holding this submission and
        # maybe other students' (the worker gets its own copy).
        course = ref.parent.parent if ref.parent.name == "reference_tests" else ref
        sub = self.submission.root.resolve()
        wanted = [course, sub.parent, sub, *(Path(h).resolve() for h in self.config.getoption("ag_hide"))]
        out = self.config.getoption("ag_results")
        if out:
            wanted.append(Path(out).resolve().parent)
        # What the worker needs of the host (its allow-list) cannot be hidden; /tmp is
        # private to it anyway, so what lies below /tmp can.
        from autograder.sandbox import namespaces

        system = [Path("/", n) for n in namespaces.SYSTEM_FOLDERS if n != "tmp"]
        hide = []
        for h in dict.fromkeys(wanted):
            if h == Path("/") or any(h == s_ or h in s_.parents for s_ in system):
                self.static_protections.append({"name": "hidden-paths", "active": False,
                                                "detail": f"cannot hide {h}: the system needs it"})
            else:
                hide.append(str(h))
        temp = ["/tmp", "/var/tmp", "/dev/shm", tempfile.gettempdir(), str(self.tmp.parent)]
        private_tmp = list(dict.fromkeys(str(Path(t).resolve()) for t in temp))
        interpreter = [Path(p).resolve() for p in namespaces.interpreter_paths()]
        dirs = {p if p.is_dir() else p.parent for p in interpreter}
        cover_top, mask_files = namespaces.host_entries()
        covers = Covers(sorted(hide), private_tmp, [], cover_top, mask_files)
        covers.keep = sorted(str(d) for d in dirs
                             if any(c in d.parents or c == d for c in covers.covered()))
        return covers

    def _check_policy(self) -> None:
        """Before any test: one worker (no student code runs until a test asks) says which
        protections it got; a required one missing stops the grading (exit 2)."""
        assert self.zygote is not None
        worker = self.zygote.spawn()
        try:
            self.worker_protections = list(worker.protections)
        finally:
            worker.close()
        refusal = self.policy.refusal(self.protections())
        if refusal is not None:
            raise SandboxError(refusal)

    def importable(self) -> list[str]:
        """Student modules plus the official support modules (data.py -> data)."""
        support = [Path(s).stem for s in self.assignment.support if s.endswith(".py") and "/" not in s]
        return list(self.assignment.modules) + [s for s in support if s not in self.assignment.modules]

    def spawn(self) -> Any:
        worker: Any
        self._refuse_after_deadline()
        if self.zygote is not None:
            worker = self._forked()
            if worker is None:
                try:
                    worker = self.zygote.spawn()
                except SandboxError as exc:  # the grader's fault, never the student's
                    self.errors.append(f"sandbox failure: {exc}")
                    raise
        else:
            work = Path(tempfile.mkdtemp(dir=self.tmp, prefix="local-"))
            shutil.copytree(self.submission.pristine, work, dirs_exist_ok=True)
            worker = LocalWorker(work, self.importable(), self.codec_limits,
                                 probes_file=self.course_probes,
                                 forbidden_imports=self.assignment.forbidden_imports)
        if not self.worker_protections:
            self.worker_protections = list(worker.protections)
        return self._track(worker)

    def _forked(self) -> Any:
        """A test's worker forked from the submission's template (imported once), or None
        where there is none: then a fresh worker imports the submission itself."""
        from autograder.sandbox.template import Template, TemplateGone

        assert self.zygote is not None
        if self.template is None:
            self.template = False
            if os.environ.get("AUTOGRADER_NO_TEMPLATE") == "1":  # a benchmark's baseline
                return None
            try:
                base = self._track(self.zygote.spawn())
                lim = self.assignment.limits
                # Longer than a call: a notebook's training cell may take a while, once.
                budget = min(lim.test_timeout, max(2 * lim.call_timeout, 30.0))
                self.template = Template(base, budget)
            except (SandboxError, TemplateGone):
                return None
        if not self.template:
            return None
        try:
            return self.template.fork(self.assignment.limits.output_bytes,
                                      self.codec_limits.max_bytes)
        except TemplateGone:
            self.template = False
            return None

    def spawn_clean(self) -> Any:
        """A worker for yardsticks (no student code): a uid of its own where there is one."""
        if self.zygote is not None and self.clean_ids is not None:
            self._refuse_after_deadline()
            try:
                return self._track(self.zygote.spawn(ids=self.clean_ids))
            except SandboxError as exc:
                self.errors.append(f"sandbox failure: {exc}")
                raise
        return self.spawn()

    # -- the grading's time limit (--ag-timeout) ----------------------------------------
    def _track(self, worker: Any) -> Any:
        with self.live_lock:
            self.live = [w for w in self.live if not getattr(w, "closed", False)]
            self.live.append(worker)
        if self.expired.is_set():  # the deadline passed while it started
            worker.kill()
        return worker

    def _refuse_after_deadline(self) -> None:
        if self.expired.is_set():
            raise StudentTimeout("GradingTimeout", self._timeout_text())

    def _timeout_text(self) -> str:
        return (f"the grading ran past its time limit of {self.timeout:g} s; your code may "
                "hang or be too slow")

    def start_deadline(self) -> None:
        if self.timeout is None:
            return
        left = self.timeout - (time.monotonic() - self.start)
        self.timer = threading.Timer(max(left, 0.0), self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self) -> None:
        self.expired_during = self.running
        self.expired.set()
        if self.pytest_session is not None:
            # checked after the running test: the loop ends with "interrupted"
            self.pytest_session.shouldstop = DEADLINE_STOP
        with self.live_lock:
            workers = list(self.live)
        for worker in workers:
            kill = getattr(worker, "kill", None)
            if kill is not None and not getattr(worker, "closed", False):
                kill()

    @contextlib.contextmanager
    def pause_student(self) -> Iterator[None]:
        """The student's processes stopped while a yardstick is timed: a thread or process
        left behind cannot compete for the CPU or signal the yardstick's worker."""
        spec = self.zygote.config.spec if self.zygote else None
        if spec is None or spec.uid is None:
            yield
            return
        from autograder.sandbox.signaller import UidSignaller

        if self.signaller is None:
            self.signaller = UidSignaller(spec.uid, spec.gid if spec.gid is not None else spec.uid)
        self.signaller.send(signal.SIGSTOP)
        try:
            yield
        finally:
            self.signaller.send(signal.SIGCONT)

    def worker_has_cuda(self) -> bool:
        """Whether CUDA works where the student's code runs: asked once of a clean worker
        (no student code), since the grader process may see another environment."""
        if self.cuda is None:
            timeout = max(self.assignment.limits.call_timeout, CUDA_CHECK_TIMEOUT)
            proxy = StudentProxy(self.submission, self.spawn, timeout, self.codec_limits,
                                 student_code=False)
            try:
                self.cuda = proxy.probe("cuda_available") is True
            except StudentError as exc:  # no torch there, a broken driver: no CUDA
                self.cuda = False
                self.cuda_note = f"{exc.type_name}: {exc.message}"[:300]
            finally:
                proxy.close()
        return self.cuda

    def protections(self) -> list[dict[str, Any]]:
        return self.static_protections + [p for p in self.worker_protections
                                          if not any(s["name"] == p["name"] for s in self.static_protections)]

    def close(self) -> None:
        self.compat.close()
        if self.timer is not None:
            self.timer.cancel()
        if self.template:
            self.template.close()
        self.template = False
        if self.signaller is not None:
            self.signaller.close()
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        for held in self.uid_leases:  # last: nothing of the grading runs under them now
            held.release()
        self.uid_leases.clear()

    # -- hooks ------------------------------------------------------------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Records for exactly the tests that will run (after -k / deselection)."""
        self.pytest_session = session
        self.start_deadline()
        cuda = None
        root = Path(str(self.config.rootpath))
        # In a reference suite with public/, the other tests are hidden ones: they default
        # to [visibility] hidden, so a forgotten marker does not show one before the due date.
        public = (root / "public").resolve()
        split = public.is_dir()
        for item in session.items:
            hidden = split and public not in Path(str(item.path)).resolve().parents
            default = self.assignment.hidden_visibility if hidden else self.assignment.default_visibility
            try:
                rec = record_for(item, default)
            except pytest.UsageError as exc:
                self.errors.append(f"hidden suite is broken: {exc}")
                raise
            if item.get_closest_marker("gpu") is not None:
                cuda = self.worker_has_cuda() if cuda is None else cuda
                if not cuda:
                    rec.outcome = "unavailable"
                    rec.output = f"Not run: {GPU_REASON}; not counted in the maximum."
                    item.add_marker(pytest.mark.skip(reason=GPU_REASON))
            self.records[item.nodeid] = rec

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(f"collection of {report.nodeid} failed:\n{_printable(report.longreprtext)}")
            path = Path(str(self.config.rootpath)) / report.nodeid
            if path.is_file():  # still list its tests (0 points) in the fail-closed results
                for rec in results.scan_test_file(path, report.nodeid):
                    self.uncollected.setdefault(rec.nodeid, rec)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        rec = self.records.get(item.nodeid)
        self.running = (item.nodeid, rec.name if rec else item.nodeid)
        try:
            return (yield)
        finally:
            self.running = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        rec = self.records.get(item.nodeid)
        if rec is None or rec.outcome == "unavailable":
            return report
        rec.duration = (rec.duration or 0.0) + report.duration  # setup + call + teardown
        if report.when == "call" or (report.when == "setup" and not report.passed):
            exc = call.excinfo.value if call.excinfo is not None else None
            if report.passed:
                rec.outcome = "passed"
            elif report.skipped:
                # No silent skips: a hidden test that does not run is the suite's problem.
                rec.outcome = "failed"
                rec.output = f"Not run: {exc or 'skipped'}"
                self.errors.append(f"{item.nodeid} was skipped ({exc}); hidden tests must run")
            else:
                rec.outcome = "failed"
                if isinstance(exc, SUITE_BUGS) or (
                        report.when == "setup" and not isinstance(exc, StudentError)):
                    # The suite's own code or the sandbox broke, not the student's code.
                    self.errors.append(f"{item.nodeid}: {_printable(report.longreprtext)}")
                if isinstance(exc, (StudentTimeout, WorkerDied)) and len(self.stopped) < 50:
                    self.stopped.append({"test": rec.name, "why": exc.type_name})
                if call.excinfo is not None:
                    rec.output = results.truncate(self.submission.locate(_failure_text(
                        call.excinfo, self.assignment.limits.memory_mb)), results.MAX_TEST_OUTPUT)
                if (isinstance(exc, StudentError) and exc.import_of is not None
                        and not self.expired.is_set()):  # stopped by the deadline, not broken
                    # The test's hint is about what it checks, not about a broken import;
                    # the summary names the import failure once.
                    rec.hint = ""
                    module = exc.import_of
                    known = self.submission.explain_import_failure(exc.type_name, exc.message)
                    if known is not None:  # the submission's report explains it, once
                        rec.output = _printable(f"Your code raised {exc.type_name} in the "
                                                f"import of {module}: {known}")
                        self.explained.add(module)
                    frames = re.findall(r'File "([^"]+)", line (\d{1,9})\b', exc.student_traceback)
                    # "(layers.py, line 20)": the form locate() maps to a notebook's cell
                    at = f" ({frames[-1][0]}, line {frames[-1][1]})" if frames else ""
                    why = (str(exc).strip().splitlines() or ["an error"])[0][:300] + _jupyter_hint(exc)
                    why = _printable(why if at.strip() in why else why + at)
                    self.import_failures.setdefault(module, self.submission.locate(why))
                rec.staff_output = results.truncate(_printable(report.longreprtext),
                                                    results.MAX_TEST_OUTPUT)
            if self.expired_during and self.expired_during[0] == item.nodeid:
                # stopped, not judged: a test that expects an error passes on the kill
                rec.outcome = "failed"
                rec.output = (f"Stopped: {self._timeout_text()}; this test was running then."
                              + (f"\n{rec.output}" if rec.output and not isinstance(
                                  exc, (WorkerDied, StudentTimeout)) else ""))
            if (self.config.getoption("ag_first_failure") and rec.max_score > 0
                    and self.pytest_session is not None
                    and (rec.outcome == "failed" or (rec.partial is not None and rec.partial < 1))):
                self.pytest_session.shouldstop = self.pytest_session.shouldstop or FIRST_FAILURE_STOP
        elif report.when == "teardown" and report.failed and rec.outcome == "passed":
            rec.outcome = "failed"
            rec.output = results.truncate(self.submission.locate(_failure_text(
                call.excinfo, self.assignment.limits.memory_mb)), results.MAX_TEST_OUTPUT) \
                if call.excinfo else "teardown failed"
        if report.when == "teardown" and self.isolation == Isolation.NONE:
            self._attach_captured(rec, report)
        return report

    def _attach_captured(self, rec: results.TestRecord, report: pytest.TestReport) -> None:
        """In-process, what the test's code printed is in pytest's capture (as a worker's
        pipe holds it in the sandbox): shown with the test, as the sandbox shows it."""
        text = "".join(content for title, content in report.sections
                       if title.startswith(("Captured stdout", "Captured stderr")))
        if not text:
            return
        data = text.encode("utf-8", "surrogateescape")
        roots = [str(p) for p in self.tmp.glob("local-*")]  # the test's in-process copies
        section = printed_section([Printed(data[: results.MAX_STUDENT_STDOUT], len(data))])
        section = own_paths(section, roots)
        room = results.MAX_TEST_OUTPUT - len(section) - 100
        head = results.truncate(rec.output, max(room, 200)) + "\n\n" if rec.output else ""
        rec.output = head + section

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        ours = isinstance(excinfo.value, pytest.Session.Interrupted) and (
            (self.expired.is_set() and str(excinfo.value) == DEADLINE_STOP)
            or str(excinfo.value) == FIRST_FAILURE_STOP)
        if not ours:
            self.interrupted_from_outside = True

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.errors.append(f"internal error:\n{excrepr}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # a pytest-xdist worker: the controller writes the file
            workeroutput[parallel.WORKER_KEY] = self.outcome(exitstatus).to_json()
            return
        path = self.config.getoption("ag_results")
        if not path:
            return
        data = self.results(exitstatus)
        results.write(data, Path(path))

    def results(self, exitstatus: int) -> dict[str, Any]:
        # tests numbered by gradescope-utils' @number where a suite has them
        return self.compat.number_tests(self.outcome(exitstatus).to_results(), list(self.records))

    def outcome(self, exitstatus: int) -> parallel.Outcome:
        """The graded tests and everything results.json says around them."""
        elapsed = time.monotonic() - self.start
        records = list(self.records.values())
        extra = {"assignment": self.assignment.id, "isolation": str(self.isolation),
                 **({"sandbox_unavailable": self.fallback} if self.fallback else {}),
                 **({"cuda": self.cuda} if self.cuda is not None else {}),
                 **({"cuda_check": self.cuda_note} if self.cuda_note else {}),
                 "protections": self.protections(),
                 "submission": {"graded": self.submission.found,
                                "ignored": [_printable(i) for i in self.submission.ignored],
                                "problems": {k: v[1] for k, v in self.submission.problems.items()},
                                "notebook_lines_stripped": self.submission.stripped,
                                "import_violations": self.submission.violations_json()},
                 **({"stopped": self.stopped} if self.stopped else {})}
        # Stopped by the deadline: the deadline's own stop (or, in an xdist worker, the end of
        # its loop), never a SIGTERM or Ctrl-C from outside, which fails closed.
        stopped_in_time = self.expired.is_set() and not self.interrupted_from_outside
        first_failure = (self.config.getoption("ag_first_failure")
                         and self.pytest_session is not None
                         and self.pytest_session.shouldstop == FIRST_FAILURE_STOP
                         and not self.interrupted_from_outside)
        errors = list(self.errors)
        keyword = self.config.getoption("keyword", "")
        if not records and not errors and keyword and not self.uncollected:
            # `check -k PATTERN` that selects no test: the caller's to say, no harness error
            return parallel.Outcome([], [], extra, f"No test matches -k {keyword!r}.", [], elapsed)
        if errors or (exitstatus not in (0, 1) and not (stopped_in_time or first_failure)) \
                or not records:
            records += [r for nodeid, r in self.uncollected.items() if nodeid not in self.records]
            errors = errors or [f"pytest exit status {exitstatus}; {len(records)} tests"]
            return parallel.Outcome(records, errors, extra, "", [], elapsed)
        if stopped_in_time:
            during = self.expired_during[1] if self.expired_during else "between tests"
            extra["timed_out"] = {"limit": self.timeout, "during": during}
        stopped = first_failure or ((self.config.getoption("maxfail", 0) or 0) > 0
                                    and exitstatus == 1)
        for rec in records:
            if rec.outcome == "unavailable":
                continue
            if rec.outcome == "not run" and stopped and not rec.output:
                rec.output = "Not run: the grading stopped at the first failed test (--first-failure)."
            elif rec.outcome == "not run" and stopped_in_time and not rec.output:
                rec.output = f"Not run: {self._timeout_text()}."
            full = rec.max_score if rec.outcome == "passed" else 0.0
            rec.score = rec.max_score * rec.partial if rec.partial is not None else full
            if rec.outcome != "passed" and rec.hint:
                rec.output = f"{rec.output}\nHint: {rec.hint}".lstrip()
        output = _printable(self.submission.report())  # file names are the student's text
        if stopped_in_time:
            output = (f"Stopped: {self._timeout_text()}"
                      + (f" (during the test {_printable(self.expired_during[1])!r})"
                         if self.expired_during else "")
                      + ". The tests that finished before keep their points; the others "
                      "were not run.\n" + output)
        # One line per cause: a module that fails at import breaks those importing it too.
        causes: dict[str, list[str]] = {}
        for module, why in self.import_failures.items():
            # missing, invalid, a syntax error or a helper module: reported above, once
            if module not in self.submission.problems and module not in self.explained:
                causes.setdefault(why, []).append(module)
        for why, modules in causes.items():
            output += (f"\nImporting {', '.join(modules)} failed: {why}. Every test that uses "
                       f"{'it' if len(modules) == 1 else 'them'} fails with the same error; "
                       "fix that first")
        off: dict[str, list[str]] = {}
        for p in self.protections():
            if not p["active"] and self.isolation != Isolation.NONE:  # one line says it all
                off.setdefault(p["detail"], []).append(p["name"])
        for why, names in off.items():
            output += f"\nSandbox protections off ({why}): {', '.join(names)}"
        if self.fallback:
            output += (f"\nNo sandbox on this machine ({self.fallback}): your code ran "
                       "in-process, as with --isolation none; graders run it in the sandbox.")
        elif self.isolation == Isolation.NONE:
            output += ("\nGraded in-process (--isolation none): no sandbox protections, for "
                       "debugging only.")
        return parallel.Outcome(records, [], extra, output.strip(), list(self.leaderboard),
                                elapsed)


# Errors that no value of the student's can cause in the grader's code: a typo or a missing
# import in a hidden test. (A student's own NameError arrives as a StudentError.)
SUITE_BUGS = (SandboxError, CourseError, NameError, ImportError, SyntaxError)


def _session(request: pytest.FixtureRequest) -> GradingSession:
    session = request.config.stash.get(SESSION_KEY, None)
    if session is None:
        raise pytest.UsageError("the `student` fixture needs --submission PATH "
                                "(or run `autograder check` / `autograder grade`)")
    return session


@pytest.fixture
def student(request: pytest.FixtureRequest) -> Iterator[StudentProxy]:
    """The submission, reached through a sandboxed worker (fresh for each test)."""
    session = _session(request)
    marker = request.node.get_closest_marker("call_timeout")
    timeout = float(marker.args[0]) if marker else session.assignment.limits.call_timeout
    proxy = StudentProxy(session.submission, session.spawn, timeout, session.codec_limits,
                         hung_imports=session.hung_imports, spawn_clean=session.spawn_clean,
                         pause_student=session.pause_student,
                         torch_in_worker="torch" in session.assignment.preload,
                         worker_cuda=session.worker_has_cuda)
    try:
        yield proxy
    finally:
        proxy.close(output_limit=results.MAX_STUDENT_STDOUT)
        rec = session.records.get(request.node.nodeid)
        section = printed_section(proxy.outputs)
        if rec is not None and section:
            # The failure message gives way first: the note on what was left out must stay.
            room = results.MAX_TEST_OUTPUT - len(section) - 100
            head = results.truncate(rec.output, max(room, 200)) + "\n\n" if rec.output else ""
            rec.output = head + section


def printed_section(outputs: list[Printed]) -> str:
    """'Your code printed:' with the head of what the test's workers printed (control
    characters escaped: no terminal escapes reach `autograder check`) and, where the output
    was cut, how many bytes were left out."""
    printed = [p for p in outputs if p.total]
    if not printed:
        return ""
    head = b"".join(p.head for p in printed)[: results.MAX_STUDENT_STDOUT]
    total = sum(p.total for p in printed)
    text, shown = _escape_controls(head, results.MAX_STUDENT_STDOUT)
    text = own_paths(text, [p.root for p in outputs])
    section = "Your code printed:\n" + text.rstrip("\n")
    if total > shown:
        section += (f"\n[output truncated: {total - shown} bytes left out; the first "
                    f"{shown} of {total} bytes are shown]")
    return section


def own_paths(text: str, roots: Sequence[str]) -> str:
    """The student's own file names for paths into a worker's copy of the submission:
    ``/tmp/work/layers.py:120: RuntimeWarning`` reads ``layers.py:120: RuntimeWarning``."""
    for root in sorted({r.rstrip("/") for r in roots if r and r.strip("/")}, key=len,
                       reverse=True):
        text = re.sub(re.escape(root) + r"(/|\b)", lambda m: "" if m.group(1) else ".", text)
    return text


def _escape_controls(data: bytes, limit: int) -> tuple[str, int]:
    """``data`` as text of at most ``limit`` characters, control characters (but newlines
    and tabs) and bytes that are not UTF-8 (as \\xff) escaped; and how many bytes of
    ``data`` that text shows (surrogateescape: one character per invalid byte, so the
    count is exact)."""
    text = data.decode("utf-8", "surrogateescape")
    if text.isprintable() or all(c.isprintable() or c in "\n\t" for c in text):
        return text, len(data)
    out: list[str] = []
    used = 0
    for i, c in enumerate(text):
        if c.isprintable() or c in "\n\t":
            piece = c
        elif "\udc80" <= c <= "\udcff":
            piece = f"\\x{ord(c) - 0xDC00:02x}"
        else:
            piece = repr(c)[1:-1]
        if used + len(piece) > limit:
            return "".join(out), len(text[:i].encode("utf-8", "surrogateescape"))
        out.append(piece)
        used += len(piece)
    return "".join(out), len(data)


@pytest.fixture
def partial_credit(request: pytest.FixtureRequest) -> Any:
    """Call with a fraction in [0, 1]: the test then scores that share of its points."""
    session = _session(request)

    def give(fraction: float) -> None:
        if not isinstance(fraction, Real) or not 0 <= fraction <= 1:
            raise ValueError(f"partial_credit({fraction!r}): give a fraction between 0 and 1")
        session.records[request.node.nodeid].partial = float(fraction)

    return give


@pytest.fixture
def leaderboard(request: pytest.FixtureRequest) -> Any:
    """``leaderboard("accuracy", 0.97, order="desc")`` adds a Gradescope leaderboard entry."""
    session = _session(request)

    def record(name: str, value: float | str, order: str = "desc") -> None:
        entry = leaderboard_entry(name, value, order)
        session.leaderboard = [e for e in session.leaderboard if e["name"] != entry["name"]]
        session.leaderboard.append(entry)

    return record


def leaderboard_entry(name: Any, value: Any, order: Any = "desc") -> dict[str, Any]:
    """A checked leaderboard entry (the fixture's, and gradescope-utils' set_leaderboard_value)."""
    if order not in ("asc", "desc"):
        raise ValueError(f"leaderboard order={order!r}: use 'asc' or 'desc'")
    if type(name) is not str or not name:
        raise ValueError(f"leaderboard({name!r}, ...): the name must be a non-empty string")
    if isinstance(value, Real) and not isinstance(value, (bool, np.bool_)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"leaderboard({name!r}, {value!r}): the value must be finite")
    elif type(value) is str:  # often the student's own text: escaped and bounded
        value = _printable(value[:200])
    else:
        # A value the student's code returned (an array, a handle, None): the test's
        # problem to judge, never a results.json that cannot be written.
        raise ValueError(f"leaderboard({name!r}, ...): the value must be a finite number "
                         f"or a string, not {type(value).__name__}")
    return {"name": _printable(name[:100]), "value": value, "order": order}


__all__ = ["AutograderError", "GradingSession", "student", "partial_credit", "leaderboard"]
