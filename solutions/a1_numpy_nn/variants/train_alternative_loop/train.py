"""Mini-batch training loop and a train/validation split (written another way)."""

from __future__ import annotations

from typing import Any

import numpy as np
from optim import adam, sgd, sgd_momentum


def train_val_split(
    X: np.ndarray, y: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the rows with ``np.random.default_rng(seed)`` and split them."""
    idx = np.arange(len(X))
    np.random.default_rng(seed).shuffle(idx)
    n_val = round(val_fraction * len(X))
    return X[idx[n_val:]], y[idx[n_val:]], X[idx[:n_val]], y[idx[:n_val]]


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
    """Train ``model`` in place: shuffle in place each epoch, accuracies from the scores."""
    rule = {"sgd": sgd, "momentum": sgd_momentum, "adam": adam}[optimizer]
    configs: dict[str, Any] = {}
    for name in model.params:
        configs[name] = dict(optim_config) if optim_config else {}
        configs[name]["learning_rate"] = lr
    rng = np.random.default_rng(seed)
    idx = np.arange(X.shape[0])
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "val_acc": []}
    for _ in range(epochs):
        rng.shuffle(idx)
        total, batches = 0.0, 0
        for batch in (idx[i : i + batch_size] for i in range(0, len(idx), batch_size)):
            loss, grads = model.loss(X[batch], y[batch])
            total, batches = total + loss, batches + 1
            for name, grad in grads.items():
                model.params[name], configs[name] = rule(model.params[name], grad, configs[name])
        history["loss"].append(total / batches)
        for key, (data, labels) in (("train_acc", (X, y)), ("val_acc", (X_val, y_val))):
            history[key].append(float((np.argmax(model.loss(data), axis=1) == labels).mean()))
        if verbose:
            print(history["loss"][-1])
    return history
