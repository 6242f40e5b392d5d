"""Handwritten digits for the assignment (support file: you do not need to edit it).

scikit-learn ships the 1797 8x8 digit images of the UCI "optdigits" set with the package,
so nothing is downloaded.
"""

from __future__ import annotations

import numpy as np


def load_digits_split(
    seed: int = 0, test_fraction: float = 0.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits shuffled with ``seed`` and split into a training and a test part.

    Returns ``(X_train, y_train, X_test, y_test)``: X float64 of shape (N, 64) with pixel
    values scaled from 0..16 to [0, 1], y int64 labels 0..9.
    Use :func:`as_images` to get (N, 1, 8, 8) images for the ConvNet.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return X[train], y[train], X[test], y[test]


def as_images(X: np.ndarray) -> np.ndarray:
    """Reshape flat digits (N, 64) to NCHW images (N, 1, 8, 8)."""
    return X.reshape(-1, 1, 8, 8)
