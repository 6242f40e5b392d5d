"""Convolutional building blocks: plain, pre-activation residual, depthwise-separable.

Every block maps ``(N, in_channels, H, W)`` to ``(N, out_channels, H_out, W_out)`` with
``H_out = ceil(H / stride)`` and ``W_out = ceil(W / stride)`` (3x3 convolutions with
padding 1; ``stride`` is 1 or 2), for any ``H, W >= 1``. Convolutions inside a block
have no bias (a BatchNorm follows or precedes them), and their weights are He-initialized:
drawn from ``N(0, 2 / fan_in)`` with ``fan_in = in_channels_per_group * k * k``
(``nn.init.kaiming_normal_(w, nonlinearity="relu")``). BatchNorm layers keep PyTorch's
defaults (weight 1, bias 0).
"""

from __future__ import annotations

import torch
from torch import nn


def he_init(module: nn.Module) -> None:
    """He-initialize the weight of every ``nn.Conv2d`` inside ``module`` (in place):
    ``N(0, 2 / fan_in)``, fan_in = input channels per group x kernel height x width."""
    raise NotImplementedError("TODO: he_init")


class ConvBlock(nn.Module):
    """``conv3x3 - BN - ReLU - conv3x3 - BN - ReLU`` (the course's ``Block``).

    The first convolution has stride ``stride`` (``stride=2`` is the course's
    ``BlockDownSample``), the second stride 1.
    Submodules, in this order: ``conv1`` (in -> out), ``bn1``, ``conv2`` (out -> out),
    ``bn2``. Parameters: ``9 in out + 9 out^2 + 4 out``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        raise NotImplementedError("TODO: ConvBlock.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("TODO: ConvBlock.forward")


class ResBlock(nn.Module):
    """Pre-activation residual block (He et al. 2016, "Identity mappings in deep residual
    networks")::

        h   = conv1(relu(bn1(x)))          conv1: 3x3, in -> out, stride `stride`
        h   = conv2(relu(bn2(h)))          conv2: 3x3, out -> out, stride 1
        out = h + shortcut(x)

    ``shortcut`` is ``nn.Identity()`` when ``stride == 1`` and ``in_channels ==
    out_channels`` (the identity block), otherwise a 1x1 convolution ``in -> out`` with
    stride ``stride`` and no bias (the downsampling / projection block), applied to ``x``
    itself. Submodules: ``bn1`` (in), ``conv1``, ``bn2`` (out), ``conv2``, ``shortcut``.
    Parameters: ``2 in + 9 in out + 2 out + 9 out^2`` plus ``in out`` for a projection.
    There is no ReLU after the addition: with ``conv2``'s weights zeroed the block is
    exactly its shortcut (the identity for an identity block).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        raise NotImplementedError("TODO: ResBlock.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("TODO: ResBlock.forward")


class SeparableBlock(nn.Module):
    """MobileNet-style depthwise-separable block::

        depthwise 3x3 conv (groups = in, stride `stride`) - BN - ReLU
        pointwise 1x1 conv (in -> out)                    - BN - ReLU

    The depthwise convolution filters each input channel on its own (``groups =
    in_channels``, ``in_channels`` filters of shape (1, 3, 3)); the pointwise one mixes
    the channels. Submodules: ``depthwise``, ``bn1`` (in), ``pointwise``, ``bn2`` (out).
    Parameters: ``9 in + 2 in + in out + 2 out``: roughly ``1/out + 1/9`` of the
    ``9 in out`` weights of a full 3x3 convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        raise NotImplementedError("TODO: SeparableBlock.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("TODO: SeparableBlock.forward")


BLOCKS: dict[str, type[nn.Module]] = {
    "conv": ConvBlock,
    "res": ResBlock,
    "separable": SeparableBlock,
}
