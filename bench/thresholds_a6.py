"""The accuracy threshold of A6's hidden suite, measured on the reference solution.

Instructor tooling (grader side, no sandbox, no DVC): imports the solution's `prepare`
and `train` modules and runs what the pipeline runs (the README's split, `build_model`,
`train_epochs` with params.yaml's values) for several training seeds and split seeds, with
one torch thread as in the worker. The test accuracy is computed as
hidden/test_model.py computes it (argmax of the model's scores on the grader's split).
Prints min/median/max and the threshold chosen with a wide margin.

    .venv/bin/python bench/thresholds_a6.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "a6_dvc_wandb"
CHOSEN = 0.85  # hidden/test_model.py::test_model_classifies_the_test_part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(SOLUTION))
    import prepare
    import train
    from digits import load_digits_arrays

    params = yaml.safe_load((SOLUTION / "params.yaml").read_text())
    p, t = params["prepare"], params["train"]
    X, y = load_digits_arrays()
    accs, start = [], time.perf_counter()
    for seed in range(args.seeds):
        Xtr, ytr, Xte, yte = prepare.split(X, y, 1000 + seed, float(p["test_fraction"]))
        torch.manual_seed(seed)
        model = train.build_model(int(t["hidden"]))
        train.train_epochs(model, torch.from_numpy(Xtr), torch.from_numpy(ytr),
                           epochs=int(t["epochs"]), lr=float(t["lr"]),
                           batch_size=int(t["batch_size"]), seed=seed)
        model.eval()
        with torch.no_grad():
            scores = model(torch.from_numpy(Xte)).numpy()
        accs.append(float((scores.argmax(1) == yte).mean()))
    print(f"test accuracy over {args.seeds} seeds (training and split): min {min(accs):.3f}, "
          f"median {statistics.median(accs):.3f}, max {max(accs):.3f}; "
          f"{(time.perf_counter() - start) / args.seeds:.2f} s per run")
    print(f"threshold chosen: {CHOSEN} (margin {min(accs) - CHOSEN:.3f} below the minimum)")
    assert np.isfinite(accs).all()


if __name__ == "__main__":
    main()
