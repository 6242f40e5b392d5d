"""`autograder gradescope`: the zip a course uploads to Gradescope as its autograder.

Layout of the zip (Gradescope unpacks it to /autograder/source)::

    setup.sh            run once as root when Gradescope builds the image
    run_autograder      run per submission: grades /autograder/submission into
                        /autograder/results/results.json
    harness/            this package's source, pyproject.toml and constraints.txt
    course/             reference_tests/<name>/ (the hidden suite) and assignments/<name>/
                        (the template: support files and probes, never solution code)
    wheelhouse/         optional: every wheel setup.sh needs, for an offline install

setup.sh makes the hidden suite readable by root only; the grader runs as root and the
student's code in the sandbox's own unprivileged uids.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import stat
import tempfile
import tomllib
import zipfile
from pathlib import Path

from autograder.config import Layout
from autograder.errors import ConfigError

# The CPU build of torch keeps the image small; Gradescope has no GPU.
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# What grading needs beyond the core: torch, and grader-side data and tools (neurokit2...).
# An assignment whose id names an extra of the harness (a6: dvc and wandb) adds it.
EXTRAS = "torch,staff"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
cd /autograder/source
PY=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY="$(command -v "$candidate")"; break
  fi
done
if [ -z "$PY" ] || ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  # Ubuntu 22.04 (Gradescope's default base) ships Python 3.10; 3.11 is in its archive.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-venv >/dev/null
  PY="$(command -v python3.11)"
fi
# A venv every uid can read (the sandbox's workers run as unprivileged uids).
# (A grading image comes with the venv's dependencies installed: keep it.)
[ -x /autograder/venv/bin/python ] || "$PY" -m venv /autograder/venv
if [ -d wheelhouse ]; then
  /autograder/venv/bin/pip install -q --no-index --find-links wheelhouse -c harness/constraints.txt "./harness[@EXTRAS@]"
  rm -rf wheelhouse  # installed: no need to keep it in the image
else
  # AUTOGRADER_TORCH_INDEX: the CUDA wheels' index, for the GPU grading image.
  if ! /autograder/venv/bin/pip install -q --extra-index-url "${AUTOGRADER_TORCH_INDEX:-@TORCH_INDEX@}" \
      -c harness/constraints.txt "./harness[@EXTRAS@]"; then
    echo "setup.sh: installing the grader's packages failed (see pip's message above). This" >&2
    echo "bundle has no wheelhouse/, so it needs the package index: build it with" >&2
    echo "'autograder gradescope ASSIGNMENT --wheelhouse DIR' to install offline." >&2
    exit 1
  fi
fi
# Only what lacks the bits: a no-op chmod still copies every file up in an image layer.
find /autograder/venv \\( ! -perm -o+r -o \\( -type d ! -perm -o+x \\) \\) -exec chmod a+rX {} +
# The hidden suite and the rest of the bundle: root only (a grading image's root file
# system is read-only, so the grader could not fix it later). The worker reaches
# /autograder/venv and nothing else here.
chmod -R go-rwx /autograder/source/course
chmod 711 /autograder
chmod 700 /autograder/source
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this per submission, as root. AUTOGRADER_ROOT and AUTOGRADER_PYTHON
# exist for tests that run the bundle outside Gradescope; arguments (a grading image's
# --timeout) go on to `autograder grade`.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
# Late penalty, submission limit, best-of: the assignment's [policy] reads Gradescope's metadata.
if [ -f "$ROOT/submission_metadata.json" ]; then
  set -- --metadata "$ROOT/submission_metadata.json" "$@"
fi
exec "$PY" -I -m autograder grade @ASSIGNMENT@ "$ROOT/submission" \\
  -o "$ROOT/results/results.json" --course "$ROOT/source/course" "$@"
"""


def build_bundle(root: Path, name: str, output: Path, *, wheelhouse: Path | None = None) -> Path:
    """Write the upload zip for assignment ``name`` of the course at ``root``."""
    with tempfile.TemporaryDirectory(prefix="autograder-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        stage_bundle(root, name, tmp, wheelhouse=wheelhouse)
        output.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(tmp.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, path.relative_to(tmp).as_posix())
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, path.read_bytes())
    return output


def stage_bundle(root: Path, name: str, dest: Path, *, wheelhouse: Path | None = None) -> Path:
    """Lay the bundle's files out in the empty folder ``dest`` (what Gradescope unpacks to
    /autograder/source; the grading images copy the same folder)."""
    layout = Layout(root, name)
    config = layout.config()
    if not (layout.reference / "hidden").is_dir():
        raise ConfigError(f"{layout.reference} has no hidden/ folder; nothing to grade with")
    if not layout.template.is_dir():
        raise ConfigError(f"{layout.template} is missing; run `autograder template {config.id}`")
    harness = harness_checkout()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(harness / "autograder", dest / "harness" / "autograder", ignore=ignore)
    for f in ("pyproject.toml", "constraints.txt", "README.md"):
        shutil.copy2(harness / f, dest / "harness" / f)
    shutil.copytree(layout.reference, dest / "course" / "reference_tests" / name, ignore=ignore)
    shutil.copytree(layout.template, dest / "course" / "assignments" / name, ignore=ignore)
    if wheelhouse is not None:
        wheels = [p.name.lower() for p in wheelhouse.glob("*.whl")]
        if not any(w.startswith("setuptools-") for w in wheels):
            # the harness itself is built from source by setup.sh: its build backend
            raise ConfigError(f"--wheelhouse {wheelhouse} has no setuptools wheel; fill it "
                              f"with `{download_command(wheelhouse, extras_for(config.id, harness))}`")
        shutil.copytree(wheelhouse, dest / "wheelhouse")
    _script(dest / "setup.sh", SETUP_SH.replace("@TORCH_INDEX@", TORCH_INDEX)
            .replace("@EXTRAS@", extras_for(config.id, harness)))
    _script(dest / "run_autograder", RUN_AUTOGRADER.replace("@ASSIGNMENT@", config.id))
    return dest


def harness_checkout() -> Path:
    """The source checkout this package runs from (bundles and images copy it)."""
    harness = Path(__file__).resolve().parents[2]
    if not (harness / "pyproject.toml").is_file():
        raise ConfigError(f"the harness at {harness} is not a source checkout (no pyproject.toml); "
                          "build the bundle from a clone of the harness")
    return harness


def download_command(wheelhouse: Path, extras: str = EXTRAS) -> str:
    """The pip command that fills a wheelhouse for an offline setup.sh."""
    return (f"pip download -d {wheelhouse} -c constraints.txt --extra-index-url {TORCH_INDEX} "
            f"'.[{extras}]' 'setuptools>=77' wheel")


def assignment_extras(harness: Path | None = None) -> list[str]:
    """The harness's extras named after an assignment id (``a6``: dvc, wandb), from the
    checkout's pyproject.toml, else from the installed distribution's metadata."""
    pyproject = (harness or Path(__file__).resolve().parents[2]) / "pyproject.toml"
    try:
        names = list(tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        try:
            names = importlib.metadata.metadata("dl-autograder").get_all("Provides-Extra") or []
        except importlib.metadata.PackageNotFoundError:
            names = []
    return sorted(n for n in names if re.fullmatch(r"a\d+", n))


def extras_for(assignment_id: str, harness: Path | None = None) -> str:
    """EXTRAS, plus the assignment's own extra where the harness declares one."""
    own = [assignment_id] if assignment_id in assignment_extras(harness) else []
    return ",".join([EXTRAS, *own])


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

