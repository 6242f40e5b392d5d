"""Grading cost of the sandbox, measured against in-process grading in the same run.

Prints, for each assignment's reference solution (full hidden suite) and a one-test suite:
wall time sandboxed vs in-process (min of N runs, all pinned to one core), their ratio,
the fixed overhead of the sandbox, and the peak memory of grader + zygote + workers (sum
of the process tree's PSS, sampled every 10 ms). Writes the figures to bench/results/grading.json.

    .venv/bin/python bench/bench_grading.py [--runs 3] [--docker-default] [a1 a2 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = """
import sys
from pathlib import Path
from autograder.grading.runner import Suite, run_suite
tests, config, support, sub, out, iso = sys.argv[1:7]
suite = Suite(tests=[Path(tests)], config=Path(config), support=Path(support) if support else None,
              rootdir=Path(config).parent, hide=[])
o = run_suite(suite=suite, submission=Path(sub), output=Path(out), isolation=iso,
              extra_args=sys.argv[7:])
print(o.data["score"], sum(t["max_score"] for t in o.data["tests"]))
"""


def _tree_pss(root_pid: int) -> int:
    """Memory of root_pid and all its descendants (bytes): the sum of their PSS. Forked
    workers share the zygote's pages (torch's above all); a sum of RSS counts those once per
    process (it read about 900 MB for A3's 480 MB), PSS splits them between the sharers."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree = {root_pid}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                changed = True
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total


# `--docker-default`: the sandboxed run also as `docker run` starts it (no CAP_SYS_ADMIN,
# namespaces refused; file modes, Landlock and the monitor instead), through the tests' wrapper.
DOCKER_DEFAULT = [sys.executable, str(ROOT / "tests" / "support" / "docker_default.py"),
                  "--reachable", sys.executable, "--reachable", str(ROOT), "--"]


def run_once(args: list[str], core: int, prefix: list[str] | None = None) -> tuple[float, int, str]:
    cmd = [*(prefix or []), sys.executable, "-c", RUNNER, *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_pss(proc.pid))
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"grading failed ({proc.returncode}): {err[-2000:]}")
    return elapsed, peak, out.strip()


def measure(label: str, args_for: dict[str, list[str]], runs: int, core: int,
            docker: bool = False) -> dict[str, float]:
    modes = ["none", "sandbox"] + (["docker"] if docker else [])
    times: dict[str, list[float]] = {m: [] for m in modes}
    peaks: dict[str, int] = {m: 0 for m in modes}
    score = ""
    for _ in range(runs):
        for mode in modes:  # alternate so drift hits every mode alike
            elapsed, peak, score = run_once(args_for["sandbox" if mode == "docker" else mode],
                                            core, DOCKER_DEFAULT if mode == "docker" else None)
            times[mode].append(elapsed)
            peaks[mode] = max(peaks[mode], peak)
    best = {m: min(v) for m, v in times.items()}
    row = {"in_process_s": best["none"], "sandbox_s": best["sandbox"],
           "ratio": best["sandbox"] / best["none"],
           "overhead_s": best["sandbox"] - best["none"],
           "peak_pss_in_process_mb": peaks["none"] / 2**20,
           "peak_pss_sandbox_mb": peaks["sandbox"] / 2**20, "score": score}
    print(f"{label:28s} in-process {best['none']:7.2f} s  sandbox {best['sandbox']:7.2f} s  "
          f"ratio {row['ratio']:5.2f}  overhead {row['overhead_s']:+6.2f} s  "
          f"peak PSS {row['peak_pss_sandbox_mb']:6.0f} MB (in-process {row['peak_pss_in_process_mb']:.0f} MB)"
          f"  score {score}")
    if docker:
        row["docker_default_s"] = best["docker"]
        row["docker_default_ratio"] = best["docker"] / best["none"]
        print(f"{'':28s} docker-default sandbox {best['docker']:7.2f} s  ratio "
              f"{row['docker_default_ratio']:5.2f} (against in-process, same run)")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin every run to")
    parser.add_argument("--docker-default", action="store_true",
                        help="also time the sandbox as `docker run` starts it (needs root)")
    parser.add_argument("assignments", nargs="*", help="default: every assignment")
    opts = parser.parse_args()
    from autograder.config import assignment_names, resolve_name

    names = [resolve_name(ROOT, a) for a in opts.assignments] or assignment_names(ROOT)
    tmp = Path("/tmp") / f"bench-{os.getpid()}.json"
    mini = ROOT / "tests" / "fixtures" / "mini"
    one = {m: [str(mini / "ref"), str(mini / "ref" / "assignment.toml"), "", str(mini / "good"),
               str(tmp), m, "-k", "test_double"] for m in ("none", "sandbox")}
    print(f"runs={opts.runs}, pinned to core {opts.core}, min of runs; python {sys.version.split()[0]}")
    rows = {"one_test_suite": measure("one-test suite", one, opts.runs, opts.core,
                                      opts.docker_default)}
    for name in names:
        ref, sol = ROOT / "reference_tests" / name, ROOT / "solutions" / name
        args = {m: [str(ref), str(ref / "assignment.toml"), str(sol), str(sol), str(tmp), m]
                for m in ("none", "sandbox")}
        key = "a1_reference" if name == "a1_numpy_nn" else f"{name}_reference"
        rows[key] = measure(f"{name} reference, full suite", args, opts.runs, opts.core,
                            opts.docker_default)
    tmp.unlink(missing_ok=True)
    out = ROOT / "bench" / "results" / "grading.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"targets: ratio <= 1.5, one-test overhead < 0.5 s, A1 sandboxed < 60 s and every "
          f"other suite < 90 s on one core, peak memory (PSS) < 768 MB -> written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
