"""MobileNetV3-Large/Small (Howard et al. 2019), following torchvision's `mobilenet_v3_*` definitions exactly.

With `num_classes` it is the classification model (5,483,032 / 2,542,856 params at width 1.0, 1000 classes);
without, a feature extractor without the 960/576-channel last conv, which only serves the classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from lightmark.errors import SpecError
from lightmark.models.backbone_net import (
    StagedBackbone,
    check_backbone_args,
    conv_bn_act,
    init_like_torchvision,
    make_divisible,
)

# kernel, expanded channels, output channels, squeeze-excite, hardswish (else ReLU), stride (the paper's Tables 1-2)
LARGE = (
    (3, 16, 16, False, False, 1), (3, 64, 24, False, False, 2), (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1), (3, 480, 112, True, True, 1), (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1), (5, 960, 160, True, True, 1),
)
SMALL = (
    (3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1), (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1),
)
VARIANTS = {"large": (LARGE, 1280), "small": (SMALL, 1024)}  # block table, classifier hidden width
BN = {"bn_eps": 0.001, "bn_momentum": 0.01}  # torchvision's MobileNetV3 BatchNorm settings


class SqueezeExcite(nn.Module):
    """Channel gate: global mean, 1x1 squeeze (ReLU), 1x1 excite, hardsigmoid; squeeze = make_divisible(c // 4)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = make_divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class InvertedResidual(nn.Module):
    """Expand 1x1 (skipped when it would not change the width), depthwise kxk, optional SE, linear 1x1."""

    def __init__(self, in_ch: int, kernel: int, hidden: int, out_ch: int, se: bool, hs: bool, stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        layers = [conv_bn_act(in_ch, hidden, 1, act=act, **BN)] if hidden != in_ch else []
        layers.append(conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, act=act, **BN))
        if se:
            layers.append(SqueezeExcite(hidden))
        layers.append(conv_bn_act(hidden, out_ch, 1, act=None, **BN))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


class MobileNetV3(StagedBackbone):
    """MobileNetV3 `variant` "large" or "small" at any positive `width` (torchvision's width_mult)."""

    def __init__(
        self, variant: str = "large", width: float = 1.0, in_channels: int = 3,
        num_classes: int | None = None, out_stride: int = 32,
    ) -> None:
        if variant not in VARIANTS:
            raise SpecError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        check_backbone_args(width, in_channels, num_classes, out_stride)
        table, hidden_fc = VARIANTS[variant]
        ch = make_divisible(16 * width)
        units: list[tuple[nn.Module, int, int]] = [
            (conv_bn_act(in_channels, ch, 3, 2, act=nn.Hardswish, **BN), 2, ch)
        ]
        stride = 2
        for kernel, exp, out, se, hs, s in table:
            if stride * s > out_stride:
                break
            stride *= s
            out = make_divisible(out * width)
            units.append((InvertedResidual(ch, kernel, make_divisible(exp * width), out, se, hs, s), stride, out))
            ch = out
        classifier = None
        if num_classes is not None:
            hidden = make_divisible(hidden_fc * width)
            classifier = nn.Sequential(
                conv_bn_act(ch, 6 * ch, 1, act=nn.Hardswish, **BN), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                nn.Linear(6 * ch, hidden), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(hidden, num_classes),
            )
        super().__init__(units, classifier)
        init_like_torchvision(self)
