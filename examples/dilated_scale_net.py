"""A small model of one's own: shared 3x3 filters applied at several dilations, max over dilations and space.

The same weights look at the image at dilation 1, 2 and 4 (a cheap, approximate set of scale channels); the
strongest response over dilations wins, so the net is roughly invariant to a rescaling by 2 or 4 of what its
filters see. Because it has scale channels it also follows scalebench's scale-selection protocol
(``channel_sigmas`` + ``scale_channel_logits``), so its runs get selection histograms.

Run it through the protocol (docs/own-model.md):

    scalebench evaluate --model examples/dilated_scale_net.py:dilated_scale_net --dataset fashion-mnist-lite
"""

import torch
import torch.nn.functional as F
from torch import nn


class DilatedScaleNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, width: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.conv1 = nn.Conv2d(in_channels, width, 3)
        self.conv2 = nn.Conv2d(width, width, 3)
        self.norm = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, num_classes)

    @property
    def channel_sigmas(self) -> list[float]:
        """The scale of each scale channel (here: its dilation), for the selection histograms."""
        return [float(d) for d in self.dilations]

    def branch(self, x: torch.Tensor, d: int) -> torch.Tensor:
        x = F.relu(self.norm(F.conv2d(x, self.conv1.weight, self.conv1.bias, padding=d, dilation=d)))
        x = F.relu(F.conv2d(x, self.conv2.weight, self.conv2.bias, padding=d, dilation=d))
        return x.amax(dim=(-2, -1))  # (B, width): the strongest response anywhere

    def scale_channel_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(D, B, K): the logits of each dilation; the winning channel is the one holding the max logit."""
        return torch.stack([self.head(self.branch(x, d)) for d in self.dilations])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale_channel_logits(x).amax(0)


def dilated_scale_net(
    *, num_classes: int, in_channels: int, width: int = 16, dilations: tuple[int, ...] = (1, 2, 4)
) -> nn.Module:
    return DilatedScaleNet(num_classes, in_channels, width, tuple(dilations))


dilated_scale_net.scalebench_card = {"display_name": "Dilated scale net (example)", "licence": "MIT"}
