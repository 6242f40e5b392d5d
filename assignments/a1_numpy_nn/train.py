"""Mini-batch training loop and a train/validation split."""

from __future__ import annotations

from typing import Any

import numpy as np
import optim

OPTIMIZERS = {"sgd": optim.sgd, "momentum": optim.sgd_momentum, "adam": optim.adam}


def train_val_split(
    X: np.ndarray, y: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the rows with ``np.random.default_rng(seed)`` and split them.

    The validation set gets ``round(val_fraction * N)`` rows, the training set the rest.
    Returns ``(X_train, y_train, X_val, y_val)``; every row lands in exactly one part.
    """
    raise NotImplementedError("TODO: train_val_split")


def accuracy(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows of X whose predicted label equals y."""
    return float(np.mean(model.predict(X) == y))


def train(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    optimizer: str = "sgd",
    lr: float = 1e-2,
    epochs: int = 10,
    batch_size: int = 64,
    seed: int = 0,
    optim_config: dict[str, Any] | None = None,
    verbose: bool = False,
) -> dict[str, list[float]]:
    """Train ``model`` (anything with ``params``, ``loss`` and ``predict``) in place.

    Every epoch shuffles the training rows with one ``np.random.default_rng(seed)``
    created at the start (so each epoch gets a different order and the whole run is
    reproducible), walks through them in mini-batches of ``batch_size`` (the last one may
    be smaller), and updates every parameter with the chosen optimizer
    (``"sgd"``, ``"momentum"`` or ``"adam"`` from ``optim``), learning rate ``lr`` and
    extra hyper-parameters ``optim_config`` (e.g. ``{"momentum": 0.8}``). Each parameter
    has its own optimizer config (its own velocity / moments).

    Returns the history ``{"loss": [...], "train_acc": [...], "val_acc": [...]}`` with one
    entry per epoch: the mean mini-batch loss of the epoch, then the accuracy on
    (X, y) and on (X_val, y_val) after the epoch.
    """
    raise NotImplementedError("TODO: train")
