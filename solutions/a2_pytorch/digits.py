"""Handwritten digits as torch tensors (support file: you do not need to edit it).

scikit-learn ships the 1797 8x8 digit images of the UCI "optdigits" set with the package,
so nothing is downloaded. Your graded modules must not import this file (it uses
scikit-learn, which they may not import): the graders send the data themselves.
"""

from __future__ import annotations

import numpy as np
import torch


def load_digits_tensors(
    seed: int = 0, test_fraction: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits shuffled with ``seed`` and split into a training and a test part.

    Returns ``(X_train, y_train, X_test, y_test)``: images float32 of shape (N, 1, 8, 8)
    with pixel values scaled from 0..16 to [0, 1], labels int64 0..9.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return (torch.from_numpy(X[train]), torch.from_numpy(y[train]),
            torch.from_numpy(X[test]), torch.from_numpy(y[test]))
