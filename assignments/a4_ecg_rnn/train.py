"""The per-time-point loss, the training loop, prediction and the trigger decoder."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def bce_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None,
             pos_weight: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy of per-time-point logits (N, T) against targets (N, T) in
    [0, 1], averaged over the real (non-padded) time points only::

        l[i, t] = -(pos_weight * y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))
        loss    = sum over t with mask[i, t] of l[i, t] / (number of such t)

    ``mask`` bool (N, T), None meaning every time point is real. ``pos_weight`` weighs
    the positive (trigger) terms. Computed from the logits in a numerically stable way
    (no ``log(sigmoid(z))``, which gives -inf for z = -200 in float32). Returns a 0-d
    tensor of the logits' dtype; the inputs are left unchanged.

    ``targets`` and ``mask`` must have the shape of ``logits``, else ``ValueError``: no
    broadcasting (a model output of shape (N, T, 1) against targets (N, T) would broadcast
    to an (N, T, T) loss that is silently wrong).
    """
    raise NotImplementedError("TODO: bce_loss")


def train(model: nn.Module, signals: torch.Tensor, targets: torch.Tensor,
          mask: torch.Tensor | None = None, *, steps: int = 200, batch_size: int = 16,
          lr: float = 3e-3, pos_weight: float = 1.0, seed: int = 0) -> list[float]:
    """Train ``model`` (``model(x, mask) -> logits (N, T)``) in place with Adam (learning
    rate ``lr``, PyTorch's other defaults) for ``steps`` steps and return the list of the
    ``steps`` training losses (Python floats).

    signals (N, T, C) float32, targets (N, T) float32, mask (N, T) bool or None. Each step
    takes a mini-batch of ``batch_size`` records (all of them if N is smaller): the rows
    are visited in a random order, drawn afresh for every pass over the data from
    ``torch.Generator().manual_seed(seed)``; the last batch of a pass may be smaller. The
    loss of a step is ``bce_loss(model(x, mask), y, mask, pos_weight)`` on the batch (the
    model is called with the batch's mask, or None). The model is in training mode while
    it trains and is left in evaluation mode when ``train`` returns.
    """
    raise NotImplementedError("TODO: train")


def predict_proba(model: nn.Module, signals: torch.Tensor,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Trigger probabilities ``sigmoid(model(signals, mask))``, float32 (N, T), computed in
    evaluation mode without building a graph (``torch.no_grad()``); 0 at padded time
    points."""
    raise NotImplementedError("TODO: predict_proba")


def pick_peaks(probs: np.ndarray, threshold: float = 0.5,
               min_distance: int = 10) -> list[np.ndarray]:
    """Trigger sample indices from probabilities (N, T) (a numpy array), one int64 array
    per record, sorted ascending.

    Candidates are the local maxima at or above ``threshold``: ``p[t] >= threshold``,
    ``p[t] > p[t-1]`` and ``p[t] >= p[t+1]`` (at the ends only the existing neighbour is
    compared; a flat top counts at its first sample). Then non-maximum suppression with a
    refractory window: take the candidates by decreasing probability (ties: the earlier
    first) and keep one unless a kept one lies fewer than ``min_distance`` samples away.
    ``probs`` is left unchanged. ``probs`` must be 2-D (a single record ``p`` is
    ``p[None]``); any other rank raises ``ValueError``.
    """
    raise NotImplementedError("TODO: pick_peaks")
