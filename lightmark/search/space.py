"""The architecture search space: which stacked hourglasses the sampler may propose.

A `SearchSpace` holds the allowed values of each `ModelSpec` dimension as a sorted tuple; a
dimension with one value is fixed (never asked of the sampler). It loads from a TOML file
(`configs/quick-space.toml`) or from flags, is bounded by the protocol's heatmap size (depth) and
can be trimmed by a budget, and turns an Optuna trial into a `ModelSpec`.

TOML form (every key optional; a scalar fixes the dimension):

    n_stacks  = {min = 1, max = 2}               # or [1, 2], or 2
    depth     = {min = 2, max = 4}
    channels  = {min = 16, max = 64, step = 8}   # or [16, 32, 64]; multiples of 8
    attention = ["none", "se", "ca"]             # or "ca"
    coordconv = [false, true]                    # or true
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lightmark.errors import ConfigError, SpecError
from lightmark.models.spec import ATTENTIONS, DEFAULT_N_LANDMARKS, ModelSpec

INT_DIMS = ("n_stacks", "depth", "channels")
DIMS = ("n_stacks", "depth", "channels", "attention", "coordconv")
# Sanity bounds of each integer dimension (the protocol's input bounds depth further).
INT_BOUNDS = {"n_stacks": (1, 8), "depth": (1, 8), "channels": (8, 1024)}


def _default_channels() -> tuple[int, ...]:
    return tuple(range(32, 257, 8))


@dataclass(frozen=True)
class SearchSpace:
    """Allowed values per dimension (sorted, unique). One value = a fixed dimension."""

    n_stacks: tuple[int, ...] = (1, 2, 3, 4)
    depth: tuple[int, ...] = (2, 3, 4, 5)
    channels: tuple[int, ...] = _default_channels()
    attention: tuple[str, ...] = ATTENTIONS
    coordconv: tuple[bool, ...] = (False, True)
    # not searched: every candidate predicts the data's points (`lightmark.layouts`), e.g. 98 on WFLW
    n_landmarks: int = DEFAULT_N_LANDMARKS

    def __post_init__(self) -> None:
        for dim in DIMS:
            values = getattr(self, dim)
            if not isinstance(values, tuple):
                values = tuple(values) if isinstance(values, (list, set, frozenset)) else (values,)
            _check_values(dim, values, where="search space")
            ordered = tuple(sorted(set(values), key=_order_key(dim)))
            object.__setattr__(self, dim, ordered)

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "search space") -> SearchSpace:
        """Parse the TOML/dict form; errors name `where` (the file) and the bad key."""
        if "space" in data and isinstance(data["space"], dict) and len(data) == 1:
            data = data["space"]
        unknown = sorted(set(data) - set(DIMS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(DIMS)})"
            )
        values = {dim: _parse_dim(dim, data[dim], where) for dim in DIMS if dim in data}
        return cls(**values)

    @classmethod
    def from_toml(cls, path: Path | str) -> SearchSpace:
        return cls.from_dict(read_space_file(path), where=str(path))

    def with_fixed(self, **fixed: Any) -> SearchSpace:
        """Fix dimensions from flags (`None` leaves a dimension as it is)."""
        updates = {}
        for dim, value in fixed.items():
            if value is None:
                continue
            if dim not in DIMS:
                raise ConfigError(f"unknown search-space dimension {dim!r}")
            updates[dim] = _parse_dim(dim, value, f"--{'stacks' if dim == 'n_stacks' else dim}")
        return replace(self, **updates) if updates else self

    def to_dict(self) -> dict[str, list]:
        return {dim: list(getattr(self, dim)) for dim in DIMS}

    # -- bounds -----------------------------------------------------------------------------
    def bounded(self, input_size: int) -> SearchSpace:
        """Drop depths the protocol's heatmap cannot hold (each level halves it)."""
        probe = ModelSpec(n_stacks=1, depth=1, channels=self.channels[0])
        limit = probe.max_depth(input_size)
        depths = tuple(d for d in self.depth if d <= limit)
        if not depths:
            raise ConfigError(
                f"search space depth {list(self.depth)}: input {input_size} px gives a "
                f"{probe.heatmap_size(input_size)} px heatmap, which allows depth <= {limit}"
            )
        return replace(self, depth=depths)

    def trimmed(self, fits: Callable[[ModelSpec], bool]) -> SearchSpace:
        """Drop values that cannot fit in any architecture of the space.

        Size grows with stacks, depth and channels, so a value is hopeless when the smallest
        architecture that uses it is over budget. Needs only a handful of size computations.
        Raises ConfigError when not even the smallest architecture fits.
        """
        smallest = self.smallest(fits)
        if smallest is None:
            raise ConfigError("no architecture of the search space fits the budget")
        kept: dict[str, tuple] = {}
        for dim in INT_DIMS:
            values = []
            for value in getattr(self, dim):
                if fits(replace(smallest, **{dim: value})):
                    values.append(value)
                else:
                    break  # monotone: larger values do not fit either
            kept[dim] = tuple(values)
        return replace(self, **kept)

    def smallest(self, fits: Callable[[ModelSpec], bool] | None = None) -> ModelSpec | None:
        """The smallest architecture (fewest stacks, shallowest, narrowest; the cheapest of the
        attention x CoordConv variants that `fits`, else the first). None if none fits."""
        base = dict(n_stacks=self.n_stacks[0], depth=self.depth[0], channels=self.channels[0])
        variants = [
            ModelSpec(**base, attention=att, coordconv=cc, n_landmarks=self.n_landmarks)
            for cc in self.coordconv
            for att in self.attention
        ]
        if fits is None:
            return variants[0]
        for spec in variants:
            if fits(spec):
                return spec
        return None

    # -- enumeration and sampling ------------------------------------------------------------
    def __len__(self) -> int:
        return math.prod(len(getattr(self, dim)) for dim in DIMS)

    def specs(self) -> Iterator[ModelSpec]:
        for values in itertools.product(*(getattr(self, dim) for dim in DIMS)):
            yield ModelSpec(**dict(zip(DIMS, values)), n_landmarks=self.n_landmarks)

    def contains(self, spec: ModelSpec) -> bool:
        return all(getattr(spec, dim) in getattr(self, dim) for dim in DIMS)

    def free_dims(self) -> tuple[str, ...]:
        return tuple(dim for dim in DIMS if len(getattr(self, dim)) > 1)

    def suggest(self, trial: Any) -> ModelSpec:
        """Ask the trial for each free dimension (ints as ordered ranges where evenly spaced,
        so TPE sees their order); fixed dimensions are not asked."""
        values: dict[str, Any] = {}
        for dim in DIMS:
            choices = getattr(self, dim)
            if len(choices) == 1:
                values[dim] = choices[0]
            elif dim in INT_DIMS and (step := _even_step(choices)):
                values[dim] = trial.suggest_int(dim, choices[0], choices[-1], step=step)
            else:
                values[dim] = trial.suggest_categorical(dim, list(choices))
        return ModelSpec(**values, n_landmarks=self.n_landmarks)

    def spec_from_params(self, params: dict[str, Any]) -> ModelSpec:
        """The spec of a trial's params (fixed dimensions take their one value)."""
        values = {dim: params.get(dim, getattr(self, dim)[0]) for dim in DIMS}
        return ModelSpec(**values, n_landmarks=self.n_landmarks)

    def params_of(self, spec: ModelSpec) -> dict[str, Any]:
        """The trial params that make `suggest` return `spec` (for enqueueing)."""
        return {dim: getattr(spec, dim) for dim in self.free_dims()}

    def grid(self) -> dict[str, list]:
        """GridSampler's search space: every free dimension's values."""
        return {dim: list(getattr(self, dim)) for dim in self.free_dims()}

    def describe(self) -> str:
        parts = []
        for dim in DIMS:
            values = getattr(self, dim)
            if dim in INT_DIMS and len(values) > 2 and _even_step(values):
                step = _even_step(values)
                text = f"{values[0]}..{values[-1]}" + (f" step {step}" if step != 1 else "")
            else:
                text = "/".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
            parts.append(f"{dim} {text}")
        return ", ".join(parts) + f" ({len(self)} architectures)"


def read_space_file(path: Path | str) -> dict[str, Any]:
    """A search-space TOML file's contents; a missing or malformed file is a ConfigError naming it."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such search-space file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _order_key(dim: str) -> Callable[[Any], Any]:
    if dim == "attention":
        return ATTENTIONS.index
    return lambda v: v


def _even_step(values: tuple[int, ...]) -> int | None:
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    if all(b - a == step for a, b in zip(values, values[1:])):
        return step
    return None


def _check_values(dim: str, values: tuple, where: str) -> None:
    if not values:
        raise ConfigError(f"{where}: {dim} must not be empty")
    for value in values:
        if dim in INT_DIMS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where}: {dim} values must be integers, got {value!r}")
            low, high = INT_BOUNDS[dim]
            if not low <= value <= high:
                raise ConfigError(f"{where}: {dim} value {value} is out of range {low}..{high}")
            if dim == "channels":
                try:  # the model decides which widths it can build (its groups need / 8)
                    ModelSpec(n_stacks=1, depth=1, channels=value)
                except SpecError as exc:
                    raise ConfigError(f"{where}: channels value {value}: {exc}") from None
        elif dim == "attention":
            if value not in ATTENTIONS:
                raise ConfigError(
                    f"{where}: attention value {value!r} is not one of {', '.join(ATTENTIONS)}"
                )
        elif dim == "coordconv":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: coordconv values must be true or false, got {value!r}")


def _parse_dim(dim: str, raw: Any, where: str) -> tuple:
    """A scalar, a list, or (integer dimensions) a {min, max, step} table."""
    if isinstance(raw, dict):
        if dim not in INT_DIMS:
            raise ConfigError(f"{where}: {dim} takes a value or a list, not a table")
        unknown = sorted(set(raw) - {"min", "max", "step"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {dim}.{unknown[0]!r} (allowed: min, max, step)")
        for key in ("min", "max"):
            if key not in raw:
                raise ConfigError(f"{where}: {dim}.{key} is missing")
        default_step = 8 if dim == "channels" else 1
        low, high, step = raw["min"], raw["max"], raw.get("step", default_step)
        for key, value in (("min", low), ("max", high), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where}: {dim}.{key} must be an integer, got {value!r}")
        if step < 1:
            raise ConfigError(f"{where}: {dim}.step must be >= 1, got {step}")
        if high < low:
            raise ConfigError(f"{where}: {dim}.max ({high}) is below {dim}.min ({low})")
        values: tuple = tuple(range(low, high + 1, step))
    elif isinstance(raw, (list, tuple)):
        values = tuple(raw)
    else:
        values = (raw,)
    _check_values(dim, values, where)
    return values
