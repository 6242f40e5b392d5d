"""Segmentation losses: soft Dice, focal / cross-entropy, their combination, and yours.

Shapes: ``logits`` and ``probs`` are ``(N, C, H, W)`` floating tensors, ``masks`` are
``(N, H, W)`` int64 tensors of class labels in ``[0, C)``, ``target`` is the one-hot
``(N, C, H, W)`` form of masks. Every loss returns a 0-d tensor of the dtype of its
floating input, differentiable with respect to that input (no ``.item()``, ``.detach()``,
``argmax`` or thresholding on the way), and never modifies its inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot(masks: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer masks ``(N, H, W)`` -> one-hot ``(N, num_classes, H, W)`` of ``dtype``."""
    return F.one_hot(masks.long(), num_classes).permute(0, 3, 1, 2).to(dtype)


def soft_dice(probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Soft Dice coefficient of every image and class, shape ``(N, C)``::

        dice[n, c] = (2 * sum_hw p t + eps) / (sum_hw p + sum_hw t + eps)

    with ``p = probs[n, c]`` and ``t = target[n, c]`` (any values, typically in [0, 1]).
    1 for a perfect prediction (``probs == target``), also for a class absent from both.
    """
    # BEGIN SOLUTION
    inter = (probs * target).sum(dim=(2, 3))
    total = probs.sum(dim=(2, 3)) + target.sum(dim=(2, 3))
    return (2.0 * inter + eps) / (total + eps)
    # END SOLUTION


def dice_loss(logits: torch.Tensor, masks: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``1 - mean soft Dice`` of ``softmax(logits)`` (over the channels) against the
    one-hot masks, the mean taken over the images and the **foreground** classes
    ``1 .. C-1`` (class 0, the background, is left out)."""
    # BEGIN SOLUTION
    probs = torch.softmax(logits, dim=1)
    target = one_hot(masks, logits.shape[1], logits.dtype)
    return 1.0 - soft_dice(probs, target, eps)[:, 1:].mean()
    # END SOLUTION


def focal_loss(logits: torch.Tensor, masks: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Multi-class focal loss (Lin et al. 2017), averaged over all pixels of the batch::

        loss = mean_{n,h,w} -(1 - p_t)**gamma * log(p_t)

    where ``p_t = softmax(logits)[n, masks[n, h, w], h, w]`` is the probability given to
    the true class. ``gamma = 0`` is the cross-entropy. Compute ``log(p_t)`` with
    ``log_softmax``: ``log(softmax(...))`` is ``-inf`` once a probability underflows.
    """
    # BEGIN SOLUTION
    logp = F.log_softmax(logits, dim=1)
    logp_t = logp.gather(1, masks.long()[:, None]).squeeze(1)
    p_t = logp_t.exp()
    return (-((1.0 - p_t) ** gamma) * logp_t).mean()
    # END SOLUTION


def seg_loss(
    logits: torch.Tensor, masks: torch.Tensor, dice_weight: float = 0.5, gamma: float = 0.0
) -> torch.Tensor:
    """``(1 - dice_weight) * focal_loss(logits, masks, gamma) + dice_weight *
    dice_loss(logits, masks)``: with the default ``gamma = 0`` the usual
    cross-entropy + Dice combination."""
    # BEGIN SOLUTION
    return (1.0 - dice_weight) * focal_loss(logits, masks, gamma) + dice_weight * dice_loss(
        logits, masks
    )
    # END SOLUTION


def my_loss(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Your own segmentation loss. Design it as you like, within this contract:

    - ``probs`` (N, C, H, W) holds per-pixel class probabilities (each in [0, 1], summing
      to 1 over the channels) and ``target`` (N, C, H, W) a one-hot mask, both of the same
      floating dtype, for any N >= 1, C >= 2, H, W >= 1;
    - returns a 0-d tensor of that dtype, finite, ``>= 0``;
    - ``0`` (up to 1e-6) when ``probs == target``, and positive when the prediction is
      wrong somewhere (some pixel gives its true class a probability below 0.5); finite
      also for probabilities of exactly 0 or 1;
    - decreases (does not increase) along the straight path from any ``probs`` to the
      target: ``my_loss((1 - a) probs + a target, target)`` is non-increasing in ``a``;
    - is the **mean over the batch** of a loss per image: ``my_loss`` of a batch equals
      the average of ``my_loss`` of its images taken one at a time;
    - is differentiable with respect to ``probs`` (autograd gives the true gradient,
      finite everywhere in (0, 1)), and does not modify its inputs.

    Say in a comment what your loss is and why you chose it.
    """
    # BEGIN SOLUTION
    # Tversky loss (Salehi et al. 2017), alpha = 0.3 on false positives and beta = 0.7 on
    # false negatives: small structures (the myocardium ring) are under-segmented more
    # often than over-segmented, so missing pixels cost more. Averaged over the classes of
    # each image, then over the images.
    alpha, beta, eps = 0.3, 0.7, 1e-6
    tp = (probs * target).sum(dim=(2, 3))
    fp = (probs * (1.0 - target)).sum(dim=(2, 3))
    fn = ((1.0 - probs) * target).sum(dim=(2, 3))
    tversky = (tp + eps) / (tp + alpha * fp + beta * fn + eps)
    return (1.0 - tversky).mean()
    # END SOLUTION
