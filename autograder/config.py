"""Assignment configuration (``assignment.toml``) and the repository layout."""

from __future__ import annotations

import enum
import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from autograder.errors import ConfigError, CourseError

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
MB = 2**20

# Defaults shared by the CLI, the Python API and the sandbox: each is spelled here only.
SUBMISSION_TIMEOUT = 3600.0  # seconds one submission may take in `grade-all`
DEFAULT_PRELOAD: tuple[str, ...] = ("numpy",)  # what the zygote imports before forking
# The check table's categories (the first tag of a test found here is its category),
# unless [report] categories says otherwise: the five kinds of hidden test.
DEFAULT_CATEGORIES: tuple[str, ...] = ("gradients", "shapes", "convergence", "parity",
                                       "performance")
# Variables the worker's environment always gets from the harness: [environment] may not
# set them (names, and prefixes of names).
HARNESS_ENV = ("PATH", "HOME", "TMPDIR", "LANG")
HARNESS_ENV_PREFIXES = ("PYTHON", "OMP_", "MKL_", "OPENBLAS_")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Isolation(enum.StrEnum):
    """Where student code runs (``--isolation``)."""

    SANDBOX = "sandbox"  # sandboxed workers forked from a zygote (the default)
    NONE = "none"  # in the grader's process: debugging (breakpoints, prints), benchmarks


ISOLATIONS = tuple(i.value for i in Isolation)  # argparse/pytest choices


@dataclass(frozen=True)
class Limits:
    call_timeout: float = 10.0
    test_timeout: float = 600.0  # whole test, grader side included (pytest-timeout)
    memory_mb: int = 2048
    cpu_seconds: int = 300
    processes: int = 64
    open_files: int = 256
    file_size_mb: int = 64
    threads: int = 1
    # Largest value one call may send or return: bounds the grader's memory per reply
    # (Gradescope gives grader and worker 768 MB together).
    message_mb: int = 64
    # What one worker may print before it is stopped (a print in a loop costs seconds,
    # not minutes of draining).
    output_mb: int = 16

    @property
    def message_bytes(self) -> int:
        return self.message_mb * MB

    @property
    def output_bytes(self) -> int:
        return self.output_mb * MB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            whole = f.type in ("int", int)
            ok = (isinstance(value, int) if whole else isinstance(value, (int, float))) \
                and not isinstance(value, bool) and value > 0
            if not ok:
                kind = "a positive whole number" if whole else "a positive number"
                raise ConfigError(f"[limits] {f.name} = {value!r}: use {kind}, e.g. "
                                  f"{f.name} = {f.default}")


@dataclass(frozen=True)
class Policy:
    late_penalty_per_day: float = 0.0
    late_grace_minutes: float = 0.0
    submission_limit: int = 0
    best_of: bool = False

    @property
    def any(self) -> bool:
        return bool(self.late_penalty_per_day or self.submission_limit or self.best_of)

    @classmethod
    def from_table(cls, table: Any, path: Path) -> Policy:
        if not isinstance(table, dict):
            raise CourseError(f"{path}: policy = {table!r}; write [policy] as a table")
        known = {"late_penalty_per_day", "late_grace_minutes", "submission_limit", "best_of"}
        unknown = set(table) - known
        if unknown:
            raise CourseError(f"{path}: unknown [policy] entry {sorted(unknown)[0]!r}; known: "
                              + ", ".join(sorted(known)))
        p = table.get("late_penalty_per_day", 0.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise CourseError(f"{path}: [policy] late_penalty_per_day = {p!r}; give a fraction "
                              "from 0 to 1, e.g. 0.1 for 10 % per day late")
        g = table.get("late_grace_minutes", 0.0)
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 <= g <= 525600:
            raise CourseError(f"{path}: [policy] late_grace_minutes = {g!r}; give minutes "
                              "from 0 to 525600 (a year)")
        n = table.get("submission_limit", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise CourseError(f"{path}: [policy] submission_limit = {n!r}; give a whole number "
                              "of submissions (0: no limit)")
        b = table.get("best_of", False)
        if not isinstance(b, bool):
            raise CourseError(f"{path}: [policy] best_of = {b!r}; write true or false")
        return cls(float(p), float(g), n, b)


# Measured: at 3072 MB Chromium's renderer crashes, at 2048 MB the page hangs.
BROWSER_MIN_MEMORY_MB = 4096
# Threads count: a headless Chromium runs about 110 (measured), Playwright's driver more.
BROWSER_MIN_PROCESSES = 256


@dataclass(frozen=True)
class AssignmentConfig:
    id: str
    title: str
    modules: tuple[str, ...]
    support: tuple[str, ...] = ()
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    limits: Limits = field(default_factory=Limits)
    default_visibility: str = "visible"
    hidden_visibility: str = "after_published"  # tests outside public/ without a marker
    # [sandbox] require / allow_missing: protections (autograder.sandbox.policy.Guarantee
    # names) added to or taken from what `grade` as root requires; checked by the plugin.
    require: tuple[str, ...] = ()
    allow_missing: tuple[str, ...] = ()
    # Packages a submission may not import ("torch" also forbids "torch.nn"): refused by
    # the grader's scan of the sources and by an import hook in the worker.
    forbidden_imports: tuple[str, ...] = ()
    # The assignment's own probe module, relative to solutions/NAME/ (copied to students'
    # assignments/NAME/ by the template generator); loaded by the zygote before any worker.
    probes: str | None = None
    # [report] categories: tags that name a test's category in `autograder check`.
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    # [environment]: variables the sandboxed worker gets on top of the harness's own
    # (e.g. WANDB_MODE = "offline"); --isolation none leaves the environment alone.
    environment: dict[str, str] = field(default_factory=dict, hash=False)
    # [policy]: late penalty, submission limit, best-of, applied with Gradescope's
    # submission_metadata.json (autograder.grading.policies).
    policy: Policy = field(default_factory=lambda: Policy())
    # [sandbox] loopback: the worker gets a loopback of its own (a server in student code);
    # only in a network namespace of its own, else IP sockets stay refused and it says why.
    loopback: bool = False
    # [sandbox] browser: the worker runs a browser (Chromium reserves terabytes of address
    # space at its start), so its memory limit bounds written memory (RLIMIT_DATA) instead.
    browser: bool = False
    # [assignment] files: project files a submission provides besides its modules (dvc.yaml,
    # params.yaml, .streamlit/config.toml), as paths or glob patterns (``*`` within one
    # folder) relative to the graded folder; copied into the worker's folder as they are.
    files: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path) -> AssignmentConfig:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CourseError(f"cannot read {path}: {exc}") from exc
        a = data.get("assignment", {})
        try:
            lim = Limits(**data.get("limits", {}))
        except TypeError as exc:
            known = ", ".join(f.name for f in fields(Limits))
            raise CourseError(f"{path}: bad [limits] entry: {exc}; known limits: {known}") from exc
        except ConfigError as exc:
            raise CourseError(f"{path}: {exc}") from None
        table = data.get("visibility", {})
        vis = table.get("default", "visible")
        hidden_vis = table.get("hidden", "after_published")
        for key, value in (("default", vis), ("hidden", hidden_vis)):
            if value not in VISIBILITIES:
                raise CourseError(f"{path}: visibility.{key} = {value!r}; use one of {VISIBILITIES}")
        for key in ("id", "title", "modules"):
            if key not in a:
                raise CourseError(f"{path}: [assignment] needs '{key}'")
        modules = _names(a["modules"], path)
        box = data.get("sandbox", {})
        unknown = set(box) - {"require", "allow_missing", "loopback", "browser"}
        if unknown:
            raise CourseError(f"{path}: unknown [sandbox] entry {sorted(unknown)[0]!r}; "
                              "known: require, allow_missing, loopback, browser")
        for flag in ("loopback", "browser"):
            if not isinstance(box.get(flag, False), bool):
                raise CourseError(f"{path}: [sandbox] {flag} = {box[flag]!r}; write true "
                                  "or false")
        if box.get("browser") and lim.memory_mb < BROWSER_MIN_MEMORY_MB:
            raise CourseError(f"{path}: [sandbox] browser needs [limits] memory_mb of at least "
                              f"{BROWSER_MIN_MEMORY_MB} (it is {lim.memory_mb}): Chromium's "
                              "renderer writes into that much reserved memory, and below it "
                              "the page crashes or hangs")
        if box.get("browser") and lim.processes < BROWSER_MIN_PROCESSES:
            raise CourseError(f"{path}: [sandbox] browser needs [limits] processes of at least "
                              f"{BROWSER_MIN_PROCESSES} (it is {lim.processes}): the limit "
                              "counts threads, and Chromium alone starts about 110")
        for key in ("require", "allow_missing"):
            if not (isinstance(box.get(key, []), list)
                    and all(isinstance(v, str) for v in box.get(key, []))):
                raise CourseError(f"{path}: [sandbox] {key} = {box[key]!r}; give a list of "
                                  'protection names, e.g. require = ["namespaces"]')
        preload = tuple(a.get("preload", DEFAULT_PRELOAD))
        forbidden = _forbidden(a.get("forbidden_imports", []), path, modules, preload)
        return cls(id=str(a["id"]), title=str(a["title"]), modules=modules,
                   support=tuple(a.get("support", ())), preload=preload,
                   limits=lim, default_visibility=vis, hidden_visibility=hidden_vis,
                   forbidden_imports=forbidden, require=tuple(box.get("require", [])),
                   allow_missing=tuple(box.get("allow_missing", [])),
                   probes=_probe_module(a.get("probes"), path),
                   categories=_categories(data, path), environment=_environment(data, path),
                   policy=Policy.from_table(data.get("policy", {}), path),
                   loopback=bool(box.get("loopback", False)),
                   browser=bool(box.get("browser", False)),
                   files=project_files(a.get("files", []), path, modules,
                                       tuple(a.get("support", ()))))


def project_files(value: Any, path: Path | str, modules: tuple[str, ...],
                  support: tuple[str, ...]) -> tuple[str, ...]:
    """[assignment] files: relative paths or glob patterns (``*`` within one folder), none
    of them a module or support file of the assignment."""
    example = 'e.g. files = ["dvc.yaml", "params.yaml", ".dvc/config"]'
    if not isinstance(value, list):
        raise CourseError(f"{path}: files = {value!r}; give a list of paths relative to the "
                          f"submission's folder, {example}")
    taken = {f"{m}.py" for m in modules} | {f"{m}.ipynb" for m in modules} | set(support)
    for v in value:
        pure = PurePosixPath(v) if isinstance(v, str) and v and "\\" not in v else None
        if pure is None or pure.is_absolute() or ".." in pure.parts:
            raise CourseError(f"{path}: files entry {v!r} is not a relative path; write "
                              f"forward slashes, no '..', {example}")
        if pure.as_posix() in taken:
            raise CourseError(f"{path}: files entry {v!r} is also a module or support file; "
                              "keep it in one list")
    return tuple(PurePosixPath(v).as_posix() for v in dict.fromkeys(value))


def is_project_file(rel: str, patterns: tuple[str, ...]) -> bool:
    """True if ``rel`` (posix, relative to the graded folder) matches one of ``patterns``,
    part by part (``*`` stays within a folder: ``data/*.csv``)."""
    parts = rel.split("/")
    for pattern in patterns:
        want = pattern.split("/")
        if len(want) == len(parts) and all(fnmatch.fnmatchcase(a, w)
                                           for a, w in zip(parts, want, strict=True)):
            return True
    return False


def _table(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise CourseError(f"{path}: {name} = {table!r}; [{name}] is a table, write it as "
                          f"[{name}] on a line of its own with its entries below")
    return table


def _categories(data: dict[str, Any], path: Path) -> tuple[str, ...]:
    """[report] categories: a non-empty list of distinct, non-empty tag names."""
    report = _table(data, "report", path)
    unknown = set(report) - {"categories"}
    if unknown:
        raise CourseError(f"{path}: unknown [report] entry {sorted(unknown)[0]!r}; known: categories")
    value = report.get("categories", list(DEFAULT_CATEGORIES))
    example = 'e.g. categories = ["gradients", "shapes"]'
    if not isinstance(value, list) or not value:
        raise CourseError(f"{path}: [report] categories = {value!r}; give a non-empty list of "
                          f"tag names, {example}")
    for v in value:
        if not (isinstance(v, str) and v.strip()):
            raise CourseError(f"{path}: [report] categories entry {v!r} is not a tag name; "
                              f"give non-empty strings, {example}")
    return tuple(dict.fromkeys(value))


def _environment(data: dict[str, Any], path: Path) -> dict[str, str]:
    """[environment]: NAME = "value" pairs for the worker, none of the harness's own."""
    env = _table(data, "environment", path)
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise CourseError(f"{path}: [environment] {name!r} is not a variable name; use "
                              'letters, digits and _, e.g. WANDB_MODE = "offline"')
        if name in HARNESS_ENV or name.startswith(HARNESS_ENV_PREFIXES):
            raise CourseError(f"{path}: [environment] {name} is set by the harness for every "
                              f"worker ({', '.join(HARNESS_ENV)}, "
                              f"{', '.join(p + '*' for p in HARNESS_ENV_PREFIXES)}); remove it")
        if not isinstance(value, str) or "\0" in value:
            shown = ('"..."' if not isinstance(value, (int, float, bool))
                     else f'"{str(value).lower() if isinstance(value, bool) else value}"')
            raise CourseError(f"{path}: [environment] {name} = {value!r}; give a string "
                              f"without NUL characters, e.g. {name} = {shown}")
    return dict(env)


def _probe_module(value: Any, path: Path) -> str | None:
    """[assignment] probes: a .py file below the solution folder, or nothing."""
    if value is None:
        return None
    pure = PurePosixPath(value) if isinstance(value, str) else None
    if pure is None or pure.is_absolute() or ".." in pure.parts or pure.suffix != ".py" \
            or "\\" in value:
        raise CourseError(f"{path}: probes = {value!r}; give the path of a .py file relative "
                          'to the solution folder, e.g. probes = "probes.py"')
    return pure.as_posix()


def _names(value: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise CourseError(f"{path}: modules = {value!r}; give a non-empty list of module names, "
                          'e.g. modules = ["layers", "mlp"]')
    for v in value:
        if not (isinstance(v, str) and v.isidentifier()):
            hint = f' (write "{v[:-3]}", without ".py")' if isinstance(v, str) and v.endswith(".py") else ""
            raise CourseError(f"{path}: modules entry {v!r} is not a module name{hint}")
    return tuple(value)


def _forbidden(value: Any, path: Path, modules: tuple[str, ...],
               preload: tuple[str, ...]) -> tuple[str, ...]:
    """[assignment] forbidden_imports: a list of dotted module names."""
    example = 'e.g. forbidden_imports = ["torch", "scipy.special"]'
    if not isinstance(value, list):
        raise CourseError(f"{path}: forbidden_imports = {value!r}; give a list of package "
                          f"names, {example}")
    for v in value:
        if not (isinstance(v, str) and v and all(p.isidentifier() for p in v.split("."))):
            raise CourseError(f"{path}: forbidden_imports entry {v!r} is not a module name; "
                              f"write dotted names without spaces or wildcards, {example}")

    def hit(name: str) -> str | None:
        return next((f for f in value if name == f or name.startswith(f + ".")), None)

    # A forbidden module the zygote preloads or the assignment's own module would make
    # every test fail: the course contradicts itself.
    for kind, names in (("preload", preload), ("modules", modules)):
        for name in names:
            if (f := hit(name)) is not None:
                raise CourseError(f"{path}: {kind} entry {name!r} is forbidden by "
                                  f"forbidden_imports entry {f!r}; remove one of the two")
    return tuple(dict.fromkeys(value))


@dataclass(frozen=True)
class Layout:
    """Where an assignment's parts live in a course repository."""

    root: Path
    name: str

    @property
    def solution(self) -> Path:
        return self.root / "solutions" / self.name

    @property
    def reference(self) -> Path:
        return self.root / "reference_tests" / self.name

    @property
    def template(self) -> Path:
        return self.root / "assignments" / self.name

    def config(self) -> AssignmentConfig:
        path = self.reference / "assignment.toml"
        config = AssignmentConfig.load(path)
        if self.name != config.id and self.name.split("_", 1)[0] != config.id:
            raise CourseError(f"{path}: id = {config.id!r} does not match the folder {self.name!r}; "
                              f"folders are named ID or ID_topic (e.g. {config.id}_{self.name})")
        return config


COURSE_ENV = "AUTOGRADER_COURSE"


def is_course(path: Path) -> bool:
    return (path / "reference_tests").is_dir() or (path / "assignments").is_dir()


def find_course_root(start: Path | None = None, *, explicit: Path | None = None) -> Path:
    """The course repository: ``explicit`` (--course), else $AUTOGRADER_COURSE, else the
    nearest parent of ``start`` (default: the current folder) holding reference_tests/ or
    assignments/, else the checkout the harness is installed from. Graders must also check
    that the result does not lie inside a submission (see grading.grade)."""
    given = explicit or (Path(os.environ[COURSE_ENV]) if os.environ.get(COURSE_ENV) else None)
    if given is not None:
        if not is_course(given):
            source = "--course" if explicit else f"${COURSE_ENV}"
            raise ConfigError(f"{source} {given} is not a course repository (it has no "
                              "reference_tests/ or assignments/ folder); pass the repository's root")
        return given.resolve()
    here = (start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if is_course(p):
            return p
    packaged = Path(__file__).resolve().parent.parent
    if (packaged / "reference_tests").is_dir():
        return packaged
    raise ConfigError(f"no course repository (a folder with reference_tests/) above {here}")


def match_name(names: list[str], key: str, *, none_known: str = "none") -> str:
    """'a1', 'a1_numpy_nn' or a path ending in the name -> the name; ambiguity is an error."""
    wanted = PurePosixPath(key.replace("\\", "/").rstrip("/")).name
    if wanted in names:
        return wanted
    matches = [n for n in names if n.split("_", 1)[0] == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"assignment {key!r} is ambiguous ({', '.join(matches)}); use the full name")
    ids = ", ".join(dict.fromkeys(n.split("_", 1)[0] for n in names))
    known = f"{', '.join(names)} (by id: {ids})" if names else none_known
    raise ConfigError(f"unknown assignment {key!r}; known assignments: {known}")


Where = Literal["reference", "graded", "solutions"]


def assignment_names(root: Path, *, where: Where = "reference") -> list[str]:
    """The course's assignments (folder names, sorted), as each command sees them:

    - ``"reference"``: folders of reference_tests/ holding an assignment.toml (`validate`);
    - ``"graded"``: those, or where there are none (a copy of the course without hidden
      tests) folders of assignments/ holding one (`grade`, `check`, `grade-all`);
    - ``"solutions"``: folders of solutions/ (not hidden: ``.``/``_``) with a
      reference_tests/ twin (what `template` generates from).
    """
    root = Path(root)
    if where == "solutions":
        solutions = root / "solutions"
        if not solutions.is_dir():
            return []
        return sorted(d.name for d in solutions.iterdir()
                      if d.is_dir() and not d.name.startswith((".", "_"))
                      and (root / "reference_tests" / d.name).is_dir())
    names = sorted(p.parent.name for p in (root / "reference_tests").glob("*/assignment.toml"))
    if not names and where == "graded":
        names = sorted(p.parent.name for p in (root / "assignments").glob("*/assignment.toml"))
    return names


def resolve_name(root: Path, key: str) -> str:
    """The graded assignment folder (reference_tests/NAME, or assignments/NAME) for ``key``."""
    return match_name(assignment_names(root, where="graded"), key)
