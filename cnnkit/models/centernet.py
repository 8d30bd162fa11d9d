"""CenterNet ("Objects as Points", Zhou, Wang and Krähenbühl, 2019): an anchor-free one-stage detector.

Each object is the peak of a heatmap at its box's centre, on a grid 4 times
coarser than the image; at that cell the network also says the box's width and
height and the centre's sub-cell offset. No anchors, no proposals: decoding is
a 3x3 max-pool to find the peaks (:mod:`cnnkit.tasks.detect`). We chose it over
FCOS because its targets and decoding are the shortest to explain: one Gaussian
per object, one peak per object.

``(N, C, H, W) -> (N, K + 4, H/4, W/4)``: ``K`` heatmap logits (sigmoid gives
each class's centre probability), then width and height (in grid cells) and the
x and y offsets of the centre within its cell.

The backbone here is a small residual network of our own (four stages,
strides 1 to 8) with a feature-pyramid merge back to stride 4.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models._common import check_input, positive
from cnnkit.models.registry import register

STRIDE = 4  # the output grid's cell, in input pixels
PRIOR = 0.1  # initial heatmap probability (Focal Loss's prior): keeps the first steps' loss from exploding


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """Two 3x3 convolutions with a shortcut (a 1x1 convolution where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class CenterNet(nn.Module):
    """Backbone at strides 1, 2, 4, 8; stride 8 upsampled and added to stride 4; three heads."""

    def __init__(self, num_classes: int, in_channels: int, width: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        w = width
        self.stem = _conv(in_channels, w)  # (N, w, H, W)
        self.stage2 = _Residual(w, 2 * w, 2)  # (N, 2w, H/2, W/2)
        self.stage4 = _Residual(2 * w, 4 * w, 2)  # (N, 4w, H/4, W/4)
        self.stage8 = nn.Sequential(_Residual(4 * w, 8 * w, 2), _Residual(8 * w, 8 * w, 1))  # (N, 8w, H/8, W/8)
        self.lateral = nn.Conv2d(8 * w, 4 * w, 1)
        self.merge = _conv(4 * w, 4 * w)

        def head(outputs: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(4 * w, 4 * w, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(4 * w, outputs, 1))

        self.heatmap, self.size, self.offset = head(num_classes), head(2), head(2)
        last = self.heatmap[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, -math.log((1 - PRIOR) / PRIOR))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("centernet", x, self.in_channels)
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"centernet needs a height and width that are multiples of 8 (its stride-8 stage is "
                             f"upsampled onto the stride-4 grid); use --image-size. Received: input shape="
                             f"{tuple(x.shape)}")
        c4 = self.stage4(self.stage2(self.stem(x)))  # (N, 4w, H/4, W/4)
        c8 = self.stage8(c4)  # (N, 8w, H/8, W/8)
        up = F.interpolate(self.lateral(c8), size=c4.shape[-2:], mode="nearest")
        features = self.merge(c4 + up)  # (N, 4w, H/4, W/4)
        return torch.cat([self.heatmap(features), self.size(features), self.offset(features)], 1)  # (N, K+4, ...)


@register(kind="detection", input_size=(64, 64))
def centernet(num_classes: int = 6, in_channels: int = 3, width: int = 16) -> nn.Module:
    """CenterNet detector (anchor-free, one stage): a heatmap per class, box size and offset, on a 4x coarser grid.

    ``(N, C, H, W) -> (N, num_classes + 4, H/4, W/4)`` for H, W multiples of 8;
    ``width`` is the first stage's channels (stages w, 2w, 4w, 8w).
    """
    return CenterNet(num_classes, in_channels, int(positive("centernet", "width", width)))
