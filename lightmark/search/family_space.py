"""A search space across model families: the stacked hourglass beside published backbones.

The sampler first picks a `family`, then that family's own parameters (define-by-run: a trial asks
only the dimensions of its family, so TPE with `multivariate=True, group=True` models each family's
dimensions jointly). Hourglass parameters keep their bare names (`n_stacks`, ...), so a study of the
hourglass alone is the same study as before families existed; a backbone family's parameters are
named `<family>.<dim>` (`mobilenetv3.width`).

TOML form: a `family` list and one table per family (a missing table takes that family's defaults):

    family = ["hourglass", "mobilenetv3", "shufflenetv2"]
    [hourglass]
    n_stacks = [1, 2]
    [mobilenetv3]
    variant = ["small", "large"]
    width = [0.35, 0.5, 0.75]
    out_stride = [8, 16]
    head_channels = [16, 32]

A file without `family` is a hourglass space (`SearchSpace`), as always.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lightmark.errors import ConfigError, SpecError
from lightmark.models.backbone_spec import BACKBONES, SHUFFLENET_WIDTHS, BackboneSpec, format_width
from lightmark.models.spec import ATTENTIONS, DEFAULT_N_LANDMARKS
from lightmark.models.specs import FAMILIES, AnySpec, family_of
from lightmark.search.space import DIMS, SearchSpace, read_space_file

BACKBONE_DIMS = ("variant", "width", "out_stride", "head_channels")
FAMILY_PARAM = "family"
_SHORT = {(family, variant): short for short, (family, variant) in BACKBONES.items()}


def variants_of(family: str) -> tuple[str, ...]:
    return tuple(variant for fam, variant in BACKBONES.values() if fam == family)


@dataclass(frozen=True)
class BackboneSpace:
    """One backbone family's allowed values per dimension (sorted); one value = fixed."""

    family: str
    variant: tuple[str, ...] = ()
    width: tuple[float, ...] = (0.5, 1.0)
    out_stride: tuple[int, ...] = (16, 32)
    head_channels: tuple[int, ...] = (32, 64)
    n_landmarks: int = DEFAULT_N_LANDMARKS

    def __post_init__(self) -> None:
        known = variants_of(self.family)
        if not known:
            raise ConfigError(f"unknown family {self.family!r} (known: {', '.join(FAMILIES)})")
        where = f"[{self.family}]"
        variants = tuple(self.variant) or known
        for variant in variants:
            if variant not in known:
                raise ConfigError(f"{where} variant {variant!r} is not one of {', '.join(known)}")
        object.__setattr__(self, "variant", tuple(v for v in known if v in variants))
        for dim in ("width", "out_stride", "head_channels"):
            values = getattr(self, dim)
            values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
            if not values:
                raise ConfigError(f"{where} {dim} must not be empty")
            object.__setattr__(self, dim, tuple(sorted(set(values))))
        try:  # every value once, through the spec's own validation (its message names the field)
            for values in zip(*(itertools.islice(itertools.cycle(getattr(self, dim)), 8) for dim in BACKBONE_DIMS)):
                self._spec(*values)
        except SpecError as exc:
            raise ConfigError(f"{where} {exc}") from None

    def _spec(self, variant: str, width: float, out_stride: int, head_channels: int) -> BackboneSpec:
        return BackboneSpec(backbone=_SHORT[(self.family, variant)], width=float(width), out_stride=out_stride,
                            head_channels=head_channels, n_landmarks=self.n_landmarks)

    @classmethod
    def from_dict(cls, family: str, data: dict[str, Any]) -> BackboneSpace:
        unknown = sorted(set(data) - set(BACKBONE_DIMS))
        if unknown:
            raise ConfigError(f"[{family}]: unknown key {unknown[0]!r} (allowed: {', '.join(BACKBONE_DIMS)})")
        values = {dim: tuple(raw) if isinstance(raw, list) else (raw,) for dim, raw in data.items()}
        for dim in ("out_stride", "head_channels"):
            for value in values.get(dim, ()):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"[{family}] {dim} values must be integers, got {value!r}")
        for value in values.get("width", ()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"[{family}] width values must be numbers, got {value!r}")
        if family == "shufflenetv2" and "width" not in values:
            values["width"] = SHUFFLENET_WIDTHS[:2]
        return cls(family=family, **values)

    # -- the SearchSpace interface ------------------------------------------------------------
    def specs(self) -> Iterator[BackboneSpec]:
        for values in itertools.product(self.variant, self.width, self.out_stride, self.head_channels):
            yield self._spec(*values)

    def __len__(self) -> int:
        return len(self.variant) * len(self.width) * len(self.out_stride) * len(self.head_channels)

    def contains(self, spec: AnySpec) -> bool:
        return (isinstance(spec, BackboneSpec) and spec.family == self.family and spec.variant in self.variant
                and spec.width in self.width and spec.out_stride in self.out_stride
                and spec.head_channels in self.head_channels)

    def bounded(self, input_size: int) -> BackboneSpace | None:
        """Output strides the input size holds (None when none does)."""
        strides = tuple(s for s in self.out_stride if input_size % s == 0 and input_size >= s)
        return replace(self, out_stride=strides) if strides else None

    def smallest(self, fits: Callable[[AnySpec], bool] | None = None) -> BackboneSpec | None:
        """The narrowest, shallowest variant of the family that `fits` (size grows with each value)."""
        for variant in self.variant:  # small before large
            spec = self._spec(variant, self.width[0], self.out_stride[0], self.head_channels[0])
            if fits is None or fits(spec):
                return spec
        return None

    def trimmed(self, fits: Callable[[AnySpec], bool]) -> BackboneSpace | None:
        """Drop values that no architecture of the family can fit (each dimension is monotone)."""
        smallest = self.smallest(fits)
        if smallest is None:
            return None
        variants = tuple(v for v in self.variant
                         if fits(self._spec(v, self.width[0], self.out_stride[0], self.head_channels[0])))
        kept: dict[str, tuple] = {"variant": variants}
        base = dict(variant=smallest.variant, width=self.width[0], out_stride=self.out_stride[0],
                    head_channels=self.head_channels[0])
        for dim in ("width", "out_stride", "head_channels"):
            values = []
            for value in getattr(self, dim):
                if not fits(self._spec(**{**base, dim: value})):
                    break
                values.append(value)
            kept[dim] = tuple(values)
        return replace(self, **kept)

    def free_dims(self) -> tuple[str, ...]:
        return tuple(dim for dim in BACKBONE_DIMS if len(getattr(self, dim)) > 1)

    def param_name(self, dim: str) -> str:
        return f"{self.family}.{dim}"

    def suggest(self, trial: Any) -> BackboneSpec:
        values = {dim: getattr(self, dim)[0] for dim in BACKBONE_DIMS}
        for dim in self.free_dims():
            values[dim] = trial.suggest_categorical(self.param_name(dim), list(getattr(self, dim)))
        return self._spec(**values)

    def spec_from_params(self, params: dict[str, Any]) -> BackboneSpec:
        values = {dim: params.get(self.param_name(dim), getattr(self, dim)[0]) for dim in BACKBONE_DIMS}
        return self._spec(**values)

    def params_of(self, spec: BackboneSpec) -> dict[str, Any]:
        return {self.param_name(dim): getattr(spec, dim) for dim in self.free_dims()}

    def _dims(self) -> tuple[str, ...]:
        """The dimensions worth naming: a family without variants (ShuffleNetV2) has no `variant`."""
        return BACKBONE_DIMS if self.variant != ("",) else BACKBONE_DIMS[1:]

    def to_dict(self) -> dict[str, list]:
        return {dim: list(getattr(self, dim)) for dim in self._dims()}

    def describe(self) -> str:
        text = lambda v: format_width(v) if isinstance(v, float) else str(v)  # noqa: E731
        return ", ".join(f"{dim} {'/'.join(text(v) for v in getattr(self, dim))}" for dim in self._dims())


FamilySubspace = SearchSpace | BackboneSpace


@dataclass(frozen=True)
class MixedSpace:
    """Several families, each with its own subspace; the sampler picks the family first."""

    families: tuple[FamilySubspace, ...] = field(default_factory=tuple)
    n_landmarks: int = DEFAULT_N_LANDMARKS

    def __post_init__(self) -> None:
        if not self.families:
            raise ConfigError("search space: `family` must name at least one family")
        object.__setattr__(self, "families", tuple(replace(sub, n_landmarks=self.n_landmarks)
                                                   for sub in self.families))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(_name(sub) for sub in self.families)

    def subspace(self, family: str) -> FamilySubspace:
        for sub in self.families:
            if _name(sub) == family:
                return sub
        raise ConfigError(f"family {family!r} is not in the search space ({', '.join(self.names)})")

    def _keep(self, subs: list[FamilySubspace | None], why: str) -> MixedSpace:
        kept = tuple(sub for sub in subs if sub is not None)
        if not kept:
            raise ConfigError(why)
        return replace(self, families=kept)

    # -- the SearchSpace interface ------------------------------------------------------------
    def bounded(self, input_size: int) -> MixedSpace:
        subs: list[FamilySubspace | None] = []
        for sub in self.families:
            try:
                subs.append(sub.bounded(input_size))
            except ConfigError:
                subs.append(None)
        return self._keep(subs, f"no family of the search space can take a {input_size} px input")

    def trimmed(self, fits: Callable[[AnySpec], bool]) -> MixedSpace:
        subs: list[FamilySubspace | None] = []
        for sub in self.families:
            subs.append(sub.trimmed(fits) if sub.smallest(fits) is not None else None)
        return self._keep(subs, "no architecture of the search space fits the budget")

    def smallest(self, fits: Callable[[AnySpec], bool] | None = None) -> AnySpec | None:
        """The first family's smallest architecture that `fits` (None if no family has one)."""
        for sub in self.families:
            spec = sub.smallest(fits)
            if spec is not None:
                return spec
        return None

    def with_fixed(self, **fixed: Any) -> MixedSpace:
        """Flags fix hourglass dimensions (`--stacks` ...): they apply to the hourglass subspace."""
        if all(value is None for value in fixed.values()):
            return self
        subs = [sub.with_fixed(**fixed) if isinstance(sub, SearchSpace) else sub for sub in self.families]
        if not any(isinstance(sub, SearchSpace) for sub in subs):
            raise ConfigError("--stacks/--depth/--channels/--attention/--coordconv fix hourglass dimensions, "
                              "and this space has no hourglass family")
        return replace(self, families=tuple(subs))

    def specs(self) -> Iterator[AnySpec]:
        for sub in self.families:
            yield from sub.specs()

    def __len__(self) -> int:
        return sum(len(sub) for sub in self.families)

    def contains(self, spec: AnySpec) -> bool:
        return any(_name(sub) == family_of(spec) and sub.contains(spec) for sub in self.families)

    def suggest(self, trial: Any) -> AnySpec:
        names = list(self.names)
        family = names[0] if len(names) == 1 else trial.suggest_categorical(FAMILY_PARAM, names)
        return self.subspace(family).suggest(trial)

    def spec_from_params(self, params: dict[str, Any]) -> AnySpec:
        return self.subspace(params.get(FAMILY_PARAM, self.names[0])).spec_from_params(params)

    def params_of(self, spec: AnySpec) -> dict[str, Any]:
        params = {FAMILY_PARAM: family_of(spec)} if len(self.families) > 1 else {}
        return {**params, **self.subspace(family_of(spec)).params_of(spec)}  # type: ignore[arg-type]

    def grid(self) -> dict[str, list]:
        raise ConfigError("the grid sampler needs one fixed set of dimensions; a space across families "
                          "asks each family's own: use --sampler tpe or random (bench tabulate trains "
                          "every architecture of it)")

    def to_dict(self) -> dict[str, Any]:
        return {FAMILY_PARAM: list(self.names), **{_name(sub): sub.to_dict() for sub in self.families}}

    def describe(self) -> str:
        parts = [f"{_name(sub)}: {sub.describe()}" + ("" if isinstance(sub, SearchSpace) else f" ({len(sub)})")
                 for sub in self.families]
        return "; ".join(parts) + f" ({len(self)} architectures in all)"


AnySpace = SearchSpace | MixedSpace


def _name(sub: FamilySubspace) -> str:
    return "hourglass" if isinstance(sub, SearchSpace) else sub.family


def space_from_dict(data: dict[str, Any], where: str = "search space") -> AnySpace:
    """A file with `family` is a space across families; without it, a hourglass space as always."""
    if FAMILY_PARAM not in data:
        return SearchSpace.from_dict(data, where=where)
    names = data[FAMILY_PARAM]
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names or len(set(names)) != len(names):
        raise ConfigError(f"{where}: family must be a list of distinct family names ({', '.join(FAMILIES)})")
    extra = sorted(set(data) - {FAMILY_PARAM, *names})
    if extra:
        raise ConfigError(f"{where}: key {extra[0]!r} is neither `family` nor a table of a listed family")
    subs: list[FamilySubspace] = []
    for name in names:
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        if name == "hourglass":
            subs.append(SearchSpace.from_dict(table, where=f"{where} [hourglass]"))
        elif name in FAMILIES:
            try:
                subs.append(BackboneSpace.from_dict(name, table))
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        else:
            raise ConfigError(f"{where}: unknown family {name!r} (known: {', '.join(FAMILIES)})")
    return MixedSpace(families=tuple(subs))


def load_space(path: Path | str) -> AnySpace:
    return space_from_dict(read_space_file(path), where=str(path))



def space_covering(specs: Iterable[AnySpec]) -> AnySpace:
    """The smallest space whose grid holds `specs`: each dimension takes the values seen, per family
    (a hourglass-only set gives a `SearchSpace`, as a table written before families would)."""
    by_family: dict[str, list[AnySpec]] = {}
    for spec in specs:
        by_family.setdefault(family_of(spec), []).append(spec)
    if not by_family:
        raise ConfigError("no architectures to make a space of")
    subs: list[FamilySubspace] = []
    for family in [f for f in FAMILIES if f in by_family]:
        own = by_family[family]
        dims = DIMS if family == "hourglass" else BACKBONE_DIMS
        values = {dim: tuple(sorted({getattr(spec, dim) for spec in own}, key=_sort_key(dim))) for dim in dims}
        subs.append(SearchSpace(**values) if family == "hourglass" else BackboneSpace(family=family, **values))
    if len(subs) == 1 and isinstance(subs[0], SearchSpace):
        return subs[0]
    return MixedSpace(families=tuple(subs))


def complete_part(specs: Iterable[AnySpec]) -> tuple[AnySpace, list[AnySpec]]:
    """The covering space of `specs`, narrowed until every point of its grid is among them: while some
    point is missing, the (family, dimension, value) that most missing points share is dropped. Returns
    the space and the specs left out (none when the grid was complete)."""
    given = list(specs)
    names = {str(s) for s in given}
    kept = list(given)
    while True:
        space = space_covering(kept)
        missing = [s for s in space.specs() if str(s) not in names]
        if not missing:
            kept_names = {str(s) for s in kept}
            return space, [s for s in given if str(s) not in kept_names]
        shared = collections.Counter((family_of(s), dim, getattr(s, dim)) for s in missing
                                     for dim in (DIMS if family_of(s) == "hourglass" else BACKBONE_DIMS))
        lost = {key: sum(family_of(s) == key[0] and getattr(s, key[1]) == key[2] for s in kept) for key in shared}
        family, dim, value = max(shared, key=lambda key: (shared[key], -lost[key]))  # ties: lose the fewest
        kept = [s for s in kept if not (family_of(s) == family and getattr(s, dim) == value)]


def _sort_key(dim: str) -> Callable[[Any], Any]:
    return ATTENTIONS.index if dim == "attention" else (lambda v: v)
