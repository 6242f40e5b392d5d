"""Part 1: export the trained Assignment 2 model to TorchScript and ONNX.

Run it once before starting the app:

    python export.py                      # writes model.pt and model.onnx beside it
    python export.py --checkpoint my.pt --out-dir exported/

Both exported files hold the computation and the weights: they run without ``models.py``
(TorchScript with ``torch.jit.load``, ONNX with onnxruntime). Their input is a float32
batch of shape (N, 1, 8, 8) for any N >= 1, their output the logits (N, 10).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from models import MODEL_CLASSES
from torch import nn

HERE = Path(__file__).resolve().parent


def load_eager(path: str | Path = HERE / "digits_cnn.pt") -> nn.Module:
    """The model of an Assignment 2 checkpoint (``{"model", "config", "state_dict"}``),
    rebuilt with the class ``MODEL_CLASSES[checkpoint["model"]]`` of ``models.py`` and
    its config, with the saved weights, on the CPU, in eval mode.

    Load with ``torch.load(path, map_location="cpu", weights_only=True)``.

    Raises:
        ValueError: the checkpoint names a model class that ``models.py`` does not have.
    """
    raise NotImplementedError("TODO: load_eager")


def export_torchscript(model: nn.Module, path: str | Path) -> None:
    """Save ``model`` (in eval mode) as TorchScript at ``path`` (``torch.jit.script`` or
    ``torch.jit.trace``, then ``.save``): ``torch.jit.load(path)`` gives a module that
    maps (N, 1, 8, 8) float32 to (N, 10) logits for any N, as ``model`` does."""
    raise NotImplementedError("TODO: export_torchscript")


def export_onnx(model: nn.Module, path: str | Path) -> None:
    """Save ``model`` (in eval mode) as ONNX at ``path``: one input, float32 of shape
    (N, 1, 8, 8) with N dynamic (``dynamic_axes`` or ``dynamic_shapes``), one output, the
    logits (N, 10). onnxruntime must run it on a batch of any size."""
    raise NotImplementedError("TODO: export_onnx")


def main(argv: Sequence[str] | None = None) -> None:
    """``python export.py [--checkpoint PATH] [--out-dir DIR]``: load the checkpoint
    (default ``digits_cnn.pt`` beside this file) and write ``model.pt`` (TorchScript) and
    ``model.onnx`` into ``--out-dir`` (default: beside this file, created if missing)."""
    raise NotImplementedError("TODO: main")


if __name__ == "__main__":
    main()
