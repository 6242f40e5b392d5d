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
    # BEGIN SOLUTION
    n = X.shape[0]
    n_val = int(round(val_fraction * n))
    perm = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx]
    # END SOLUTION


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
    # BEGIN SOLUTION
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    update = OPTIMIZERS[optimizer]
    configs = {name: {**(optim_config or {}), "learning_rate": lr} for name in model.params}
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "val_acc": []}
    for epoch in range(epochs):
        # A fresh order every epoch: without it, batches are always the same and
        # sorted data (e.g. by class) makes every step pull towards one class.
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss, grads = model.loss(X[idx], y[idx])
            losses.append(loss)
            for name in model.params:
                model.params[name], configs[name] = update(
                    model.params[name], grads[name], configs[name]
                )
        history["loss"].append(float(np.mean(losses)))
        history["train_acc"].append(accuracy(model, X, y))
        history["val_acc"].append(accuracy(model, X_val, y_val))
        if verbose:
            print(
                f"epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f}, "
                f"train acc {history['train_acc'][-1]:.3f}, val acc {history['val_acc'][-1]:.3f}"
            )
    return history
    # END SOLUTION
