"""GAN losses: the non-saturating GAN of Goodfellow et al. (2014) and WGAN-GP (Gulrajani
et al. 2017).

Discriminator outputs are **logits** (real numbers, no sigmoid applied) for the
non-saturating GAN and **scores** for the WGAN critic. Every loss returns a 0-d tensor of
the dtype of its input, is finite for any finite input (also logits of +-1000), and never
modifies its inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN, discriminator side: the binary cross-entropy of calling real
    samples real (label 1) and fake samples fake (label 0)::

        L_D = mean_i -log sigmoid(real_logits[i]) + mean_j -log(1 - sigmoid(fake_logits[j]))

    Each term is a mean over its own batch (the two batches may have different sizes).
    ``-log sigmoid(x) = softplus(-x)`` and ``-log(1 - sigmoid(x)) = softplus(x)``: write it
    so that it stays finite for logits of any size.
    """
    raise NotImplementedError("TODO: discriminator_loss")


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: ``mean_j -log sigmoid(fake_logits[j])``.

    (The original minimax loss ``mean log(1 - sigmoid(fake))`` saturates: its gradient
    vanishes exactly when the discriminator wins, at the start of training.)
    """
    raise NotImplementedError("TODO: generator_loss")


def gradient_penalty(
    critic: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    lam: float = 10.0,
    eps: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """WGAN-GP's gradient penalty ``lam * mean_i (||grad_s critic(s_i)||_2 - 1)**2``.

    real, fake: batches of the same shape ``(N, ...)`` (points (N, 2) or images
    (N, 1, H, W)). The penalty is taken at the random interpolates
    ``s_i = eps_i * real_i + (1 - eps_i) * fake_i``, one ``eps_i`` per sample, drawn from
    U(0, 1) with ``torch.rand`` when ``eps`` is None, else the given tensor of shape (N,).
    The norm is the Euclidean norm of the whole gradient of sample i (over all its
    non-batch dimensions). ``critic(s)`` returns one score per sample, shape (N,);
    with ``labels`` (N,) it is called as ``critic(s, labels)``.

    The result must be differentiable with respect to the critic's parameters (the critic
    step minimizes it): build the gradient with ``torch.autograd.grad(...,
    create_graph=True)``.
    """
    raise NotImplementedError("TODO: gradient_penalty")


def critic_loss(
    critic: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    lam: float = 10.0,
    eps: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """WGAN-GP critic loss (the critic minimizes it)::

        L_C = mean critic(fake) - mean critic(real) + gradient_penalty(critic, real, fake)

    with ``lam``, ``eps`` and ``labels`` passed on to :func:`gradient_penalty`; with
    ``labels`` every critic call gets them (real and fake samples share the labels).
    """
    raise NotImplementedError("TODO: critic_loss")


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss: ``-mean critic(fake)``."""
    raise NotImplementedError("TODO: wgan_generator_loss")
