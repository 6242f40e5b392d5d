"""Importing the submission once per grading: the per-submission template, measured.

Grades A1's reference solution three ways in the same run, on one core and on two, min of
N runs, alternating so drift hits every mode alike: in-process (`--isolation none`),
sandboxed with the template (a worker imports the submission once, each test forks from
it), and sandboxed without it (AUTOGRADER_NO_TEMPLATE=1: every test's worker imports the
submission again). Then the same solution as a notebook with one scratch cell that sleeps
1 s: what that cell costs a grading with and without the template. As root with a cgroup
v1 cpuacct hierarchy it also prints the CPU time of each grading's whole process tree
(steadier than wall time on a shared machine).

    .venv/bin/python bench/bench_template.py [--runs 3] [--notebook-runs 1]

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
# CPU time of a grading's whole process tree (grader, zygote, template, workers, whatever
# their uid), from a cgroup v1 cpuacct group of its own: steadier than wall time on a
# shared machine. Absent (no cgroup v1 cpuacct, not root): wall time only.
CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def _cpu_group(name: str) -> Path | None:
    if not (CPUACCT / "cgroup.procs").exists() or os.geteuid() != 0:
        return None
    group = CPUACCT / f"bench-template-{os.getpid()}-{name}"
    try:
        group.mkdir(exist_ok=True)
    except OSError:
        return None
    return group


CPU_SECONDS: dict[tuple[str, str], list[float]] = {}  # (mode, cpus) -> CPU s per grading


def grade(submission: Path, mode: str, cpus: set[int], out: Path) -> tuple[float, str]:
    isolation, no_template = MODES[mode]
    env = {**os.environ, "AUTOGRADER_NO_TEMPLATE": "1" if no_template else "0"}
    group = _cpu_group("run")

    def enter() -> None:
        os.sched_setaffinity(0, cpus)
        if group is not None:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    if group is not None:
        (group / "cpuacct.usage").write_text("0")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(REF), str(REF / "assignment.toml"),
                           str(SOLUTION), str(submission), str(out), isolation],
                          capture_output=True, text=True, env=env, check=False,
                          preexec_fn=enter)
    elapsed = time.perf_counter() - start
    if group is not None:
        time.sleep(0.2)  # workers killed at the end finish exiting (their CPU counts)
        used = int((group / "cpuacct.usage").read_text()) / 1e9
        if submission == SOLUTION:
            CPU_SECONDS.setdefault((mode, str(sorted(cpus))), []).append(used)
        _empty(group)
    if proc.returncode != 0:
        raise SystemExit(f"grading failed ({mode}): {proc.stderr[-2000:]}")
    return elapsed, proc.stdout.strip()


def _empty(group: Path) -> None:
    """Leftover processes (none expected) go back to the root group; the group is removed."""
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            (CPUACCT / "cgroup.procs").write_text(pid)
        except OSError:
            pass
    try:
        group.rmdir()
    except OSError:
        pass


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
    parser.add_argument("--notebook-runs", type=int, default=1,
                        help="runs of the notebook without the template (a minute each)")
    opts = parser.parse_args()
    # One core: every process of a grading competes for it (the sandbox's own work is all
    # overhead). Two cores: the zygote starts, and killed workers are torn down, beside the
    # grader, as on any machine a course grades on.
    setups = {"1 core": {0}, "2 cores": {0, 1}}
    if len(os.sched_getaffinity(0)) < 2:
        setups = {"1 core": {min(os.sched_getaffinity(0))}}
    folder = Path(tempfile.mkdtemp(prefix="bench-template-"))
    out = folder / "results.json"
    try:
        nb = notebook_submission(folder, 1.0)
        plan = [("solution", SOLUTION, mode, setup) for mode in MODES for setup in setups]
        plan += [("notebook", nb, "template", setup) for setup in setups]
        times: dict[tuple[str, str, str], list[float]] = {}
        scores: dict[tuple[str, str, str], str] = {}
        for _ in range(opts.runs):  # alternating, so drift hits every mode alike
            for subject, path, mode, setup in plan:
                key = (subject, mode, setup)
                elapsed, scores[key] = grade(path, mode, setups[setup], out)
                times.setdefault(key, []).append(elapsed)
        for _ in range(opts.notebook_runs):
            for mode in ("in-process", "no template"):
                key = ("notebook", mode, "1 core")
                elapsed, scores[key] = grade(nb, mode, setups["1 core"], out)
                times.setdefault(key, []).append(elapsed)
        best = {k: min(v) for k, v in times.items()}
        report: dict[str, object] = {"runs": opts.runs, "notebook_runs": opts.notebook_runs}
        print(f"A1, min of {opts.runs} runs (notebook without the template: "
              f"{opts.notebook_runs}), seconds per grading")
        for setup in setups:
            row = "  ".join(f"{mode} {best[('solution', mode, setup)]:5.2f}" for mode in MODES)
            ratio = best[("solution", "template", setup)] / best[("solution", "in-process", setup)]
            bare = best[("solution", "no template", setup)] / best[("solution", "in-process", setup)]
            cell = best[("notebook", "template", setup)] - best[("solution", "template", setup)]
            print(f"solution, {setup}:  {row}")
            print(f"  sandboxed / in-process: {ratio:.2f} with the template, {bare:.2f} without "
                  "(target <= 1.1)")
            print(f"  a 1 s scratch cell costs {cell:+.2f} s per grading with the template "
                  "(target: about +1 s)")
            report[setup] = {"ratio_template": ratio, "ratio_no_template": bare,
                             "scratch_cell_cost_template_s": cell}
            cpu = {mode: CPU_SECONDS.get((mode, str(sorted(setups[setup]))), [])
                   for mode in MODES}
            if all(cpu.values()):
                best_cpu = {mode: min(v) for mode, v in cpu.items()}
                cpu_ratio = best_cpu["template"] / best_cpu["in-process"]
                print("  CPU time of all processes: " + "  ".join(
                    f"{mode} {best_cpu[mode]:5.2f}" for mode in MODES)
                    + f"; sandboxed / in-process {cpu_ratio:.2f}")
                report[setup]["cpu_seconds"] = best_cpu  # type: ignore[index]
                report[setup]["cpu_ratio_template"] = cpu_ratio  # type: ignore[index]
        per_test = (best[("notebook", "no template", "1 core")]
                    - best[("solution", "no template", "1 core")])
        print(f"without the template (1 core), the same cell costs {per_test:+.1f} s per grading "
              f"(in-process: {best[('notebook', 'in-process', '1 core')]:.1f} s per grading)")
        report["scratch_cell_cost_no_template_s"] = per_test
        report["seconds"] = {" / ".join(k): t for k, t in best.items()}
        report["scores"] = {" / ".join(k): v for k, v in scores.items()}
        dest = ROOT / "bench" / "results" / "template.json"
        dest.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {dest.relative_to(ROOT)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
