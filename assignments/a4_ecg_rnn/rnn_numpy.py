"""A vanilla RNN in numpy: forward pass and backpropagation through time (BPTT).

Shapes: ``N`` sequences, ``T`` time steps, ``D`` input features, ``H`` hidden units.
The recurrence is ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)`` with ``h_0`` given.
No function modifies its arguments; caches are whatever you need (tuples of arrays are
best: they travel back to you unchanged).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def rnn_step_forward(x: np.ndarray, h_prev: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                     b: np.ndarray) -> tuple[np.ndarray, Any]:
    """One time step: ``h_next = tanh(x @ Wx + h_prev @ Wh + b)``.

    x (N, D), h_prev (N, H), Wx (D, H), Wh (H, H), b (H,). Returns ``(h_next, cache)``
    with h_next (N, H) of the inputs' dtype.
    """
    raise NotImplementedError("TODO: rnn_step_forward")


def rnn_step_backward(dh_next: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """Gradients of one step given ``dL/dh_next`` (N, H) and the step's cache.

    Returns ``(dx, dh_prev, dWx, dWh, db)`` of the shapes of ``x, h_prev, Wx, Wh, b``.
    """
    raise NotImplementedError("TODO: rnn_step_backward")


def rnn_forward(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                b: np.ndarray) -> tuple[np.ndarray, Any]:
    """The RNN over whole sequences: x (N, T, D), h0 (N, H) -> ``(h, cache)`` with
    h (N, T, H) the hidden states ``h_1 .. h_T`` (``h[:, t]`` is the state after reading
    ``x[:, t]``), of the inputs' dtype."""
    raise NotImplementedError("TODO: rnn_forward")


def rnn_backward(dh: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """BPTT: gradients of a loss ``L`` given ``dh = dL/dh`` (N, T, H), the upstream
    gradient of every hidden state returned by :func:`rnn_forward` (the state ``h_t``
    also feeds ``h_{t+1}``, so its total gradient adds what flows back from later steps).

    Returns ``(dx, dh0, dWx, dWh, db)`` of the shapes of ``x, h0, Wx, Wh, b``.
    """
    raise NotImplementedError("TODO: rnn_backward")
