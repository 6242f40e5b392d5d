"""A student's first ten minutes: install an assignment's kit in a fresh venv, run the check.

    .venv/bin/python bench/bench_student_kit.py [a1] [--python /usr/bin/python3.11]

Writes the kit with `autograder student-kit`, makes a venv from a system Python, installs
it as the kit's README says (`python -m pip install -r requirements.txt`, pip's configured
index), then runs `autograder check` on the untouched template. Prints the install's
seconds and the venv's size; exits 1 when the check crashes (a traceback, no table).
Target for a numpy-only assignment (A1): under 30 s and 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def venv_size(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            p = Path(dirpath, f)
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def install_kit(kit: Path, venv: Path, python: str) -> dict[str, float]:
    """Make ``venv`` and install the kit's requirements as its README says; the figures."""
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    start = time.monotonic()
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", "-r", "requirements.txt"],
                         cwd=kit, capture_output=True, text=True)
    if pip.returncode:
        raise SystemExit(f"pip install -r requirements.txt failed:\n{pip.stdout}{pip.stderr}")
    seconds = time.monotonic() - start
    return {"install_seconds": round(seconds, 1), "venv_mb": round(venv_size(venv) / 2**20, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("assignment", nargs="?", default="a1")
    ap.add_argument("--python", default="/usr/bin/python3.11")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-kit-") as tmp:
        kit, venv = Path(tmp) / "kit", Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "autograder", "student-kit", args.assignment,
                        "-o", str(kit)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        figures = install_kit(kit, venv, args.python)
        start = time.monotonic()
        check = subprocess.run([str(venv / "bin" / "autograder"), "check", args.assignment],
                               cwd=kit, capture_output=True, text=True)
        figures["check_seconds"] = round(time.monotonic() - start, 1)
        listing = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list",
                                  "--format=json"], capture_output=True, text=True, check=True)
        names = sorted(p["name"].lower() for p in json.loads(listing.stdout))
        figures["packages"] = len(names)
        heavy = [n for n in ("torch", "scipy", "scikit-learn", "dask", "matplotlib",
                             "neurokit2", "docker", "pandas") if n in names]
        crashed = "Traceback" in check.stdout + check.stderr or "Public tests" not in check.stdout
        print(json.dumps({"assignment": args.assignment, **figures, "heavy_packages": heavy,
                          "check_exit": check.returncode, "check_crashed": crashed}, indent=1))
        if crashed:
            print(check.stdout[-3000:], check.stderr[-3000:])
        shutil.rmtree(venv, ignore_errors=True)
        return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
