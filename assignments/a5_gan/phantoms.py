"""Synthetic cardiac MR short-axis phantoms (support file: you do not need to edit it).

A short-axis slice through the heart shows the left-ventricle (LV) blood pool as a bright
disk, surrounded by the dark ring of the LV myocardium, with the right ventricle (RV)
blood pool as a bright crescent wrapped around one side of it, all inside the body's
soft tissue. :func:`make_phantoms` draws such images with random pose (position and
orientation of the RV), random size, random intensities, a smooth intensity bias
(coil shading) and Rician noise, together with exact segmentation masks and landmarks.

Everything is numpy, vectorized over the batch, and deterministic given the seed (or the
``numpy.random.Generator``): a few hundred 64x64 images take a few tens of milliseconds.
This file is self-contained (numpy only) so that later assignments can ship the very
same file.

Conventions:

- images: float32 ``(N, 1, H, W)``, intensities roughly in [0, 1.3];
- masks: int64 ``(N, H, W)`` with the class labels of :data:`CLASSES`
  (0 background, 1 LV blood pool, 2 LV myocardium, 3 RV blood pool);
  :func:`one_hot` turns them into float32 ``(N, C, H, W)``;
- landmarks: float32 ``(N, K, 2)`` in pixel coordinates ``(row, col)``, the centre of
  pixel ``(i, j)`` being ``(i, j)``; the K = 3 landmarks of :data:`LANDMARKS` are the LV
  centre and the two RV insertion points (where the RV wall meets the LV epicardium),
  the first one clockwise from the RV, the second one counter-clockwise, as seen on the
  image with rows going down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("background", "lv_blood_pool", "lv_myocardium", "rv_blood_pool")
LANDMARKS = ("lv_centre", "rv_insertion_1", "rv_insertion_2")
NUM_CLASSES = len(CLASSES)
NUM_LANDMARKS = len(LANDMARKS)


@dataclass(frozen=True)
class Phantoms:
    """A batch of phantoms: ``images`` float32 (N, 1, H, W), ``masks`` int64 (N, H, W),
    ``landmarks`` float32 (N, 3, 2) as (row, col)."""

    images: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | slice | np.ndarray) -> Phantoms:
        """A sub-batch: ``phantoms[:10]``, ``phantoms[idx]``."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Phantoms(self.images[index], self.masks[index], self.landmarks[index])


def _smooth_inside(dist: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Partial-volume membership of a disk: 1 inside, 0 outside, a ramp one pixel wide."""
    return np.clip(radius - dist + 0.5, 0.0, 1.0)


def make_phantoms(
    n: int,
    size: int | tuple[int, int] = 48,
    *,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    noise: float = 0.06,
    bias: float = 0.3,
) -> Phantoms:
    """Draw ``n`` random short-axis phantoms of ``size`` pixels (an int or (H, W)).

    Randomness comes from ``rng`` if given, else from ``np.random.default_rng(seed)``:
    the same seed gives the same phantoms. ``noise`` is the standard deviation of the
    Rician noise, ``bias`` the largest relative change of the linear intensity bias
    across the image. The heart scales with ``min(H, W)``; sizes from 24 pixels up work.
    """
    if rng is None:
        rng = np.random.default_rng(seed)
    h, w = (size, size) if isinstance(size, int) else size
    s = float(min(h, w))
    f32 = np.float32

    def draw(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, (n, 1, 1))

    # pose and size of the heart (pixels)
    cr = draw(0.42, 0.58) * h
    cc = draw(0.42, 0.58) * w
    r_lv = draw(0.09, 0.15) * s
    r_epi = r_lv + np.maximum(draw(0.045, 0.07) * s, 1.5)
    r_rv = r_epi * draw(0.85, 1.15)
    theta = draw(0.0, 2.0 * np.pi)  # direction from the LV centre to the RV centre
    d = r_epi + draw(0.25, 0.55) * r_rv  # distance between the two centres
    rv_r, rv_c = cr + d * np.sin(theta), cc + d * np.cos(theta)
    # the body: an ellipse around the heart
    body_r, body_c = draw(0.47, 0.53) * h, draw(0.47, 0.53) * w
    body_a, body_b = draw(0.40, 0.47) * h, draw(0.40, 0.47) * w

    rows = np.arange(h, dtype=np.float64)[None, :, None]
    cols = np.arange(w, dtype=np.float64)[None, None, :]
    dist_lv = np.hypot(rows - cr, cols - cc)
    dist_rv = np.hypot(rows - rv_r, cols - rv_c)
    body = np.hypot((rows - body_r) / body_a, (cols - body_c) / body_b)

    masks = np.zeros((n, h, w), np.int64)
    rv = (dist_rv < r_rv) & (dist_lv >= r_epi)
    masks[rv] = 3
    masks[dist_lv < r_epi] = 2
    masks[dist_lv < r_lv] = 1

    # intensities: partial-volume memberships times random tissue intensities
    in_epi = _smooth_inside(dist_lv, r_epi)
    in_lv = _smooth_inside(dist_lv, r_lv)
    in_rv = _smooth_inside(dist_rv, r_rv) * (1.0 - in_epi)
    in_body = np.clip((1.0 - body) * s * 0.5 + 0.5, 0.0, 1.0)
    blood, myo = draw(0.8, 1.0), draw(0.2, 0.35)
    rv_blood, tissue, air = blood * draw(0.85, 1.0), draw(0.4, 0.55), 0.02
    img = air + (tissue - air) * in_body
    img = img * (1.0 - in_epi - in_rv) + myo * (in_epi - in_lv) + blood * in_lv + rv_blood * in_rv
    # smooth multiplicative bias along a random direction, then Rician noise
    phi = draw(0.0, 2.0 * np.pi)
    ramp = ((rows / max(h - 1, 1) - 0.5) * np.sin(phi) + (cols / max(w - 1, 1) - 0.5) * np.cos(phi))
    img = img * (1.0 + bias * draw(0.0, 1.0) * ramp * 2.0 / np.sqrt(2.0))
    n1 = rng.standard_normal((n, h, w)) * noise
    n2 = rng.standard_normal((n, h, w)) * noise
    img = np.sqrt((img + n1) ** 2 + n2**2)

    # landmarks: the LV centre and the two intersections of the epicardial and RV circles
    cos_phi = (r_epi**2 + d**2 - r_rv**2) / (2.0 * r_epi * d)
    half = np.arccos(np.clip(cos_phi, -1.0, 1.0))
    angles = np.concatenate([theta - half, theta + half], axis=1)  # (n, 2, 1)
    ins_r = cr[:, :, 0] + r_epi[:, :, 0] * np.sin(angles[:, :, 0])
    ins_c = cc[:, :, 0] + r_epi[:, :, 0] * np.cos(angles[:, :, 0])
    landmarks = np.stack(
        [np.concatenate([cr[:, :, 0], ins_r], axis=1), np.concatenate([cc[:, :, 0], ins_c], axis=1)],
        axis=-1,
    )
    return Phantoms(img[:, None].astype(f32), masks, landmarks.astype(f32))


def one_hot(masks: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Integer masks ``(N, H, W)`` -> float32 one-hot ``(N, num_classes, H, W)``."""
    masks = np.asarray(masks)
    return (masks[:, None] == np.arange(num_classes)[None, :, None, None]).astype(np.float32)


def dice_per_class(
    pred: np.ndarray, target: np.ndarray, num_classes: int = NUM_CLASSES
) -> np.ndarray:
    """Hard Dice of integer masks, ``(N, num_classes)``: ``2|P & T| / (|P| + |T|)`` per
    image and class, 1.0 where the class is absent from both."""
    p, t = one_hot(pred, num_classes), one_hot(target, num_classes)
    inter = (p * t).sum(axis=(2, 3))
    total = p.sum(axis=(2, 3)) + t.sum(axis=(2, 3))
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1e-12), 1.0)
