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
    # BEGIN SOLUTION
    h_next = np.tanh(x @ Wx + h_prev @ Wh + b)
    return h_next, (x, h_prev, Wx, Wh, h_next)
    # END SOLUTION


def rnn_step_backward(dh_next: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """Gradients of one step given ``dL/dh_next`` (N, H) and the step's cache.

    Returns ``(dx, dh_prev, dWx, dWh, db)`` of the shapes of ``x, h_prev, Wx, Wh, b``.
    """
    # BEGIN SOLUTION
    x, h_prev, Wx, Wh, h_next = cache
    da = dh_next * (1.0 - h_next**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)
    # END SOLUTION


def rnn_forward(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                b: np.ndarray) -> tuple[np.ndarray, Any]:
    """The RNN over whole sequences: x (N, T, D), h0 (N, H) -> ``(h, cache)`` with
    h (N, T, H) the hidden states ``h_1 .. h_T`` (``h[:, t]`` is the state after reading
    ``x[:, t]``), of the inputs' dtype."""
    # BEGIN SOLUTION
    n, t_len, _ = x.shape
    h = np.zeros((n, t_len, h0.shape[1]), dtype=np.result_type(x, h0, Wx))
    caches = []
    prev = h0
    for t in range(t_len):
        prev, cache = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        h[:, t] = prev
        caches.append(cache)
    return h, caches
    # END SOLUTION


def rnn_backward(dh: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """BPTT: gradients of a loss ``L`` given ``dh = dL/dh`` (N, T, H), the upstream
    gradient of every hidden state returned by :func:`rnn_forward` (the state ``h_t``
    also feeds ``h_{t+1}``, so its total gradient adds what flows back from later steps).

    Returns ``(dx, dh0, dWx, dWh, db)`` of the shapes of ``x, h0, Wx, Wh, b``.
    """
    # BEGIN SOLUTION
    caches = cache
    n, t_len, hidden = dh.shape
    d = caches[0][0].shape[1]
    dx = np.zeros((n, t_len, d), dtype=dh.dtype)
    dWx = np.zeros((d, hidden), dtype=dh.dtype)
    dWh = np.zeros((hidden, hidden), dtype=dh.dtype)
    db = np.zeros(hidden, dtype=dh.dtype)
    dprev = np.zeros((n, hidden), dtype=dh.dtype)
    for t in reversed(range(t_len)):
        dx_t, dprev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev, caches[t])
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev, dWx, dWh, db
    # END SOLUTION
