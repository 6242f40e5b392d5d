"""A trained phantom segmenter (support file: you do not need to edit it).

The U-Net of Assignment 3 (``UNet(1, 4, depth=2, width=8)``, ConvBlocks, bilinear
upsampling: a copy of the reference solution's code), trained on 32x32 phantoms of
``phantoms.py`` by ``make_segmenter.py`` with fixed seeds; its weights are
``segmenter.safetensors`` beside this file. If your own Assignment 3 model works, you may
use it instead: :func:`train.segment` takes any model that maps images (N, 1, H, W) in
phantom intensities to class scores (N, 4, H, W) (0 background, 1 LV blood pool,
2 LV myocardium, 3 RV blood pool).

    from segmenter import load_segmenter
    net = load_segmenter()          # in evaluation mode
    scores = net(images)            # (N, 4, H, W); masks = scores.argmax(dim=1)

The graders judge your generated images with their own copy of the same network and
weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS = Path(__file__).resolve().parent / "segmenter.safetensors"
CONFIG = {"in_channels": 1, "out_channels": 4, "depth": 2, "width": 8}


class ConvBlock(nn.Module):
    """``conv3x3 - BN - ReLU - conv3x3 - BN - ReLU``; the first convolution has the stride."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)))


class UNet(nn.Module):
    """Assignment 3's U-Net with ConvBlocks and bilinear upsampling: ``inc``, ``down[k]``
    (stride 2), ``dec[k]`` on ``[upsampled, skip]``, a 1x1 ``head``."""

    def __init__(self, in_channels: int = 1, out_channels: int = 4, depth: int = 2,
                 width: int = 8) -> None:
        super().__init__()
        chans = [width * 2**k for k in range(depth + 1)]
        self.inc = ConvBlock(in_channels, chans[0])
        self.down = nn.ModuleList(ConvBlock(chans[k], chans[k + 1], stride=2) for k in range(depth))
        self.dec = nn.ModuleList(ConvBlock(chans[k + 1] + chans[k], chans[k]) for k in range(depth))
        self.head = nn.Conv2d(chans[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inc(x)
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        skips.pop()
        for k in reversed(range(len(self.down))):
            skip = skips[k]
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = self.dec[k](torch.cat([h, skip], dim=1))
        return self.head(h)


def load_segmenter(path: str | Path | None = None) -> UNet:
    """The trained U-Net, in evaluation mode, its weights read from ``path`` (default:
    ``segmenter.safetensors`` beside this file)."""
    from safetensors.torch import load_file

    net = UNet(**CONFIG)
    net.load_state_dict(load_file(str(path or WEIGHTS)))
    return net.eval()
