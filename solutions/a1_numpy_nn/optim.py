"""First-order update rules, CS231n style.

Each rule has the signature ``rule(w, dw, config=None) -> (next_w, config)``:

- ``w``: the current parameter array, ``dw``: the gradient of the loss with respect to it;
- ``config``: a dict of hyper-parameters *and* state (velocity, moments, step count).
  Pass ``None`` on the first step; the rule fills in the defaults below. Pass the
  returned config back on the next step for the same parameter (one config per
  parameter array).
- ``next_w`` is a new array; ``w`` itself is left unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Config = dict[str, Any]


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla gradient descent: ``next_w = w - learning_rate * dw``.

    config: ``learning_rate`` (default 1e-2).
    """
    # BEGIN SOLUTION
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    next_w = w - config["learning_rate"] * dw
    return next_w, config
    # END SOLUTION


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """Gradient descent with momentum::

        v = momentum * v - learning_rate * dw
        next_w = w + v

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros like w).
    """
    # BEGIN SOLUTION
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity")
    if v is None:
        v = np.zeros_like(w)
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v
    config["velocity"] = v
    return next_w, config
    # END SOLUTION


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adam (Kingma & Ba, 2015) with bias correction::

        t = t + 1
        m = beta1 * m + (1 - beta1) * dw
        v = beta2 * v + (1 - beta2) * dw ** 2
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999),
    ``epsilon`` (1e-8), ``m`` and ``v`` (zeros like w), ``t`` (0).
    """
    # BEGIN SOLUTION
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    m = config.get("m")
    v = config.get("v")
    m = np.zeros_like(w) if m is None else m
    v = np.zeros_like(w) if v is None else v
    t = config.get("t", 0) + 1
    b1, b2 = config["beta1"], config["beta2"]
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw**2
    # m and v start at zero, so early averages are too small; dividing by 1 - beta**t fixes it.
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    config.update(m=m, v=v, t=t)
    return next_w, config
    # END SOLUTION
