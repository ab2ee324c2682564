"""Contact sheets: faces with their points drawn, one colour per facial part of their layout.

`write_preview` is `lightmark data preview`; the sheets are also the picture in docs/data.md; works for any FaceSample
(synthetic or read from disk). Occluded points are drawn as rings, visible ones as dots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lightmark.atomic import write_bytes_atomic
from lightmark.data.formats import open_source
from lightmark.data.sample import FaceSample
from lightmark.data.synth import SynthFaces
from lightmark.errors import ConfigError, DataError
from lightmark.layouts import DEFAULT_LAYOUT, Layout, layout_for_points

# RGB per kind of part, chosen to stay distinguishable on skin and on busy backgrounds. A layout's
# part takes the colour of the first kind its name contains ("right_brow" -> brow).
PART_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("jaw", (255, 220, 0)),
    ("chin", (255, 220, 0)),
    ("brow", (255, 120, 0)),
    ("nose", (0, 230, 255)),
    ("eye", (0, 255, 80)),
    ("pupil", (0, 255, 80)),
    ("outer_lips", (255, 40, 200)),
    ("mouth", (255, 40, 200)),
    ("inner_lips", (170, 90, 255)),
)
OTHER_COLOUR = (255, 255, 255)


def point_colours(layout: Layout = DEFAULT_LAYOUT) -> np.ndarray:
    """(K, 3) uint8 RGB colour of each point of the layout."""
    out = np.zeros((layout.n_points, 3), np.uint8)
    for name, indices in layout.parts:
        colour = next((c for kind, c in PART_COLOURS if kind in name), OTHER_COLOUR)
        out[list(indices)] = colour
    return out


def colours_for(n_points: int) -> np.ndarray:
    """The colours of the registered layout with n_points points; one colour when there is none."""
    try:
        return point_colours(layout_for_points(n_points))
    except ConfigError:
        return np.full((n_points, 3), OTHER_COLOUR, np.uint8)


def draw_points(image: np.ndarray, points: np.ndarray, occluded: np.ndarray | None = None,
                radius: float | None = None) -> np.ndarray:
    """A copy of `image` (RGB) with the points drawn; sub-pixel exact (cv2 shift)."""
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    r = radius if radius is not None else max(1.0, min(h, w) / 110)
    shift = 4
    colours = colours_for(len(points))
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


def preview_samples(data: Path | None, n: int, size: int, seed: int = 0,
                    image_root: Path | None = None) -> tuple[list[FaceSample], str]:
    """The first n faces of a dataset on disk (any format lightmark reads), else n synthetic faces;
    and where they come from, in words."""
    if data is None:
        gen = SynthFaces(size=size, seed=seed)
        return [gen.render(i) for i in range(n)], f"synthetic (seed {seed})"
    if not data.exists():
        raise DataError(f"--data {data}: no such file or directory")
    source = open_source(data, "auto", size, image_root=image_root)
    samples = [source[i] for i in range(min(n, len(source)))]
    if not samples:
        raise DataError(f"--data {data}: no samples")
    return samples, str(data)


def write_preview(out: Path, *, data: Path | None = None, n: int = 16, size: int = 128, seed: int = 0,
                  cols: int | None = None, image_root: Path | None = None) -> dict[str, Any]:
    """A contact sheet PNG of n faces (`preview_samples`) at `out`; returns a summary of it."""
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if size < 16:
        raise ConfigError(f"--size must be >= 16 pixels, got {size}")
    samples, source = preview_samples(data, n, size, seed, image_root)
    sheet = contact_sheet(samples, cols=cols, tile=size)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise DataError(f"could not encode {out}")
    write_bytes_atomic(out, buf.tobytes())
    return {"out": str(out), "source": source, "n": len(samples), "size": size,
            "width_px": int(sheet.shape[1]), "height_px": int(sheet.shape[0])}
