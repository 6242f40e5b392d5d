"""Part 3: a Dataset, a DataLoader and data augmentation written in torch.

Transforms are callables taking one image, a tensor of shape (C, H, W), and returning a
new tensor of the same shape and dtype. They never modify their input in place. All their
randomness comes from the ``torch.Generator`` they are given (``generator=None`` means
torch's global generator), so two transforms built with generators seeded alike produce
the same images in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

Transform = Callable[[torch.Tensor], torch.Tensor]


class RandomHorizontalFlip:
    """Mirror the image left-right (``img.flip(-1)``) with probability ``p``.

    Draws one number ``u = torch.rand((), generator=generator)`` per call and flips when
    ``u < p``: p = 0 never flips, p = 1 always flips.
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        self.p = p
        self.generator = generator

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("TODO: RandomHorizontalFlip.__call__")


class RandomShift:
    """Translate the image by a random whole number of pixels, filling with zeros.

    Draws ``dy`` and ``dx`` uniformly from ``-max_shift, ..., max_shift`` (each of the
    2 * max_shift + 1 values equally likely) and returns ``out`` with
    ``out[c, i, j] = img[c, i - dy, j - dx]`` where that pixel exists, else 0.
    (The same as padding by ``max_shift`` zeros and cropping a random H x W window.)
    """

    def __init__(self, max_shift: int = 1, generator: torch.Generator | None = None) -> None:
        self.max_shift = max_shift
        self.generator = generator

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("TODO: RandomShift.__call__")


class GaussianNoise:
    """Add independent Gaussian noise of standard deviation ``std`` to every pixel."""

    def __init__(self, std: float = 0.1, generator: torch.Generator | None = None) -> None:
        self.std = std
        self.generator = generator

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("TODO: GaussianNoise.__call__")


class Compose:
    """Apply ``transforms`` one after the other, in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("TODO: Compose.__call__")


class DigitsDataset(Dataset):
    """Images and labels held in memory.

    Args:
        images: float tensor (N, C, H, W).
        labels: int64 tensor (N,).
        transform: applied to each image when it is read (``None``: the image as stored).

    ``len(ds) == N``; ``ds[i]`` is ``(image, label)``: the image (C, H, W) after the
    transform and the label as a 0-d int64 tensor. Reading never changes the stored
    images.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, transform: Transform | None = None
    ) -> None:
        raise NotImplementedError("TODO: DigitsDataset.__init__")

    def __len__(self) -> int:
        raise NotImplementedError("TODO: DigitsDataset.__len__")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("TODO: DigitsDataset.__getitem__")


def make_loader(
    dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """A ``DataLoader`` over ``dataset`` in batches of ``batch_size`` (the last one may be
    smaller; no sample is dropped), in the main process (``num_workers=0``).

    With ``shuffle`` every pass visits the samples in a new random order drawn from a
    ``torch.Generator`` seeded with ``seed``: two loaders made with the same seed give the
    same batches; without ``shuffle`` the samples come in dataset order.
    """
    raise NotImplementedError("TODO: make_loader")
