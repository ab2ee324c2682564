"""`lightmark evaluate CHECKPOINT [--data DIR] [--out DIR] [--json]`: NME in every normalisation,
failure rates, per-landmark NME, the mean-shape baseline and a CED plot."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.table import Table

from lightmark.atomic import write_json_atomic, write_text_atomic
from lightmark.cli._common import print_json, stdout_console
from lightmark.metrics import ced_curve
from lightmark.reports.plots import plot_ced
from lightmark.training.evaluate import evaluate_checkpoint

CED_MAX_PCT = 10.0  # inter-ocular, the 300W convention
CED_STEPS = 101


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate a checkpoint (NME, failure rates, CED plot)",
                                   description="Evaluate a checkpoint on its protocol's held-out faces or a dataset.")
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="best.pt or last.pt from `train`")
    parser.add_argument("--data", help="evaluate every image of this dataset (challenge layout, .pts, a WFLW list, "
                                       "a COFW .mat or a Face Synthetics folder; see docs/data.md)")
    parser.add_argument("--image-root", type=Path,
                        help="where a WFLW list's image paths start (default: the list's folder)")
    parser.add_argument("--out", type=Path, help="output directory (default: <checkpoint dir>/eval-<name>)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(func=run)


def _ced(per_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    thresholds, fractions = ced_curve(per_image, CED_MAX_PCT, CED_STEPS)
    return np.asarray(thresholds, dtype=float), np.asarray(fractions, dtype=float)


def run(args: argparse.Namespace) -> int:
    result, info = evaluate_checkpoint(args.checkpoint, data=args.data, device=args.device,
                                       image_root=args.image_root)
    out = args.out or args.checkpoint.parent / f"eval-{args.checkpoint.stem}"
    out.mkdir(parents=True, exist_ok=True)
    curves = {"model": _ced(result.per_image["inter_ocular"])}
    if "baseline_per_image_inter_ocular" in result.extra:
        curves["mean-shape baseline"] = _ced(result.extra["baseline_per_image_inter_ocular"])
    plot_ced(curves, out / "ced.png")
    per_landmark = [round(float(v), 5) for v in result.per_landmark_image_pct]
    payload = {
        **info,
        "n_images": int(len(result.gt)),
        "metrics": result.summary,
        "mean_shape_baseline": result.baseline,
        "per_landmark_nme_image_pct": per_landmark,
        "per_part_nme_image_pct": {k: round(v, 5) for k, v in result.per_part_image_pct.items()},
        **({"nme_inter_ocular_by_attribute": result.extra["nme_inter_ocular_by_attribute"]}
           if "nme_inter_ocular_by_attribute" in result.extra else {}),
        "ced": {"unit": "NME % inter-ocular", "thresholds": curves["model"][0].round(4).tolist(),
                "fractions": curves["model"][1].round(5).tolist()},
        "files": {"metrics": str(out / "metrics.json"), "per_image": str(out / "per_image_nme.csv"),
                  "per_landmark": str(out / "per_landmark_nme.csv"), "ced_plot": str(out / "ced.png")},
    }
    write_json_atomic(out / "metrics.json", payload)
    rows = ["index," + ",".join(f"nme_{n}_pct" for n in result.per_image)]
    for i, idx in enumerate(result.indices):
        rows.append(f"{int(idx)}," + ",".join(f"{result.per_image[n][i]:.5f}" for n in result.per_image))
    write_text_atomic(out / "per_image_nme.csv", "\n".join(rows) + "\n")
    write_text_atomic(out / "per_landmark_nme.csv", "landmark,nme_image_pct\n" + "".join(
        f"{i},{v}\n" for i, v in enumerate(per_landmark)))
    if args.json:
        print_json(payload)
        return 0
    table = Table(title=f"{info['spec']} [{info['protocol']}] on {info['data']}")
    table.add_column("metric")
    table.add_column("model", justify="right")
    if result.baseline is not None:
        table.add_column("mean-shape baseline", justify="right")
    for key, value in result.summary.items():
        cells = [f"{value:.4f}" if isinstance(value, float) else str(value)]
        if result.baseline is not None:
            base = result.baseline.get(key)
            cells.append(f"{base:.4f}" if isinstance(base, float) else str(base))
        table.add_row(key, *cells)
    console = stdout_console()
    console.print(table)
    console.print(f"written to {out}: metrics.json, per_image_nme.csv, per_landmark_nme.csv, ced.png")
    return 0
