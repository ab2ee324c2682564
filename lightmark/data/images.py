"""Image helpers every dataset reader shares: decode, read a header, resize, crop a face square.

The pixel-centre convention throughout: pixel i covers [i - 0.5, i + 0.5], so a point's
continuous coordinate + 0.5 scales with the image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lightmark.atomic import write_bytes_atomic
from lightmark.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, or raise DataError naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: image file is missing")
    data = np.fromfile(str(path), dtype=np.uint8)  # imdecode: any path the OS accepts, not only ASCII
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise DataError(f"{path}: cannot decode image (unreadable or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_png(path: Path, image: np.ndarray, compression: int | None = 6) -> None:
    """Encode an (H, W, 3) uint8 RGB image as PNG (`compression` 0-9, None: OpenCV's default) and write it
    atomically (a crash leaves no half file)."""
    params = [] if compression is None else [cv2.IMWRITE_PNG_COMPRESSION, compression]
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise DataError(f"{path}: could not encode the image")
    write_bytes_atomic(path, buffer.tobytes())


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only (PIL reads no pixels), for cheap checks at open."""
    if not path.is_file():
        raise DataError(f"{path}: image file is missing")
    try:
        with Image.open(path) as handle:
            return handle.size
    except Exception as exc:  # PIL raises many types for bad files
        raise DataError(f"{path}: cannot read image header ({exc})") from None


def resize_sample(image: np.ndarray, points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize to size x size, scaling the points with the pixel-centre convention."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image, points
    interp = cv2.INTER_AREA if size < max(h, w) else cv2.INTER_LINEAR
    out = cv2.resize(image, (size, size), interpolation=interp)
    scale = np.array([size / w, size / h], dtype=np.float32)
    return out, ((points + 0.5) * scale - 0.5).astype(np.float32)


def face_crop_matrix(points: np.ndarray, input_size: int, margin: float) -> np.ndarray:
    """2x3 affine (pixel centres, source -> output) that crops a square around the points' box.

    The square's side is the box's longer side times (1 + 2 * margin), centred on the box, and it
    is scaled to input_size pixels.
    """
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2.0 + 0.5  # continuous coordinates (pixel edges at integers)
    side = max(float((hi - lo).max()), 1.0) * (1.0 + 2.0 * margin)
    s = input_size / side
    origin = centre - side / 2.0
    # x' + 0.5 = s * (x + 0.5 - origin)  =>  x' = s * x + s * (0.5 - origin) - 0.5
    t = s * (0.5 - origin) - 0.5
    return np.array([[s, 0.0, t[0]], [0.0, s, t[1]]], dtype=np.float64)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def crop_face(image: np.ndarray, points: np.ndarray, input_size: int,
              margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop a square around the points' box (`face_crop_matrix`) and resize it to input_size:
    (crop, points in the crop, the 2x3 matrix). Every reader of uncropped photos shares it."""
    matrix = face_crop_matrix(points, input_size, margin)
    scale = matrix[0, 0]
    if scale < 0.5:  # warpAffine does not average: shrink with INTER_AREA first, then warp
        h, w = image.shape[:2]
        k = 2.0 * scale
        small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                           interpolation=cv2.INTER_AREA)
        kx, ky = small.shape[1] / w, small.shape[0] / h
        pre = np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5]])
        image = small
        points = apply_affine(points, pre)
        matrix = face_crop_matrix(points, input_size, margin)
    crop = cv2.warpAffine(image, matrix, (input_size, input_size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, apply_affine(points, matrix), matrix
