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

import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

from autograder.config import Layout
from autograder.errors import ConfigError

# The CPU build of torch keeps the image small; Gradescope has no GPU.
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

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
"$PY" -m venv /autograder/venv
chmod -R a+rX /autograder/venv
if [ -d wheelhouse ]; then
  /autograder/venv/bin/pip install -q --no-index --find-links wheelhouse -c harness/constraints.txt ./harness
else
  /autograder/venv/bin/pip install -q --extra-index-url @TORCH_INDEX@ -c harness/constraints.txt ./harness
fi
# The hidden suite: root only. The worker reaches /autograder/venv and nothing else here.
chmod -R go-rwx /autograder/source/course
chmod 711 /autograder /autograder/source
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this per submission, as root. AUTOGRADER_ROOT and AUTOGRADER_PYTHON
# exist for tests that run the bundle outside Gradescope.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
exec "$PY" -I -m autograder grade @ASSIGNMENT@ "$ROOT/submission" \\
  -o "$ROOT/results/results.json" --course "$ROOT/source/course"
"""


def build_bundle(root: Path, name: str, output: Path, *, wheelhouse: Path | None = None) -> Path:
    """Write the upload zip for assignment ``name`` of the course at ``root``."""
    layout = Layout(root, name)
    config = layout.config()
    if not (layout.reference / "hidden").is_dir():
        raise ConfigError(f"{layout.reference} has no hidden/ folder; nothing to grade with")
    if not layout.template.is_dir():
        raise ConfigError(f"{layout.template} is missing; run `autograder template {config.id}`")
    harness = Path(__file__).resolve().parents[2]
    if not (harness / "pyproject.toml").is_file():
        raise ConfigError(f"the harness at {harness} is not a source checkout (no pyproject.toml); "
                          "build the bundle from a clone of the harness")
    with tempfile.TemporaryDirectory(prefix="autograder-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
        shutil.copytree(harness / "autograder", tmp / "harness" / "autograder", ignore=ignore)
        for f in ("pyproject.toml", "constraints.txt", "README.md"):
            shutil.copy2(harness / f, tmp / "harness" / f)
        shutil.copytree(layout.reference, tmp / "course" / "reference_tests" / name, ignore=ignore)
        shutil.copytree(layout.template, tmp / "course" / "assignments" / name, ignore=ignore)
        if wheelhouse is not None:
            wheels = [p.name.lower() for p in wheelhouse.glob("*.whl")]
            if not any(w.startswith("setuptools-") for w in wheels):
                # the harness itself is built from source by setup.sh: its build backend
                raise ConfigError(f"--wheelhouse {wheelhouse} has no setuptools wheel; fill it "
                                  "with `pip download -d DIR -c constraints.txt "
                                  f"--extra-index-url {TORCH_INDEX} . 'setuptools>=77' wheel`")
            shutil.copytree(wheelhouse, tmp / "wheelhouse")
        _script(tmp / "setup.sh", SETUP_SH.replace("@TORCH_INDEX@", TORCH_INDEX))
        _script(tmp / "run_autograder", RUN_AUTOGRADER.replace("@ASSIGNMENT@", config.id))
        output.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(tmp.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, path.relative_to(tmp).as_posix())
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, path.read_bytes())
    return output


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

