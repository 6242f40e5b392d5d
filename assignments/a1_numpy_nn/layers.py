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
    raise NotImplementedError("TODO: affine_forward")


def affine_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """Backward pass of :func:`affine_forward`.

    dout: (N, M). Returns dx with the shape of the original x (N, d1, ..., dk),
    dw (D, M) and db (M,).
    """
    raise NotImplementedError("TODO: affine_backward")


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


def relu_forward(x: Array) -> tuple[Array, Any]:
    """ReLU: ``out = max(0, x)`` elementwise. Any shape."""
    raise NotImplementedError("TODO: relu_forward")


def relu_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`relu_forward`: gradient flows only where x > 0."""
    raise NotImplementedError("TODO: relu_backward")


def sigmoid_forward(x: Array) -> tuple[Array, Any]:
    """Logistic sigmoid ``1 / (1 + exp(-x))`` elementwise, without overflow warnings."""
    raise NotImplementedError("TODO: sigmoid_forward")


def sigmoid_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`sigmoid_forward`: ``dx = dout * s * (1 - s)``."""
    raise NotImplementedError("TODO: sigmoid_backward")


# ---------------------------------------------------------------------------
# Loss and regularization
# ---------------------------------------------------------------------------


def softmax_cross_entropy(scores: Array, y: Array) -> tuple[float, Array]:
    """Softmax followed by cross-entropy, averaged over the batch.

    scores: (N, C) unnormalized class scores; y: (N,) integer labels in [0, C).
    Returns ``(loss, dscores)`` where loss is a Python float and dscores (N, C) is the
    gradient of loss with respect to scores.
    """
    raise NotImplementedError("TODO: softmax_cross_entropy")


def l2_regularization(weights: Any, reg: float) -> tuple[float, Any]:
    """L2 penalty ``0.5 * reg * sum_k sum(W_k ** 2)`` and its gradients ``reg * W_k``.

    weights: a dict name -> array, or a list of arrays (pass weight matrices only, never
    biases). Returns ``(loss, grads)`` with grads in the same kind of container.
    The factor 0.5 makes the gradient ``reg * W`` instead of ``2 * reg * W``.
    """
    raise NotImplementedError("TODO: l2_regularization")


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
    raise NotImplementedError("TODO: conv2d_forward")


def conv2d_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """Backward pass of :func:`conv2d_forward`.

    dout: (N, F, H_out, W_out). Returns dx (N, C, H, W), dw (F, C, HH, WW), db (F,).
    Each input pixel receives gradient from every output position whose window covered
    it; padding is cut off again at the end.
    """
    raise NotImplementedError("TODO: conv2d_backward")


def maxpool_forward(x: Array, pool: int = 2, stride: int = 2) -> tuple[Array, Any]:
    """Max pooling over ``pool x pool`` windows moved by ``stride`` (no padding).

    x: (N, C, H, W). Output (N, C, H_out, W_out), ``H_out = (H - pool) // stride + 1``.
    """
    raise NotImplementedError("TODO: maxpool_forward")


def maxpool_backward(dout: Array, cache: Any) -> Array:
    """Backward pass of :func:`maxpool_forward`.

    The gradient of each output goes to the one input that was the maximum of its window
    (the first one in row-major order on ties); overlapping windows add up.
    """
    raise NotImplementedError("TODO: maxpool_backward")
