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
    # BEGIN SOLUTION
    # Flatten every example into a row; reshape keeps the batch axis first.
    out = x.reshape(x.shape[0], -1) @ w + b
    cache = (x, w, b)
    return out, cache
    # END SOLUTION


def affine_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """Backward pass of :func:`affine_forward`.

    dout: (N, M). Returns dx with the shape of the original x (N, d1, ..., dk),
    dw (D, M) and db (M,).
    """
    # BEGIN SOLUTION
    x, w, b = cache
    x_flat = x.reshape(x.shape[0], -1)
    # dx must come back in the caller's shape, not flattened.
    dx = (dout @ w.T).reshape(x.shape)
    dw = x_flat.T @ dout
    # b was broadcast over the batch, so its gradient sums over the batch.
    db = dout.sum(axis=0)
    return dx, dw, db
    # END SOLUTION


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


def relu_forward(x: Array) -> tuple[Array, Any]:
    """ReLU: ``out = max(0, x)`` elementwise. Any shape."""
    # BEGIN SOLUTION
    out = np.maximum(x, 0)
    cache = x
    return out, cache
    # END SOLUTION


def relu_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`relu_forward`: gradient flows only where x > 0."""
    # BEGIN SOLUTION
    x = cache
    dx = dout * (x > 0)
    return dx
    # END SOLUTION


def sigmoid_forward(x: Array) -> tuple[Array, Any]:
    """Logistic sigmoid ``1 / (1 + exp(-x))`` elementwise, without overflow warnings."""
    # BEGIN SOLUTION
    # exp of a large positive number overflows; exp(-|x|) never does.
    z = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)
    # The derivative is expressed through the output, so the output is all we keep.
    return s, s
    # END SOLUTION


def sigmoid_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`sigmoid_forward`: ``dx = dout * s * (1 - s)``."""
    # BEGIN SOLUTION
    s = cache
    dx = dout * s * (1.0 - s)
    return dx
    # END SOLUTION


# ---------------------------------------------------------------------------
# Loss and regularization
# ---------------------------------------------------------------------------


def softmax_cross_entropy(scores: Array, y: Array) -> tuple[float, Array]:
    """Softmax followed by cross-entropy, averaged over the batch.

    scores: (N, C) unnormalized class scores; y: (N,) integer labels in [0, C).
    Returns ``(loss, dscores)`` where loss is a Python float and dscores (N, C) is the
    gradient of loss with respect to scores.
    """
    # BEGIN SOLUTION
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
    # END SOLUTION


def l2_regularization(weights: Any, reg: float) -> tuple[float, Any]:
    """L2 penalty ``0.5 * reg * sum_k sum(W_k ** 2)`` and its gradients ``reg * W_k``.

    weights: a dict name -> array, or a list of arrays (pass weight matrices only, never
    biases). Returns ``(loss, grads)`` with grads in the same kind of container.
    The factor 0.5 makes the gradient ``reg * W`` instead of ``2 * reg * W``.
    """
    # BEGIN SOLUTION
    if isinstance(weights, dict):
        loss = 0.5 * reg * sum(float(np.sum(w * w)) for w in weights.values())
        grads: Any = {name: reg * w for name, w in weights.items()}
    else:
        loss = 0.5 * reg * sum(float(np.sum(w * w)) for w in weights)
        grads = [reg * w for w in weights]
    return loss, grads
    # END SOLUTION


# ---------------------------------------------------------------------------
# Convolution and pooling (NCHW)
# ---------------------------------------------------------------------------


def conv2d_forward(
    x: Array, w: Array, b: Array, stride: int = 1, pad: int = 0
) -> tuple[Array, Any]:
    """2-D convolution (cross-correlation, as in every deep-learning library).

    x: (N, C, H, W) inputs; w: (F, C, HH, WW) filters; b: (F,) biases.
    The input is zero-padded by ``pad`` pixels on each side of H and W, and the filter
    moves by ``stride`` pixels. Output (N, F, H_out, W_out) with
    ``H_out = (H + 2 * pad - HH) // stride + 1`` (same for W):

        out[n, f, i, j] = b[f] + sum_{c, p, q} xpad[n, c, i*stride + p, j*stride + q] * w[f, c, p, q]

    Performance rule: loop at most over the kernel offsets (p, q); no Python loops over
    the batch, the channels or the output pixels.
    """
    # BEGIN SOLUTION
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    h_out = (h + 2 * pad - hh) // stride + 1
    w_out = (wd + 2 * pad - ww) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, f, h_out, w_out), dtype=np.result_type(x, w, b))
    # One matrix product per kernel offset: all images, channels and output pixels at once.
    for p in range(hh):
        for q in range(ww):
            patch = xp[:, :, p : p + stride * h_out : stride, q : q + stride * w_out : stride]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, p, q], optimize=True)
    out += b[None, :, None, None]
    cache = (x, w, b, stride, pad)
    return out, cache
    # END SOLUTION


def conv2d_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """Backward pass of :func:`conv2d_forward`.

    dout: (N, F, H_out, W_out). Returns dx (N, C, H, W), dw (F, C, HH, WW), db (F,).
    Each input pixel receives gradient from every output position whose window covered
    it; padding is cut off again at the end.
    """
    # BEGIN SOLUTION
    x, w, b, stride, pad = cache
    f, _, hh, ww = w.shape
    h_out, w_out = dout.shape[2], dout.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp, dtype=np.result_type(dout, w))
    dw = np.zeros_like(w, dtype=np.result_type(dout, x))
    db = dout.sum(axis=(0, 2, 3))
    for p in range(hh):
        for q in range(ww):
            # The input pixels that kernel offset (p, q) touched in the forward pass.
            rows = slice(p, p + stride * h_out, stride)
            cols = slice(q, q + stride * w_out, stride)
            dw[:, :, p, q] = np.einsum("nfhw,nchw->fc", dout, xp[:, :, rows, cols], optimize=True)
            dxp[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", dout, w[:, :, p, q], optimize=True)
    dx = dxp[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]
    return dx, dw, db
    # END SOLUTION


def maxpool_forward(x: Array, pool: int = 2, stride: int = 2) -> tuple[Array, Any]:
    """Max pooling over ``pool x pool`` windows moved by ``stride`` (no padding).

    x: (N, C, H, W). Output (N, C, H_out, W_out), ``H_out = (H - pool) // stride + 1``.
    """
    # BEGIN SOLUTION
    # A strided view: windows[n, c, i, j] is the pool x pool window of output (i, j).
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool, pool), axis=(2, 3))
    out = windows[:, :, ::stride, ::stride].max(axis=(4, 5))
    cache = (x, pool, stride)
    return out, cache
    # END SOLUTION


def maxpool_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`maxpool_forward`.

    The gradient of each output goes to the one input that was the maximum of its window
    (the first one in row-major order on ties); overlapping windows add up.
    """
    # BEGIN SOLUTION
    x, pool, stride = cache
    n, c, h_out, w_out = dout.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool, pool), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride].reshape(n, c, h_out, w_out, pool * pool)
    # Position of each window's maximum, turned back into input coordinates.
    di, dj = np.divmod(windows.argmax(axis=-1), pool)
    rows = np.arange(h_out)[None, None, :, None] * stride + di
    cols = np.arange(w_out)[None, None, None, :] * stride + dj
    n_idx = np.arange(n)[:, None, None, None]
    c_idx = np.arange(c)[None, :, None, None]
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    # add.at (not +=) so that overlapping windows sharing a maximum both contribute.
    np.add.at(dx, (n_idx, c_idx, rows, cols), dout)
    return dx
    # END SOLUTION
