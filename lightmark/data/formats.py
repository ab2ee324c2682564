"""Real dataset formats read from paths the user gives (challenge `annot.pkl`, iBUG `.pts`, image folders),
and the detection that opens any of them or of the public datasets' own formats (`public_formats`).

Every source has `__len__`, `__getitem__(i) -> FaceSample`, `names` and `layout` (the
`lightmark.layouts.Layout` of its points, found from their count). Annotations are validated
eagerly when a source is opened (cheap: no image is decoded); images are decoded lazily, and
`validate()` decodes them all once. Bad input never passes silently: every problem raises
`DataError` naming the file (or the index inside the pickle).

Coordinates follow `lightmark.data.sample`: integer coordinates are pixel centres. Resizing an
image from W to S pixels maps x -> (x + 0.5) * S / W - 0.5, the same for y.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from lightmark.atomic import write_bytes_atomic
from lightmark.data.images import IMAGE_SUFFIXES, crop_face, image_size, read_image, resize_sample
from lightmark.data.public_formats import CofwSource, FaceSyntheticsSource, WflwSource
from lightmark.data.sample import FaceSample
from lightmark.data.sources import FaceSource
from lightmark.errors import ConfigError, DataError
from lightmark.layouts import DEFAULT_LAYOUT, LAYOUTS, Layout, get_layout, layout_for_points, subset_indices

log = logging.getLogger(__name__)

OUTSIDE_POLICIES = ("keep", "drop")
FORMATS = ("auto", "challenge", "pts", "images", "wflw", "cofw", "facesynthetics")
ANNOT_NAME = "annot.pkl"


def write_challenge_annotations(path: Path, names: Sequence[str], points: np.ndarray) -> None:
    """The challenge layout: a pickled tuple (list of file names, float array (N, K, 2) pixels)."""
    array = np.asarray(points, dtype=np.float32)
    write_bytes_atomic(path, pickle.dumps((list(names), array), protocol=4))


def _outside_mask(points: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """points (N, K, 2), sizes (N, 2) as (w, h) -> (N,) bool: some point outside its image."""
    low = (points < -0.5).any(axis=(1, 2))
    high = (points > sizes[:, None, :] - 0.5).any(axis=(1, 2))
    return low | high


def _drop_outside(images: list[Path], points: np.ndarray, where: object) -> np.ndarray:
    """Indices of the samples to keep under outside="drop"; logs how many were dropped."""
    sizes = np.array([image_size(path) for path in images], dtype=np.float32).reshape(-1, 2)
    bad = _outside_mask(points, sizes)
    if bad.any():
        log.warning("%s: dropped %d of %d samples with points outside the image",
                    where, int(bad.sum()), len(images))
    return np.flatnonzero(~bad)


def _check_outside(outside: str) -> None:
    if outside not in OUTSIDE_POLICIES:
        raise DataError(f"outside must be one of {', '.join(OUTSIDE_POLICIES)}, got {outside!r}")


def points_layout(where: object, n_points: int) -> Layout:
    """The registered layout of `n_points` points, or a DataError naming the file (`where`)."""
    try:
        return layout_for_points(n_points)
    except ConfigError as exc:
        raise DataError(f"{where}: {exc}") from None


# -- the challenge layout ----------------------------------------------------------------------------
class ChallengeSource:
    """A folder of images plus `annot.pkl` = (list of N file names, float array (N, K, 2) pixels).

    `input_size`: resize images (and points) to this square size when they differ; None keeps them.
    `outside`: "keep" samples with points outside their image, or "drop" them (reads image headers
    at open to know the sizes); `n_dropped` says how many were dropped.
    """

    def __init__(
        self,
        root: Path | str,
        input_size: int | None = None,
        *,
        outside: str = "keep",
        annot: Path | str | None = None,
    ) -> None:
        _check_outside(outside)
        self.root = Path(root)
        self.annot_path = Path(annot) if annot is not None else self.root / ANNOT_NAME
        self.input_size = input_size
        self.outside = outside
        names, points = _load_annot(self.annot_path)
        self.n_dropped = 0
        if outside == "drop":
            keep = _drop_outside([self.root / n for n in names], points, self.annot_path)
            self.n_dropped = len(names) - len(keep)
            names, points = [names[i] for i in keep], points[keep]
        self.names: list[str] = names
        self.raw_points: np.ndarray = points  # (N, K, 2) float32, in the files' own pixels (not resized)
        self.layout: Layout = points_layout(self.annot_path, points.shape[1])
        self.attributes = _hardening_flags(self.root / "meta.json", names)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> FaceSample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        name = self.names[index]
        image = read_image(self.root / name)
        points = self.raw_points[index]
        if self.input_size is not None:
            image, points = resize_sample(image, points, self.input_size)
        return FaceSample(image=image, points=points.copy(), name=name)

    def validate(self) -> dict:
        """Decode every image once; raise DataError at the first bad one. Returns counts."""
        return _validate(self, lambda i: self.root / self.names[i], self.raw_points)


def _hardening_flags(meta_path: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    """Per hardening, which faces have it, from the meta.json `lightmark data harden` writes (so evaluate
    reports the NME of each, as it does WFLW's attributes); None for any other folder."""
    if not meta_path.is_file():
        return None
    try:
        samples = json.loads(meta_path.read_text()).get("samples") or []
        by_name = {s["name"]: s["hardening"] for s in samples if isinstance(s, dict) and "hardening" in s}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None  # not ours: a meta.json of another writer is no reason to refuse the data
    if not by_name:
        return None
    kinds = list(dict.fromkeys(by_name.values()))
    return {k: np.array([by_name.get(n) == k for n in names], dtype=bool) for k in kinds}


def _load_annot(path: Path) -> tuple[list[str], np.ndarray]:
    """Load and check annot.pkl; every failure names the file and, where it applies, the index."""
    if not path.is_file():
        raise DataError(f"{path}: annotation file is missing")
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
    except Exception as exc:  # truncated or not a pickle at all
        raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError(f"{path}: expected a tuple (names, points), got {type(data).__name__}"
                        + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    names, points = data
    if not isinstance(names, (list, tuple)):
        raise DataError(f"{path}: names must be a list of file names, got {type(names).__name__}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise DataError(f"{path}: index {i}: file name must be a non-empty string, got {name!r}")
    try:
        array = np.asarray(points, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: points are not a float array ({exc})") from None
    if array.ndim != 3 or array.shape[2] != 2 or array.shape[1] not in {v.n_points for v in LAYOUTS.values()}:
        shapes = " or ".join(f"(N, {v.n_points}, 2) ({v.name})" for v in LAYOUTS.values())
        raise DataError(f"{path}: points must have shape {shapes}, got {array.shape}")
    if array.shape[0] != len(names):
        raise DataError(f"{path}: {len(names)} names but {array.shape[0]} point sets")
    finite = np.isfinite(array).all(axis=(1, 2))
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{path}: index {i} ({names[i]}): NaN or infinite coordinates "
                        f"({int((~finite).sum())} samples affected)")
    return list(names), array


# -- iBUG / 300W .pts folders --------------------------------------------------------------------------
def parse_pts(path: Path) -> np.ndarray:
    """Parse an iBUG `.pts` file -> (n_points, 2) float32 in 0-based pixel-centre coordinates.

    The files are 1-based (the first pixel's centre is 1.0), so 1 is subtracted.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read .pts file ({exc})") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    n_points = None
    try:
        start = lines.index("{")
        end = lines.index("}", start)
    except ValueError:
        raise DataError(f"{path}: malformed .pts file (no '{{' ... '}}' block)") from None
    for line in lines[:start]:
        key, _, value = line.partition(":")
        if key.strip() == "n_points":
            try:
                n_points = int(value)
            except ValueError:
                raise DataError(f"{path}: malformed n_points line {line!r}") from None
    if n_points is None:
        raise DataError(f"{path}: malformed .pts file (no n_points header)")
    rows = lines[start + 1:end]
    counts = {v.n_points for v in LAYOUTS.values()}
    if n_points not in counts or len(rows) != n_points:
        expected = n_points if n_points in counts else DEFAULT_LAYOUT.n_points
        others = ", ".join(f"{v.name} = {v.n_points}" for v in LAYOUTS.values() if v.n_points != expected)
        raise DataError(f"{path}: expected {expected} points, header says {n_points}, file has {len(rows)} "
                        f"(other layouts: {others})")
    try:
        values = np.array([[float(v) for v in row.split()] for row in rows], dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: malformed coordinate line ({exc})") from None
    if values.shape != (n_points, 2):
        raise DataError(f"{path}: every point line must hold two numbers")
    if not np.isfinite(values).all():
        raise DataError(f"{path}: NaN or infinite coordinates")
    return (values - 1.0).astype(np.float32)


def _image_beside(pts: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (pts.with_suffix(suffix), pts.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    raise DataError(f"{pts}: no image beside it (looked for {', '.join(IMAGE_SUFFIXES)})")


class PtsSource:
    """iBUG/300W folders: `.pts` files beside their images (searched recursively).

    Each sample is cropped to a square around its points' box (side = longer box side times
    1 + 2 * margin) and resized to input_size, with the points transformed the same way.
    `outside` ("keep" | "drop") applies to points outside the original image; "drop" reads image
    headers at open; `n_dropped` says how many samples were dropped.
    """

    def __init__(self, root: Path | str, input_size: int, margin: float = 0.25, *,
                 outside: str = "keep") -> None:
        _check_outside(outside)
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: not a directory")
        self.input_size = int(input_size)
        self.margin = float(margin)
        self.outside = outside
        pts_files = sorted(self.root.rglob("*.pts"))
        if not pts_files:
            raise DataError(f"{self.root}: no .pts files found")
        images = [_image_beside(p) for p in pts_files]
        parsed = [parse_pts(p) for p in pts_files]
        for path, pts in zip(pts_files, parsed):
            if len(pts) != len(parsed[0]):
                raise DataError(f"{path}: {len(pts)} points, but {pts_files[0]} has {len(parsed[0])}")
        points = np.stack(parsed)
        self.layout: Layout = points_layout(pts_files[0], points.shape[1])
        self.n_dropped = 0
        if outside == "drop":
            keep = _drop_outside(images, points, self.root)
            self.n_dropped = len(images) - len(keep)
            images, points = [images[i] for i in keep], points[keep]
        self.image_paths: list[Path] = images
        self.raw_points: np.ndarray = points  # (N, K, 2) float32, original-image pixels, 0-based
        self.names: list[str] = [str(p.relative_to(self.root)) for p in images]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> FaceSample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        image = read_image(self.image_paths[index])
        crop, points, matrix = crop_face(image, self.raw_points[index], self.input_size, self.margin)
        return FaceSample(image=crop, points=points, name=self.names[index], meta={"crop_matrix": matrix})

    def validate(self) -> dict:
        return _validate(self, lambda i: self.image_paths[i], self.raw_points)


# -- plain image folders (prediction) -----------------------------------------------------------------
class ImageFolderSource:
    """Images without points, for prediction: a folder (recursive) or an explicit list of files.

    Images are resized to input_size x input_size; `meta["original_size"]` = (width, height) lets
    predictions be mapped back. `points` are NaN (there are none), as many as `layout` has.
    """

    def __init__(self, root_or_files: Path | str | Sequence[Path | str], input_size: int,
                 layout: Layout = DEFAULT_LAYOUT) -> None:
        self.input_size = int(input_size)
        self.layout = layout
        if isinstance(root_or_files, (str, Path)):
            root = Path(root_or_files)
            if root.is_dir():
                files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise DataError(f"{root}: no images found ({', '.join(IMAGE_SUFFIXES)})")
                self.root: Path | None = root
            elif root.is_file():
                files, self.root = [root], None
            else:
                raise DataError(f"{root}: no such file or directory")
        else:
            files, self.root = [Path(p) for p in root_or_files], None
            for path in files:
                if not path.is_file():
                    raise DataError(f"{path}: image file is missing")
        self.image_paths: list[Path] = files
        self.names: list[str] = [
            str(p.relative_to(self.root)) if self.root is not None else str(p) for p in files
        ]
        self.n_dropped = 0

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> FaceSample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        image = read_image(self.image_paths[index])
        h, w = image.shape[:2]
        nan = np.full((self.layout.n_points, 2), np.nan, dtype=np.float32)
        image, _ = resize_sample(image, nan, self.input_size)
        return FaceSample(image=image, points=nan, name=self.names[index],
                          meta={"original_size": (w, h)})

    def validate(self) -> dict:
        for i in range(len(self)):
            read_image(self.image_paths[i])
        return {"n": len(self), "n_dropped": 0, "n_outside": 0}


def _validate(source, path_of, points: np.ndarray) -> dict:
    """Decode every image (raising DataError at the first bad one) and count points outside."""
    n_outside = 0
    for i in range(len(source)):
        image = read_image(path_of(i))
        h, w = image.shape[:2]
        n_outside += int(_outside_mask(points[i:i + 1], np.array([[w, h]], np.float32))[0])
    return {"n": len(source), "n_dropped": source.n_dropped, "n_outside": n_outside}


# -- reading a source as another layout ------------------------------------------------------------------
class LayoutView:
    """Another source's samples with only the points of `layout` (Face Synthetics' 70 read as the
    iBUG 68 drops the pupils); `lightmark.layouts.subset_indices` says which, or why not."""

    def __init__(self, source: FaceSource, layout: Layout) -> None:
        try:
            self.indices = np.asarray(subset_indices(source.layout, layout), dtype=np.intp)
        except ConfigError as exc:
            raise DataError(f"{_where(source)}: {exc}") from None
        self.source, self.layout = source, layout
        self.n_dropped = getattr(source, "n_dropped", 0)
        self.raw_points = source.raw_points[:, self.indices]

    @property
    def names(self) -> list[str]:
        return self.source.names

    @property
    def attributes(self) -> dict[str, np.ndarray] | None:
        return getattr(self.source, "attributes", None)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> FaceSample:
        sample = self.source[index]
        occluded = None if sample.occluded is None else sample.occluded[self.indices]
        return replace(sample, points=sample.points[self.indices], occluded=occluded)

    def validate(self) -> dict:
        return self.source.validate()


def _where(source: FaceSource) -> object:
    for name in ("annot_path", "list_path", "path", "root"):
        if getattr(source, name, None) is not None:
            return getattr(source, name)
    return type(source).__name__


# -- detection -----------------------------------------------------------------------------------------
def detect_format(path: Path | str) -> str:
    """challenge (annot.pkl), wflw (a .txt annotation list), cofw (a .mat file), facesynthetics
    (`*_ldmks.txt` beside images), pts (.pts files) or images (a plain image folder / file)."""
    path = Path(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".pkl":
            return "challenge"
        if suffix == ".txt":
            return "wflw"
        if suffix == ".mat":
            return "cofw"
        if suffix in IMAGE_SUFFIXES:
            return "images"
        raise DataError(f"{path}: not a dataset (expected a folder, an annot.pkl, a WFLW .txt list, "
                        "a COFW .mat or an image)")
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    if (path / ANNOT_NAME).is_file():
        return "challenge"
    if next(path.rglob("*_ldmks.txt"), None) is not None:
        return "facesynthetics"
    if next(path.rglob("*.pts"), None) is not None:
        return "pts"
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")):
        return "images"
    raise DataError(f"{path}: no {ANNOT_NAME}, .pts files or images found (nor Face Synthetics *_ldmks.txt)")


def open_source(path: Path | str, fmt: str = "auto", input_size: int | None = None, *,
                outside: str = "keep", margin: float = 0.25, layout: str | None = None,
                image_root: Path | str | None = None) -> FaceSource:
    """Open a dataset on disk in the given (or detected) format, resized to input_size.

    `layout`: None or "auto" keeps the data's own layout; a registered name reads the data as that
    layout when it is a part of the data's (`LayoutView`), else a DataError naming both.
    `image_root`: where a WFLW list's image paths start (default: the list's folder).
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"{path}: unknown data format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "challenge":
        if path.is_file():
            source: FaceSource = ChallengeSource(path.parent, input_size, outside=outside, annot=path)
        else:
            source = ChallengeSource(path, input_size, outside=outside)
    elif input_size is None:
        raise DataError(f"{path}: format {fmt!r} needs an input size")
    elif fmt == "pts":
        source = PtsSource(path, input_size, margin, outside=outside)
    elif fmt == "wflw":
        source = WflwSource(path, input_size, image_root, margin)
    elif fmt == "cofw":
        source = CofwSource(path, input_size, margin)
    elif fmt == "facesynthetics":
        source = FaceSyntheticsSource(path, input_size)
    else:
        return ImageFolderSource(path, input_size, get_layout(layout) if layout not in (None, "auto")
                                 else DEFAULT_LAYOUT)
    if layout in (None, "auto") or layout == source.layout.name:
        return source
    return LayoutView(source, get_layout(layout))

