"""`FaceSample`: one image with its K points (K from its source's layout), the unit every data source yields.

Coordinate convention (used by every source, augmentation, codec and metric): points are (x, y)
in pixels of the image, and integer coordinates are pixel centres, so a W-wide image spans
x in [-0.5, W - 0.5] and a horizontal flip maps x -> W - 1 - x.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FaceSample:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    points: np.ndarray  # (K, 2) float32, (x, y) pixels
    name: str = ""  # file name or synthetic id, used in error messages and predictions
    occluded: np.ndarray | None = None  # (K,) bool: point hidden by an occluder (synthetic, COFW)
    meta: dict = field(default_factory=dict)  # e.g. yaw/pitch/roll degrees, expression flags
