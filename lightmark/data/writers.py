"""Writers: any source (`formats.open_source`) to the challenge layout or to iBUG `.pts` folders.

`lightmark data convert` uses them to turn a public dataset's own format into one every tool
reads: each sample as the source yields it (cropped and resized to the source's input size) is
written as a PNG, with its points in `annot.pkl` (challenge) or in a `.pts` file beside it.
Files are written atomically; the points keep the source's layout (K points).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from lightmark.atomic import write_text_atomic
from lightmark.data.formats import ANNOT_NAME, write_challenge_annotations
from lightmark.data.images import write_png
from lightmark.data.sources import FaceSource
from lightmark.errors import DataError

TARGETS = ("challenge", "pts")


def pts_text(points: np.ndarray) -> str:
    """An iBUG `.pts` file's text: 1-based pixel-centre coordinates (`formats.parse_pts` reads it)."""
    rows = "\n".join(f"{x + 1.0:.3f} {y + 1.0:.3f}" for x, y in np.asarray(points, np.float64))
    return f"version: 1\nn_points: {len(points)}\n{{\n{rows}\n}}\n"


def _image_name(name: str) -> str:
    """The sample's name as a relative PNG path (sub folders kept, nothing outside the output)."""
    path = PurePosixPath(name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".", "..", "/")]
    if not parts:
        raise DataError(f"sample name {name!r} gives no file name")
    return str(PurePosixPath(*parts).with_suffix(".png"))


def convert(source: FaceSource, out: Path, to: str, advance: Callable[[], None] | None = None) -> dict:
    """Write every sample of `source` under `out` in format `to` (challenge | pts); returns counts."""
    if to not in TARGETS:
        raise DataError(f"--to: unknown target {to!r}; choose from {', '.join(TARGETS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    taken: set[str] = set()
    points: list[np.ndarray] = []
    for i in range(len(source)):
        sample = source[i]
        name = _image_name(sample.name)
        if name in taken:  # two faces of one photo (WFLW lists one line per face)
            name = str(PurePosixPath(name).with_name(f"{PurePosixPath(name).stem}-{i:06d}.png"))
        taken.add(name)
        write_png(out / name, sample.image, compression=None)
        if to == "pts":
            write_text_atomic((out / name).with_suffix(".pts"), pts_text(sample.points))
        names.append(name)
        points.append(np.asarray(sample.points, np.float32))
        if advance is not None:
            advance()
    if to == "challenge":
        write_challenge_annotations(out / ANNOT_NAME, names, np.stack(points))
    return {"out": str(out), "to": to, "n": len(names), "layout": source.layout.name,
            "n_points": source.layout.n_points}
