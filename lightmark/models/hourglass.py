"""The paper's stacked hourglass network, built from a `ModelSpec`.

Stem (1/4 resolution) -> n_stacks x [hourglass -> head emitting heatmaps], with the input of each
next stack = input + projection of the head features + projection of the heatmaps. `forward` returns
one heatmap tensor per stack (all are supervised; the last is the prediction).
"""

from __future__ import annotations

import torch
from torch import nn

from lightmark.models.blocks import HPM, CoordConv, make_attention
from lightmark.models.spec import ModelSpec


class Stem(nn.Module):
    """7x7 stride-2 conv (+2 coordinate channels with CoordConv), BN, ReLU, HPM, max-pool, HPM, HPM."""

    def __init__(self, in_channels: int, channels: int, coordconv: bool) -> None:
        super().__init__()
        quarter, half = channels // 4, channels // 2
        conv_kwargs = dict(kernel_size=7, stride=2, padding=3, bias=True)
        if coordconv:
            self.conv: nn.Module = CoordConv(in_channels, quarter, **conv_kwargs)
        else:
            self.conv = nn.Conv2d(in_channels, quarter, **conv_kwargs)
        self.bn = nn.BatchNorm2d(quarter)
        self.relu = nn.ReLU(inplace=False)
        self.hpm1 = HPM(quarter, half)
        self.pool = nn.MaxPool2d(2)
        self.hpm2 = HPM(half, half)
        self.hpm3 = HPM(half, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hpm1(self.relu(self.bn(self.conv(x))))
        return self.hpm3(self.hpm2(self.pool(x)))


class Level(nn.Module):
    """One level of the hourglass: the skip (upper) branch and the lower branch around the inner part."""

    def __init__(self, channels: int, attention: str) -> None:
        super().__init__()
        self.up = HPM(channels, channels)
        self.pool = nn.MaxPool2d(2)
        self.low1 = HPM(channels, channels)
        self.low2 = HPM(channels, channels)
        self.att = make_attention(attention, channels)
        self.upsample = nn.Upsample(scale_factor=2.0, mode="nearest")


class Hourglass(nn.Module):
    """Recursive hourglass of `depth` levels, stored flat (levels[0] is the outermost).

    Level i: upper = HPM(x); lower = upsample(att(HPM(inner(HPM(maxpool(x)))))), where inner is level
    i+1 or, at the bottom, one more HPM. Attention sits before the upsample so the skip branch keeps
    what attention suppresses.
    """

    def __init__(self, depth: int, channels: int, attention: str) -> None:
        super().__init__()
        self.levels = nn.ModuleList(Level(channels, attention) for _ in range(depth))
        self.bottom = HPM(channels, channels)

    def _run(self, index: int, x: torch.Tensor) -> torch.Tensor:
        level: Level = self.levels[index]  # type: ignore[assignment]
        upper = level.up(x)
        low = level.low1(level.pool(x))
        low = self._run(index + 1, low) if index + 1 < len(self.levels) else self.bottom(low)
        low = level.low2(low)
        if level.att is not None:
            low = level.att(low)
        return upper + level.upsample(low)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(0, x)


class Head(nn.Module):
    """After each hourglass: HPM, 1x1 conv + BN + ReLU, 1x1 conv to the heatmaps."""

    def __init__(self, channels: int, n_landmarks: int) -> None:
        super().__init__()
        self.hpm = HPM(channels, channels)
        self.conv = nn.Conv2d(channels, channels, kernel_size=1, bias=True)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=False)
        self.out = nn.Conv2d(channels, n_landmarks, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.relu(self.bn(self.conv(self.hpm(x))))
        return features, self.out(features)


class Merge(nn.Module):
    """Between stacks: next input = input + 1x1(features) + 1x1(heatmaps)."""

    def __init__(self, channels: int, n_landmarks: int) -> None:
        super().__init__()
        self.feat = nn.Conv2d(channels, channels, kernel_size=1, bias=True)
        self.heat = nn.Conv2d(n_landmarks, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor, features: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        return x + self.feat(features) + self.heat(heatmaps)


class StackedHourglass(nn.Module):
    """The paper's network. Input [B, in_channels, H, W]; output: list of n_stacks [B, K, H/4, W/4]."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        c, k = spec.channels, spec.n_landmarks
        self.stem = Stem(spec.in_channels, c, spec.coordconv)
        self.hg = nn.ModuleList(Hourglass(spec.depth, c, spec.attention) for _ in range(spec.n_stacks))
        self.heads = nn.ModuleList(Head(c, k) for _ in range(spec.n_stacks))
        self.merges = nn.ModuleList(Merge(c, k) for _ in range(spec.n_stacks - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outputs: list[torch.Tensor] = []
        for i in range(self.spec.n_stacks):
            features, heatmaps = self.heads[i](self.hg[i](x))
            outputs.append(heatmaps)
            if i + 1 < self.spec.n_stacks:
                x = self.merges[i](x, features, heatmaps)
        return outputs


def build_model(spec: ModelSpec | str) -> StackedHourglass:
    """Build the network for `spec` (a ModelSpec or its string form), freshly initialised.

    Build under `torch.device("meta")` to get shapes without allocating weights.
    """
    if isinstance(spec, str):
        spec = ModelSpec.parse(spec)
    return StackedHourglass(spec)


__all__ = ["StackedHourglass", "Hourglass", "Stem", "Head", "Merge", "build_model"]
