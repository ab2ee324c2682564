"""A light top-down heatmap head (a tiny FPN / SimpleBaseline) for the stride-4 heatmaps the trainer uses.

Each feature from stride 4 up is projected to `head_channels` (1x1 conv + BN); starting at the deepest, the
map is upsampled x2 (nearest) and added to the next shallower projection, then refined by a depthwise-
separable 3x3 conv; a 1x1 conv (with bias) gives one heatmap per landmark. Cheap on purpose: the backbone
is the part under study.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightmark.errors import SpecError


def separable_conv(channels: int) -> nn.Sequential:
    """Depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
    )


class HeatmapHead(nn.Module):
    """Heatmaps at stride 4 from the backbone's feature list (features below stride 4 are ignored)."""

    def __init__(
        self, feature_channels: Sequence[int], feature_strides: Sequence[int], head_channels: int, n_landmarks: int
    ) -> None:
        super().__init__()
        if len(feature_channels) != len(feature_strides):
            raise SpecError(f"feature_channels {tuple(feature_channels)} and feature_strides "
                            f"{tuple(feature_strides)} differ in length")
        if head_channels < 1 or n_landmarks < 1:
            raise SpecError(f"head_channels and n_landmarks must be positive, got {head_channels}, {n_landmarks}")
        used = [i for i, s in enumerate(feature_strides) if s >= 4]
        strides = [feature_strides[i] for i in used]
        if not strides or strides != [4 * 2**k for k in range(len(strides))]:
            raise SpecError(f"feature_strides must hold 4, 8, ... doubling each time, got {tuple(feature_strides)}")
        self.indices: tuple[int, ...] = tuple(used)
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(feature_channels[i], head_channels, 1, bias=False), nn.BatchNorm2d(head_channels))
            for i in used
        )
        self.smooth = nn.ModuleList(separable_conv(head_channels) for _ in used[:-1])
        self.out = nn.Conv2d(head_channels, n_landmarks, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        laterals = [proj(features[i]) for proj, i in zip(self.lateral, self.indices)]
        x = laterals[-1]
        for lateral, smooth in zip(reversed(laterals[:-1]), reversed(self.smooth)):
            # x2 nearest when the input is a multiple of the deepest stride; sizing to the shallower map also
            # keeps odd input sizes (where a stride-2 conv rounds up) working
            x = smooth(F.interpolate(x, size=lateral.shape[-2:], mode="nearest") + lateral)
        return self.out(x)
