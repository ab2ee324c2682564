"""ShuffleNetV2 x0.5/x1.0/x1.5/x2.0 (Ma et al. 2018), following torchvision's `shufflenet_v2_x*` exactly.

With `num_classes` it is the classification model (1,366,792 / 2,278,604 / 3,503,624 / 7,393,996 params,
1000 classes); without, a feature extractor without conv5 (1024/2048 channels), which only serves the
classifier. Only the published widths exist: their channel tables are not a formula of the width.
"""

from __future__ import annotations

import torch
from torch import nn

from lightmark.errors import SpecError
from lightmark.models.backbone_net import StagedBackbone, check_backbone_args, conv_bn_act

REPEATS = (4, 8, 4)  # blocks in stages 2, 3, 4
# width -> stem, stage 2, 3, 4, conv5 channels (the paper's Table 5)
CHANNELS = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleave the channel groups; sizes come from x.shape so tracing and ONNX export keep them symbolic."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def depthwise_bn(channels: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 + BN, no activation (as in the paper's unit)."""
    return conv_bn_act(channels, channels, 3, stride, groups=channels, act=None)


class ShuffleUnit(nn.Module):
    """Stride 1: split the channels, transform one half, concat, shuffle. Stride 2: both branches see all
    input channels and the output doubles the width of each branch."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        branch = out_ch // 2
        if stride == 1 and in_ch != 2 * branch:
            raise ValueError(f"a stride-1 shuffle unit needs in_ch == out_ch (even), got {in_ch}, {out_ch}")
        self.downsample = stride == 2
        self.branch1 = (
            nn.Sequential(depthwise_bn(in_ch, stride), conv_bn_act(in_ch, branch, 1)) if self.downsample else None
        )
        self.branch2 = nn.Sequential(
            conv_bn_act(in_ch if self.downsample else branch, branch, 1),
            depthwise_bn(branch, stride),
            conv_bn_act(branch, branch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is not None:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        else:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        return channel_shuffle(out)


class ShuffleNetV2(StagedBackbone):
    """ShuffleNetV2 at one of the published widths 0.5, 1.0, 1.5, 2.0."""

    def __init__(
        self, width: float = 1.0, in_channels: int = 3, num_classes: int | None = None, out_stride: int = 32
    ) -> None:
        if width not in CHANNELS:
            raise SpecError(f"width must be one of {sorted(CHANNELS)} for ShuffleNetV2, got {width}")
        check_backbone_args(width, in_channels, num_classes, out_stride)
        stem, *stage_channels, last = CHANNELS[width]
        units: list[tuple[nn.Module, int, int]] = [
            (conv_bn_act(in_channels, stem, 3, 2), 2, stem),
            (nn.MaxPool2d(3, 2, 1), 4, stem),
        ]
        ch, stride = stem, 4
        for repeats, out in zip(REPEATS, stage_channels):
            if stride * 2 > out_stride:
                break
            stride *= 2
            for i in range(repeats):
                units.append((ShuffleUnit(ch, out, 2 if i == 0 else 1), stride, out))
                ch = out
        classifier = None
        if num_classes is not None:
            classifier = nn.Sequential(
                conv_bn_act(ch, last, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(last, num_classes)
            )
        super().__init__(units, classifier)
