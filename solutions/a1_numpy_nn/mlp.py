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
        # BEGIN SOLUTION
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if len(layer_sizes) < 2:
            raise ValueError(f"layer_sizes needs at least [D, C], got {layer_sizes!r}")
        self.layer_sizes = list(layer_sizes)
        self.activation = activation
        self.reg = reg
        self.num_layers = len(layer_sizes) - 1
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for i, (fan_in, fan_out) in enumerate(pairwise(layer_sizes), start=1):
            scale = 1.0 / np.sqrt(fan_in) if weight_scale is None else weight_scale
            self.params[f"W{i}"] = scale * rng.standard_normal((fan_in, fan_out))
            self.params[f"b{i}"] = np.zeros(fan_out)
        # END SOLUTION

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Class scores, or the loss and its gradients.

        X: (N, D). If y is None, returns the scores (N, C) (before softmax).
        Otherwise returns ``(loss, grads)``: loss is the batch-mean cross-entropy plus
        the L2 penalty on the weights, and grads is a dict with the keys and shapes of
        ``self.params``.
        """
        # BEGIN SOLUTION
        act_forward, act_backward = ACTIVATIONS[self.activation]
        caches = []
        h = X
        for i in range(1, self.num_layers):
            h, affine_cache = affine_forward(h, self.params[f"W{i}"], self.params[f"b{i}"])
            h, act_cache = act_forward(h)
            caches.append((affine_cache, act_cache))
        last = self.num_layers
        scores, last_cache = affine_forward(h, self.params[f"W{last}"], self.params[f"b{last}"])
        if y is None:
            return scores

        data_loss, dscores = softmax_cross_entropy(scores, y)
        # Regularize weight matrices only: penalizing biases buys nothing against overfitting.
        weights = {k: v for k, v in self.params.items() if k.startswith("W")}
        reg_loss, reg_grads = l2_regularization(weights, self.reg)

        grads: dict[str, np.ndarray] = {}
        dh, grads[f"W{last}"], grads[f"b{last}"] = affine_backward(dscores, last_cache)
        for i in range(self.num_layers - 1, 0, -1):
            affine_cache, act_cache = caches[i - 1]
            dh = act_backward(dh, act_cache)
            dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dh, affine_cache)
        for name, g in reg_grads.items():
            grads[name] = grads[name] + g
        return data_loss + reg_loss, grads
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels (N,) as integers: the argmax of the scores."""
        # BEGIN SOLUTION
        return np.argmax(self.loss(X), axis=1)
        # END SOLUTION
