"""Command line: a thin layer over the keyword-only functions of the package."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from autograder import __version__
from autograder.config import (
    DEFAULT_CATEGORIES,
    ISOLATIONS,
    SUBMISSION_TIMEOUT,
    AssignmentConfig,
    Isolation,
    Layout,
    assignment_names,
    find_course_root,
    match_name,
    resolve_name,
)
from autograder.errors import AutograderError, ConfigError, CourseError, ExitCode
from autograder.grading.results import harness_cause
from autograder.grading.submission import holds_a_module

# Logs and CI are not terminals: rich would wrap tables at 80 columns there.
console = Console() if sys.stdout.isatty() else Console(width=160)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Bad usage exits with 3, as documented (argparse's own 2 means a harness error here)."""
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="autograder", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show tracebacks of harness errors")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    staff = _Parser(add_help=False)
    staff.add_argument("--course", type=Path, default=None,
                       help="the course repository (default: $AUTOGRADER_COURSE, else the "
                            "nearest parent of the current folder with reference_tests/, "
                            "else the checkout the harness is installed from)")
    staff.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks of harness errors")

    protect = _Parser(add_help=False)
    protect.add_argument("--require", action="append", default=[], metavar="PROTECTION",
                         help="also require this sandbox protection (" + PROTECTIONS + "); "
                              "grading stops with exit 2 where it cannot be had")
    protect.add_argument("--allow-missing", action="append", default=[], metavar="PROTECTION",
                         help="grade even where this protection cannot be had (as root, "
                              "hidden-material, no-network and own-uid are required)")

    g = sub.add_parser("grade", help="grade one submission and write results.json",
                       parents=[staff, protect])
    g.add_argument("assignment", help="assignment id or folder name, e.g. a1")
    g.add_argument("submission", type=Path,
                   help="folder with the student's files, or a .zip of them")
    g.add_argument("-o", "--output", type=Path, default=Path("results.json"),
                   help="where results.json goes; a folder gets results.json inside "
                        "(default: ./results.json)")
    g.add_argument("--isolation", choices=ISOLATIONS, default=Isolation.SANDBOX.value, help=ISOLATION)
    g.add_argument("--timeout", type=_seconds, default=SUBMISSION_TIMEOUT,
                   help="seconds the grading may take; then the running test is stopped, the "
                        "tests after it are not run and the finished ones keep their points "
                        f"(default: {SUBMISSION_TIMEOUT:g})")
    g.add_argument("--test-workers", type=_jobs, default=0, metavar="N",
                   help="run the tests of this one submission in N processes (pytest-xdist), "
                        "each with its own sandboxed workers; scores equal a serial run's")
    g.add_argument("--first-failure", action="store_true",
                   help="stop at the first test that loses points; the tests after it are "
                        "listed as not run, at 0 (proves a submission wrong quickly, as validate "
                        "does for mutants; never for grading students)")
    g.add_argument("--quickest-first", type=Path, default=None, metavar="RESULTS",
                   help="run the tests in the order of their durations in RESULTS, an earlier "
                        "results.json of this assignment (validate grades the solution first, "
                        "so that a mutant meets a quick failing test soon)")

    g.add_argument("--metadata", type=Path, default=None,
                   help="Gradescope's submission_metadata.json, for the assignment's [policy] "
                        "(late penalty, submission limit, best-of); run_autograder passes it")
    g.add_argument("--image", metavar="TAG", default=None,
                   help="grade in a container of this grading image (`autograder image "
                        "build`): no network, read-only root, the submission mounted "
                        "read-only, only results.json comes back (validated)")
    _container_args(g)

    b = sub.add_parser("grade-all", help="grade many submissions in parallel, print a score table",
                       parents=[staff, protect])
    b.add_argument("assignment", help="assignment id, e.g. a1")
    b.add_argument("submissions", nargs="+",
                   help="submission folders (NAME=PATH to name one), or a folder of them")
    b.add_argument("-o", "--output", type=Path, default=Path("graded"),
                   help="folder for NAME/results.json, grades.csv, report.html and the "
                        "journal that lets a rerun skip unchanged submissions (default: graded/)")
    b.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="grade on a Dask cluster: a scheduler address (tcp://HOST:8786), or "
                        "'local' for a local cluster of -j worker processes; each node needs "
                        "the course, the submissions and -o at the same paths")
    b.add_argument("--regrade", action="store_true",
                   help="grade every submission again, even those the journal has graded "
                        "with the same content and hidden suite")
    b.add_argument("-j", "--jobs", type=_jobs, default=0, help="parallel gradings (default: CPUs)")
    b.add_argument("--isolation", choices=ISOLATIONS, default=Isolation.SANDBOX.value, help=ISOLATION)
    b.add_argument("--timeout", type=_seconds, default=SUBMISSION_TIMEOUT,
                   help="seconds one submission may take; then it is stopped and scores 0 "
                        f"(default: {SUBMISSION_TIMEOUT:g})")

    b.add_argument("--image", metavar="TAG", default=None,
                   help="grade each submission in a container of this grading image, as "
                        "`grade --image` does")
    _container_args(b)

    gs = sub.add_parser("gradescope", help="build the zip to upload to Gradescope as the "
                        "assignment's autograder", parents=[staff])
    gs.add_argument("assignment", help="assignment id, e.g. a1")
    gs.add_argument("-o", "--output", type=Path, default=None,
                    help="the zip to write (default: ./<assignment id>-gradescope.zip)")
    gs.add_argument("--wheelhouse", type=Path, default=None,
                    help="a folder of wheels to embed, so that setup.sh installs offline "
                         "(fill it with `pip download -d DIR -c constraints.txt "
                         "--extra-index-url https://download.pytorch.org/whl/cpu "
                         "'.[torch,staff]' 'setuptools>=77' wheel`: the harness is built from source there)")

    c = sub.add_parser("check", help="run the public tests on your work (students)")
    c.add_argument("assignment", help="assignment id, e.g. a1")
    c.add_argument("path", type=Path, nargs="?", default=Path("."),
                   help="your assignment folder (default: the current folder)")
    c.add_argument("--isolation", choices=ISOLATIONS, default=Isolation.SANDBOX.value,
                   help="none runs your code in-process (breakpoints and prints work)")
    c.add_argument("-k", dest="keyword", metavar="PATTERN", default=None,
                   help="run only the tests whose name matches PATTERN (pytest's -k: "
                        "'conv', 'relu or sigmoid', 'not adam')")

    v = sub.add_parser("validate", help="prove hidden suites: solution full, template zero, "
                                        "mutants caught, runs equal", parents=[staff, protect])
    v.add_argument("assignments", nargs="*", help="default: all")
    v.add_argument("-j", "--jobs", type=_jobs, default=0, help="parallel gradings (default: CPUs)")
    v.add_argument("--isolation", choices=ISOLATIONS, default=Isolation.SANDBOX.value, help=ISOLATION)

    k = sub.add_parser("student-kit", help="write the folder students receive: template, "
                       "public tests, README with set-up steps, requirements", parents=[staff])
    k.add_argument("assignment", help="assignment id, e.g. a1")
    k.add_argument("-o", "--output", type=Path, default=None,
                   help="the folder to write (default: ./<assignment folder name>)")

    t = sub.add_parser("template", help="generate assignments/ from solutions/", parents=[staff])
    t.add_argument("assignments", nargs="*", help="default: all")
    t.add_argument("--check", action="store_true", help="fail if the committed templates drifted")
    _image_parser(sub, staff)
    return p


ISOLATION = "none: student code in this process, no sandbox (debugging, benchmarks)"
PROTECTIONS = "hidden-material, no-network, own-uid, namespaces, syscall-filter, loopback"


def _container_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", type=_jobs, default=8192, metavar="MB",
                   help="with --image: the container's memory limit (default: 8192)")
    p.add_argument("--cpus", type=float, default=2.0,
                   help="with --image: CPUs the container may use (default: 2)")
    p.add_argument("--gpus", action="store_true",
                   help="with --image: give the container every GPU (the GPU image)")


def _image_parser(sub: Any, staff: argparse.ArgumentParser) -> None:
    im = sub.add_parser("image", help="Docker grading images (course staff)")
    isub = im.add_subparsers(dest="image_command", required=True, parser_class=_Parser)
    base = isub.add_parser("base", help="make the base image with debootstrap (root; no "
                           "registry needed)", parents=[staff])
    base.add_argument("--tag", default=None, help="image tag (default: dl-autograder-base:bookworm)")
    base.add_argument("--mirror", default="http://deb.debian.org/debian",
                      help="Debian mirror for debootstrap")
    base.add_argument("--if-missing", action="store_true",
                      help="do nothing when the image exists already")
    build = isub.add_parser("build", help="build an assignment's grading image: its "
                            "Gradescope bundle installed by its setup.sh", parents=[staff])
    build.add_argument("assignment", help="assignment id, e.g. a1")
    build.add_argument("--tag", default=None,
                       help="image tag (default: dl-autograder-<id>:cpu or :gpu)")
    build.add_argument("--base", default=None,
                       help="base image (default: dl-autograder-base:bookworm for CPU, a CUDA "
                            "runtime for --gpu)")
    build.add_argument("--gpu", action="store_true",
                       help="grading_images/gpu.Dockerfile: CUDA torch (downloads it)")
    build.add_argument("--wheelhouse", type=Path, default=None,
                       help="wheels for the offline CPU build (default: downloaded once "
                            "into ~/.cache/dl-autograder)")
    build.add_argument("--network", action="store_true",
                       help="let the CPU build reach the network (a base without Python 3.11)")


def _protection_args(args: argparse.Namespace) -> list[str]:
    """--require/--allow-missing, passed on to the gradings (each checks the names)."""
    return [*(f"--require={n}" for n in args.require),
            *(f"--allow-missing={n}" for n in args.allow_missing)]


def _seconds(text: str) -> float:
    value = float(text)  # argparse turns a ValueError into a usage error naming the value
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _jobs(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of parallel gradings, or 0 "
                                         "for one per CPU")
    return value


def _error(message: object) -> None:
    """An error line; the message (paths, student text) is never read as rich markup."""
    console.print(Text.assemble(("error:", "red"), " ", str(message)), highlight=False, soft_wrap=True)


def _output_file(path: Path) -> Path:
    """Where `grade -o PATH` writes, checked before grading: a folder gets results.json
    inside; a parent folder that cannot be created or written is a usage error."""
    if path.is_dir():
        path = path / "results.json"
        console.print(Text(f"{path.parent} is a folder: writing {path}"), highlight=False)
    elif path.exists() and not path.is_file():
        raise ConfigError(f"cannot write results to {path}: it exists and is not a regular file")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".autograder-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write results to {path}: folder {parent} cannot be created "
                          f"or written ({exc.strerror or exc})") from exc
    return path


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[list[int]]:
    """SIGTERM (timeout, docker stop) becomes KeyboardInterrupt, once: pytest stops and
    run_suite still writes a fail-closed results.json. Yields a list that records it."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:
            return  # a second SIGTERM must not break the writing of results.json
        received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous: Any = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (API use): leave signals alone
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_grade(args: argparse.Namespace) -> int:
    from autograder.grading.runner import fail_closed_on_error, grade

    _refuse_with_image(args)

    output = _output_file(args.output)
    with _sigterm_interrupts() as terminated:
        try:
            with _unpacked(args, output) as folder:
                if folder is None:  # a zip that cannot be unpacked: the student is told
                    console.print(Text(f"{args.submission} could not be unpacked; results.json "
                                       f"says why, every test at 0 -> {output}"), highlight=False)
                    return int(ExitCode.OK)
                if args.image:
                    return _grade_in_image(args, folder, output)
                outcome = grade(assignment=args.assignment, submission=folder,
                                output=output, isolation=Isolation(args.isolation),
                                root=find_course_root(explicit=args.course),
                                require=args.require, allow_missing=args.allow_missing,
                                first_failure=args.first_failure, timeout=args.timeout,
                                test_workers=args.test_workers, metadata=args.metadata,
                                quickest_first=args.quickest_first)
        except AutograderError as exc:
            fail_closed_on_error(output, exc)
            _error(f"{exc}\n(results.json written: no points, this error in its staff-only entry)")
            return _exit_code(exc)
        except KeyboardInterrupt:
            if not terminated:
                raise
            outcome = None  # SIGTERM outside pytest: grading never started or had finished
    if terminated:
        if outcome is None or not output.exists():
            fail_closed_on_error(output, AutograderError("grading stopped by SIGTERM"))
        _error(f"grading stopped by SIGTERM; results.json written with a harness error -> {output}")
        return int(ExitCode.HARNESS_ERROR)
    assert outcome is not None
    return _report_grading(args, outcome.exit_code, outcome.data, output)


def _report_grading(args: argparse.Namespace, exit_code: ExitCode, data: dict[str, Any],
                    output: Path, where: str = "") -> int:
    """The one-line summary of a grading, and the harness's cause when it failed."""
    total = sum(t["max_score"] for t in data["tests"])
    console.print(Text(f"{args.assignment}: {data['score']:g} / {total:g} points "
                       f"({len(data['tests'])} tests, {data['execution_time']:.1f} s{where}) "
                       f"-> {output}"), highlight=False)
    if exit_code != ExitCode.OK:
        cause = harness_cause(data, full=args.debug) or "(no cause recorded)"
        console.print(Text.assemble(("the harness failed", "red"), f": {cause}\n(the staff-only "
                                    "entry of results.json has the traceback; --debug prints it)"),
                      highlight=False, soft_wrap=True)
    return int(exit_code)


def _grade_in_image(args: argparse.Namespace, folder: Path, output: Path) -> int:
    from autograder.grading.container import Limits, grade_in_container
    from autograder.grading.runner import expected_records

    root = find_course_root(explicit=args.course)
    config = Layout(root, resolve_name(root, args.assignment)).config()
    outcome = grade_in_container(
        image=args.image, submission=folder, output=output, timeout=args.timeout,
        expected=expected_records(assignment=args.assignment, root=root), gpus=args.gpus,
        limits=Limits(memory_mb=args.memory, cpus=args.cpus), assignment_id=config.id)
    return _report_grading(args, outcome.exit_code, outcome.data, output, f", in {args.image}")


def _refuse_with_image(args: argparse.Namespace) -> None:
    """Options a grading image cannot honour: a usage error, never silently dropped."""
    if not getattr(args, "image", None):
        return
    given = [name for name, on in (
        ("--require", args.require), ("--allow-missing", args.allow_missing),
        ("--isolation none", args.isolation != Isolation.SANDBOX.value),
        ("--first-failure", getattr(args, "first_failure", False)),
        ("--quickest-first", getattr(args, "quickest_first", None) is not None),
        ("--test-workers", getattr(args, "test_workers", 0) > 1),
        ("--metadata", getattr(args, "metadata", None) is not None)) if on]
    if given:
        raise ConfigError(f"{', '.join(given)} cannot be used with --image: the image grades "
                          "with its own run_autograder under Docker's defaults; drop them")
    if not (args.cpus > 0 and args.memory > 0):
        raise ConfigError(f"--cpus {args.cpus} and --memory {args.memory} must be positive")


def _image_grade_args(args: argparse.Namespace) -> list[str]:
    """`grade` arguments that make grade-all's gradings run in the image. The image's id,
    not its tag: a rebuilt image is other grading settings for the journal."""
    if not args.image:
        return []
    from autograder.grading.container import docker_client

    image_id = docker_client().images.get(args.image).id
    return ["--image", image_id, "--memory", str(args.memory), "--cpus", repr(args.cpus),
            *(["--gpus"] if args.gpus else [])]


def cmd_image(args: argparse.Namespace) -> int:
    from autograder.packaging import images

    def log(line: str) -> None:
        console.print(Text(line), highlight=False)

    if args.image_command == "base":
        tag = args.tag or images.BASE_TAG
        existing = images.existing(tag) if args.if_missing else None
        made = existing or images.build_base(tag=tag, mirror=args.mirror, log=log)
    else:
        root = find_course_root(explicit=args.course)
        made = images.build_image(root, resolve_name(root, args.assignment), tag=args.tag,
                                  base=args.base, gpu=args.gpu, wheels=args.wheelhouse,
                                  network=args.network, log=log)
    console.print(Text(f"{made.tag} ({made.size / 2**20:.0f} MB, {made.id[:19]})"),
                  highlight=False)
    return int(ExitCode.OK)


def _batch_notes(graded: Sequence[Any], out_dir: Path) -> list[str]:
    from autograder.course.bulk import stale_results

    notes = []
    reused = [g.name for g in graded if g.reused]
    if reused:
        notes.append(f"{len(reused)} unchanged since the last run, results reused "
                     "(--regrade grades them again): " + ", ".join(reused[:10])
                     + (" ..." if len(reused) > 10 else ""))
    stale = stale_results(out_dir, {g.name for g in graded})
    if stale:
        notes.append(f"results of {len(stale)} submissions not in this batch are kept in "
                     f"{out_dir} from an earlier run: " + ", ".join(stale[:10])
                     + (" ..." if len(stale) > 10 else ""))
    return notes


@contextlib.contextmanager
def _unpacked(args: argparse.Namespace, output: Path) -> Iterator[Path | None]:
    """The submission folder to grade: as given, or a .zip unpacked into a temporary folder
    (None, with results.json written, when it cannot be unpacked)."""
    from autograder.grading.submission import extract_zip, is_zip

    if not is_zip(args.submission):
        yield args.submission
        return
    from autograder.course.bulk import ExpectedTests, write_unpack_failure
    from autograder.errors import SubmissionError

    with tempfile.TemporaryDirectory(prefix="autograder-zip-") as tmp:
        folder = Path(tmp) / (args.submission.stem or "submission")
        folder.mkdir()
        try:
            extract_zip(args.submission, folder)
        except SubmissionError as exc:
            write_unpack_failure(args.submission, exc, output,
                                 ExpectedTests(args.assignment, args.course))
            yield None
            return
        yield folder


def cmd_grade_all(args: argparse.Namespace) -> int:
    from autograder.course.bulk import grade_all, parse_targets
    from autograder.course.report import write_reports

    _refuse_with_image(args)

    root = find_course_root(explicit=args.course)
    layout = Layout(root, resolve_name(root, args.assignment))
    targets = parse_targets(args.submissions, layout.config().modules)
    if targets.ignored:
        console.print(Text("not submissions, left out: " + ", ".join(str(p) for p in targets.ignored)),
                      highlight=False)
    total = (len(targets.submissions) + sum(len(p) for p in targets.collisions.values())
             + len(targets.bad_names))
    with contextlib.closing(targets), _progress(total, "grading") as (_, advance):
        graded = grade_all(assignment=args.assignment, targets=targets, out_dir=args.output,
                           jobs=args.jobs, isolation=Isolation(args.isolation), course=root,
                           timeout=args.timeout,
                           grade_args=_protection_args(args) + _image_grade_args(args),
                           reuse=not args.regrade, on_done=lambda g: advance(),
                           dask=args.dask)
        # similarity reads the submissions' files: before an unpacked export is removed
        csv_path, html_path = write_reports(graded, assignment=args.assignment,
                                            out_dir=args.output, template=layout.template,
                                            submitters=targets.submitters,
                                            notes=_batch_notes(graded, args.output))
    table = Table(title=Text(f"{args.assignment}: {len(graded)} submissions"))
    for col in ("submission", "score", "status", "seconds", "failed tests", "results.json"):
        table.add_column(col, overflow="fold")
    for g in graded:
        failed = g.error or (f"{len(g.failed)}: " + ", ".join(g.failed[:3]) +
                             (" ..." if len(g.failed) > 3 else "") if g.failed else "")
        # Submission names, errors and test names are data, never markup.
        table.add_row(Text(g.name), f"{g.score:g}/{g.max_score:g}", g.status, f"{g.seconds:.1f}",
                      Text(failed), Text("-" if g.collision else str(g.results)))
    console.print(table)
    for note in _batch_notes(graded, args.output):
        console.print(Text(note), highlight=False)
    console.print(Text(f"grades: {csv_path}\nreport: {html_path}"), highlight=False)
    return int(ExitCode.HARNESS_ERROR if any(g.broken for g in graded) else ExitCode.OK)


@contextlib.contextmanager
def _progress(total: int | None, what: str
              ) -> Iterator[tuple[Callable[[int], None], Callable[[], None]]]:
    """A progress bar with ETA on a terminal, nothing otherwise (logs stay clean); yields
    (set the total, advance by one)."""
    if not console.is_terminal:
        yield (lambda n: None), (lambda: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task(what, total=total)
        lock = threading.Lock()

        def start(n: int) -> None:
            bar.update(task, total=n)

        def advance() -> None:
            with lock:
                bar.advance(task)

        yield start, advance


def _student_folder(root_hint: Path, assignment: str) -> tuple[Path, Path | None]:
    """(submission, template folder) for `check`: a generated assignment folder, or the
    course repository's reference_tests/<name>/public.

    In an assignment folder the argument must name that folder's assignment (its id or
    the folder's name), or `check a7` in a6's folder would silently run a6's tests."""
    path = root_hint.resolve()
    if (path / "assignment.toml").is_file() and (path / "tests").is_dir():
        config = AssignmentConfig.load(path / "assignment.toml")
        if not any(_matches(name, assignment) for name in (config.id, path.name)):
            raise ConfigError(
                f"assignment {assignment!r} does not match the folder {path}, which holds "
                f"assignment {config.id!r} ({path.name}); run `autograder check {config.id}` "
                f"here, or pass the folder of {assignment!r}")
        return path, path
    return path, None


def _matches(name: str, key: str) -> bool:
    try:
        match_name([name], key)
    except ConfigError:
        return False
    return True


def cmd_check(args: argparse.Namespace) -> int:
    from autograder.grading.runner import hidden_suite, public_suite, run_suite

    submission, folder = _student_folder(args.path, args.assignment)
    if folder is not None:
        suite = public_suite(folder)
    else:
        root = find_course_root(submission)
        layout = Layout(root, resolve_name(root, args.assignment))
        modules = layout.config().modules
        if not holds_a_module(submission, modules):
            files = ", ".join(f"{m}.py" for m in modules)
            raise ConfigError(f"{submission} holds none of {layout.name}'s files "
                              f"({files}, or .ipynb); run `autograder check "
                              f"{args.assignment}` in your assignment folder, or pass it")
        full = hidden_suite(layout)
        suite = type(full)(tests=[layout.reference / "public"], config=full.config,
                           support=full.support, rootdir=layout.reference, hide=full.hide)
    with tempfile.TemporaryDirectory() as tmp:
        # Both modes print the same table: what the code printed is shown with its test;
        # in-process, breakpoint() suspends the capture and reaches the terminal.
        outcome = run_suite(suite=suite, submission=submission, output=Path(tmp) / "results.json",
                            isolation=Isolation(args.isolation), quiet=True,
                            extra_args=["-k", args.keyword] if args.keyword else None)
    if args.keyword and not outcome.data["tests"] and outcome.exit_code == ExitCode.OK:
        raise ConfigError(f"-k {args.keyword!r} matches none of the public tests; give a part "
                          "of a test's function name (e.g. -k conv), or leave -k out")
    return render_check(outcome.data, outcome.exit_code, categories=_categories(suite.config),
                        subset=args.keyword)


def _categories(config: Path) -> tuple[str, ...]:
    """The check table's categories: the assignment's [report] categories."""
    try:
        return AssignmentConfig.load(config).categories
    except AutograderError:  # the run has reported the broken config already
        return DEFAULT_CATEGORIES


CHECK_WIDTH = 80  # the check's table and rules fit a default terminal


def render_check(data: dict, exit_code: ExitCode, *,
                 categories: Sequence[str] = DEFAULT_CATEGORIES, subset: str | None = None) -> int:
    """The check table and outputs. Test names, outputs and file names come from tests and
    student code: they are printed as Text (or with markup off), never parsed as markup.

    Rows keep the suite's order (the README's order of tasks); the table ends with a
    subtotal per category and the total. Everything fits 80 columns."""
    width = min(console.width, CHECK_WIDTH)
    tests = list(data["tests"])
    table = Table(title="Public tests" + (f" matching -k {subset!r}" if subset else ""),
                  width=width)
    table.add_column("category", overflow="fold", max_width=13)
    table.add_column("test", overflow="fold", ratio=1)
    table.add_column("result", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    failed = 0
    subtotals: dict[str, list[float]] = {}
    for t in tests:
        ok = t["status"] == "passed"
        failed += not ok
        cat = _category(t, categories)
        got = subtotals.setdefault(cat, [0.0, 0.0])
        got[0] += t["score"]
        got[1] += t["max_score"]
        table.add_row(Text(cat), Text(t["name"]),
                      Text("pass", style="green") if ok else Text("FAIL", style="red"),
                      f"{t['score']:g}/{t['max_score']:g}")
    order = {c: i for i, c in enumerate(categories)}
    if tests:
        table.rows[-1].end_section = True
    for cat in sorted(subtotals, key=lambda c: order.get(c, len(order))):
        score, top = subtotals[cat]
        table.add_row(Text(cat, style="bold"), Text("subtotal", style="dim"), "",
                      Text(f"{score:g}/{top:g}", style="bold"))
    total = sum(t["max_score"] for t in tests)
    console.print(table, width=width)
    extra = data.get("extra_data", {})
    if extra.get("isolation") != Isolation.NONE:  # in-process: the output's line says so
        line = _sandbox_line(extra.get("protections"))
        if line is not None:
            console.print(line, highlight=False, soft_wrap=True)
    if data.get("output"):
        console.print(data["output"], markup=False, highlight=False, soft_wrap=True)
    for t in tests:
        if t["status"] != "passed" and t["output"].strip():
            console.print(Rule(Text(t["name"], style="red")), width=width)
            console.print(t["output"], markup=False, highlight=False, soft_wrap=True)
    note = f" (only -k {subset!r})" if subset else ""
    console.print(f"\nscore on public tests: {data['score']:g} / {total:g}{note}", markup=False)
    if exit_code != ExitCode.OK:
        return int(exit_code)
    return int(ExitCode.FAILED if failed else ExitCode.OK)


def _sandbox_line(protections: Any) -> Text | None:
    """'Sandbox: active: network, ...; off: name (why), ...' from results' protections."""
    if not isinstance(protections, list) or not protections:
        return None
    items = [p for p in protections if isinstance(p, dict) and "name" in p]
    active = [str(p["name"]) for p in items if p.get("active")]
    off = [f"{p['name']} ({p['detail']})" if p.get("detail") else str(p["name"])
           for p in items if not p.get("active")]
    line = Text("Sandbox: ")
    line.append("active: ", style="green")
    line.append(", ".join(active) or "none")
    line.append("; ")
    line.append("off: ", style="yellow" if off else "green")
    line.append(", ".join(off) or "none")
    return line


def _category(test: dict, categories: Sequence[str]) -> str:
    from autograder.grading.plugin import category

    return category(test.get("tags", []), categories)


def cmd_validate(args: argparse.Namespace) -> int:
    from autograder.course.validation import validate

    with _progress(None, "validating") as (start, advance):
        report = validate(assignments=args.assignments, jobs=args.jobs,
                          isolation=Isolation(args.isolation),
                          grade_args=_protection_args(args),
                          root=find_course_root(explicit=args.course),
                          on_start=start, on_done=lambda row: advance())
    _render_validate(report)
    return int(ExitCode.OK if report.ok else ExitCode.FAILED)


def _render_validate(report: Any) -> None:
    """The validate table; notes carry grading errors and test names, printed as Text."""
    table = Table(title="autograder validate")
    for col in ("assignment", "subject", "expected", "score", "time", "ok", "note"):
        table.add_column(col, overflow="fold", justify="right" if col == "time" else "left")
    for r in report.rows:
        table.add_row(Text(r.assignment), Text(r.subject), Text(r.expect),
                      f"{r.score:g}/{r.max_score:g}", f"{r.seconds:.0f} s",
                      Text("yes", style="green") if r.ok else Text("NO", style="red"),
                      Text(r.note[:400] if r.broken else r.note[:120]))
    console.print(table)
    spent: dict[str, float] = {}
    for r in report.rows:
        spent[r.assignment] = spent.get(r.assignment, 0.0) + r.seconds
    console.print(Text("grading time (summed over parallel jobs): " + ", ".join(
        f"{name} {seconds:.0f} s" for name, seconds in spent.items())), highlight=False)
    bad = [r for r in report.rows if not r.ok]
    console.print("[green]all checks hold[/green]" if not bad else
                  f"[red]{len(bad)} check(s) failed[/red]")


def cmd_gradescope(args: argparse.Namespace) -> int:
    from autograder.packaging.gradescope import build_bundle

    root = find_course_root(explicit=args.course)
    name = resolve_name(root, args.assignment)
    config = Layout(root, name).config()
    out = build_bundle(root, name, args.output or Path(f"{config.id}-gradescope.zip"),
                       wheelhouse=args.wheelhouse)
    size = out.stat().st_size / 2**20
    console.print(Text(f"{out} ({size:.1f} MB): upload it as the autograder of {config.id} "
                       "(setup.sh and run_autograder at its top)"), highlight=False)
    return int(ExitCode.OK)


def cmd_student_kit(args: argparse.Namespace) -> int:
    from autograder.course.templates import generate_template
    from autograder.packaging.student_kit import write_kit

    root = find_course_root(explicit=args.course)
    name = resolve_name(root, args.assignment)
    out = args.output or Path(name)
    kit = write_kit(template=generate_template(root, name), folder_name=name, out=out,
                    constraints=root / "constraints.txt")
    config = Layout(root, name).config()
    console.print(Text(f"{kit.folder}: the student kit of {config.id} ({kit.requirement}); "
                       f"students follow its README's \"Set up\" section"), highlight=False)
    return int(ExitCode.OK)


def cmd_template(args: argparse.Namespace) -> int:
    from autograder.course.templates import check_template, write_template

    root = find_course_root(explicit=args.course)
    names = [resolve_name(root, a) for a in args.assignments] or assignment_names(
        root, where="solutions")
    drift = []
    for name in names:
        if args.check:
            drift += [f"{name}: {d}" for d in check_template(root, name)]
        else:
            written = write_template(root, name)
            console.print(Text(f"{name}: {len(written)} files written to assignments/{name}/"))
    if drift:
        console.print("[red]templates drifted from solutions/ (run `autograder template`):[/red]")
        for d in drift:
            console.print(f"  {d}", markup=False)
        return int(ExitCode.FAILED)
    if args.check:
        console.print(Text(f"templates in sync: {', '.join(names)}"))
    return int(ExitCode.OK)


def _exit_code(exc: AutograderError) -> int:
    """Bad usage (3) is the caller's to fix; broken course files are the staff's (2)."""
    usage = isinstance(exc, ConfigError) and not isinstance(exc, CourseError)
    return int(ExitCode.USAGE if usage else ExitCode.HARNESS_ERROR)


COMMANDS = {"grade": cmd_grade, "grade-all": cmd_grade_all, "check": cmd_check, "validate": cmd_validate,
            "gradescope": cmd_gradescope, "student-kit": cmd_student_kit,
            "template": cmd_template, "image": cmd_image}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        if args.debug:
            traceback.print_exc()
        _error(exc)
        return _exit_code(exc)
    except AutograderError as exc:
        if args.debug:
            traceback.print_exc()
        _error(exc)
        return int(ExitCode.HARNESS_ERROR)


