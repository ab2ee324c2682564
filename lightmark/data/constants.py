"""The 68-point iBUG/300W layout as named ranges, for the synthetic generator and its previews.

The numbers themselves live once, in `lightmark.layouts.IBUG68`; everything else asks a `Layout`.
"""

from __future__ import annotations

from lightmark.layouts import IBUG68


def _range(part: str) -> range:
    indices = IBUG68.part(part)
    return range(indices[0], indices[-1] + 1)


N_LANDMARKS = IBUG68.n_points

# Index ranges of the facial parts (half-open).
JAW = _range("jaw")
RIGHT_BROW = _range("right_brow")  # subject's right = image left in a frontal face
LEFT_BROW = _range("left_brow")
NOSE_BRIDGE = _range("nose_bridge")
NOSE_BASE = _range("nose_base")
RIGHT_EYE = _range("right_eye")
LEFT_EYE = _range("left_eye")
OUTER_LIPS = _range("outer_lips")
INNER_LIPS = _range("inner_lips")

# Outer eye corners: the 300W inter-ocular normalisation.
OUTER_EYE_CORNERS = IBUG68.outer_eye_corners

# Left/right mirror of the 68 points: after a horizontal flip, point i takes point perm[i].
FLIP_PERMUTATION: tuple[int, ...] = IBUG68.flip_permutation
