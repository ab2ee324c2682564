"""`ModelSpec`: what to build, and its short string form (`s2-d4-c128-ca-cc`) used everywhere."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

from lightmark.errors import SpecError
from lightmark.layouts import DEFAULT_LAYOUT

ATTENTIONS = ("none", "se", "ca")
HEATMAP_STRIDE = 4  # heatmaps are 1/4 of the input (stem: stride-2 conv + 2x2 max-pool)
DEFAULT_N_LANDMARKS = DEFAULT_LAYOUT.n_points  # a spec without -kN predicts the iBUG 68 points

_PATTERN = re.compile(
    r"^s(?P<n_stacks>\d+)-d(?P<depth>\d+)-c(?P<channels>\d+)"
    r"(?:-(?P<attention>se|ca))?(?P<coordconv>-cc)?"
    r"(?:-k(?P<n_landmarks>\d+))?(?:-i(?P<in_channels>\d+))?$"
)


def io_suffix(n_landmarks: int, in_channels: int) -> str:
    """The spec string's tail for points and input channels other than 68 and 3 (`-k98`, `-i1`)."""
    return ("" if n_landmarks == DEFAULT_N_LANDMARKS else f"-k{n_landmarks}") + (
        "" if in_channels == 3 else f"-i{in_channels}")


def check_fields(cls: type, data: dict) -> None:
    """A spec dict may hold only the spec class's fields (a typo is an error, not a default)."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise SpecError(f"unknown spec field(s): {', '.join(sorted(unknown))}")


@dataclass(frozen=True)
class ModelSpec:
    """A stacked-hourglass architecture. Validated on construction; errors name the field."""

    n_stacks: int = 2
    depth: int = 4
    channels: int = 128
    attention: str = "none"
    coordconv: bool = False
    n_landmarks: int = DEFAULT_N_LANDMARKS
    in_channels: int = 3

    def __post_init__(self) -> None:
        for name in ("n_stacks", "depth", "channels", "n_landmarks", "in_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"{name} must be an integer, got {value!r}")
        if self.n_stacks < 1:
            raise SpecError(f"n_stacks must be >= 1, got {self.n_stacks}")
        if self.depth < 1:
            raise SpecError(f"depth must be >= 1, got {self.depth}")
        if self.channels < 8 or self.channels % 8:
            # C/4 must be even too: the stem's HPM(C/4 -> C/2) splits its C/2 outputs into quarters.
            raise SpecError(f"channels must be a multiple of 8 (and >= 8), got {self.channels}")
        if self.attention not in ATTENTIONS:
            raise SpecError(f"attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if not isinstance(self.coordconv, bool):
            raise SpecError(f"coordconv must be true or false, got {self.coordconv!r}")
        if self.n_landmarks < 1:
            raise SpecError(f"n_landmarks must be >= 1, got {self.n_landmarks}")
        if self.in_channels < 1:
            raise SpecError(f"in_channels must be >= 1, got {self.in_channels}")

    # -- string form -------------------------------------------------------------------------
    def __str__(self) -> str:
        text = f"s{self.n_stacks}-d{self.depth}-c{self.channels}"
        if self.attention != "none":
            text += f"-{self.attention}"
        if self.coordconv:
            text += "-cc"
        return text + io_suffix(self.n_landmarks, self.in_channels)

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Inverse of `str(spec)`."""
        match = _PATTERN.match(text.strip())
        if not match:
            raise SpecError(
                f"cannot parse spec {text!r}: expected e.g. 's2-d4-c128', 's2-d4-c128-ca-cc' "
                "(sN stacks, dN depth, cN channels, optional -se/-ca attention and -cc CoordConv)"
            )
        groups = match.groupdict()
        return cls(
            n_stacks=int(groups["n_stacks"]),
            depth=int(groups["depth"]),
            channels=int(groups["channels"]),
            attention=groups["attention"] or "none",
            coordconv=bool(groups["coordconv"]),
            n_landmarks=int(groups["n_landmarks"] or DEFAULT_N_LANDMARKS),
            in_channels=int(groups["in_channels"] or 3),
        )

    # -- dict form ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        check_fields(cls, data)
        return cls(**data)

    # -- checks that need the input size ------------------------------------------------------
    def heatmap_size(self, input_size: int) -> int:
        return input_size // HEATMAP_STRIDE

    def check_input_size(self, input_size: int) -> None:
        """The hourglass halves the heatmap `depth` times; each level must stay integral."""
        if input_size % HEATMAP_STRIDE:
            raise SpecError(f"input size must be a multiple of {HEATMAP_STRIDE}, got {input_size}")
        size = self.heatmap_size(input_size)
        if size % (2**self.depth) or size // (2**self.depth) < 1:
            raise SpecError(
                f"depth {self.depth} is too deep for a {size}x{size} heatmap (input {input_size}): "
                f"the heatmap size must be divisible by 2**depth = {2**self.depth}"
            )

    def max_depth(self, input_size: int) -> int:
        size, depth = self.heatmap_size(input_size), 0
        while size % 2 == 0 and size >= 2:
            size //= 2
            depth += 1
        return depth
