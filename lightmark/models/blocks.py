"""Building blocks of the paper's hourglass: the HPM residual block, SE and CA attention, CoordConv.

Layer widths and bias choices follow the paper's reference architecture closely, because the model
size (bytes of the saved state_dict) is a reported number: see docs/models.md.
"""

from __future__ import annotations

import torch
from torch import nn

from lightmark.models.fuse import AxisMean, fold_pre_activation


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=False)


class HPM(nn.Module):
    """Hierarchical, parallel, multi-scale residual block (Bulat & Tzimiropoulos).

    Three pre-activated BN-ReLU-3x3conv stages in sequence with out/2, out/4, out/4 outputs; the three
    outputs are concatenated (giving `out` channels) and added to the residual. When the widths differ
    the residual goes through BN-ReLU-1x1conv.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        if out_ch % 4:
            raise ValueError(f"HPM output channels must be divisible by 4, got {out_ch}")
        half, quarter = out_ch // 2, out_ch // 4
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv3x3(in_ch, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = conv3x3(quarter, quarter)
        self.relu = nn.ReLU(inplace=False)
        self.down: nn.Module | None = None
        if in_ch != out_ch:
            self.down = nn.Sequential(
                nn.BatchNorm2d(in_ch),
                nn.ReLU(inplace=False),
                nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(self.relu(self.bn1(x)))
        out2 = self.conv2(self.relu(self.bn2(out1)))
        out3 = self.conv3(self.relu(self.bn3(out2)))
        residual = x if self.down is None else self.down(x)
        return torch.cat((out1, out2, out3), dim=1) + residual

    def fuse(self) -> dict[str, int]:
        """Fold the pre-activation BatchNorms into the convs after them (models/fuse.py); eval only."""
        counts = {"folded": 0, "affine": 0}
        pairs = [("bn1", self.conv1), ("bn2", self.conv2), ("bn3", self.conv3)]
        for name, conv in pairs:
            new, folded = fold_pre_activation(getattr(self, name), conv)
            setattr(self, name, new)
            counts["folded" if folded else "affine"] += 1
        if self.down is not None:
            self.down[0], folded = fold_pre_activation(self.down[0], self.down[2])
            counts["folded" if folded else "affine"] += 1
        return counts


class SE(nn.Module):
    """Squeeze-and-excitation (reduction 4): global pool, C -> C/4 -> C, sigmoid gate per channel."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))
        return x * weight


class CA(nn.Module):
    """Coordinate attention (Hou et al., 2021).

    Pool along W (giving a C x H x 1 profile) and along H (C x 1 x W), run both through one shared
    1x1 conv to max(8, C/4) channels, BN and h-swish, split, and turn each half into a sigmoid gate
    with its own 1x1 conv; the input is multiplied by both gates. Pooling uses AdaptiveAvgPool2d
    modules (not tensor.mean) so fvcore and thop both see and count it.
    """

    def __init__(self, channels: int, reduction: int = 4, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.pool_h = nn.AdaptiveAvgPool2d((None, 1))  # -> C x H x 1
        self.pool_w = nn.AdaptiveAvgPool2d((1, None))  # -> C x 1 x W
        self.conv1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.act = nn.Hardswish()  # h-swish, as in Hou et al.
        self.conv_h = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)
        self.conv_w = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        x_h = self.pool_h(x)  # B C H 1
        x_w = self.pool_w(x).transpose(-1, -2)  # B C W 1
        y = self.act(self.bn1(self.conv1(torch.cat((x_h, x_w), dim=2))))
        y_h, y_w = torch.split(y, [height, width], dim=2)
        gate_h = self.gate(self.conv_h(y_h))  # B C H 1
        gate_w = self.gate(self.conv_w(y_w.transpose(-1, -2)))  # B C 1 W
        return x * gate_h * gate_w

    def fuse(self) -> dict[str, int]:
        """The per-axis adaptive pools as the equal means, which the ONNX exporter can export."""
        self.pool_h, self.pool_w = AxisMean(3), AxisMean(2)  # B C H 1 and B C 1 W, as before
        return {"pools": 2}


def make_attention(kind: str, channels: int) -> nn.Module | None:
    if kind == "none":
        return None
    if kind == "se":
        return SE(channels)
    if kind == "ca":
        return CA(channels)
    raise ValueError(f"unknown attention {kind!r}")


class AddCoords(nn.Module):
    """CoordConv's input: append x and y coordinate channels in [-1, 1].

    The coordinates are made on every call for the actual input's shape, dtype and device (no cache
    tied to the first batch), so input size, precision and device may change between calls. They are
    made in float32 and cast: the ONNX exporter types linspace as float32 whatever its dtype, and one
    float32 tensor concatenated into an fp16 network turned every later weight back into float32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        ys = torch.linspace(-1.0, 1.0, height, dtype=torch.float32, device=x.device).to(x.dtype)
        xs = torch.linspace(-1.0, 1.0, width, dtype=torch.float32, device=x.device).to(x.dtype)
        grid_y = ys.view(1, 1, height, 1).expand(batch, 1, height, width)
        grid_x = xs.view(1, 1, 1, width).expand(batch, 1, height, width)
        return torch.cat((x, grid_x, grid_y), dim=1)


class CoordConv(nn.Module):
    """A conv whose input gets two coordinate channels first (Liu et al., 2018)."""

    def __init__(self, in_ch: int, out_ch: int, **conv_kwargs) -> None:
        super().__init__()
        self.coords = AddCoords()
        self.conv = nn.Conv2d(in_ch + 2, out_ch, **conv_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.coords(x))
