"""Deploy-time rewrites of the blocks, as timm's `fuse()` / reparameterise methods: the same function in
fewer, export-friendly operations. Each block that has a rewrite offers `fuse()`; `fuse_for_deploy`
calls them all on a network (a copy: training needs the original form).

- HPM's pre-activation BatchNorm -> ReLU -> conv becomes Shift(shift / scale) -> ReLU -> conv with the
  BN scale folded into the conv's input channels (exact for scale > 0: relu(a x + b) = a relu(x + b / a));
  where that does not hold the BN becomes one multiply-add (`Affine`).
- Coordinate attention's per-axis adaptive pools become the equal means (`AxisMean`): the
  TorchScript-based ONNX exporter cannot export adaptive pooling whose output size follows the input.
"""

from __future__ import annotations

import torch
from torch import nn

FOLD_LIMIT = 1e4  # |shift / scale| above this keeps the BN as a multiply-add (fp16 range, int8 ranges)


class Shift(nn.Module):
    """x + shift (per channel): what a folded pre-activation BatchNorm leaves behind."""

    def __init__(self, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("shift", shift.detach().reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.shift


class Affine(nn.Module):
    """x * scale + shift (per channel): an eval-mode BatchNorm in two vectors instead of four."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().reshape(1, -1, 1, 1).clone())
        self.register_buffer("shift", shift.detach().reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class AxisMean(nn.Module):
    """Average over one axis, keeping it: AdaptiveAvgPool2d((None, 1)) / ((1, None)) as ReduceMean."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dim, keepdim=True)


@torch.no_grad()
def fold_pre_activation(bn: nn.Module, conv: nn.Conv2d) -> tuple[nn.Module, bool]:
    """BN -> ReLU -> conv as Shift -> ReLU -> conv' (conv' = conv with BN's scale on its inputs), in place
    on `conv`; returns (the module that replaces `bn`, whether the scale was folded)."""
    if not isinstance(bn, nn.BatchNorm2d):
        return bn, False  # already fused
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    ratio = shift / scale
    if conv.groups == 1 and bool((scale > 0).all()) and bool(torch.isfinite(ratio).all()) \
            and float(ratio.abs().max()) <= FOLD_LIMIT:
        conv.weight.mul_(scale.view(1, -1, 1, 1))
        return Shift(ratio), True
    return Affine(scale, shift), False


def fuse_for_deploy(net: nn.Module) -> dict[str, int]:
    """Call every block's `fuse()` in place (call it on a copy); returns the counts of what changed,
    e.g. {"folded": 12, "affine": 1, "pools": 4}."""
    counts: dict[str, int] = {}
    for module in list(net.modules()):
        fuse = getattr(module, "fuse", None)
        if module is not net and callable(fuse):
            for key, n in fuse().items():
                counts[key] = counts.get(key, 0) + n
    return counts
