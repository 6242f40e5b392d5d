"""Stage `evaluate`: score the trained model on the test part.

Run by DVC as ``python evaluate.py`` (see dvc.yaml); reads ``models/model.pt``,
``data/prepared/test.npz`` and ``train.hidden`` of params.yaml, writes ``metrics.json``:
``{"test_accuracy": ..., "test_loss": ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from train import MODEL, build_model

METRICS = Path("metrics.json")


def scores(model: nn.Module, X: np.ndarray) -> np.ndarray:
    """The model's raw scores (N, 10) for the images ``X`` (N, 64), in eval mode, without
    gradients."""
    raise NotImplementedError("TODO: scores")


def metrics(s: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``{"test_accuracy": share of argmax(s) == y, "test_loss": mean cross-entropy}``."""
    raise NotImplementedError("TODO: metrics")


def main() -> None:
    """Load the model and the test part, write metrics.json."""
    raise NotImplementedError("TODO: main")


if __name__ == "__main__":
    main()
