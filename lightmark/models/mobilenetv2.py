"""MobileNetV2 (Sandler et al. 2018), following torchvision's `mobilenet_v2` definition exactly.

With `num_classes` it is the classification model (3,504,872 params at width 1.0, 1000 classes); without,
a feature extractor without the 1280-channel last conv, which only serves the classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from lightmark.models.backbone_net import (
    StagedBackbone,
    check_backbone_args,
    conv_bn_act,
    init_like_torchvision,
    make_divisible,
)

# expansion t, output channels c, repeats n, first stride s (the paper's Table 2)
SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
LAST_CHANNEL = 1280


class InvertedResidual(nn.Module):
    """Expand 1x1 (skipped when t == 1), depthwise 3x3, linear 1x1 projection; ReLU6; residual when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = int(round(in_ch * expand))
        layers = [conv_bn_act(in_ch, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   conv_bn_act(hidden, out_ch, 1, act=None)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(StagedBackbone):
    """MobileNetV2 at any positive `width` (torchvision's width_mult: channels via make_divisible(c * width, 8))."""

    def __init__(
        self, width: float = 1.0, in_channels: int = 3, num_classes: int | None = None, out_stride: int = 32
    ) -> None:
        check_backbone_args(width, in_channels, num_classes, out_stride)
        ch = make_divisible(32 * width)
        units: list[tuple[nn.Module, int, int]] = [(conv_bn_act(in_channels, ch, 3, 2, act=nn.ReLU6), 2, ch)]
        stride = 2
        for t, c, n, s in SETTING:
            if stride * s > out_stride:
                break
            out = make_divisible(c * width)
            for i in range(n):
                block_stride = s if i == 0 else 1
                stride *= block_stride
                units.append((InvertedResidual(ch, out, block_stride, t), stride, out))
                ch = out
        classifier = None
        if num_classes is not None:
            last = make_divisible(LAST_CHANNEL * max(1.0, width))
            classifier = nn.Sequential(
                conv_bn_act(ch, last, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                nn.Dropout(0.2), nn.Linear(last, num_classes),
            )
        super().__init__(units, classifier)
        init_like_torchvision(self)
