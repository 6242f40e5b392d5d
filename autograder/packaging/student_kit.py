"""The folder a student receives (``autograder student-kit a1 -o DIR``).

::

    DIR/
      README.md            the assignment's README with a "Set up" section (venv, pip, check)
      requirements.txt     the harness with the extras this assignment needs, from wheels/
      constraints.txt      the course's pinned versions (the ones the grader uses)
      wheels/              a wheel of the harness, built here from its source
      assignment.toml, *.py, *.ipynb, tests/   the generated template, as in assignments/NAME/

The harness's core (numpy, pytest, hypothesis, rich, nbformat, jsonschema) is enough for a
numpy-only assignment; an assignment that preloads torch gets the ``torch`` extra. Staff
tooling (dask, matplotlib, docker...) never reaches a student's laptop.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import io
import re
import shutil
import sys
import textwrap
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.errors import ConfigError, CourseError

DIST = "dl-autograder"
PACKAGE = "autograder"
# What a preloaded module needs beyond the core: the harness extra that installs it.
EXTRAS = {"torch": "torch"}
CORE = {"numpy"}
# Import names whose pip name differs.
PIP_NAMES = {"sklearn": "scikit-learn", "yaml": "pyyaml", "cv2": "opencv-python",
             "skimage": "scikit-image", "PIL": "pillow"}
PACKAGE_DATA = ("py.typed", "grading/schema/results.schema.json", "grading/grading.ini")


@dataclass(frozen=True)
class Kit:
    folder: Path
    wheel: Path
    requirement: str  # the harness line of requirements.txt, e.g. "dl-autograder[torch]==0.1.0"
    optional: dict[str, list[str]]  # pip name -> files of the template that import it


def requirement_for(config: AssignmentConfig, version: str) -> str:
    """The harness with the extras the assignment's ``preload`` needs, and the
    assignment's own extra where the harness declares one (``a6``: dvc, wandb)."""
    from autograder.packaging.gradescope import assignment_extras

    top = {m.split(".")[0] for m in config.preload}  # "torch._dynamo" needs torch
    extras = sorted({EXTRAS[m] for m in top if m in EXTRAS}
                    | ({config.id} & set(assignment_extras())))
    return f"{DIST}{'[' + ','.join(extras) + ']' if extras else ''}=={version}"


def _third_party(source: bytes, skip: set[str]) -> set[str]:
    """Top-level names of the non-standard-library modules a file imports."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in skip}


def optional_packages(files: Mapping[Path, bytes], config: AssignmentConfig) -> dict[str, list[str]]:
    """Packages the template's support files or public tests import that the kit's
    requirements do not install (e.g. A1's data.py loads the digits with scikit-learn):
    pip name -> the files that need them."""
    skip = {PACKAGE, "pytest", "hypothesis", "numpy", *config.modules,
            *(Path(s).stem for s in config.support),
            *(m.split(".")[0] for m in config.preload if m.split(".")[0] in EXTRAS)}
    if any(m.split(".")[0] == "torch" for m in config.preload):
        skip.add("safetensors")  # the torch extra brings it
    if config.probes:
        skip.add(Path(config.probes).stem)
    found: dict[str, list[str]] = {}
    for rel, data in sorted(files.items()):
        if rel.suffix != ".py" or rel.stem in config.modules:
            continue
        for name in sorted(_third_party(data, skip)):
            found.setdefault(PIP_NAMES.get(name, name), []).append(rel.as_posix())
    return found


def needed_by_checks(optional: Mapping[str, list[str]], config: AssignmentConfig) -> list[str]:
    """Of ``optional``, the packages the public tests or the course's probes import: the
    checks need them, so requirements.txt installs them."""
    checks = {"tests/"} | ({config.probes} if config.probes else set())
    return [pkg for pkg, users in optional.items()
            if any(u.startswith("tests/") or u in checks for u in users)]


def setup_section(config: AssignmentConfig, requirement: str,
                  optional: Mapping[str, list[str]]) -> str:
    torch = "[torch" in requirement
    lines = [
        "## Set up",
        "",
        "You need Python 3.11 or newer (`python3 --version`; on Windows `py --version`). "
        "In this folder, once:",
        "",
        "```bash",
        "python3 -m venv .venv",
        "source .venv/bin/activate        # Windows: .venv\\Scripts\\activate",
        "python -m pip install -r requirements.txt",
        f"autograder check {config.id}",
        "```",
        "",
        "`requirements.txt` installs the `autograder` command (from `wheels/`) and the "
        "packages it needs" + (", PyTorch included" if torch else "") + ", at the versions "
        "the grader uses (`constraints.txt`). In a new terminal, run "
        "`source .venv/bin/activate` again first.",
        "",
        f"`autograder check {config.id}` runs the public tests in `tests/` on your files and "
        "prints a table by category: every test fails until you write its code. "
        f"`autograder check {config.id} -k conv` runs only the tests whose name contains "
        f"`conv`; `autograder check {config.id} --isolation none` runs your code in the same "
        "process, so `print()` and `breakpoint()` work. On Linux your code runs in a sandbox "
        "as it does when graded; where that is not available (macOS, Windows) the checks run "
        "in-process and say so in one line. The hidden tests used for grading check more "
        "than the public ones.",
    ]
    if torch:
        lines += ["", "On Linux, pip installs the CUDA build of PyTorch (several GB). Without an "
                  "NVIDIA GPU, the CPU build is much smaller: add "
                  "`--extra-index-url https://download.pytorch.org/whl/cpu` to the pip command."]
    for package, users in optional.items():
        lines += ["", f"{', '.join(f'`{u}`' for u in users)} also "
                  f"{'uses' if len(users) == 1 else 'use'} `{package}`, which the checks do "
                  f"not need; install it when you get there: `python -m pip install -c "
                  f"constraints.txt {package}`."]
    # Prose paragraphs wrapped as the READMEs are; the code block stays as it is.
    text, out, in_code = "\n".join(lines), [], False
    for line in text.split("\n"):
        in_code ^= line.startswith("```")
        out.append(line if in_code or line.startswith("```") or len(line) <= WIDTH
                   else textwrap.fill(line, WIDTH, break_on_hyphens=False, break_long_words=False))
    return "\n".join(out) + "\n"


WIDTH = 88


def with_setup(readme: str, section: str) -> str:
    """``section`` before the README's first second-level heading (after its intro)."""
    match = re.search(r"^## ", readme, flags=re.MULTILINE)
    if match is None:
        return readme.rstrip("\n") + "\n\n" + section
    return readme[: match.start()] + section + "\n" + readme[match.start():]


def _metadata_from_pyproject(pyproject: Path) -> tuple[str, str]:
    """(version, METADATA text) from the checkout's pyproject.toml."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}",
             f"Version: {project['version']}", f"Summary: {project.get('description', '')}",
             f"Requires-Python: {project.get('requires-python', '>=3.11')}"]
    lines += [f"Requires-Dist: {_marker(dep, None)}" for dep in project.get("dependencies", [])]
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {_marker(dep, extra)}" for dep in deps]
    return str(project["version"]), "\n".join(lines) + "\n"


def _marker(dep: str, extra: str | None) -> str:
    requirement, _, marker = (part.strip() for part in dep.partition(";"))
    marker = marker.replace("'", '"')
    if extra is None:
        return f"{requirement}; {marker}" if marker else requirement
    tail = f'extra == "{extra}"'
    return f"{requirement}; ({marker}) and {tail}" if marker else f"{requirement}; {tail}"


def _installed_metadata() -> tuple[str, str, str]:
    """(version, METADATA, entry_points.txt) of the installed harness."""
    try:
        dist = importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"cannot build a wheel of the harness: {DIST} is neither installed "
                          "nor run from its checkout (pyproject.toml)") from None
    return (dist.version, dist.read_text("METADATA") or "",
            dist.read_text("entry_points.txt") or "")


ENTRY_POINTS = ("[console_scripts]\nautograder = autograder.cli:main\n\n"
                "[pytest11]\nautograder = autograder.grading.plugin\n")


def build_wheel(out_dir: Path) -> Path:
    """A pure-Python wheel of the running harness (its own source, the checkout's metadata
    where there is one): no build backend, no network."""
    source = Path(__file__).resolve().parent.parent
    pyproject = source.parent / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DIST}"' in pyproject.read_text(encoding="utf-8"):
        version, metadata = _metadata_from_pyproject(pyproject)
        entry_points = ENTRY_POINTS
    else:
        version, metadata, entry_points = _installed_metadata()
    info = f"dl_autograder-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if path.is_file() and "__pycache__" not in rel and (
                path.suffix == ".py" or rel in PACKAGE_DATA):
            files[f"{PACKAGE}/{rel}"] = path.read_bytes()
    files[f"{info}/METADATA"] = metadata.encode("utf-8")
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: autograder student-kit\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    files[f"{info}/entry_points.txt"] = entry_points.encode("utf-8")
    record = io.StringIO()
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.write(f"{name},sha256={digest},{len(data)}\n")
    record.write(f"{info}/RECORD,,\n")
    files[f"{info}/RECORD"] = record.getvalue().encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"dl_autograder-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info_ = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info_.external_attr = 0o644 << 16
            info_.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info_, data)
    return wheel


def write_kit(*, template: Mapping[Path, bytes], folder_name: str, out: Path,
              constraints: Path | None) -> Kit:
    """Write the kit into ``out`` (created; an existing non-empty folder must be an earlier
    kit of the same assignment, whose files are replaced)."""
    if "assignment.toml" not in {p.as_posix() for p in template}:
        raise CourseError(f"the template of {folder_name} has no assignment.toml")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; pass -o with a new folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "assignment.toml").is_file() or not (out / "requirements.txt").is_file():
            raise ConfigError(f"{out} is not empty and holds no student kit; pass -o with a new "
                              "or empty folder")
        for name in ("tests", "wheels"):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for rel, data in template.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    config = AssignmentConfig.load(out / "assignment.toml")
    wheel = build_wheel(out / "wheels")
    version = wheel.name.split("-")[1]
    requirement = requirement_for(config, version)
    optional = optional_packages(template, config)
    needed = needed_by_checks(optional, config)
    optional = {k: v for k, v in optional.items() if k not in needed}
    lines = [f"# {config.id} ({folder_name}): what `autograder check {config.id}` needs.",
             "# In a fresh virtual environment: python -m pip install -r requirements.txt",
             "--find-links wheels"]
    if constraints is not None and constraints.is_file():
        shutil.copyfile(constraints, out / "constraints.txt")
        lines.append("-c constraints.txt")
    lines.append(requirement)
    lines += needed  # imported by the public tests or the probes themselves
    (out / "requirements.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    readme = template.get(Path("README.md"), f"# {config.title}\n".encode()).decode("utf-8")
    section = setup_section(config, requirement, optional)
    (out / "README.md").write_text(with_setup(readme, section), encoding="utf-8")
    return Kit(folder=out, wheel=wheel, requirement=requirement, optional=optional)
