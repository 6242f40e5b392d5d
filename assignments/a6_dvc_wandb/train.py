"""Stage `train`: train a small MLP on the prepared digits, track the run with wandb.

Run by DVC as ``python train.py`` (see dvc.yaml); reads the ``train`` section of
params.yaml and ``data/prepared/train.npz``, writes ``models/model.pt`` (the model's
``state_dict``) and ``plots/training.csv``, and logs the run to wandb (offline: the graders
set ``WANDB_MODE=offline``; so can you).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

MODEL = Path("models/model.pt")
PLOTS = Path("plots/training.csv")
PROJECT = "a6-digits"


def build_model(hidden: int) -> nn.Module:
    """``Linear(64, hidden) - ReLU - Linear(hidden, 10)`` as an ``nn.Sequential`` (raw
    scores, no softmax)."""
    raise NotImplementedError("TODO: build_model")


def train_epochs(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int,
                 lr: float, batch_size: int, seed: int) -> list[dict[str, float]]:
    """Adam(lr) on the mean cross-entropy, mini-batches of ``batch_size`` in an order
    shuffled each epoch by a ``torch.Generator`` seeded with ``seed``. Returns one dict per
    epoch: ``{"epoch": e (1-based), "train_loss": mean loss of the epoch's batches
    weighted by their sizes, "train_accuracy": share of the epoch's samples classified
    right before their step}``."""
    raise NotImplementedError("TODO: train_epochs")


def sample_images(X: np.ndarray, y: np.ndarray, n: int = 16) -> list[tuple[np.ndarray, str]]:
    """The first ``n`` training digits as ``(image, caption)``: the image uint8 of shape
    (8, 8) scaled to 0..255, the caption ``"label 3"``."""
    raise NotImplementedError("TODO: sample_images")


def main() -> None:
    """The stage: train, log to wandb, save the model and the plots file."""
    import wandb

    raise NotImplementedError("TODO: main")


if __name__ == "__main__":
    main()
