"""A synthetic dataset on disk in the challenge layout (images + annot.pkl + meta.json), resumable.

Deterministic for a seed: the same parameters give the same bytes. Every file is written atomically,
each finished image leaves a small record in `.synth-partial/`, and a re-run with the same parameters
skips the images already there, so an interrupted run (Ctrl-C, a killed job) continues where it
stopped. The records are removed when the dataset is complete.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lightmark.atomic import write_bytes_atomic, write_json_atomic
from lightmark.data.formats import ANNOT_NAME, write_challenge_annotations
from lightmark.data.sample import FaceSample
from lightmark.data.synth import SynthFaces
from lightmark.errors import ConfigError, DataError

STATE_DIR = ".synth-partial"  # per-image records of an unfinished run (removed when it completes)
META_NAME = "meta.json"
GENERATOR = "lightmark.synth"
FORMATS = ("png", "jpg")


@dataclass(frozen=True)
class SynthDataset:
    """What to write: n faces of `size` px from generator seed `seed`, as png (lossless) or jpg."""

    out: Path
    n: int
    size: int = 384
    seed: int = 0
    format: str = "png"

    def check(self) -> None:
        if self.n < 1:
            raise ConfigError(f"--n must be >= 1, got {self.n}")
        if self.size < 16:
            raise ConfigError(f"--size must be >= 16 pixels, got {self.size}")
        if self.format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.out.exists() and not self.out.is_dir():
            raise DataError(f"--out {self.out} exists and is not a directory")

    @property
    def params(self) -> dict[str, Any]:
        """What a finished image depends on: a re-run reuses only images made with the same."""
        return {"generator": GENERATOR, "size": self.size, "seed": self.seed, "format": self.format}

    @property
    def names(self) -> list[str]:
        width = max(6, len(str(self.n - 1)))
        return [f"{i:0{width}d}.{self.format}" for i in range(self.n)]


def sample_record(name: str, sample: FaceSample) -> dict:
    """A face's line of meta.json: its name, pose/expression meta, occluded points and the points."""
    occ = np.flatnonzero(sample.occluded).tolist() if sample.occluded is not None else []
    return {"name": name, **sample.meta, "occluded_points": occ,
            "points": np.asarray(sample.points, np.float32).tolist()}


def load_previous(out: Path, params: dict) -> dict[str, dict]:
    """Records of images finished by an earlier run with the same parameters (else nothing)."""
    done: dict[str, dict] = {}
    meta = out / META_NAME
    if meta.is_file():
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("params") == params:
            done.update({r["name"]: r for r in data.get("samples", []) if "points" in r})
    state = out / STATE_DIR
    if state.is_dir():
        for path in state.glob("*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a record is written atomically; an unreadable one is simply redone
            if record.get("params") == params:
                done[record["name"]] = record
    return {name: r for name, r in done.items() if (out / name).is_file()}


def _write_image(path: Path, image: np.ndarray, fmt: str) -> None:
    encode = [cv2.IMWRITE_PNG_COMPRESSION, 3] if fmt == "png" else [cv2.IMWRITE_JPEG_QUALITY, 95]
    ok, buf = cv2.imencode(f".{fmt}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), encode)
    if not ok:
        raise DataError(f"could not encode {path}")
    write_bytes_atomic(path, buf.tobytes())


def write_synthetic(spec: SynthDataset, advance: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write (or finish) the dataset; returns a summary: written, skipped, seconds and the file paths."""
    spec.check()
    out = spec.out
    out.mkdir(parents=True, exist_ok=True)
    params = spec.params
    gen = SynthFaces(size=spec.size, seed=spec.seed)
    done = load_previous(out, params)
    records: list[dict] = []
    written = 0
    start = time.perf_counter()
    for i, name in enumerate(spec.names):
        if name in done:
            records.append({k: v for k, v in done[name].items() if k != "params"})
        else:
            sample = gen.render(i)
            _write_image(out / name, sample.image, spec.format)
            record = sample_record(name, sample)
            write_json_atomic(out / STATE_DIR / f"{name}.json", {**record, "params": params})
            records.append(record)
            written += 1
        if advance is not None:
            advance()
    seconds = time.perf_counter() - start
    points = np.asarray([r["points"] for r in records], dtype=np.float32)
    write_challenge_annotations(out / ANNOT_NAME, spec.names, points)
    write_json_atomic(out / META_NAME, {"params": params, "n": spec.n, "samples": records})
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return {
        "out": str(out), "n": spec.n, "size": spec.size, "seed": spec.seed, "format": spec.format,
        "written": written, "skipped": spec.n - written, "seconds": round(seconds, 3),
        "samples_per_s": round(written / seconds, 1) if written and seconds > 0 else None,
        "annotations": str(out / ANNOT_NAME), "meta": str(out / META_NAME),
    }
