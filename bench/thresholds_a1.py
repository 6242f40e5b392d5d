"""Thresholds of A1's hidden suite, measured on the reference solution and the slow variant.

Instructor tooling (grader side): imports the reference solution, its slow variant
(``solutions/a1_numpy_nn/variants/naive_loops``: loops over images, filters or channels
and output pixels) and the yardsticks of ``probes.py`` directly, one thread.

1. ``test_convnet_heldout``: held-out accuracy of the ConvNet setup over many seeds (each
   changes the split, the initial weights and the batch order), the hidden seeds' figure,
   and the CPU time of that training for the solution and the slow variant (the test's
   call limit must hold the slow variant at twice the load).
2. The speed bands: compute-only ratios to the yardstick (no round trip to a worker) of
   the classes each band separates, on the inputs the performance tests use. Through the
   grader's round trip a loaded machine lowers the ratios of slow code (the yardstick's
   small compute is then outweighed by the round trip): the test docstrings give those.

    .venv/bin/python bench/thresholds_a1.py [--seeds 30] > bench/results/thresholds_a1.txt
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "a1_numpy_nn"
sys.path.insert(0, str(SOLUTION))
sys.path.insert(0, str(ROOT / "reference_tests" / "a1_numpy_nn"))

from conftest import HIDDEN_SEED, N_TRAIN, _derangement  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

# Must match test_training.py::test_convnet_heldout and test_performance.py.
HELDOUT = {"digits": 350, "epochs": 6, "batch_size": 25, "lr": 1.5e-2, "threshold": 0.85,
           "call_limit_s": 180}
CONV_INPUT, CONV_FILTERS, CONV_LIMIT = (4, 3, 32, 32), 16, 20
POOL_INPUT, POOL_ARGS, POOL_LIMIT = (16, 8, 32, 32), (2, 1), 10


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _train_convnet(layers: ModuleType, X: np.ndarray, y: np.ndarray, X_te: np.ndarray,
                   y_te: np.ndarray, seed: int) -> tuple[float, float]:
    sys.modules["layers"] = layers  # cnn.py imports its layers by name
    sys.modules.pop("cnn", None)
    from cnn import ConvNet
    from train import train

    model = ConvNet(input_shape=(1, 8, 8), num_filters=8, filter_size=3, num_classes=10, seed=seed)
    n = HELDOUT["digits"]
    start = time.process_time()
    train(model, X[:n], y[:n], X[:2], y[:2], optimizer="adam", lr=HELDOUT["lr"],
          epochs=HELDOUT["epochs"], batch_size=HELDOUT["batch_size"], seed=seed)
    accuracy = float(np.mean(model.predict(X_te) == y_te))
    return accuracy, time.process_time() - start


def heldout(seeds: int, solution: ModuleType, slow: ModuleType) -> None:
    data = load_digits()
    X_all, target = (data.data / 16.0).reshape(-1, 1, 8, 8), data.target
    accs = []
    for seed in range(seeds):
        perm = np.random.default_rng(1000 + seed).permutation(len(target))
        relabel = _derangement(10, np.random.default_rng([seed, 10]))
        y = relabel[target]
        tr, te = perm[:N_TRAIN], perm[N_TRAIN:]
        acc, _ = _train_convnet(solution, X_all[tr], y[tr], X_all[te], y[te], seed)
        accs.append(acc)
    relabel = _derangement(10, np.random.default_rng([HIDDEN_SEED, 10]))
    y = relabel[target]
    perm = np.random.default_rng(HIDDEN_SEED).permutation(len(y))
    tr, te = perm[:N_TRAIN], perm[N_TRAIN:]
    hidden, cpu = _train_convnet(solution, X_all[tr], y[tr], X_all[te], y[te], 0)
    hidden_slow, cpu_slow = _train_convnet(slow, X_all[tr], y[tr], X_all[te], y[te], 0)
    a = np.array(accs)
    print(f"ConvNet held-out ({HELDOUT}):")
    print(f"  {seeds} seeds: min {a.min():.3f}  median {np.median(a):.3f}  max {a.max():.3f}  "
          f"(mean {a.mean():.3f}, std {a.std():.3f}); threshold {HELDOUT['threshold']} is "
          f"{(a.mean() - HELDOUT['threshold']) / a.std():.1f} std below the mean")
    print(f"  hidden seeds: solution {hidden:.3f} in {cpu:.1f} s CPU; slow variant "
          f"{hidden_slow:.3f} in {cpu_slow:.1f} s CPU (call limit {HELDOUT['call_limit_s']} s)")


def _best(fn: Any, *args: Any, repeat: int = 5) -> float:
    fn(*args)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def _conv_pixel_loop(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> Any:
    """Loops over output pixels, one tensordot over batch, channels and filters each."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    hh, ww = w.shape[2:]
    h_out = (x.shape[2] + 2 * pad - hh) // stride + 1
    w_out = (x.shape[3] + 2 * pad - ww) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            win = xp[:, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
            out[:, :, i, j] = np.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def _conv_filter_pixel_loop(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int,
                            pad: int) -> Any:
    """Loops over filters and output pixels, each window summed over batch and channels."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    hh, ww = w.shape[2:]
    h_out = (x.shape[2] + 2 * pad - hh) // stride + 1
    w_out = (x.shape[3] + 2 * pad - ww) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], h_out, w_out))
    for f in range(w.shape[0]):
        for i in range(h_out):
            for j in range(w_out):
                win = xp[:, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
                out[:, f, i, j] = np.sum(win * w[f], axis=(1, 2, 3)) + b[f]
    return out


def bands(solution: ModuleType, slow: ModuleType, probes: ModuleType) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(CONV_INPUT)
    w = rng.standard_normal((CONV_FILTERS, CONV_INPUT[1], 3, 3))
    b = rng.standard_normal(CONV_FILTERS)
    yard = _best(probes.conv2d_yardstick, x, w, b, 1, 1)
    print(f"conv2d_forward on {CONV_INPUT}, {CONV_FILTERS} filters 3x3, stride 1, pad 1 "
          f"(limit {CONV_LIMIT}x; yardstick {yard * 1e3:.2f} ms of compute):")
    for name, fn in (("solution", solution.conv2d_forward),
                     ("loop over output pixels", _conv_pixel_loop),
                     ("loops over filters and output pixels", _conv_filter_pixel_loop),
                     ("slow variant (images, filters, pixels)", slow.conv2d_forward)):
        print(f"  {name:40s} {_best(fn, x, w, b, 1, 1, repeat=3) / yard:8.1f}x")
    x = rng.standard_normal(POOL_INPUT)
    yard = _best(probes.maxpool_yardstick, x, *POOL_ARGS)
    print(f"maxpool_forward on {POOL_INPUT}, pool {POOL_ARGS[0]} stride {POOL_ARGS[1]} "
          f"(limit {POOL_LIMIT}x; yardstick {yard * 1e3:.2f} ms of compute):")
    for name, fn in (("solution", solution.maxpool_forward),
                     ("slow variant (images, channels, pixels)", slow.maxpool_forward)):
        print(f"  {name:40s} {_best(fn, x, *POOL_ARGS, repeat=3) / yard:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    args = parser.parse_args()
    solution = _load(SOLUTION / "layers.py", "layers")
    slow = _load(SOLUTION / "variants" / "naive_loops" / "layers.py", "layers_naive_loops")
    probes = _load(SOLUTION / "probes.py", "a1_probes")
    print(f"numpy {np.__version__}, one thread (set OMP_NUM_THREADS=1)")
    heldout(args.seeds, solution, slow)
    bands(solution, slow, probes)


if __name__ == "__main__":
    main()
