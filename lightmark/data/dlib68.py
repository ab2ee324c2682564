"""dlib's HOG face detector and its 68-point shape predictor, a real-photo reference (the `[real]` extra).

Two commands use it: `lightmark data realdev` labels faces in real photographs with it (pseudo-labels:
dlib's predictor is itself a few percent inter-ocular off human labels), and `lightmark data realism`
asks whether it sees the synthetic faces as faces. Both packages are optional (`pip install
'lightmark[real]'`): `dlib-bin` (the detector and predictor code) and `face-recognition-models`
(`shape_predictor_68_face_landmarks.dat`, trained by dlib's author on iBUG 300-W; 300-W's terms
exclude commercial use of what is trained on it). Without them, `DlibFaces()` raises ConfigError
with a one-line hint, so the CLI exits 2 with the install command.

Coordinates follow `lightmark.data.sample`: dlib's integer pixel coordinates are pixel centres.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightmark.data.constants import N_LANDMARKS
from lightmark.errors import ConfigError

INSTALL_HINT = "install the [real] extra: pip install 'lightmark[real]' (in a checkout: make setup)"
PREDICTOR_FILE = "models/shape_predictor_68_face_landmarks.dat"  # inside face_recognition_models
DEFAULT_UPSAMPLE = 1  # face_recognition's default: finds faces down to about 40 px


@dataclass(frozen=True)
class Detection:
    """One face found by the HOG detector: its box (left, top, right, bottom, pixels, dlib's inclusive
    rectangle) and its detection score (higher is surer; 0 is dlib's default threshold)."""

    box: tuple[int, int, int, int]
    score: float

    @property
    def side(self) -> int:
        left, top, right, bottom = self.box
        return min(right - left, bottom - top) + 1

    @property
    def centre(self) -> tuple[float, float]:
        left, top, right, bottom = self.box
        return (left + right) / 2.0, (top + bottom) / 2.0


def _import_dlib(purpose: str) -> Any:
    try:
        import dlib  # deferred: optional extra [real] (a compiled package)
    except ImportError:
        raise ConfigError(f"{purpose} needs dlib, which is not installed; {INSTALL_HINT}") from None
    return dlib


def predictor_path(purpose: str = "dlib's 68-point predictor") -> Path:
    """The 68-point model file shipped by `face-recognition-models` (found without importing the package:
    its __init__ imports pkg_resources, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{purpose} needs the face-recognition-models package, which is not installed; "
                          f"{INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / PREDICTOR_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: dlib's 68-point model is missing from face-recognition-models; reinstall it "
                          f"({INSTALL_HINT})")
    return path


def real_extra_installed() -> bool:
    """dlib and its 68-point model file are both there (the [real] extra)."""
    try:
        predictor_path()
    except ConfigError:
        return False
    return dlib_version() is not None


def dlib_version() -> str | None:
    """dlib's version when it is installed, else None (for records; never raises)."""
    try:
        import dlib  # deferred: optional extra [real]
    except ImportError:
        return None
    return str(getattr(dlib, "__version__", "unknown"))


class DlibFaces:
    """dlib's HOG detector plus the 68-point predictor, loaded once (the model file is 95 MiB).

    `upsample`: how many times dlib doubles the image before detecting (1 finds faces down to about
    40 px, 0 down to about 80 px). `purpose` names the command in the error when dlib is missing.
    """

    def __init__(self, upsample: int = DEFAULT_UPSAMPLE, purpose: str = "this command") -> None:
        if upsample < 0:
            raise ConfigError(f"upsample must be >= 0, got {upsample}")
        dlib = _import_dlib(purpose)
        self._dlib = dlib
        self.upsample = int(upsample)
        self.model_path = predictor_path(purpose)
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(self.model_path))
        self.version = str(getattr(dlib, "__version__", "unknown"))

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an (H, W, 3) uint8 RGB image, surest first."""
        rects, scores, _ = self.detector.run(np.ascontiguousarray(image), self.upsample, 0.0)
        found = [Detection((int(r.left()), int(r.top()), int(r.right()), int(r.bottom())), float(s))
                 for r, s in zip(rects, scores)]
        return sorted(found, key=lambda d: -d.score)

    def points(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """dlib's 68 points (iBUG order) for the face in `box`: (68, 2) float32 pixels."""
        shape = self.predictor(np.ascontiguousarray(image), self._dlib.rectangle(*box))
        if shape.num_parts != N_LANDMARKS:
            raise ConfigError(f"{self.model_path}: predicted {shape.num_parts} points, expected {N_LANDMARKS}")
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
