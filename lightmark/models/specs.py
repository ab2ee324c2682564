"""One entry point for every family: parse a spec string or dict, build its network.

A spec string starting with `s<digit>` is a stacked hourglass (`s2-d4-c128-ca-cc`, the names of
every earlier table, record and checkpoint); otherwise its first token names a backbone
(`mnv3s-w0.5-o16-h32`). Dicts without a `family` key are hourglasses, so old checkpoints load.
"""

from __future__ import annotations

import re

from torch import nn

from lightmark.errors import SpecError
from lightmark.models.backbone_net import BackboneHeatmapNet
from lightmark.models.backbone_spec import BACKBONES, BackboneSpec
from lightmark.models.hourglass import StackedHourglass
from lightmark.models.mobilenetv2 import MobileNetV2
from lightmark.models.mobilenetv3 import MobileNetV3
from lightmark.models.shufflenetv2 import ShuffleNetV2
from lightmark.models.spec import ModelSpec

AnySpec = ModelSpec | BackboneSpec
FAMILIES = ("hourglass", *dict.fromkeys(family for family, _ in BACKBONES.values()))
_HOURGLASS = re.compile(r"^\s*s\d")


def family_of(spec: AnySpec) -> str:
    return spec.family if isinstance(spec, BackboneSpec) else "hourglass"


def parse_spec(text: str) -> AnySpec:
    """A spec string of any family -> its spec; the SpecError names the field or the grammar."""
    if _HOURGLASS.match(text):
        return ModelSpec.parse(text)
    head = text.strip().split("-", 1)[0]
    if head in BACKBONES:
        return BackboneSpec.parse(text)
    raise SpecError(
        f"cannot parse spec {text!r}: expected a stacked hourglass like 's2-d4-c128-ca-cc' or a backbone "
        f"like 'mnv3s-w0.5-o16-h32' (backbones: {', '.join(BACKBONES)})"
    )


def spec_from_dict(data: dict) -> AnySpec:
    family = data.get("family", "hourglass")
    if family == "hourglass":
        return ModelSpec.from_dict({k: v for k, v in data.items() if k != "family"})
    if family not in FAMILIES:
        raise SpecError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    return BackboneSpec.from_dict(data)


def as_spec(spec: AnySpec | str) -> AnySpec:
    return parse_spec(spec) if isinstance(spec, str) else spec


def build_backbone(spec: BackboneSpec) -> nn.Module:
    """The truncated feature extractor of a backbone spec (no classifier, no last 1x1 conv)."""
    common = dict(width=spec.width, in_channels=spec.in_channels, out_stride=spec.out_stride)
    if spec.family == "mobilenetv3":
        return MobileNetV3(variant=spec.variant, **common)
    if spec.family == "shufflenetv2":
        return ShuffleNetV2(**common)
    return MobileNetV2(**common)


def build_network(spec: AnySpec | str) -> nn.Module:
    """Build the freshly initialised network of any family. Its forward returns a list of heatmap
    tensors [B, K, H/4, W/4] (one per hourglass stack; one for a backbone), the last the prediction.
    Build under `torch.device("meta")` to get shapes without allocating weights."""
    spec = as_spec(spec)
    if isinstance(spec, ModelSpec):
        return StackedHourglass(spec)
    return BackboneHeatmapNet(build_backbone(spec), spec.head_channels, spec.n_landmarks)
