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
        raise NotImplementedError("TODO: ConvNet.__init__")

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Scores (N, num_classes) if y is None, else ``(loss, grads)`` as in ``MLP.loss``.

        X: (N, C, H, W).
        """
        raise NotImplementedError("TODO: ConvNet.loss")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels (N,) as integers."""
        raise NotImplementedError("TODO: ConvNet.predict")
