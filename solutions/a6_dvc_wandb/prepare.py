"""Stage `prepare`: split the digits into a training and a test part.

Run by DVC as ``python prepare.py`` (see dvc.yaml); reads the ``prepare`` section of
params.yaml and writes ``data/prepared/train.npz`` and ``data/prepared/test.npz``, each
with arrays ``X`` (float32, (N, 64)) and ``y`` (int64, (N,)).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from digits import load_digits_arrays

OUT = Path("data/prepared")


def split(X: np.ndarray, y: np.ndarray, seed: int,
          test_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)``: ``perm = np.random.default_rng(seed)
    .permutation(len(y))``; the first ``round(test_fraction * len(y))`` indices of ``perm``
    are the test part, the others the training part, both in the order of ``perm``."""
    # BEGIN SOLUTION
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return X[train], y[train], X[test], y[test]
    # END SOLUTION


def main() -> None:
    """Read params.yaml, split the digits, write the two .npz files."""
    # BEGIN SOLUTION
    params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
    X, y = load_digits_arrays()
    X_train, y_train, X_test, y_test = split(X, y, int(params["seed"]),
                                             float(params["test_fraction"]))
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(OUT / "train.npz", X=X_train, y=y_train)
    np.savez(OUT / "test.npz", X=X_test, y=y_test)
    # END SOLUTION


if __name__ == "__main__":
    main()
