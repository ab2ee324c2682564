"""Light-weight published backbones (MobileNetV2/V3, ShuffleNetV2) as heatmap regressors.

`StagedBackbone` is what the three families share: a list of stages, stage i ending at stride 2**(i+1),
so `forward_features` is one static loop (traces and exports to ONNX) and returns one tensor per stride,
like timm's `features_only`. `BackboneHeatmapNet` puts a `HeatmapHead` on one and answers a one-element
list, the shape the trainer expects from the stacked hourglass (one output per stack).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lightmark.errors import SpecError
from lightmark.models.dense_head import HeatmapHead

OUT_STRIDES = (8, 16, 32)


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's `_make_divisible`: round to the nearest multiple of `divisor` (at least `divisor`),
    never more than 10 % below `v`. The published channel counts are defined through it."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn_act(
    in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1,
    act: type[nn.Module] | None = nn.ReLU, bn_eps: float = 1e-5, bn_momentum: float = 0.1,
) -> nn.Sequential:
    """Conv (no bias: BN follows) + BN + optional activation, 'same' padding: torchvision's ConvNormActivation."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch, eps=bn_eps, momentum=bn_momentum),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def check_backbone_args(width: float, in_channels: int, num_classes: int | None, out_stride: int) -> None:
    """The arguments every family takes; SpecError naming the field."""
    if not width > 0:
        raise SpecError(f"width must be positive, got {width}")
    if in_channels < 1:
        raise SpecError(f"in_channels must be at least 1, got {in_channels}")
    if out_stride not in OUT_STRIDES:
        raise SpecError(f"out_stride must be one of {OUT_STRIDES}, got {out_stride}")
    if num_classes is not None and (num_classes < 1 or out_stride != 32):
        raise SpecError(f"num_classes={num_classes} needs num_classes >= 1 and out_stride 32 (got {out_stride})")


class StagedBackbone(nn.Module):
    """Stages at strides 2, 4, ..., out_stride, plus an optional classifier on the last one.

    `units` is the network in order as (module, stride after it, channels after it); consecutive units at
    one stride become one stage, so each feature is the last output at its stride.
    """

    def __init__(self, units: Sequence[tuple[nn.Module, int, int]], classifier: nn.Module | None) -> None:
        super().__init__()
        strides = sorted({s for _, s, _ in units})
        if strides != [2 ** (i + 1) for i in range(len(strides))]:
            raise ValueError(f"backbone units must reach every stride 2, 4, 8, ... in turn, got {strides}")
        self.stages = nn.ModuleList(nn.Sequential(*(m for m, s, _ in units if s == st)) for st in strides)
        self.feature_strides: tuple[int, ...] = tuple(strides)
        self.feature_channels: tuple[int, ...] = tuple([c for _, s, c in units if s == st][-1] for st in strides)
        self.classifier = classifier

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits with a classifier, else the feature list."""
        features = self.forward_features(x)
        return features if self.classifier is None else self.classifier(features[-1])


def init_like_torchvision(module: nn.Module) -> None:
    """MobileNetV2/V3's initialisation: He (fan-out) convs, unit BN, small-normal linears, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class BackboneHeatmapNet(nn.Module):
    """A feature-mode backbone and a stride-4 `HeatmapHead`; `forward` returns `[heatmaps]`."""

    def __init__(self, backbone: nn.Module, head_channels: int, n_landmarks: int) -> None:
        super().__init__()
        if not hasattr(backbone, "forward_features") or not hasattr(backbone, "feature_channels"):
            raise SpecError(f"backbone: {type(backbone).__name__} has no forward_features/feature_channels")
        if getattr(backbone, "classifier", None) is not None:
            raise SpecError("backbone: build it in feature mode (num_classes=None); its classifier would be unused")
        self.backbone = backbone
        self.head = HeatmapHead(backbone.feature_channels, backbone.feature_strides, head_channels, n_landmarks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.head(self.backbone.forward_features(x))]
