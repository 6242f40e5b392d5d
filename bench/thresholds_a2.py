"""Convergence thresholds of A2's hidden suite, measured on the reference solution.

Instructor tooling (grader side, no sandbox): imports the solution's modules directly and
runs the hidden suite's own training recipe (``run_recipe`` in
reference_tests/a2_pytorch/conftest.py) on the hidden split for several seeds, with one
torch thread as in the grader. Held-out accuracy is computed as the hidden tests compute
it: the grader's reference forward on the trained model's state dict. Prints
min/median/max per model and the thresholds chosen with a wide margin (the ones
hidden/test_training.py uses).

    .venv/bin/python bench/thresholds_a2.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "a2_pytorch"
SUITE = ROOT / "reference_tests" / "a2_pytorch"

# The thresholds of hidden/test_training.py (kept in sync by hand; printed for review).
CHOSEN = {"mlp": 0.85, "cnn": 0.80}


def _load(name: str, path: Path):  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(SOLUTION))  # the solution's modules import each other by name
    models, data, train = (_load(m, SOLUTION / f"{m}.py") for m in ("models", "data", "train"))
    conftest = _load("a2_conftest", SUITE / "conftest.py")
    ref, digits = conftest.Reference, conftest.load_hidden_digits()
    print(f"A2 held-out accuracy of the reference solution over {args.seeds} seeds "
          f"(torch {torch.__version__}, 1 thread); recipes: {conftest.RECIPES}")
    for kind in ("mlp", "cnn"):
        accs, times = [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            start = time.perf_counter()
            model, _hist = conftest.run_recipe(
                models, data, train, torch.as_tensor,
                lambda s: torch.Generator().manual_seed(int(s)), digits, kind, seed)
            times.append(time.perf_counter() - start)
            state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
            layers = ref.layers(state)
            if kind == "mlp":
                scores = ref.mlp_forward(layers, digits.X_test)
            else:
                scores = ref.cnn_forward(layers, digits.X_test)[0]
            accs.append(float(np.mean(np.argmax(scores, 1) == digits.y_test)))
        print(f"{kind}: accuracy min {min(accs):.3f} median {statistics.median(accs):.3f} "
              f"max {max(accs):.3f}; training {statistics.median(times):.2f} s median; "
              f"threshold {CHOSEN[kind]:.2f} (margin {min(accs) - CHOSEN[kind]:.3f} below "
              f"the minimum)")
        print(f"  per seed: {[round(a, 3) for a in accs]}")


if __name__ == "__main__":
    main()
