"""Handwritten digits as numpy arrays (support file: you do not need to edit it).

scikit-learn ships the 1797 8x8 digit images of the UCI "optdigits" set with the package,
so nothing is downloaded.
"""

from __future__ import annotations

import numpy as np


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: images float32 of shape (1797, 64) with pixel values scaled from
    0..16 to [0, 1], and labels int64 0..9, in scikit-learn's order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data.astype(np.float32) / 16.0), digits.target.astype(np.int64)
