"""Part 1: custom autograd functions with hand-written backward passes.

Each class subclasses :class:`torch.autograd.Function`: ``forward`` computes the output
from plain tensor operations (no autograd needed inside it) and saves what the backward
pass needs with ``ctx.save_for_backward``; ``backward`` receives the gradient of the
loss with respect to the output and returns one gradient per input of ``forward``
(``None`` for inputs that need none). Call them through ``.apply`` or the small wrappers
at the bottom of this file; never call ``forward`` directly.

Every function works for float32 and float64 inputs and keeps the input's dtype.
"""

from __future__ import annotations

from typing import Any

import torch


class SigmoidFunction(torch.autograd.Function):
    """Elementwise logistic sigmoid ``s = 1 / (1 + exp(-x))``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        """x: a tensor of any shape. Returns ``s`` of the same shape and dtype.

        Must not overflow for large ``|x|`` (no ``inf`` or ``nan`` for x = +-1000).
        Saves the output ``s``: the derivative is ``s * (1 - s)``.
        """
        raise NotImplementedError("TODO: SigmoidFunction.forward")

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
        """grad_out: dL/ds, the shape of ``s``. Returns dL/dx = grad_out * s * (1 - s)."""
        raise NotImplementedError("TODO: SigmoidFunction.backward")


class LinearFunction(torch.autograd.Function):
    """Affine map ``y = x W^T + b`` (the convention of ``torch.nn.Linear``)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """x: (N, D_in); weight: (D_out, D_in); bias: (D_out,) or None (no bias).

        Returns y of shape (N, D_out): ``y = x @ weight.T + bias``.
        """
        raise NotImplementedError("TODO: LinearFunction.forward")

    @staticmethod
    def backward(
        ctx: Any, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """grad_out: dL/dy of shape (N, D_out). Returns ``(dx, dweight, dbias)``, each
        the shape of its input: ``dx = grad_out W``, ``dweight = grad_out^T x``,
        ``dbias = sum of grad_out over the batch`` (``None`` when bias was None)."""
        raise NotImplementedError("TODO: LinearFunction.backward")


class CrossEntropyFunction(torch.autograd.Function):
    """Softmax cross-entropy averaged over the batch.

    For scores S (N, C) and integer labels y (N,):
    ``L = -(1/N) sum_i log softmax(S_i)[y_i]``.
    """

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """scores: (N, C) float; labels: (N,) int64 in [0, C). Returns a 0-d tensor of
        the dtype of ``scores``. Numerically stable: subtract each row's maximum before
        exponentiating (finite for scores of size 1000 in float32)."""
        raise NotImplementedError("TODO: CrossEntropyFunction.forward")

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        """grad_out: dL_total/dL, a 0-d tensor. Returns ``(dscores, None)`` with
        ``dscores = grad_out * (softmax(S) - onehot(y)) / N`` (no gradient for labels)."""
        raise NotImplementedError("TODO: CrossEntropyFunction.backward")


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``SigmoidFunction.apply(x)``."""
    return SigmoidFunction.apply(x)  # type: ignore[no-any-return]


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``LinearFunction.apply(x, weight, bias)``."""
    return LinearFunction.apply(x, weight, bias)  # type: ignore[no-any-return]


def cross_entropy(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``CrossEntropyFunction.apply(scores, labels)``."""
    return CrossEntropyFunction.apply(scores, labels)  # type: ignore[no-any-return]
