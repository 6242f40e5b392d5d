"""The Assignment 2 models (support file: you do not need to edit it).

The classes of Assignment 2's ``models.py``, with their solutions, so that this assignment
does not depend on your own Assignment 2. ``digits_cnn.pt`` (also a support file) is a
checkpoint of ``SmallCNN()`` trained on the digits, in Assignment 2's format: one
``torch.save``d dict ``{"model": "SmallCNN", "config": {...}, "state_dict": {...}}``,
loaded with ``torch.load(path, weights_only=True)``. ``MODEL_CLASSES`` maps the class
names a checkpoint may hold to the classes.

- :class:`MLP`: Flatten - [Linear - ReLU - Dropout] per hidden size - Linear;
- :class:`SmallCNN`: a :class:`Block`, then :class:`BlockDownSample` blocks, global average
  pooling and a linear classifier. Both return raw scores (logits) of shape (N, num_classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Flatten - [Linear - ReLU - Dropout] x len(hidden_sizes) - Linear.

    Args:
        in_features: number of input features; inputs of shape (N, *) are flattened to
            (N, in_features).
        hidden_sizes: width of each hidden layer, in order (may be empty: then the model is
            a single linear layer).
        num_classes: number of output scores.
        dropout: probability of zeroing a hidden unit during training (``nn.Dropout``
            after each ReLU); no dropout in eval mode. 0 means no dropout.
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        num_classes: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.config = {
            "in_features": int(in_features),
            "hidden_sizes": [int(h) for h in hidden_sizes],
            "num_classes": int(num_classes),
            "dropout": float(dropout),
        }
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden_sizes:
            linear = nn.Linear(width, size)
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.ReLU(), nn.Dropout(dropout)]
            width = size
        head = nn.Linear(width, num_classes)
        nn.init.xavier_uniform_(head.weight)
        nn.init.zeros_(head.bias)
        layers.append(head)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, *) with in_features values per sample. Returns scores (N, num_classes)."""
        return self.net(x)


class Block(nn.Module):
    """conv - BN - ReLU - conv - BN - ReLU; keeps the spatial size.

    Both convolutions have ``kernel_size`` x ``kernel_size`` kernels, stride 1, padding
    ``kernel_size // 2`` and no bias; the first maps ``in_channels`` to ``out_channels``,
    the second ``out_channels`` to ``out_channels``. ``kernel_size`` is odd.
    Input (N, in_channels, H, W), output (N, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(x)))


class BlockDownSample(nn.Module):
    """Like :class:`Block`, but the first convolution has stride 2.

    Input (N, in_channels, H, W), output (N, out_channels, ceil(H / 2), ceil(W / 2))
    (padding ``kernel_size // 2`` on both convolutions).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=2, padding=pad, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size, padding=pad, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        for layer in self.layers:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SmallCNN(nn.Module):
    """Block - BlockDownSample x (len(channels) - 1) - global average pool - Linear.

    Args:
        in_channels: channels of the input images (1 for the digits).
        num_classes: number of output scores.
        channels: output channels of each block: the first block is a
            ``Block(in_channels, channels[0], kernel_size)``, block i >= 1 a
            ``BlockDownSample(channels[i - 1], channels[i], kernel_size)``.
        kernel_size: odd kernel size of every convolution.

    Input (N, in_channels, H, W) of any H, W >= 1; the average over all positions of the
    last block's output, (N, channels[-1]), goes into ``nn.Linear(channels[-1],
    num_classes)``. Returns scores (N, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (8, 16),
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.config = {
            "in_channels": int(in_channels),
            "num_classes": int(num_classes),
            "channels": [int(c) for c in channels],
            "kernel_size": int(kernel_size),
        }
        blocks: list[nn.Module] = [Block(in_channels, channels[0], kernel_size)]
        for cin, cout in zip(channels[:-1], channels[1:], strict=True):
            blocks.append(BlockDownSample(cin, cout, kernel_size))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels[-1], num_classes)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


MODEL_CLASSES: dict[str, type[nn.Module]] = {"MLP": MLP, "SmallCNN": SmallCNN}
