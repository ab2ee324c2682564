"""`BackboneSpec`: a published light-weight backbone (MobileNetV3, ShuffleNetV2, MobileNetV2) with a
stride-4 heatmap head, and its short string form (`mnv3s-w0.5-o16-h32`).

The backbone is truncated after its stride-`out_stride` stage (deeper stages cost most of the
parameters and see a 2x2 grid at 64 px); the head fuses strides 4..out_stride top-down into
heatmaps at 1/4 of the input, the hourglass's heatmap stride, so codecs, losses, NME, the trainer
and export are shared across families.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from lightmark.errors import SpecError
from lightmark.models.spec import DEFAULT_N_LANDMARKS, HEATMAP_STRIDE, check_fields, io_suffix

# short name in spec strings -> (family, variant): the family groups variants in reports
BACKBONES: dict[str, tuple[str, str]] = {
    "mnv3s": ("mobilenetv3", "small"),
    "mnv3l": ("mobilenetv3", "large"),
    "snv2": ("shufflenetv2", ""),
    "mnv2": ("mobilenetv2", ""),
}
SHUFFLENET_WIDTHS = (0.5, 1.0, 1.5, 2.0)  # the published channel tables
OUT_STRIDES = (8, 16, 32)

_PATTERN = re.compile(
    r"^(?P<backbone>[a-z0-9]+)-w(?P<width>\d+(?:\.\d+)?)-o(?P<out_stride>\d+)-h(?P<head_channels>\d+)"
    r"(?:-k(?P<n_landmarks>\d+))?(?:-i(?P<in_channels>\d+))?$"
)


def format_width(width: float) -> str:
    """0.5 -> '0.5', 1.0 -> '1.0': one canonical text per width, so names round-trip."""
    text = f"{width:g}"
    return text if "." in text else text + ".0"


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone family member plus a heatmap head. Validated on construction; errors name the field."""

    backbone: str = "mnv3s"
    width: float = 1.0
    out_stride: int = 32
    head_channels: int = 64
    n_landmarks: int = DEFAULT_N_LANDMARKS
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise SpecError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not 0 < self.width <= 4:
            raise SpecError(f"width must be a number in (0, 4], got {self.width!r}")
        object.__setattr__(self, "width", float(self.width))
        if self.backbone == "snv2" and self.width not in SHUFFLENET_WIDTHS:
            raise SpecError(f"width of snv2 (ShuffleNetV2) must be one of "
                            f"{', '.join(map(format_width, SHUFFLENET_WIDTHS))}, got {self.width:g}")
        for name in ("out_stride", "head_channels", "n_landmarks", "in_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"{name} must be an integer, got {value!r}")
        if self.out_stride not in OUT_STRIDES:
            raise SpecError(f"out_stride must be one of {', '.join(map(str, OUT_STRIDES))}, got {self.out_stride}")
        if self.head_channels < 8 or self.head_channels % 8:
            raise SpecError(f"head_channels must be a multiple of 8 (and >= 8), got {self.head_channels}")
        if self.n_landmarks < 1:
            raise SpecError(f"n_landmarks must be >= 1, got {self.n_landmarks}")
        if self.in_channels < 1:
            raise SpecError(f"in_channels must be >= 1, got {self.in_channels}")

    @property
    def family(self) -> str:
        return BACKBONES[self.backbone][0]

    @property
    def variant(self) -> str:
        return BACKBONES[self.backbone][1]

    # -- string form -------------------------------------------------------------------------
    def __str__(self) -> str:
        text = f"{self.backbone}-w{format_width(self.width)}-o{self.out_stride}-h{self.head_channels}"
        return text + io_suffix(self.n_landmarks, self.in_channels)

    @classmethod
    def parse(cls, text: str) -> BackboneSpec:
        """Inverse of `str(spec)`."""
        match = _PATTERN.match(text.strip())
        if not match:
            raise SpecError(
                f"cannot parse spec {text!r}: expected e.g. 'mnv3s-w0.5-o16-h32' "
                f"(backbone {'/'.join(BACKBONES)}, wX width multiplier, oN output stride "
                f"{'/'.join(map(str, OUT_STRIDES))}, hN head channels)"
            )
        groups = match.groupdict()
        return cls(
            backbone=groups["backbone"],
            width=float(groups["width"]),
            out_stride=int(groups["out_stride"]),
            head_channels=int(groups["head_channels"]),
            n_landmarks=int(groups["n_landmarks"] or DEFAULT_N_LANDMARKS),
            in_channels=int(groups["in_channels"] or 3),
        )

    # -- dict form ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> BackboneSpec:
        data = {k: v for k, v in data.items() if k != "family"}
        check_fields(cls, data)
        return cls(**data)

    # -- checks that need the input size ------------------------------------------------------
    def heatmap_size(self, input_size: int) -> int:
        return input_size // HEATMAP_STRIDE

    def check_input_size(self, input_size: int) -> None:
        """Each stride up to out_stride must divide the input, so the top-down sums line up."""
        if input_size % self.out_stride or input_size < self.out_stride:
            raise SpecError(
                f"input size must be a multiple of the output stride {self.out_stride}, got {input_size}"
            )
