"""First-order update rules that keep their state arrays and update them in place."""

from __future__ import annotations

from typing import Any

import numpy as np

Config = dict[str, Any]


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla gradient descent: ``next_w = w - learning_rate * dw``."""
    config = config if config is not None else {}
    lr = config.setdefault("learning_rate", 1e-2)
    next_w = w.copy()
    next_w -= lr * dw
    return next_w, config


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """Momentum with the velocity array updated in place."""
    config = config if config is not None else {}
    lr = config.setdefault("learning_rate", 1e-2)
    mu = config.setdefault("momentum", 0.9)
    v = config.get("velocity")
    if v is None:
        v = config["velocity"] = np.zeros_like(w, dtype=np.result_type(w, dw))
    v *= mu
    v -= lr * dw
    return w + v, config


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adam, moments updated in place, bias corrections folded into the step size."""
    config = config if config is not None else {}
    lr = config.setdefault("learning_rate", 1e-3)
    b1 = config.setdefault("beta1", 0.9)
    b2 = config.setdefault("beta2", 0.999)
    eps = config.setdefault("epsilon", 1e-8)
    if config.get("m") is None:
        config["m"] = np.zeros_like(w, dtype=np.result_type(w, dw))
        config["v"] = np.zeros_like(w, dtype=np.result_type(w, dw))
    config["t"] = t = config.get("t", 0) + 1
    m, v = config["m"], config["v"]
    m *= b1
    m += (1 - b1) * dw
    v *= b2
    v += (1 - b2) * dw * dw
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), config
