"""Landmark layouts as data: point count, left/right flip pairs, NME normalisation points, face parts.

Every stage that needs to know what the points *are* (augmentation's flip, the inter-ocular and
inter-pupil NME, per-part NME, drawing, the readers) asks a `Layout` instead of assuming 68 points.
The registry is small and fixed: the iBUG/300W 68 points (the synthetic faces and the challenge),
WFLW's 98, COFW's 29, AFLW's 19 and Microsoft Face Synthetics' 70 (the 68 plus two pupils).
The flip pairs and eye indices follow mmpose's dataset meta files (`configs/_base_/datasets/*.py`)
and its NME metric's default eye-corner indices.

It sits at the top of the package with no torch import so every stage may use it (the model spec
only needs the default point count).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from lightmark.errors import ConfigError


@dataclass(frozen=True)
class Layout:
    """A named landmark layout. Indices are 0-based; "right" is the subject's right (image left).

    `eye_centres`: the points whose mean is each eye's centre for the inter-pupil NME (the pupil
    itself when the layout has one). `parts`: (name, indices) for drawing and per-part NME; they
    cover every point once.
    """

    name: str
    n_points: int
    flip_pairs: tuple[tuple[int, int], ...]
    outer_eye_corners: tuple[int, int]
    eye_centres: tuple[tuple[int, ...], tuple[int, ...]]
    parts: tuple[tuple[str, tuple[int, ...]], ...]
    reference: str = ""

    def __post_init__(self) -> None:
        n = self.n_points
        used = [i for pair in self.flip_pairs for i in pair]
        if len(set(used)) != len(used):
            raise ConfigError(f"layout {self.name}: a point appears in two flip pairs")
        indices = [*used, *self.outer_eye_corners, *(i for eye in self.eye_centres for i in eye),
                   *(i for _, idx in self.parts for i in idx)]
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise ConfigError(f"layout {self.name}: index {bad[0]} outside 0..{n - 1}")
        covered = sorted(i for _, idx in self.parts for i in idx)
        if covered != list(range(n)):
            raise ConfigError(f"layout {self.name}: the parts must cover each of the {n} points once")

    @property
    def flip_permutation(self) -> tuple[int, ...]:
        """After a horizontal flip, point i takes point perm[i] (pairs swap, the rest stay)."""
        perm = list(range(self.n_points))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return tuple(perm)

    def part(self, name: str) -> tuple[int, ...]:
        for part_name, indices in self.parts:
            if part_name == name:
                return indices
        raise ConfigError(f"layout {self.name}: no part {name!r}; it has {', '.join(self.part_names)}")

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.parts)


def _span(start: int, stop: int) -> tuple[int, ...]:
    return tuple(range(start, stop))


IBUG68 = Layout(
    name="ibug68",
    n_points=68,
    flip_pairs=(
        *((i, 16 - i) for i in range(8)),  # jaw
        *((17 + i, 26 - i) for i in range(5)),  # brows
        (31, 35), (32, 34),  # nostrils
        (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
        (48, 54), (49, 53), (50, 52), (59, 55), (58, 56),  # outer lips
        (60, 64), (61, 63), (67, 65),  # inner lips
    ),
    outer_eye_corners=(36, 45),
    eye_centres=(_span(36, 42), _span(42, 48)),
    parts=(("jaw", _span(0, 17)), ("right_brow", _span(17, 22)), ("left_brow", _span(22, 27)),
           ("nose_bridge", _span(27, 31)), ("nose_base", _span(31, 36)), ("right_eye", _span(36, 42)),
           ("left_eye", _span(42, 48)), ("outer_lips", _span(48, 60)), ("inner_lips", _span(60, 68))),
    reference="iBUG 300-W (Sagonas et al. 2013); mmpose configs/_base_/datasets/300w.py",
)

FACESYNTHETICS70 = Layout(
    name="facesynthetics70",
    n_points=70,
    flip_pairs=(*IBUG68.flip_pairs, (68, 69)),
    outer_eye_corners=(36, 45),
    eye_centres=((68,), (69,)),
    parts=(*IBUG68.parts, ("pupils", (68, 69))),
    reference="Microsoft Face Synthetics (Wood et al. 2021): the 68 iBUG points, then the two pupils",
)

WFLW98 = Layout(
    name="wflw98",
    n_points=98,
    flip_pairs=(
        *((i, 32 - i) for i in range(16)),  # jaw
        (33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47),  # brows
        (55, 59), (56, 58),  # nostrils
        (60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73),  # eyes
        (76, 82), (77, 81), (78, 80), (83, 87), (84, 86),  # outer lips
        (88, 92), (89, 91), (93, 95),  # inner lips
        (96, 97),  # pupils
    ),
    outer_eye_corners=(60, 72),
    eye_centres=((96,), (97,)),
    parts=(("jaw", _span(0, 33)), ("right_brow", _span(33, 42)), ("left_brow", _span(42, 51)),
           ("nose_bridge", _span(51, 55)), ("nose_base", _span(55, 60)), ("right_eye", _span(60, 68)),
           ("left_eye", _span(68, 76)), ("outer_lips", _span(76, 88)), ("inner_lips", _span(88, 96)),
           ("pupils", (96, 97))),
    reference="WFLW (Wu et al. 2018); mmpose configs/_base_/datasets/wflw.py",
)

COFW29 = Layout(
    name="cofw29",
    n_points=29,
    flip_pairs=((0, 1), (2, 3), (4, 6), (5, 7), (8, 9), (10, 11), (12, 14), (13, 15), (16, 17),
                (18, 19), (22, 23)),
    outer_eye_corners=(8, 9),
    eye_centres=((16,), (17,)),
    parts=(("right_brow", (0, 2, 4, 5)), ("left_brow", (1, 3, 6, 7)),
           ("right_eye", (8, 10, 12, 13)), ("left_eye", (9, 11, 14, 15)), ("pupils", (16, 17)),
           ("nose", (18, 19, 20, 21)), ("mouth", (22, 23, 24, 25, 26, 27)), ("chin", (28,))),
    reference="COFW (Burgos-Artizzu et al. 2013); mmpose configs/_base_/datasets/cofw.py",
)

AFLW19 = Layout(
    name="aflw19",
    n_points=19,
    flip_pairs=((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)),
    outer_eye_corners=(6, 11),
    eye_centres=((7,), (10,)),
    parts=(("right_brow", (0, 1, 2)), ("left_brow", (3, 4, 5)), ("right_eye", (6, 7, 8)),
           ("left_eye", (9, 10, 11)), ("nose", (12, 13, 14)), ("mouth", (15, 16, 17)), ("chin", (18,))),
    reference="AFLW-19 (Koestinger et al. 2011; Zhu et al. 2016); mmpose configs/_base_/datasets/aflw.py",
)

DEFAULT_LAYOUT = IBUG68

LAYOUTS: Mapping[str, Layout] = MappingProxyType(
    {layout.name: layout for layout in (IBUG68, WFLW98, COFW29, AFLW19, FACESYNTHETICS70)})


# Layouts that are a selection of another's points: (from, to) -> the indices kept, in order.
_SUBSETS: Mapping[tuple[str, str], tuple[int, ...]] = MappingProxyType({
    (FACESYNTHETICS70.name, IBUG68.name): tuple(range(IBUG68.n_points)),  # drop the two pupils
})


def get_layout(name: str) -> Layout:
    """The registered layout called `name`; ConfigError naming the choices otherwise."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ConfigError(f"layout: unknown {name!r}; choose from {', '.join(LAYOUTS)}") from None


def layout_for_points(n_points: int) -> Layout:
    """The registered layout with `n_points` points (the counts are all different)."""
    for layout in LAYOUTS.values():
        if layout.n_points == n_points:
            return layout
    counts = ", ".join(f"{layout.name} = {layout.n_points}" for layout in LAYOUTS.values())
    raise ConfigError(f"no landmark layout has {n_points} points (known: {counts})")


def subset_indices(source: Layout, target: Layout) -> tuple[int, ...]:
    """The indices of `source`'s points that make up `target` (all of them when they are the same
    layout); ConfigError naming both layouts and point counts when `target` is not a part of it."""
    if source == target:
        return tuple(range(source.n_points))
    try:
        return _SUBSETS[(source.name, target.name)]
    except KeyError:
        raise ConfigError(f"layout: the data's {source.name} ({source.n_points} points) cannot be read as "
                          f"{target.name} ({target.n_points} points)") from None
