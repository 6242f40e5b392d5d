"""`autograder student-kit`: the folder a student receives, installed as its README says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3.11")
HEAVY = ("torch", "scipy", "scikit-learn", "sklearn", "dask", "distributed", "matplotlib",
         "neurokit2", "docker", "pandas", "jinja2")


def _kit(tmp_path: Path, assignment: str = "a1") -> Path:
    out = tmp_path / "kit"
    proc = subprocess.run([sys.executable, "-m", "autograder", "student-kit", assignment,
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_core_dependencies_leave_heavy_packages_to_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert not [h for h in HEAVY if re.search(rf"\b{h}\b", core)], core
    extras = project["optional-dependencies"]
    assert any(d.startswith("torch") for d in extras["torch"])
    # `make install` keeps everything, the assignments' own extras (a6...) included
    assert f"dl-autograder[{','.join(['torch', 'staff', *sorted(e for e in extras if re.fullmatch(r'a[0-9]+', e))])}]" in extras["dev"]
    constraints = (ROOT / "constraints.txt").read_text()
    assert "torch==2.13.0" in constraints.splitlines()


def test_a1_kit_holds_template_tests_readme_and_requirements(tmp_path: Path) -> None:
    kit = _kit(tmp_path)
    for name in ("layers.py", "layers.ipynb", "assignment.toml", "tests/test_layers_public.py",
                 "constraints.txt", "data.py"):
        assert (kit / name).is_file(), name
    reqs = (kit / "requirements.txt").read_text().splitlines()
    assert "--find-links wheels" in reqs and "-c constraints.txt" in reqs
    assert "dl-autograder==0.1.0" in reqs  # numpy-only: no extra
    readme = (kit / "README.md").read_text()
    setup = readme[readme.index("## Set up"):readme.index("## Files")]
    for step in ("python3 -m venv .venv", "pip install -r requirements.txt", "autograder check a1",
                 "-k", "--isolation none"):
        assert step in setup, step
    assert "scikit-learn" in setup  # data.py's optional package, named with its use
    wheel = next((kit / "wheels").glob("dl_autograder-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith("/METADATA"))).decode()
        entry = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "autograder/cli.py" in names and "autograder/grading/grading.ini" in names
    assert not any("__pycache__" in n for n in names)
    core = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist") and "extra ==" not in ln]
    assert core and not any(h in ln.lower() for ln in core for h in HEAVY), core
    assert "autograder = autograder.grading.plugin" in entry


def test_torch_assignment_kit_names_the_torch_extra(tmp_path: Path) -> None:
    kit = _kit(tmp_path, "a2")
    assert "dl-autograder[torch]==0.1.0" in (kit / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in (kit / "README.md").read_text()


def test_kit_refuses_a_folder_that_holds_something_else(tmp_path: Path) -> None:
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "thesis.tex").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "autograder", "student-kit", "a1", "-o",
                           str(tmp_path / "kit")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 3 and "not empty" in proc.stdout
    assert (tmp_path / "kit" / "thesis.tex").read_text() == "x"


@pytest.mark.slow
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="needs Debian's /usr/bin/python3.11")
def test_a1_kit_installs_in_a_fresh_venv_and_check_runs(tmp_path: Path) -> None:
    """The README's steps on a fresh venv: pip install -r requirements.txt (pip's configured
    index for the dependencies, the kit's wheel for the harness), then `autograder check a1`
    on the untouched template: a table of failing tests, no traceback, nothing heavy."""
    kit = _kit(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True)
    start = time.monotonic()
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                          "-r", "requirements.txt"], cwd=kit, capture_output=True, text=True,
                         timeout=600)
    seconds = time.monotonic() - start
    assert pip.returncode == 0, pip.stdout + pip.stderr
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    listing = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                             capture_output=True, text=True, check=True)
    installed = {p["name"].lower() for p in json.loads(listing.stdout)}
    assert not installed & set(HEAVY), installed & set(HEAVY)
    assert size < 300 * 2**20, f"{size / 2**20:.0f} MB"
    assert seconds < 90, f"{seconds:.0f} s (target 30 s; a busy machine gets some slack)"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    check = subprocess.run([str(venv / "bin" / "autograder"), "check", "a1"], cwd=kit,
                           capture_output=True, text=True, timeout=300, env=env)
    out = check.stdout + check.stderr
    assert check.returncode == 1, out
    assert "Traceback" not in out and "Public tests" in out and "FAIL" in out, out
    assert "score on public tests: 0 /" in out
    # Every module of the harness imports with the core alone: heavy packages are lazy.
    walk = ("import importlib, pkgutil, autograder\n"
            "for m in pkgutil.walk_packages(autograder.__path__, 'autograder.'):\n"
            "    if not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n")
    imports = subprocess.run([str(venv / "bin" / "python"), "-c", walk], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, env=env)
    assert imports.returncode == 0, imports.stderr


def test_packages_the_public_tests_import_are_required_the_support_files_optional() -> None:
    from autograder.config import AssignmentConfig
    from autograder.packaging.student_kit import needed_by_checks, optional_packages

    config = AssignmentConfig(id="x1", title="x", modules=("layers",), support=("data.py",),
                              preload=("numpy", "torch._dynamo"))
    files = {Path("data.py"): b"def load():\n    from sklearn.datasets import load_digits\n",
             Path("tests/test_a.py"): b"import scipy.special\nimport layers\nimport torch\n",
             Path("layers.py"): b"import pandas\n"}
    optional = optional_packages(files, config)
    assert optional == {"scikit-learn": ["data.py"], "scipy": ["tests/test_a.py"]}
    assert needed_by_checks(optional, config) == ["scipy"]
