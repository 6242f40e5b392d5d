"""Layers of a neural network in plain numpy: forward and backward passes.

Conventions (CS231n style):

- every ``*_forward`` function returns ``(out, cache)``; ``cache`` is plain data
  (arrays, ints, tuples of them) holding what the backward pass needs;
- every ``*_backward`` function takes ``(dout, cache)``, where ``dout`` is the gradient of
  the loss with respect to ``out``, and returns the gradients with respect to the inputs
  in the order the forward function takes them;
- images are laid out NCHW: (batch, channels, height, width);
- outputs keep the floating dtype of the inputs (float32 in, float32 out).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray


# ---------------------------------------------------------------------------
# Fully connected layer
# ---------------------------------------------------------------------------


def affine_forward(x: Array, w: Array, b: Array) -> tuple[Array, Any]:
    """Affine (fully connected) layer: ``out = x_flat @ w + b``.

    x: (N, d1, ..., dk), flattened to (N, D) with D = d1 * ... * dk
    w: (D, M); b: (M,)
    Returns out (N, M) and the cache for :func:`affine_backward`.
    """
    # Flatten every example into a row; reshape keeps the batch axis first.
    out = x.reshape(x.shape[0], -1) @ w + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """Backward pass of :func:`affine_forward`.

    dout: (N, M). Returns dx with the shape of the original x (N, d1, ..., dk),
    dw (D, M) and db (M,).
    """
    x, w, b = cache
    x_flat = x.reshape(x.shape[0], -1)
    # dx must come back in the caller's shape, not flattened.
    dx = (dout @ w.T).reshape(x.shape)
    dw = x_flat.T @ dout
    # b was broadcast over the batch, so its gradient sums over the batch.
    db = dout.sum(axis=0)
    return dx, dw, db


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


def relu_forward(x: Array) -> tuple[Array, Any]:
    """ReLU: ``out = max(0, x)`` elementwise. Any shape."""
    out = np.maximum(x, 0)
    cache = x
    return out, cache


def relu_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`relu_forward`: gradient flows only where x > 0."""
    x = cache
    dx = dout * (x > 0)
    return dx


def sigmoid_forward(x: Array) -> tuple[Array, Any]:
    """Logistic sigmoid ``1 / (1 + exp(-x))`` elementwise, without overflow warnings."""
    # exp of a large positive number overflows; exp(-|x|) never does.
    z = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)
    # The derivative is expressed through the output, so the output is all we keep.
    return s, s


def sigmoid_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`sigmoid_forward`: ``dx = dout * s * (1 - s)``."""
    s = cache
    dx = dout * s * (1.0 - s)
    return dx


# ---------------------------------------------------------------------------
# Loss and regularization
# ---------------------------------------------------------------------------


def softmax_cross_entropy(scores: Array, y: Array) -> tuple[float, Array]:
    """Softmax followed by cross-entropy, averaged over the batch.

    scores: (N, C) unnormalized class scores; y: (N,) integer labels in [0, C).
    Returns ``(loss, dscores)`` where loss is a Python float and dscores (N, C) is the
    gradient of loss with respect to scores.
    """
    n = scores.shape[0]
    # Subtracting the row maximum changes nothing mathematically but keeps exp() finite.
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(log_probs[np.arange(n), y].mean())
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    # The loss is a batch mean, so every example's gradient is divided by N.
    dscores /= n
    return loss, dscores


def l2_regularization(weights: Any, reg: float) -> tuple[float, Any]:
    """L2 penalty ``0.5 * reg * sum_k sum(W_k ** 2)`` and its gradients ``reg * W_k``.

    weights: a dict name -> array, or a list of arrays (pass weight matrices only, never
    biases). Returns ``(loss, grads)`` with grads in the same kind of container.
    The factor 0.5 makes the gradient ``reg * W`` instead of ``2 * reg * W``.
    """
    if isinstance(weights, dict):
        loss = 0.5 * reg * sum(float(np.sum(w * w)) for w in weights.values())
        grads: Any = {name: reg * w for name, w in weights.items()}
    else:
        loss = 0.5 * reg * sum(float(np.sum(w * w)) for w in weights)
        grads = [reg * w for w in weights]
    return loss, grads


# ---------------------------------------------------------------------------
# Convolution and pooling (NCHW)
# ---------------------------------------------------------------------------


def conv2d_forward(
    x: Array, w: Array, b: Array, stride: int = 1, pad: int = 0
) -> tuple[Array, Any]:
    """2-D convolution, the textbook way: one window at a time (correct, slow)."""
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    h_out = (h + 2 * pad - hh) // stride + 1
    w_out = (wd + 2 * pad - ww) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, f, h_out, w_out), dtype=np.result_type(x, w, b))
    for i_n in range(n):
        for i_f in range(f):
            for i in range(h_out):
                for j in range(w_out):
                    window = xp[i_n, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
                    out[i_n, i_f, i, j] = np.sum(window * w[i_f]) + b[i_f]
    cache = (x, w, b, stride, pad)
    return out, cache


def conv2d_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """Backward pass of :func:`conv2d_forward`, one window at a time."""
    x, w, b, stride, pad = cache
    n, f, h_out, w_out = dout.shape
    hh, ww = w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros(xp.shape, dtype=np.result_type(dout, w))
    dw = np.zeros(w.shape, dtype=np.result_type(dout, x))
    db = np.zeros(b.shape, dtype=dout.dtype)
    for i_n in range(n):
        for i_f in range(f):
            db[i_f] += np.sum(dout[i_n, i_f])
            for i in range(h_out):
                for j in range(w_out):
                    rows = slice(i * stride, i * stride + hh)
                    cols = slice(j * stride, j * stride + ww)
                    g = dout[i_n, i_f, i, j]
                    dw[i_f] += g * xp[i_n, :, rows, cols]
                    dxp[i_n, :, rows, cols] += g * w[i_f]
    dx = dxp[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]
    return dx, dw, db


def maxpool_forward(x: Array, pool: int = 2, stride: int = 2) -> tuple[Array, Any]:
    """Max pooling, one window at a time."""
    n, c, h, w = x.shape
    h_out, w_out = (h - pool) // stride + 1, (w - pool) // stride + 1
    out = np.zeros((n, c, h_out, w_out), dtype=x.dtype)
    for i_n in range(n):
        for i_c in range(c):
            for i in range(h_out):
                for j in range(w_out):
                    window = x[i_n, i_c, i * stride : i * stride + pool, j * stride : j * stride + pool]
                    out[i_n, i_c, i, j] = np.max(window)
    cache = (x, pool, stride)
    return out, cache


def maxpool_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`maxpool_forward`: each window's first maximum gets the gradient."""
    x, pool, stride = cache
    n, c, h_out, w_out = dout.shape
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    for i_n in range(n):
        for i_c in range(c):
            for i in range(h_out):
                for j in range(w_out):
                    window = x[i_n, i_c, i * stride : i * stride + pool, j * stride : j * stride + pool]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[i_n, i_c, i * stride + p, j * stride + q] += dout[i_n, i_c, i, j]
    return dx
