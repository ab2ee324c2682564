"""`lightmark evaluate CHECKPOINT [--data DIR] [--out DIR] [--json]`: NME in every normalisation,
failure rates, per-landmark NME, the mean-shape baseline and a CED plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from lightmark.cli._common import print_json, stdout_console
from lightmark.reports.evaluation import FILES, write_evaluation
from lightmark.training.evaluate import evaluate_checkpoint


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


def run(args: argparse.Namespace) -> int:
    result, info = evaluate_checkpoint(args.checkpoint, data=args.data, device=args.device,
                                       image_root=args.image_root)
    out = args.out or args.checkpoint.parent / f"eval-{args.checkpoint.stem}"
    payload = write_evaluation(result, info, out)
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
    worst = ", ".join(f"{w['name']} {w['nme_inter_ocular_pct']:.2f}" for w in payload["worst_faces"])
    console.print(f"inter-ocular NME %: median {payload['median_nme_inter_ocular_pct']:.2f}, "
                  f"worst faces {worst}", highlight=False, soft_wrap=True)
    by_attribute = payload.get("nme_inter_ocular_by_attribute") or {}
    if by_attribute:
        console.print("inter-ocular NME % by subset: " + ", ".join(
            f"{name} {v['nme_pct']:.2f} ({v['n_images']})" for name, v in by_attribute.items()),
            highlight=False, soft_wrap=True)
    console.print(f"written to {out}: {', '.join(FILES.values())}")
    return 0
