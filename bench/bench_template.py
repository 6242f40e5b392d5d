"""Importing the submission once per grading: the per-submission template, measured.

Grades A1's reference solution three ways in the same run, each pinned to one core, min of
N runs, alternating so drift hits every mode alike: in-process (`--isolation none`),
sandboxed with the template (a worker imports the submission once, each test forks from
it), and sandboxed without it (AUTOGRADER_NO_TEMPLATE=1: every test's worker imports the
submission again). Then the same solution as a notebook with one scratch cell that sleeps
1 s: what that cell costs a grading with and without the template.

    .venv/bin/python bench/bench_template.py [--runs 3] [--core 0]

Targets (issue 11): sandboxed / in-process <= 1.1 on A1's suite; a 1 s scratch cell costs
about 1 s per grading, not per test. Writes bench/results/template.json.
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

import nbformat

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "reference_tests" / "a1_numpy_nn"
SOLUTION = ROOT / "solutions" / "a1_numpy_nn"
RUNNER = """
import sys
from pathlib import Path
from autograder.grading.runner import Suite, run_suite
tests, config, support, sub, out, iso = sys.argv[1:7]
suite = Suite(tests=[Path(tests)], config=Path(config), support=Path(support), rootdir=Path(config).parent, hide=[])
o = run_suite(suite=suite, submission=Path(sub), output=Path(out), isolation=iso)
print(o.data["score"], sum(t["max_score"] for t in o.data["tests"]))
"""
MODES = {"in-process": ("none", False), "template": ("sandbox", False),
         "no template": ("sandbox", True)}


def grade(submission: Path, mode: str, core: int, out: Path) -> tuple[float, str]:
    isolation, no_template = MODES[mode]
    env = {**os.environ, "AUTOGRADER_NO_TEMPLATE": "1" if no_template else "0"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(REF), str(REF / "assignment.toml"),
                           str(SOLUTION), str(submission), str(out), isolation],
                          capture_output=True, text=True, env=env, check=False,
                          preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    if proc.returncode != 0:
        raise SystemExit(f"grading failed ({mode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout.strip()


def notebook_submission(folder: Path, scratch_seconds: float) -> Path:
    """The solution with layers.py as a notebook: its code, then a scratch cell."""
    sub = folder / "notebook"
    shutil.copytree(SOLUTION, sub, ignore=shutil.ignore_patterns("__pycache__", "*.toml",
                                                                 "variants", "README.md"))
    source = (sub / "layers.py").read_text()
    (sub / "layers.py").unlink()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(source),
        nbformat.v4.new_code_cell(f"import time\ntime.sleep({scratch_seconds})  # trying things"),
    ])
    nbformat.write(nb, sub / "layers.ipynb")
    return sub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--core", type=int, default=0)
    opts = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-template-"))
    out = folder / "results.json"
    try:
        nb = notebook_submission(folder, 1.0)
        subjects = {"solution": SOLUTION, "notebook, 1 s scratch cell": nb}
        times: dict[tuple[str, str], list[float]] = {}
        scores: dict[tuple[str, str], str] = {}
        for _ in range(opts.runs):
            for subject, path in subjects.items():
                for mode in MODES:
                    elapsed, score = grade(path, mode, opts.core, out)
                    times.setdefault((subject, mode), []).append(elapsed)
                    scores[(subject, mode)] = score
        best = {k: min(v) for k, v in times.items()}
        print(f"A1, runs={opts.runs}, pinned to core {opts.core}, min of runs")
        for subject in subjects:
            row = "  ".join(f"{mode} {best[(subject, mode)]:6.1f} s" for mode in MODES)
            print(f"{subject:28s} {row}  score {scores[(subject, 'template')]}")
        sol, nbk = "solution", "notebook, 1 s scratch cell"
        report = {
            "ratio_template": best[(sol, "template")] / best[(sol, "in-process")],
            "ratio_no_template": best[(sol, "no template")] / best[(sol, "in-process")],
            "scratch_cell_cost_template_s": best[(nbk, "template")] - best[(sol, "template")],
            "scratch_cell_cost_no_template_s": (best[(nbk, "no template")]
                                                - best[(sol, "no template")]),
            "seconds": {f"{s} / {m}": t for (s, m), t in best.items()},
        }
        print(f"sandboxed / in-process: {report['ratio_template']:.2f} with the template, "
              f"{report['ratio_no_template']:.2f} without (target <= 1.1)")
        print(f"a 1 s scratch cell costs {report['scratch_cell_cost_template_s']:+.1f} s per "
              f"grading with the template, {report['scratch_cell_cost_no_template_s']:+.1f} s "
              "without (target: about +1 s)")
        dest = ROOT / "bench" / "results" / "template.json"
        dest.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {dest.relative_to(ROOT)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
