"""How realistic are the synthetic faces? Ask a detector made for photographs.

`measure_realism` renders faces from `SynthFaces` and runs dlib's HOG face detector and 68-point
predictor (`lightmark.data.dlib68`) on each:

- detection rate: the share of faces where dlib finds a face whose box centre lies inside the box of
  the generator's 68 points (a detection elsewhere, e.g. in the background clutter, does not count);
  reported for near-frontal unoccluded faces (|yaw| and |pitch| under 20 degrees, occluder "none" in
  the face's meta), which any photo-trained detector should find, and for all faces;
- NME of dlib's 68 points (predicted in the matched box) against the generator's labels, inter-ocular
  (outer eye corners 36 and 45, `metrics.nme`), on the faces it finds. The headline is the median
  over every found face; mean and the near-frontal median are reported beside it.

A low detection rate says the pixels do not look like a face to a photo-trained model; the NME says
whether the labels mean what dlib's (300-W-trained) points mean where it does find a face.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from lightmark.data.dlib68 import Detection, DlibFaces
from lightmark.data.sample import FaceSample
from lightmark.data.synth import SynthFaces
from lightmark.errors import ConfigError
from lightmark.metrics import nme

FRONTAL_MAX_DEG = 20.0


def is_frontal(meta: dict, max_deg: float = FRONTAL_MAX_DEG) -> bool:
    """Near-frontal and unoccluded: |yaw| and |pitch| under max_deg degrees and no occluder."""
    return (abs(float(meta["yaw"])) < max_deg and abs(float(meta["pitch"])) < max_deg
            and meta.get("occluder", "none") == "none")


def match_detection(detections: list[Detection], points: np.ndarray) -> Detection | None:
    """The surest detection whose box centre lies inside the labels' bounding box, or None."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    for det in detections:  # surest first
        x, y = det.centre
        if lo[0] <= x <= hi[0] and lo[1] <= y <= hi[1]:
            return det
    return None


@dataclass(frozen=True)
class FaceCheck:
    """dlib on one synthetic face: found or not, and its points' inter-ocular NME against the labels."""

    index: int
    frontal: bool
    detected: bool
    nme_inter_ocular_pct: float | None
    score: float | None
    yaw: float
    pitch: float
    occluder: str


def check_face(faces: DlibFaces, sample: FaceSample, index: int) -> FaceCheck:
    detection = match_detection(faces.detect(sample.image), sample.points)
    error = score = None
    if detection is not None:
        predicted = faces.points(sample.image, detection.box)
        error = float(nme(predicted[None], sample.points[None], "inter_ocular")[0])
        score = detection.score
    meta = sample.meta
    return FaceCheck(index, is_frontal(meta), detection is not None, error, score, float(meta["yaw"]),
                     float(meta["pitch"]), str(meta.get("occluder", "none")))


def _rate(found: int, total: int) -> float | None:
    return round(found / total, 4) if total else None


def _stat(values: list[float], how: Callable[[np.ndarray], float]) -> float | None:
    return round(float(how(np.asarray(values))), 3) if values else None


def summarise(checks: list[FaceCheck]) -> dict:
    """The numbers of `lightmark data realism --json` from per-face checks (rates are fractions 0-1)."""
    frontal = [c for c in checks if c.frontal]
    found = [c.nme_inter_ocular_pct for c in checks if c.detected]
    found_frontal = [c.nme_inter_ocular_pct for c in frontal if c.detected]
    return {
        "n": len(checks),
        "n_frontal": len(frontal),
        "n_detected_frontal": sum(c.detected for c in frontal),
        "detection_rate_frontal": _rate(sum(c.detected for c in frontal), len(frontal)),
        "n_detected": len(found),
        "detection_rate_all": _rate(len(found), len(checks)),
        "nme_vs_labels_inter_ocular_pct": _stat(found, np.median),
        "nme_vs_labels_inter_ocular_mean_pct": _stat(found, np.mean),
        "nme_vs_labels_inter_ocular_frontal_pct": _stat(found_frontal, np.median),
    }


def measure_realism(faces: DlibFaces, n: int, size: int = 256, seed: int = 0,
                    advance: Callable[[], None] | None = None) -> tuple[dict, list[FaceCheck]]:
    """dlib on synthetic faces 0..n-1 of `SynthFaces(size, seed)`: (summary, per-face checks)."""
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if size < 32:
        raise ConfigError(f"--size must be >= 32 pixels, got {size}")
    generator = SynthFaces(size=size, seed=seed)
    checks: list[FaceCheck] = []
    start = time.perf_counter()
    for index in range(n):
        checks.append(check_face(faces, generator.render(index), index))
        if advance is not None:
            advance()
    summary = {
        **summarise(checks),
        "size": size, "seed": seed, "upsample": faces.upsample, "frontal_max_deg": FRONTAL_MAX_DEG,
        "detector": "dlib HOG (get_frontal_face_detector)", "dlib": faces.version,
        "nme_note": "median inter-ocular NME (outer eye corners 36, 45) of dlib's 68 points vs the generator's "
                    "labels over every face dlib finds",
        "seconds": round(time.perf_counter() - start, 2),
    }
    return summary, checks


def check_rows(checks: list[FaceCheck]) -> list[dict]:
    return [asdict(c) for c in checks]
