"""Grading in a container against grading with the local sandbox, in the same run.

For each assignment: builds (or reuses) its CPU grading image, then grades the reference
solution alternately with `autograder grade` (local sandbox) and `autograder grade
--image` (container), N times each; prints the minimum wall time of each, their ratio and
the per-submission overhead of the container, plus the image sizes (the shared dependency
layer counted once). Writes bench/results/container.json.

    .venv/bin/python bench/bench_container.py [--runs 3] [a1 a2 ...]

Needs a Docker engine and the base image (`autograder image base`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _grade(name: str, solution: Path, out: Path, image: str | None) -> float:
    cmd = [sys.executable, "-m", "autograder", "grade", name, str(solution), "-o", str(out)]
    if image:
        cmd += ["--image", image]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    elapsed = time.perf_counter() - start
    data = json.loads(out.read_text())
    full = sum(t["max_score"] for t in data["tests"])
    if proc.returncode != 0 or data["score"] != full:
        raise SystemExit(f"{name} {'in ' + image if image else 'locally'}: {data['score']}/{full}"
                         f"\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("assignments", nargs="*", default=["a1", "a2"])
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from autograder.config import Layout, resolve_name
    from autograder.grading.container import docker_client
    from autograder.packaging.images import build_image

    client = docker_client()
    rows = []
    for aid in args.assignments:
        name = resolve_name(ROOT, aid)
        t0 = time.perf_counter()
        image = build_image(ROOT, name, log=lambda line: None)
        build_s = time.perf_counter() - t0
        solution = Layout(ROOT, name).solution
        local, container = [], []
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            for _ in range(args.runs):  # alternating: both see the same machine load
                local.append(_grade(aid, solution, out, None))
                container.append(_grade(aid, solution, out, image.tag))
        layers = client.api.inspect_image(image.tag)["RootFS"]["Layers"]
        row = {"assignment": aid, "image": image.tag, "image_mb": round(image.size / 2**20),
               "layers": len(layers), "build_s_cached_deps": round(build_s, 1),
               "local_s": round(min(local), 2), "container_s": round(min(container), 2),
               "ratio": round(min(container) / min(local), 2),
               "overhead_s": round(min(container) - min(local), 2), "runs": args.runs}
        rows.append(row)
        print(f"{aid}: local {row['local_s']} s, container {row['container_s']} s, ratio "
              f"{row['ratio']}, overhead {row['overhead_s']} s per submission; image "
              f"{row['image_mb']} MB ({row['layers']} layers), build {row['build_s_cached_deps']} s "
              "with the dependency layer cached")
    base = client.images.get("dl-autograder-base:bookworm")
    summary = {"rows": rows, "base_image_mb": round(base.attrs["Size"] / 2**20),
               "note": "images of one set of pins share every layer up to the dependencies; "
                       "an assignment adds its bundle and the installed harness (a few MB)"}
    print(f"base image {summary['base_image_mb']} MB")
    out = ROOT / "bench" / "results" / "container.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
