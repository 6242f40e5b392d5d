"""Generators and discriminators: small MLPs for 2-D points, DCGAN-style convolutional
networks for 32x32 phantoms. Each can be class-conditional.

The architectures inside are yours to choose (the graders only use the contract below),
with these rules:

- ``Generator``/``MLPGenerator`` keep ``self.latent_dim`` and ``self.num_classes``;
  ``forward(z, labels=None)`` maps latent codes ``z`` (N, latent_dim) to samples.
- ``Discriminator``/``MLPDiscriminator`` keep ``self.num_classes``;
  ``forward(x, labels=None)`` returns one logit (or critic score) per sample, shape (N,).
- With ``num_classes = C > 0`` the model is class-conditional and ``labels`` (int64, (N,),
  values 0..C-1) is required: the generator appends the one-hot code of the class to ``z``
  (or an equivalent learned embedding), the discriminator computes one score per class,
  shape (N, C), and returns the score of each sample's own class (``scores[i, labels[i]]``).
  With ``num_classes = 0`` labels are not used. A conditional model called without
  labels, with labels of another shape than (N,) or with a class outside 0..C-1 raises
  ``ValueError`` saying what it expected (:func:`check_labels`).
- No BatchNorm in the discriminators: WGAN-GP penalizes the gradient of each sample's
  score with respect to that sample alone, which batch statistics would mix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def check_labels(labels: torch.Tensor | None, n: int, num_classes: int) -> None:
    """For a conditional model (``num_classes > 0``): raise ``ValueError`` unless
    ``labels`` is given, of shape ``(n,)`` (one class per sample of the batch) and within
    ``0 .. num_classes - 1``; the message says what was expected and what came. Nothing to
    check for an unconditional model. Call it before using the labels: a missing label or
    a class out of range would otherwise fail deep inside ``one_hot``/``gather``, or a
    label array of another length be broadcast silently."""
    # BEGIN SOLUTION
    if num_classes == 0:
        return
    if labels is None:
        raise ValueError(f"this model is conditional ({num_classes} classes): pass labels (N,)")
    if tuple(labels.shape) != (n,):
        raise ValueError(f"labels must be ({n},), one class per sample, got shape {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must be classes 0..{num_classes - 1}, got "
                         f"{int(labels.min())}..{int(labels.max())}")
    # END SOLUTION


def _with_class(z: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """``z`` with the one-hot code of ``labels`` appended (``z`` itself when unconditional)."""
    # BEGIN SOLUTION
    check_labels(labels, len(z), num_classes)
    if num_classes == 0:
        return z
    return torch.cat([z, F.one_hot(labels.long(), num_classes).to(z.dtype)], dim=1)
    # END SOLUTION


def _pick(scores: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """Scores (N, max(C, 1)) -> (N,): each sample's own class (the only one when C = 0)."""
    # BEGIN SOLUTION
    check_labels(labels, len(scores), num_classes)
    if num_classes == 0:
        return scores[:, 0]
    return scores.gather(1, labels.long().reshape(-1, 1))[:, 0]
    # END SOLUTION


class MLPGenerator(nn.Module):
    """Generator of 2-D points: ``z`` (N, latent_dim) [+ labels (N,)] -> points (N, 2).

    The output is unbounded (no final activation): the points live in the plane.
    """

    def __init__(self, latent_dim: int = 2, num_classes: int = 0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        # BEGIN SOLUTION
        self.net = nn.Sequential(
            nn.Linear(latent_dim + num_classes, 64), nn.ReLU(),
            nn.Linear(64, 64), nn.ReLU(),
            nn.Linear(64, 2),
        )
        # END SOLUTION

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.net(_with_class(z, labels, self.num_classes))
        # END SOLUTION


class MLPDiscriminator(nn.Module):
    """Discriminator (or critic) of 2-D points: (N, 2) [+ labels (N,)] -> logits (N,)."""

    def __init__(self, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        # BEGIN SOLUTION
        self.net = nn.Sequential(
            nn.Linear(2, 64), nn.LeakyReLU(0.2),
            nn.Linear(64, 64), nn.LeakyReLU(0.2),
            nn.Linear(64, max(num_classes, 1)),
        )
        # END SOLUTION

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        return _pick(self.net(x), labels, self.num_classes)
        # END SOLUTION


class Generator(nn.Module):
    """DCGAN-style generator of phantoms: ``z`` (N, latent_dim) [+ labels (N,)] -> images
    (N, 1, 32, 32) with values in [-1, 1] (a final ``tanh``).

    Suggested architecture (``w = 16``): a linear layer to ``4w x 4 x 4``, BatchNorm,
    ReLU, then three stages that double the size (8, 16, 32): ``nn.Upsample(scale_factor=2)``
    and a 3x3 convolution (4w -> 2w -> w -> w/2 channels), BatchNorm, ReLU; finally a 3x3
    convolution to 1 channel and ``tanh``. (Upsampling + convolution avoids the
    checkerboard artifacts of ``ConvTranspose2d`` and trains more steadily in few steps.)
    """

    def __init__(self, latent_dim: int = 32, num_classes: int = 0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        # BEGIN SOLUTION
        w = 16
        self.width = w
        self.fc = nn.Linear(latent_dim + num_classes, 4 * w * 4 * 4)
        self.net = nn.Sequential(
            nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(4 * w, 2 * w, 3, padding=1),
            nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(2 * w, w, 3, padding=1),
            nn.BatchNorm2d(w), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(w, w // 2, 3, padding=1),
            nn.BatchNorm2d(w // 2), nn.ReLU(),
            nn.Conv2d(w // 2, 1, 3, padding=1),
        )
        # END SOLUTION

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        h = self.fc(_with_class(z, labels, self.num_classes))
        return torch.tanh(self.net(h.reshape(-1, 4 * self.width, 4, 4)))
        # END SOLUTION


class Discriminator(nn.Module):
    """DCGAN-style discriminator (or WGAN critic) of phantoms: images (N, 1, 32, 32)
    [+ labels (N,)] -> logits (N,).

    Suggested architecture (``w = 16``): three ``Conv2d(kernel 4, stride 2, padding 1)``
    (1 -> w -> 2w -> 4w channels, 32 -> 16 -> 8 -> 4 pixels) with LeakyReLU(0.2), then a
    linear layer to ``max(num_classes, 1)`` scores. No BatchNorm (see the module's notes).
    """

    def __init__(self, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        # BEGIN SOLUTION
        w = 16
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(4 * w * 4 * 4, max(num_classes, 1)),
        )
        # END SOLUTION

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        return _pick(self.net(x), labels, self.num_classes)
        # END SOLUTION
