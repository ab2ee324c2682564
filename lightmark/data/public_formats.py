"""Readers for the public datasets' own annotation formats: WFLW lists, COFW `.mat`, Face Synthetics.

Each is a source like those of `formats` (`__len__`, `__getitem__ -> FaceSample`, `names`, `layout`,
`n_dropped`, `validate()`): annotations are parsed and checked when the source opens, images are
decoded lazily, and every problem is a `DataError` naming the file and the line or index.

- WFLW (`list_98pt_rect_attr_*.txt`): per line 196 coordinates, the face box x_min y_min x_max
  y_max, six 0/1 attribute flags (pose, expression, illumination, make-up, occlusion, blur) and the
  image path, resolved against `image_root` (default: the list's folder). The flags become
  `meta["attributes"]` and `attributes` (per flag, a bool per sample) for per-attribute NME.
- COFW (`COFW_train.mat`/`COFW_test.mat`, MATLAB v5-v7.2): images in `IsTr`/`IsT`, points in
  `phisTr`/`phisT` (per row 29 x, 29 y, 29 occlusion flags, MATLAB's 1-based pixels). Files of our
  own may use `images` and `points` instead (same shapes; the flags optional).
- Face Synthetics: `000000.png` beside `000000_ldmks.txt`, 70 rows "x y" (the iBUG 68, then the
  two pupils). Reading it as `ibug68` (`formats.LayoutView`) drops the pupils.

WFLW and COFW images are whole photos: each sample is cropped around its points like `.pts`
folders (`images.crop_face`). Face Synthetics images are face crops already and are resized.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from lightmark.data.images import IMAGE_SUFFIXES, crop_face, read_image, resize_sample
from lightmark.data.sample import FaceSample
from lightmark.errors import DataError
from lightmark.layouts import COFW29, FACESYNTHETICS70, WFLW98, Layout

WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make_up", "occlusion", "blur")
WFLW_FIELDS = 2 * WFLW98.n_points + 4 + len(WFLW_ATTRIBUTES) + 1
COFW_ARRAYS = (("IsT", "phisT"), ("IsTr", "phisTr"), ("images", "points"))  # test, train, fallback
LDMKS_SUFFIX = "_ldmks.txt"


def _outside_count(points: np.ndarray, width: int, height: int) -> int:
    return int((points < -0.5).any() or (points[:, 0] > width - 0.5).any() or (points[:, 1] > height - 0.5).any())


# -- WFLW annotation lists ----------------------------------------------------------------------------
def parse_wflw_line(path: Path, number: int, line: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """One list line -> (points (98, 2), box (4,), attribute flags (6,) bool, image path)."""
    fields = line.split()
    if len(fields) != WFLW_FIELDS:
        raise DataError(f"{path}: line {number}: expected {WFLW_FIELDS} fields ({2 * WFLW98.n_points} "
                        f"coordinates, 4 box, {len(WFLW_ATTRIBUTES)} attribute flags, the image path), "
                        f"got {len(fields)}")
    n = 2 * WFLW98.n_points
    try:
        values = np.array([float(v) for v in fields[:n + 4]], dtype=np.float64)
        flags = np.array([int(v) for v in fields[n + 4:-1]], dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"{path}: line {number}: not a number ({exc})") from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}: line {number}: NaN or infinite coordinates")
    if not np.isin(flags, (0, 1)).all():
        raise DataError(f"{path}: line {number}: attribute flags must be 0 or 1, got {flags.tolist()}")
    return (values[:n].reshape(-1, 2).astype(np.float32), values[n:].astype(np.float32),
            flags.astype(bool), fields[-1])


class WflwSource:
    """A WFLW annotation list; images at `image_root / <path on the line>`, cropped around the points."""

    def __init__(self, list_path: Path | str, input_size: int, image_root: Path | str | None = None,
                 margin: float = 0.25) -> None:
        self.list_path = Path(list_path)
        self.image_root = Path(image_root) if image_root is not None else self.list_path.parent
        self.input_size, self.margin = int(input_size), float(margin)
        self.layout: Layout = WFLW98
        self.n_dropped = 0
        try:
            text = self.list_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.list_path}: cannot read the WFLW list ({exc})") from None
        points, boxes, flags, paths = [], [], [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            p, box, f, name = parse_wflw_line(self.list_path, number, line)
            image = self.image_root / name
            if not image.is_file():
                raise DataError(f"{self.list_path}: line {number}: image {image} is missing "
                                f"(paths resolve against --image-root {self.image_root})")
            points.append(p), boxes.append(box), flags.append(f), paths.append(image)
        if not paths:
            raise DataError(f"{self.list_path}: the WFLW list has no lines")
        self.raw_points = np.stack(points)  # (N, 98, 2) float32, original-image pixels
        self.boxes = np.stack(boxes)  # (N, 4) x_min y_min x_max y_max
        self.flags = np.stack(flags)  # (N, 6) bool, WFLW_ATTRIBUTES order
        self.image_paths: list[Path] = paths
        self.names: list[str] = [p.relative_to(self.image_root).as_posix() for p in paths]

    @property
    def attributes(self) -> dict[str, np.ndarray]:
        """Per attribute, which samples have it: {"pose": (N,) bool, ...}."""
        return {name: self.flags[:, i].copy() for i, name in enumerate(WFLW_ATTRIBUTES)}

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> FaceSample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        image = read_image(self.image_paths[index])
        crop, points, matrix = crop_face(image, self.raw_points[index], self.input_size, self.margin)
        attributes = {name: bool(v) for name, v in zip(WFLW_ATTRIBUTES, self.flags[index])}
        return FaceSample(image=crop, points=points, name=self.names[index],
                          meta={"crop_matrix": matrix, "box": self.boxes[index].tolist(),
                                "attributes": attributes})

    def validate(self) -> dict:
        n_outside = 0
        for i in range(len(self)):
            h, w = read_image(self.image_paths[i]).shape[:2]
            n_outside += _outside_count(self.raw_points[i], w, h)
        return {"n": len(self), "n_dropped": 0, "n_outside": n_outside}


# -- COFW .mat files ------------------------------------------------------------------------------------
def _load_mat(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: COFW .mat file is missing")
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(f"{path}: a MATLAB v7.3 (HDF5) file; scipy reads v4 to v7.2, so save it again "
                        "with save(..., '-v7')") from None
    except Exception as exc:  # scipy raises many types for files that are not .mat
        raise DataError(f"{path}: not a readable .mat file ({type(exc).__name__}: {exc})") from None


def _cofw_image(path: Path, key: str, index: int, value: object) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise DataError(f"{path}: {key} index {index}: expected an H x W (grey) or H x W x 3 image, "
                        f"got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


class CofwSource:
    """COFW's `.mat` files: the images are inside the file; points and occlusion flags per row."""

    def __init__(self, path: Path | str, input_size: int, margin: float = 0.25) -> None:
        self.path = Path(path)
        self.input_size, self.margin = int(input_size), float(margin)
        self.layout: Layout = COFW29
        self.n_dropped = 0
        mat = _load_mat(self.path)
        keys = next(((i, p) for i, p in COFW_ARRAYS if i in mat and p in mat), None)
        if keys is None:
            found = ", ".join(sorted(k for k in mat if not k.startswith("__"))) or "none"
            expected = "; ".join(f"{i} and {p}" for i, p in COFW_ARRAYS)
            raise DataError(f"{self.path}: missing the image and point arrays (expected {expected}; "
                            f"found {found})")
        image_key, point_key = keys
        cells = np.asarray(mat[image_key], dtype=object).reshape(-1)
        phis = np.asarray(mat[point_key], dtype=np.float64)
        k = COFW29.n_points
        if phis.ndim != 2 or phis.shape[1] not in (2 * k, 3 * k):
            raise DataError(f"{self.path}: {point_key} must be N x {3 * k} ({k} x, {k} y, {k} occlusion flags) "
                            f"or N x {2 * k}, got shape {phis.shape}")
        if len(cells) != len(phis):
            raise DataError(f"{self.path}: {len(cells)} images in {image_key} but {len(phis)} rows in {point_key}")
        bad = np.flatnonzero(~np.isfinite(phis).all(axis=1))
        if bad.size:
            raise DataError(f"{self.path}: {point_key} row {int(bad[0])}: NaN or infinite coordinates")
        self.images = [_cofw_image(self.path, image_key, i, cell) for i, cell in enumerate(cells)]
        # MATLAB's pixels are 1-based (the first pixel's centre is 1.0), like .pts files
        self.raw_points = (np.stack([phis[:, :k], phis[:, k:2 * k]], axis=2) - 1.0).astype(np.float32)
        self.occluded = phis[:, 2 * k:] > 0 if phis.shape[1] == 3 * k else None
        self.names: list[str] = [f"{self.path.stem}-{i:05d}" for i in range(len(phis))]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> FaceSample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        crop, points, matrix = crop_face(self.images[index], self.raw_points[index], self.input_size,
                                         self.margin)
        occluded = None if self.occluded is None else self.occluded[index].copy()
        return FaceSample(image=crop, points=points, name=self.names[index], occluded=occluded,
                          meta={"crop_matrix": matrix})

    def validate(self) -> dict:
        n_outside = sum(_outside_count(p, im.shape[1], im.shape[0]) for p, im in zip(self.raw_points, self.images))
        return {"n": len(self), "n_dropped": 0, "n_outside": n_outside}


# -- Face Synthetics -----------------------------------------------------------------------------------
def parse_ldmks(path: Path, n_points: int = FACESYNTHETICS70.n_points) -> np.ndarray:
    """A Face Synthetics `_ldmks.txt` -> (70, 2) float32; errors name the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the landmark file ({exc})") from None
    rows = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(rows) != n_points:
        raise DataError(f"{path}: expected {n_points} rows 'x y', got {len(rows)}")
    values = np.empty((n_points, 2), dtype=np.float64)
    for i, (number, line) in enumerate(rows):
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError(f"{len(parts)} values")
            values[i] = [float(parts[0]), float(parts[1])]
        except ValueError:
            raise DataError(f"{path}: line {number}: expected two numbers 'x y', got {line.strip()!r}") from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}: NaN or infinite coordinates")
    return values.astype(np.float32)


def _image_for_ldmks(path: Path) -> Path:
    stem = path.name[: -len(LDMKS_SUFFIX)]
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    raise DataError(f"{path}: no image {stem}.png (or {', '.join(IMAGE_SUFFIXES[1:])}) beside it")


class FaceSyntheticsSource:
    """A Face Synthetics folder (searched recursively): each image resized to input_size."""

    def __init__(self, root: Path | str, input_size: int) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: not a directory")
        self.input_size = int(input_size)
        self.layout: Layout = FACESYNTHETICS70
        self.n_dropped = 0
        files = sorted(self.root.rglob(f"*{LDMKS_SUFFIX}"))
        if not files:
            raise DataError(f"{self.root}: no *{LDMKS_SUFFIX} files found")
        self.image_paths: list[Path] = [_image_for_ldmks(p) for p in files]
        self.raw_points = np.stack([parse_ldmks(p) for p in files])  # (N, 70, 2), image pixels
        self.names: list[str] = [p.relative_to(self.root).as_posix() for p in self.image_paths]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> FaceSample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        image, points = resize_sample(read_image(self.image_paths[index]), self.raw_points[index],
                                      self.input_size)
        return FaceSample(image=image, points=points.copy(), name=self.names[index])

    def validate(self) -> dict:
        n_outside = 0
        for i in range(len(self)):
            h, w = read_image(self.image_paths[i]).shape[:2]
            n_outside += _outside_count(self.raw_points[i], w, h)
        return {"n": len(self), "n_dropped": 0, "n_outside": n_outside}
