"""Part 4: optimizers, learning-rate schedules, the training loop and checkpoints.

The loss of every training and validation step is the mean softmax cross-entropy of the
model's scores (``torch.nn.functional.cross_entropy``), and the accuracy is the fraction
of samples whose highest score is the true class.

Checkpoint format (read again by later assignments, keep it exactly so): one file
written by ``torch.save`` holding a plain dict::

    {"model": "SmallCNN",          # the class name: "MLP" or "SmallCNN"
     "config": {...},              # model.config, the arguments the model was built with
     "state_dict": {...}}          # model.state_dict()

so ``models.<model>(**config)`` rebuilds the model and ``load_state_dict`` restores it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from models import MLP, SmallCNN
from torch import nn

MODEL_CLASSES: dict[str, type[nn.Module]] = {"MLP": MLP, "SmallCNN": SmallCNN}


def make_optimizer(
    model: nn.Module,
    name: str = "sgd",
    lr: float = 0.01,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """An optimizer over all of ``model.parameters()``.

    name: ``"sgd"``: ``torch.optim.SGD`` with ``lr``, ``momentum`` and ``weight_decay``;
        ``"adam"``: ``torch.optim.Adam`` with ``lr`` and ``weight_decay`` (default betas
        (0.9, 0.999) and eps 1e-8; ``momentum`` is not used). Any other name raises
        ``ValueError``.
    """
    raise NotImplementedError("TODO: make_optimizer")


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str = "none",
    *,
    epochs: int = 1,
    steps_per_epoch: int = 1,
    step_size: int = 10,
    gamma: float = 0.1,
    max_lr: float = 0.1,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A learning-rate schedule for ``optimizer``.

    name: ``"none"``: returns None (constant learning rate);
        ``"step"``: ``StepLR(optimizer, step_size, gamma)``, stepped once per epoch: the
        rate of epoch e is ``lr * gamma ** (e // step_size)``;
        ``"onecycle"``: ``OneCycleLR(optimizer, max_lr, total_steps=epochs *
        steps_per_epoch)`` with torch's defaults otherwise (30 % warm-up, cosine
        annealing, start at max_lr / 25, end at max_lr / 25 / 1e4), stepped after every
        batch. Any other name raises ``ValueError``.
    """
    raise NotImplementedError("TODO: make_scheduler")


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, int]:
    """One optimization step on the batch ``(x, y)``, the model in training mode.

    Clears the old gradients, computes the mean cross-entropy of ``model(x)`` against the
    labels ``y`` (int64, shape (N,)), backpropagates and takes one optimizer step.
    Returns ``(loss, correct)``: the loss before the step as a Python float and the number
    of samples of the batch whose highest score (in that same forward pass) is ``y``.
    """
    raise NotImplementedError("TODO: train_step")


def evaluate(
    model: nn.Module, loader: torch.utils.data.DataLoader, device: str = "cpu"
) -> tuple[float, float]:
    """``(loss, accuracy)`` of ``model`` over every sample of ``loader``, in eval mode and
    without gradients: the mean cross-entropy over all samples (not the mean of the batch
    means: a smaller last batch counts less) and the fraction of correct predictions.
    Batches are moved to ``device`` (where the model is). Leaves the model in eval mode.
    """
    raise NotImplementedError("TODO: evaluate")


def fit(
    model: nn.Module,
    train_loader: torch.utils.data.DataLoader,
    val_loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train for ``epochs`` epochs with validation after each one.

    Starts with ``torch.manual_seed(seed)`` (dropout masks and any other draw from torch's
    global generator then repeat from run to run) and ``model.to(device)`` (parameters
    keep their identity, so an optimizer built before still updates them). Each epoch:
    :func:`train_step` on every batch of ``train_loader`` (moved to ``device``), then
    :func:`evaluate` on ``val_loader``. A ``OneCycleLR`` scheduler is stepped after every
    batch, any other scheduler once after each epoch.

    Returns the history, a dict of lists with one float per epoch:
    ``"train_loss"`` (mean over the epoch's samples of the loss before each step),
    ``"train_acc"`` (fraction of the epoch's samples predicted right in those steps),
    ``"val_loss"``, ``"val_acc"`` (from :func:`evaluate` after the epoch) and ``"lr"``
    (the learning rate of the optimizer's first parameter group at the start of the epoch).
    """
    raise NotImplementedError("TODO: fit")


def save_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Write ``model`` to ``path`` in the checkpoint format above (``torch.save`` of
    ``{"model": class name, "config": model.config, "state_dict": model.state_dict()}``)."""
    raise NotImplementedError("TODO: save_checkpoint")


def load_checkpoint(path: str | Path, device: str = "cpu") -> nn.Module:
    """The model saved at ``path`` by :func:`save_checkpoint`, rebuilt from its class
    name and config, with its saved parameters and buffers, on ``device`` (a checkpoint
    written from CUDA loads on a CPU-only machine), in eval mode.

    Load with ``torch.load(path, map_location=device, weights_only=True)``: never unpickle
    arbitrary objects from a file.
    """
    raise NotImplementedError("TODO: load_checkpoint")
