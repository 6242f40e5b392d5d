"""Landmark detection with heatmaps, the training loop, and prediction."""

from __future__ import annotations

import torch
from losses import seg_loss
from torch import nn


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """Landmark positions from heatmaps of logits (N, K, H, W): ``(N, K, 2)``.

    For each map, ``p = softmax`` over all its H*W pixels, and the position is the
    expected pixel coordinate under ``p``::

        row = sum_{i,j} p[i, j] * i,     col = sum_{i,j} p[i, j] * j

    (the centre of pixel (i, j) is (i, j), as in ``phantoms.py``). Differentiable, unlike
    an argmax; the result has the dtype of ``heatmaps``.
    """
    raise NotImplementedError("TODO: soft_argmax")


def landmark_loss(heatmaps: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Mean over images and landmarks of the squared Euclidean distance (in pixels^2)
    between ``soft_argmax(heatmaps)`` and ``landmarks`` (N, K, 2) as (row, col).
    A 0-d tensor of the dtype of ``heatmaps``."""
    raise NotImplementedError("TODO: landmark_loss")


def train(
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    landmarks: torch.Tensor,
    *,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 3e-3,
    landmark_weight: float = 0.01,
    seed: int = 0,
) -> list[float]:
    """Train a ``SegLandmarkNet``-like ``model`` (``model(x) -> (seg_logits, heatmaps)``)
    in place with Adam (learning rate ``lr``, PyTorch's other defaults) for ``steps``
    steps, and return the list of the ``steps`` training losses (Python floats).

    images (N, 1, H, W) float32, masks (N, H, W) int64, landmarks (N, K, 2) float32.
    Each step takes a mini-batch of ``batch_size`` images (all of them if N is
    smaller): the rows are visited in a random order, drawn afresh for every pass over
    the data from ``torch.Generator().manual_seed(seed)`` (so the same seed gives the
    same run), the last batch of a pass may be smaller. The loss of a step is::

        seg_loss(seg_logits, masks) + landmark_weight * landmark_loss(heatmaps, landmarks)

    The model is in training mode while it trains and is left in evaluation mode
    (``model.eval()``) when ``train`` returns.
    """
    raise NotImplementedError("TODO: train")


def predict(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks and landmarks predicted by ``model`` for ``images`` (N, 1, H, W).

    Runs the model in evaluation mode without building a graph (``torch.no_grad()``)
    and returns ``(masks, landmarks)``: masks int64 (N, H, W), the class of highest score
    at every pixel; landmarks float32 (N, K, 2), ``soft_argmax`` of the heatmaps.
    """
    raise NotImplementedError("TODO: predict")
