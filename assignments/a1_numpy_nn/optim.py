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
    raise NotImplementedError("TODO: sgd")


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """Gradient descent with momentum::

        v = momentum * v - learning_rate * dw
        next_w = w + v

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros like w).
    """
    raise NotImplementedError("TODO: sgd_momentum")


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
    raise NotImplementedError("TODO: adam")
