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
    raise NotImplementedError("TODO: split")


def main() -> None:
    """Read params.yaml, split the digits, write the two .npz files."""
    raise NotImplementedError("TODO: main")


if __name__ == "__main__":
    main()
