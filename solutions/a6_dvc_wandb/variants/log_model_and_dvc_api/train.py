"""Stage `train`: train a small MLP on the prepared digits, track the run with wandb.

Run by DVC as ``python train.py`` (see dvc.yaml); reads the ``train`` section of
params.yaml and ``data/prepared/train.npz``, writes ``models/model.pt`` (the model's
``state_dict``) and ``plots/training.csv``, and logs the run to wandb (offline: the graders
set ``WANDB_MODE=offline``; so can you).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dvc.api
import numpy as np
import torch
from torch import nn

MODEL = Path("models/model.pt")
PLOTS = Path("plots/training.csv")
PROJECT = "a6-digits"


def build_model(hidden: int) -> nn.Module:
    """``Linear(64, hidden) - ReLU - Linear(hidden, 10)`` as an ``nn.Sequential`` (raw
    scores, no softmax)."""
    # BEGIN SOLUTION
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    # END SOLUTION


def train_epochs(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int,
                 lr: float, batch_size: int, seed: int) -> list[dict[str, float]]:
    """Adam(lr) on the mean cross-entropy, mini-batches of ``batch_size`` in an order
    shuffled each epoch by a ``torch.Generator`` seeded with ``seed``. Returns one dict per
    epoch: ``{"epoch": e (1-based), "train_loss": mean loss of the epoch's batches
    weighted by their sizes, "train_accuracy": share of the epoch's samples classified
    right before their step}``."""
    # BEGIN SOLUTION
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        total, correct, n = 0.0, 0, 0
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            scores = model(X[idx])
            loss = nn.functional.cross_entropy(scores, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((scores.argmax(1) == y[idx]).sum())
            n += len(idx)
        history.append({"epoch": epoch, "train_loss": total / n, "train_accuracy": correct / n})
    return history
    # END SOLUTION


def sample_images(X: np.ndarray, y: np.ndarray, n: int = 16) -> list[tuple[np.ndarray, str]]:
    """The first ``n`` training digits as ``(image, caption)``: the image uint8 of shape
    (8, 8) scaled to 0..255, the caption ``"label 3"``."""
    # BEGIN SOLUTION
    return [((X[i].reshape(8, 8) * 255).round().astype(np.uint8), f"label {int(y[i])}")
            for i in range(min(n, len(y)))]
    # END SOLUTION


def main() -> None:
    """The stage: train, log to wandb, save the model and the plots file."""
    import wandb

    # BEGIN SOLUTION
    params: dict[str, Any] = dvc.api.params_show(stages="train")["train"]
    data = np.load("data/prepared/train.npz")
    X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
    torch.manual_seed(int(params["seed"]))
    model = build_model(int(params["hidden"]))
    run = wandb.init(project=PROJECT, config=params, job_type="train")
    run.log({"samples": [wandb.Image(img, caption=c)
                         for img, c in sample_images(data["X"], data["y"])]}, commit=False)
    history = train_epochs(model, X, y, epochs=int(params["epochs"]), lr=float(params["lr"]),
                           batch_size=int(params["batch_size"]), seed=int(params["seed"]))
    for row in history:
        run.log(row)
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), MODEL)
    run.log_model(path=str(MODEL), name="digits-mlp")
    PLOTS.parent.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,train_loss,train_accuracy"]
    lines += [f"{h['epoch']},{h['train_loss']!r},{h['train_accuracy']!r}" for h in history]
    PLOTS.write_text("\n".join(lines) + "\n")
    run.finish()
    # END SOLUTION


if __name__ == "__main__":
    main()
