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
    # BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32)).numpy()
    # END SOLUTION


def metrics(s: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``{"test_accuracy": share of argmax(s) == y, "test_loss": mean cross-entropy}``."""
    # BEGIN SOLUTION
    s = np.asarray(s, np.float64)
    logp = s - s.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return {"test_accuracy": float((s.argmax(1) == y).mean()),
            "test_loss": float(-logp[np.arange(len(y)), y].mean())}
    # END SOLUTION


def main() -> None:
    """Load the model and the test part, write metrics.json."""
    # BEGIN SOLUTION
    hidden = int(yaml.safe_load(Path("params.yaml").read_text())["train"]["hidden"])
    model = build_model(hidden)
    model.load_state_dict(torch.load(MODEL, weights_only=True))
    data = np.load("data/prepared/test.npz")
    METRICS.write_text(json.dumps(metrics(scores(model, data["X"]), data["y"]), indent=2) + "\n")
    # END SOLUTION


if __name__ == "__main__":
    main()
