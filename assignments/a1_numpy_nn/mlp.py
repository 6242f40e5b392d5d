"""A fully connected network of any depth with a softmax output, built from ``layers``."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
from layers import (
    affine_backward,
    affine_forward,
    l2_regularization,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softmax_cross_entropy,
)

ACTIVATIONS = {
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "relu": (relu_forward, relu_backward),
}


class MLP:
    """``affine - act - affine - act - ... - affine - softmax`` classifier.

    layer_sizes: ``[D, H1, ..., C]``: input size, hidden sizes, number of classes
        (at least two entries; ``[D, C]`` is softmax regression).
    activation: ``"sigmoid"`` or ``"relu"`` for every hidden layer; anything else raises
        ``ValueError``.
    reg: L2 regularization strength, applied to the weight matrices only (never biases),
        with the convention ``0.5 * reg * sum(W ** 2)``.
    seed: seed of ``np.random.default_rng`` used for the initial weights.
    weight_scale: weights are drawn as ``weight_scale * N(0, 1)``. ``None`` (default)
        means ``1 / sqrt(fan_in)`` for each layer, which keeps the pre-activations of
        order one whatever the width; ``weight_scale=1.0`` gives the standard normal
        initialization of the original course.

    Parameters live in ``self.params``: ``"W1"`` (D, H1), ``"b1"`` (H1,), ...,
    ``"WL"`` (H_{L-1}, C), ``"bL"`` (C,), float64; biases start at zero.
    """

    def __init__(
        self,
        layer_sizes: list[int],
        activation: str = "sigmoid",
        reg: float = 0.0,
        seed: int = 0,
        weight_scale: float | None = None,
    ) -> None:
        raise NotImplementedError("TODO: MLP.__init__")

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Class scores, or the loss and its gradients.

        X: (N, D). If y is None, returns the scores (N, C) (before softmax).
        Otherwise returns ``(loss, grads)``: loss is the batch-mean cross-entropy plus
        the L2 penalty on the weights, and grads is a dict with the keys and shapes of
        ``self.params``.
        """
        raise NotImplementedError("TODO: MLP.loss")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels (N,) as integers: the argmax of the scores."""
        raise NotImplementedError("TODO: MLP.predict")
