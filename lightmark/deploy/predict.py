"""Prediction on image files: resize to the network's input, decode, map points back to each image.

Coordinates follow `sample.py` (integer = pixel centre), so a point at input pixel x maps back to
x' = (x + 0.5) * W / input_size - 0.5 in an image W pixels wide (and likewise for y).
Outputs: points.json, points.csv, the challenge's solution.txt (one line per image: file name then
x1 y1 ... xK yK, K the model's points) and PNGs with the points drawn, coloured by face part.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from lightmark.atomic import write_bytes_atomic, write_text_atomic
from lightmark.data.images import IMAGE_SUFFIXES, read_image, resize_sample
from lightmark.data.synth_preview import draw_points
from lightmark.errors import DataError
from lightmark.heatmaps.codecs import Codec
from lightmark.training.evaluate import predict_points


@dataclass(frozen=True)
class Prediction:
    name: str  # file name as given to solution.txt
    path: Path
    points: np.ndarray  # (K, 2) float, pixels of the original image
    width: int
    height: int


def collect_images(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted); missing paths are DataErrors."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise DataError(f"{path}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such image file or folder")
    if not files:
        raise DataError("no images given")
    return files


def to_input(image: np.ndarray, input_size: int) -> np.ndarray:
    """The whole image resized to the network's input (as the data path resizes a sample)."""
    return resize_sample(image, np.zeros((0, 2), np.float32), input_size)[0]


def to_image_coords(points: np.ndarray, width: int, height: int, input_size: int) -> np.ndarray:
    """Input-pixel points -> pixels of a width x height image (pixel-centre convention)."""
    scale = np.array([width / input_size, height / input_size], dtype=np.float64)
    return ((np.asarray(points, np.float64) + 0.5) * scale - 0.5).astype(np.float32)


def predict_files(
    model: torch.nn.Module,
    files: Sequence[Path],
    codec: Codec,
    input_size: int,
    device: torch.device,
    batch_size: int = 16,
) -> list[Prediction]:
    """Predict every file (read + resize on the CPU, network and decode on `device`)."""
    model.eval()
    return predict_files_with(lambda batch: predict_points(model, batch, codec, device), files, input_size,
                              batch_size)


def predict_files_with(
    points: Callable[[torch.Tensor], torch.Tensor],
    files: Sequence[Path],
    input_size: int,
    batch_size: int = 16,
) -> list[Prediction]:
    """Predict every file with `points` (uint8 [B,3,N,N] -> [B,K,2] input pixels): a checkpoint's
    network and codec, or an exported file (`lightmark.deploy.export.ExportedModel`)."""
    out: list[Prediction] = []
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        images = [read_image(p) for p in chunk]
        batch = torch.from_numpy(np.stack([to_input(im, input_size) for im in images])).permute(0, 3, 1, 2)
        pts = points(batch.contiguous()).cpu().numpy()
        for path, image, p in zip(chunk, images, pts):
            h, w = image.shape[:2]
            out.append(Prediction(path.name, path, to_image_coords(p, w, h, input_size), w, h))
    return out


def solution_lines(predictions: Sequence[Prediction]) -> str:
    """The challenge's solution.txt: `name x1 y1 ... xK yK` per line, space separated."""
    lines = []
    for p in predictions:
        numbers = " ".join(f"{v:.3f}" for v in p.points.reshape(-1))
        lines.append(f"{p.name} {numbers}")
    return "\n".join(lines) + "\n"


def write_predictions(out_dir: Path, predictions: Sequence[Prediction], draw: bool = True) -> dict[str, Path]:
    """points.json, points.csv, solution.txt and drawn/<stem>.png, each written atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    k = predictions[0].points.shape[0] if predictions else 0
    payload = {
        "unit": "pixels of each original image (integer = pixel centre)",
        "images": [{"name": p.name, "path": str(p.path), "width": p.width, "height": p.height,
                    "points": np.round(p.points, 3).tolist()} for p in predictions],
    }
    write_text_atomic(out_dir / "points.json", json.dumps(payload, indent=1) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name"] + [f"{axis}{i}" for i in range(k) for axis in ("x", "y")])
    for p in predictions:
        writer.writerow([p.name] + [f"{v:.3f}" for v in p.points.reshape(-1)])
    write_text_atomic(out_dir / "points.csv", buffer.getvalue())
    write_text_atomic(out_dir / "solution.txt", solution_lines(predictions))
    paths = {"json": out_dir / "points.json", "csv": out_dir / "points.csv", "solution": out_dir / "solution.txt"}
    if draw:
        drawn = out_dir / "drawn"
        for p in predictions:
            image = read_image(p.path)
            canvas = draw_points(image, p.points, radius=max(1.0, max(image.shape[:2]) / 200))
            ok, encoded = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
            if ok:
                write_bytes_atomic(drawn / f"{p.path.stem}.png", encoded.tobytes())
        paths["drawn"] = drawn
    return paths
