"""A small convolutional network for 8x8 digit images, built from ``layers``."""

from __future__ import annotations

from typing import Any

import numpy as np
from layers import (
    affine_backward,
    affine_forward,
    conv2d_backward,
    conv2d_forward,
    l2_regularization,
    maxpool_backward,
    maxpool_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)


class ConvNet:
    """``conv - relu - 2x2 maxpool - affine - softmax`` classifier.

    input_shape: (C, H, W) of one image, H and W even (digits: (1, 8, 8)).
    num_filters: F, the number of convolution filters.
    filter_size: odd kernel size k; the convolution uses stride 1 and padding
        ``(k - 1) // 2`` so that it keeps H and W.
    num_classes: number of classes of the softmax output.
    reg: L2 strength on the weights ``W1`` and ``W2`` only (``0.5 * reg * sum(W ** 2)``).
    seed: seed of ``np.random.default_rng`` for the initial weights.
    weight_scale: weights drawn as ``weight_scale * N(0, 1)``; ``None`` (default) means
        ``1 / sqrt(fan_in)`` per layer (fan_in = C * k * k for the convolution).

    Parameters in ``self.params``, float64, biases zero at start:
    ``"W1"`` (F, C, k, k), ``"b1"`` (F,), ``"W2"`` (F * H/2 * W/2, num_classes),
    ``"b2"`` (num_classes,).
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] = (1, 8, 8),
        num_filters: int = 8,
        filter_size: int = 3,
        num_classes: int = 10,
        reg: float = 0.0,
        seed: int = 0,
        weight_scale: float | None = None,
    ) -> None:
        # BEGIN SOLUTION
        c, h, w = input_shape
        if filter_size % 2 != 1:
            raise ValueError(f"filter_size must be odd, got {filter_size}")
        self.reg = reg
        self.pad = (filter_size - 1) // 2
        rng = np.random.default_rng(seed)
        fan_in_conv = c * filter_size * filter_size
        flat = num_filters * (h // 2) * (w // 2)
        s1 = 1.0 / np.sqrt(fan_in_conv) if weight_scale is None else weight_scale
        s2 = 1.0 / np.sqrt(flat) if weight_scale is None else weight_scale
        self.params: dict[str, np.ndarray] = {
            "W1": s1 * rng.standard_normal((num_filters, c, filter_size, filter_size)),
            "b1": np.zeros(num_filters),
            "W2": s2 * rng.standard_normal((flat, num_classes)),
            "b2": np.zeros(num_classes),
        }
        # END SOLUTION

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Scores (N, num_classes) if y is None, else ``(loss, grads)`` as in ``MLP.loss``.

        X: (N, C, H, W).
        """
        # BEGIN SOLUTION
        p = self.params
        h, conv_cache = conv2d_forward(X, p["W1"], p["b1"], 1, self.pad)
        h, relu_cache = relu_forward(h)
        h, pool_cache = maxpool_forward(h, 2, 2)
        scores, affine_cache = affine_forward(h, p["W2"], p["b2"])
        if y is None:
            return scores

        data_loss, dscores = softmax_cross_entropy(scores, y)
        reg_loss, reg_grads = l2_regularization({"W1": p["W1"], "W2": p["W2"]}, self.reg)
        grads: dict[str, np.ndarray] = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, affine_cache)
        dh = maxpool_backward(dh, pool_cache)
        dh = relu_backward(dh, relu_cache)
        _, grads["W1"], grads["b1"] = conv2d_backward(dh, conv_cache)
        for name, g in reg_grads.items():
            grads[name] = grads[name] + g
        return data_loss + reg_loss, grads
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels (N,) as integers."""
        # BEGIN SOLUTION
        return np.argmax(self.loss(X), axis=1)
        # END SOLUTION
