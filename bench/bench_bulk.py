"""Bulk grading throughput, measured against baselines in the same run.

A mixed set of Assignment 1 submissions (the reference solution, every shipped mutant and
correct variant, the template, the malicious example), copied round-robin to reach
--count, graded with `grade-all`:

- `-j 2` against `-j 1` (target: at least 1.8 times the throughput on 2 cores);
- `--dask local` (a LocalCluster of 2 processes) against the local pool (target: within 15 %);
- a rerun of the unchanged set (journal) against the first run (target: under 5 %).

Writes the figures to bench/results/bulk.json.

    .venv/bin/python bench/bench_bulk.py [--count 40]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.config import Layout  # noqa: E402
from autograder.course.mutants import apply_mutant, load_mutants, load_variants  # noqa: E402


def make_set(dest: Path, count: int) -> Path:
    layout = Layout(ROOT, "a1_numpy_nn")
    kinds: list[tuple[str, Path]] = [("reference", layout.solution), ("template", layout.template),
                                     ("malicious", ROOT / "examples" / "a1_numpy_nn" / "malicious")]
    staged = dest / "staged"
    for m in load_mutants(layout.solution) + load_variants(layout.solution):
        kinds.append((f"{m.kind}-{m.name}",
                      apply_mutant(layout.solution, m, staged / m.kind / m.name)))
    subs = dest / "subs"
    for i in range(count):
        kind, src = kinds[i % len(kinds)]
        shutil.copytree(src, subs / f"s{i:03d}-{kind}",
                        ignore=shutil.ignore_patterns("*.toml", "__pycache__", "tests"))
    return subs


def run(subs: Path, out: Path, *extra: str) -> float:
    cmd = [sys.executable, "-m", "autograder", "grade-all", "a1", str(subs), "-o", str(out),
           "--course", str(ROOT), *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"grade-all failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return elapsed


def scores(out: Path) -> list[tuple[str, str]]:
    rows = list(csv.reader((out / "grades.csv").open()))
    return sorted((r[3], r[4]) for r in rows[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        subs = make_set(tmp, opts.count)
        print(f"{opts.count} A1 submissions (mixed); python {sys.version.split()[0]}")
        j1 = run(subs, tmp / "j1", "-j", "1")
        j2 = run(subs, tmp / "j2", "-j", "2")
        dask = run(subs, tmp / "dask", "-j", "2", "--dask", "local")
        rerun = run(subs, tmp / "j2", "-j", "2")
        same = scores(tmp / "j1") == scores(tmp / "j2") == scores(tmp / "dask")
    row = {"count": opts.count, "j1_s": j1, "j2_s": j2, "dask_local_s": dask, "rerun_s": rerun,
           "speedup_j2": j1 / j2, "dask_over_pool": dask / j2, "rerun_over_first": rerun / j2,
           "same_scores": same}
    print(f"-j 1 {j1:7.1f} s   -j 2 {j2:7.1f} s   speed-up {row['speedup_j2']:.2f} (target >= 1.8)")
    print(f"--dask local {dask:7.1f} s   over the local pool {row['dask_over_pool']:.2f} "
          f"(target <= 1.15)")
    print(f"rerun (journal) {rerun:6.1f} s   over the first run {row['rerun_over_first']:.3f} "
          f"(target < 0.05)")
    print(f"same scores in every mode: {same}")
    out = ROOT / "bench" / "results" / "bulk.json"
    out.write_text(json.dumps(row, indent=2) + "\n")
    print(f"-> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
