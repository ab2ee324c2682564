"""Contact sheets: faces with their 68 points drawn, one colour per facial part.

Used by `lightmark data preview` and for the picture in docs/data.md; works for any FaceSample
(synthetic or read from disk). Occluded points are drawn as rings, visible ones as dots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from lightmark.landmarks import constants as C
from lightmark.landmarks.sample import FaceSample

# RGB per part, chosen to stay distinguishable on skin and on busy backgrounds.
PART_COLOURS: dict[str, tuple[range, tuple[int, int, int]]] = {
    "jaw": (C.JAW, (255, 220, 0)),
    "brows": (range(C.RIGHT_BROW.start, C.LEFT_BROW.stop), (255, 120, 0)),
    "nose": (range(C.NOSE_BRIDGE.start, C.NOSE_BASE.stop), (0, 230, 255)),
    "eyes": (range(C.RIGHT_EYE.start, C.LEFT_EYE.stop), (0, 255, 80)),
    "outer_lips": (C.OUTER_LIPS, (255, 40, 200)),
    "inner_lips": (C.INNER_LIPS, (170, 90, 255)),
}


def point_colours() -> np.ndarray:
    """(68, 3) uint8 RGB colour of each point."""
    out = np.zeros((C.N_LANDMARKS, 3), np.uint8)
    for idx, colour in PART_COLOURS.values():
        out[list(idx)] = colour
    return out


def draw_points(image: np.ndarray, points: np.ndarray, occluded: np.ndarray | None = None,
                radius: float | None = None) -> np.ndarray:
    """A copy of `image` (RGB) with the points drawn; sub-pixel exact (cv2 shift)."""
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    r = radius if radius is not None else max(1.0, min(h, w) / 110)
    shift = 4
    colours = point_colours()
    occ = np.zeros(len(points), bool) if occluded is None else np.asarray(occluded, bool)
    raw = np.asarray(points, np.float64)
    finite = np.isfinite(raw).all(axis=1) & (np.abs(raw) < 1e6).all(axis=1)
    pts = np.round(np.where(finite[:, None], raw, 0.0) * (1 << shift)).astype(np.int64)
    rr = int(round(r * (1 << shift)))
    for i, (p, c) in enumerate(zip(pts, colours)):
        if not finite[i]:
            continue
        colour = tuple(int(v) for v in c)
        if occ[i]:
            cv2.circle(out, (int(p[0]), int(p[1])), rr, colour, 1, cv2.LINE_AA, shift)
        else:
            cv2.circle(out, (int(p[0]), int(p[1])), rr, (0, 0, 0), -1, cv2.LINE_AA, shift)
            cv2.circle(out, (int(p[0]), int(p[1])), max(rr * 2 // 3, 1), colour, -1, cv2.LINE_AA, shift)
    return out


def contact_sheet(samples: Sequence[FaceSample], cols: int | None = None, tile: int | None = None,
                  gap: int = 2) -> np.ndarray:
    """A grid of the samples with points drawn (RGB uint8). Tiles are resized to `tile` pixels
    (default: the first sample's size), and their points with them."""
    if not samples:
        raise ValueError("contact_sheet needs at least one sample")
    n = len(samples)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tile = tile or samples[0].image.shape[0]
    sheet = np.full((rows * (tile + gap) + gap, cols * (tile + gap) + gap, 3), 255, np.uint8)
    for k, s in enumerate(samples):
        img = s.image
        h, w = img.shape[:2]
        pts = np.asarray(s.points, np.float64)
        if (h, w) != (tile, tile):
            img = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
            pts = (pts + 0.5) * np.array([tile / w, tile / h]) - 0.5
        drawn = draw_points(img, pts, s.occluded)
        r, c = divmod(k, cols)
        y0, x0 = gap + r * (tile + gap), gap + c * (tile + gap)
        sheet[y0: y0 + tile, x0: x0 + tile] = drawn
    return sheet
