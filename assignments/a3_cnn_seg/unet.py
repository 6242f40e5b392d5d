"""A configurable U-Net, and the segmentation + landmark network built on it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from blocks import BLOCKS
from torch import nn


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with strided-convolution downsampling.

    in_channels: channels of the input images.
    out_channels: channels of the output (one logit map per class or per landmark).
    depth: number of downsampling steps D >= 1.
    width: channels ``c_0`` at full resolution; level k has ``c_k = width * 2**k``.
    upsample: ``"bilinear"`` (interpolation) or ``"transpose"`` (transposed convolution).
    block: ``"conv"``, ``"res"`` or ``"separable"``: the block class of ``blocks.BLOCKS``
        used everywhere below (written ``Block`` there).
    Anything else for ``upsample`` or ``block`` raises ``ValueError``.

    Architecture (submodule names are part of the contract)::

        inc      = Block(in_channels, c_0)                          full resolution
        down[k]  = Block(c_k, c_{k+1}, stride=2)       k = 0..D-1   halves H and W (ceil)
        up[k]    = nn.Identity()                                    "bilinear"
                   nn.ConvTranspose2d(c_{k+1}, c_k, 2, stride=2)    "transpose" (with bias)
        dec[k]   = Block(c_{k+1} + c_k, c_k)                        "bilinear"
                   Block(2 c_k, c_k)                                "transpose"
        head     = nn.Conv2d(c_0, out_channels, 1)                  with bias

    ``down``, ``up`` and ``dec`` are ``nn.ModuleList``s of length D. Forward: keep the
    output of ``inc`` and of every ``down[k]`` except the last as skips; then for
    ``k = D-1 .. 0``: bring the deeper map to the size of skip k (``"bilinear"``:
    ``F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)``;
    ``"transpose"``: ``up[k](h)`` cropped to the skip's size, keeping the top-left part),
    concatenate ``[upsampled, skip]`` along the channels (in this order) and apply
    ``dec[k]``. Finally ``head``. The output has shape ``(N, out_channels, H, W)`` for any
    input ``(N, in_channels, H, W)`` with ``H, W >= 1``: sizes need not be divisible by
    ``2**D``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 4,
        depth: int = 2,
        width: int = 8,
        upsample: str = "bilinear",
        block: str = "conv",
    ) -> None:
        super().__init__()
        raise NotImplementedError("TODO: UNet.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("TODO: UNet.forward")


class SegLandmarkNet(nn.Module):
    """Segmentation and landmark detection with one U-Net.

    ``self.unet = UNet(in_channels, num_classes + num_landmarks, depth, width, upsample,
    block)``. ``forward(x)`` returns ``(seg_logits, heatmaps)``: the first
    ``num_classes`` output channels (N, num_classes, H, W), the class scores of every
    pixel, and the last ``num_landmarks`` channels (N, num_landmarks, H, W), one heatmap
    of logits per landmark (see ``train.soft_argmax``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        num_landmarks: int = 3,
        depth: int = 2,
        width: int = 8,
        upsample: str = "bilinear",
        block: str = "conv",
    ) -> None:
        super().__init__()
        raise NotImplementedError("TODO: SegLandmarkNet.__init__")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("TODO: SegLandmarkNet.forward")
