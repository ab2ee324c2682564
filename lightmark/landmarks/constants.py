"""The 68-point iBUG/300W layout, defined once for the whole project."""

from __future__ import annotations

N_LANDMARKS = 68

# Index ranges of the facial parts (half-open).
JAW = range(0, 17)
RIGHT_BROW = range(17, 22)  # subject's right = image left in a frontal face
LEFT_BROW = range(22, 27)
NOSE_BRIDGE = range(27, 31)
NOSE_BASE = range(31, 36)
RIGHT_EYE = range(36, 42)
LEFT_EYE = range(42, 48)
OUTER_LIPS = range(48, 60)
INNER_LIPS = range(60, 68)

# Outer eye corners: the 300W inter-ocular normalisation.
OUTER_EYE_CORNERS = (36, 45)


def _flip_permutation() -> tuple[int, ...]:
    """Left/right mirror of the 68 points: after a horizontal flip, point i takes point perm[i]."""
    pairs = [
        *[(i, 16 - i) for i in range(8)],  # jaw
        *[(17 + i, 26 - i) for i in range(5)],  # brows
        (31, 35), (32, 34),  # nostrils
        (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
        (48, 54), (49, 53), (50, 52), (59, 55), (58, 56),  # outer lips
        (60, 64), (61, 63), (67, 65),  # inner lips
    ]
    perm = list(range(N_LANDMARKS))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()
