"""One checkpoint's evaluation written out: metrics.json, per-image and per-landmark NME as CSV, and
the CED plot of the model beside the mean-shape baseline (what `lightmark evaluate` writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightmark.atomic import write_json_atomic, write_text_atomic
from lightmark.metrics import ced_curve
from lightmark.reports.plots import plot_ced
from lightmark.training.evaluate import EvalResult

CED_MAX_PCT = 10.0  # inter-ocular, the 300W convention
CED_STEPS = 101
WORST_SHOWN = 5  # the worst faces by inter-ocular NME, named in metrics.json and printed
FILES = {"metrics": "metrics.json", "per_image": "per_image_nme.csv", "per_landmark": "per_landmark_nme.csv",
         "ced_plot": "ced.png"}


def ced(per_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    thresholds, fractions = ced_curve(per_image, CED_MAX_PCT, CED_STEPS)
    return np.asarray(thresholds, dtype=float), np.asarray(fractions, dtype=float)


def _per_image_csv(result: EvalResult) -> str:
    rows = ["index,name," + ",".join(f"nme_{n}_pct" for n in result.per_image)]
    for i, idx in enumerate(result.indices):
        name = result.name_of(i).replace('"', '""')
        rows.append(f'{int(idx)},"{name}",' + ",".join(f"{result.per_image[n][i]:.5f}" for n in result.per_image))
    return "\n".join(rows) + "\n"


def write_evaluation(result: EvalResult, info: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write the evaluation's files into `out` and return the payload of metrics.json."""
    out.mkdir(parents=True, exist_ok=True)
    files = {key: out / name for key, name in FILES.items()}
    curves = {"model": ced(result.per_image["inter_ocular"])}
    if "baseline_per_image_inter_ocular" in result.extra:
        curves["mean-shape baseline"] = ced(result.extra["baseline_per_image_inter_ocular"])
    plot_ced(curves, files["ced_plot"])
    per_landmark = [round(float(v), 5) for v in result.per_landmark_image_pct]
    payload = {
        **info,
        "n_images": int(len(result.gt)),
        "metrics": result.summary,
        **{k: v for k, v in result.face_spread("inter_ocular").items() if k != "worst_face"},
        "worst_faces": result.worst_faces(WORST_SHOWN),
        "mean_shape_baseline": result.baseline,
        "per_landmark_nme_image_pct": per_landmark,
        "per_part_nme_image_pct": {k: round(v, 5) for k, v in result.per_part_image_pct.items()},
        **({"nme_inter_ocular_by_attribute": result.extra["nme_inter_ocular_by_attribute"]}
           if "nme_inter_ocular_by_attribute" in result.extra else {}),
        "ced": {"unit": "NME % inter-ocular", "thresholds": curves["model"][0].round(4).tolist(),
                "fractions": curves["model"][1].round(5).tolist()},
        "files": {key: str(path) for key, path in files.items()},
    }
    write_json_atomic(files["metrics"], payload)
    write_text_atomic(files["per_image"], _per_image_csv(result))
    write_text_atomic(files["per_landmark"], "landmark,nme_image_pct\n" + "".join(
        f"{i},{v}\n" for i, v in enumerate(per_landmark)))
    return payload
