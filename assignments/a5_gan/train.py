"""Training a GAN, sampling from it, and segmenting what it makes.

Images for the GAN live in [-1, 1] (the range of the generator's ``tanh``);
:func:`to_gan` and :func:`from_gan` convert between that range and the intensities of
``phantoms.py`` (about 0 to 1.3).
"""

from __future__ import annotations

import torch
from losses import critic_loss, discriminator_loss, generator_loss, wgan_generator_loss
from torch import nn

PHANTOM_SCALE = 0.65
"""Phantom intensity ``v`` is ``(x + 1) * PHANTOM_SCALE`` for a GAN image value ``x``."""


def to_gan(images: torch.Tensor) -> torch.Tensor:
    """Phantom intensities -> GAN range: ``clamp(images / PHANTOM_SCALE - 1, -1, 1)``."""
    return torch.clamp(images / PHANTOM_SCALE - 1.0, -1.0, 1.0)


def from_gan(x: torch.Tensor) -> torch.Tensor:
    """GAN range -> phantom intensities: ``(x + 1) * PHANTOM_SCALE``."""
    return (x + 1.0) * PHANTOM_SCALE


def train_step(
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    mode: str = "ns",
    lam: float = 10.0,
) -> tuple[float, float]:
    """One discriminator step, then one generator step; returns ``(d_loss, g_loss)`` as
    Python floats (the losses of the two steps).

    1. ``fake = G(z)`` (``G(z, labels)`` when ``labels`` is given; the discriminator then
       also gets ``labels`` on every call).
    2. Discriminator step: the loss on ``real`` and ``fake`` is ``discriminator_loss`` of
       the logits (``mode="ns"``) or ``critic_loss(D, real, fake, lam=lam)`` with random
       interpolates (``mode="wgan-gp"``); the fake images must not pass gradients to G
       here. Zero D's gradients, backpropagate, ``opt_d.step()``.
    3. Generator step, with the **updated** discriminator: ``generator_loss(D(fake))``
       (``"ns"``) or ``wgan_generator_loss(D(fake))`` (``"wgan-gp"``). Zero G's gradients,
       backpropagate, ``opt_g.step()``.

    Any other ``mode`` raises ``ValueError``. The models' train/eval mode is left as it is.
    """
    raise NotImplementedError("TODO: train_step")


def train_gan(
    G: nn.Module,
    D: nn.Module,
    data: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    steps: int = 200,
    batch_size: int = 64,
    lr: float = 2e-4,
    mode: str = "ns",
    lam: float = 10.0,
    seed: int = 0,
) -> list[tuple[float, float]]:
    """Train ``G`` and ``D`` in place for ``steps`` calls of :func:`train_step`; return the
    list of their ``(d_loss, g_loss)``.

    Optimizers: ``torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))`` for each model.
    All randomness comes from ``gen = torch.Generator().manual_seed(seed)`` (the same seed
    gives the same run from the same initial weights): each step draws the rows of its
    batch with replacement, ``idx = torch.randint(len(data), (batch_size,), generator=gen)``,
    then ``z = torch.randn(batch_size, G.latent_dim, generator=gen)``. With ``labels``
    (int64 (len(data),), the class of each row) the step is conditional on
    ``labels[idx]``. ``mode`` and ``lam`` go to :func:`train_step`.

    Both models are in training mode while training and in evaluation mode when
    ``train_gan`` returns.
    """
    raise NotImplementedError("TODO: train_gan")


def sample(G: nn.Module, n: int, *, seed: int = 0, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` samples of ``G`` in evaluation mode, without building a graph:
    ``G(z)`` (``G(z, labels)`` with labels (n,)) for
    ``z = torch.randn(n, G.latent_dim, generator=torch.Generator().manual_seed(seed))``
    (moved to the device of G's parameters)."""
    raise NotImplementedError("TODO: sample")


def segment(segmenter: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Segment GAN images (N, 1, H, W) in [-1, 1] with a U-Net trained on phantoms (your
    Assignment 3 model, or ``segmenter.load_segmenter()``): masks int64 (N, H, W).

    Convert the images back to phantom intensities with :func:`from_gan`, run the
    segmenter in evaluation mode without building a graph, and take at every pixel the
    class of highest score (the segmenter returns class scores (N, 4, H, W)).
    ``images`` is left unchanged.
    """
    raise NotImplementedError("TODO: segment")
