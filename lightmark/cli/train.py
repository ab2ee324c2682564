"""`lightmark train SPEC_OR_PRESET --protocol P`: train one network, write checkpoints and a log."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightmark.cli._common import add_device_args, add_protocol_args, print_json, protocol_from_args, stderr_console
from lightmark.models.registry import resolve
from lightmark.training.trainer import train


def resolve_spec(text: str):
    """A preset name or a spec string -> ModelSpec (the protocol decides the input size)."""
    return resolve(text)[0]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train one spec or preset under a protocol",
                                   description="Train one network; writes config.json, log.jsonl, best.pt, last.pt.")
    parser.add_argument("spec", metavar="SPEC_OR_PRESET", help="e.g. s1-d2-c32, s2-d4-c128-ca-cc, or a preset name")
    add_protocol_args(parser, default="quick")
    parser.add_argument("--out", type=Path, help="output directory (default: runs/train/<spec>-<protocol>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    add_device_args(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec = resolve_spec(args.spec)
    protocol = protocol_from_args(args)
    spec.check_input_size(protocol.input_size)
    out = args.out or Path("runs") / "train" / f"{spec}-{protocol.name}"
    result = train(spec, protocol, out, device=args.device, resume=args.resume,
                   progress=not args.no_progress, precision=args.precision, threads=args.threads)
    summary = {
        "spec": str(spec),
        "protocol": protocol.name,
        "input_size": protocol.input_size,
        "out_dir": str(out),
        "device": result.device,
        "precision": result.precision,
        "epochs_done": result.epochs_done,
        "train_seconds": round(result.train_seconds, 3),
        "best_epoch": result.best_epoch,
        "best": result.best_metrics,
        "last": result.last_metrics,
        "mean_shape_baseline": result.baseline,
        "checkpoints": {"best": str(result.best_path), "last": str(result.last_path)},
        "log": str(out / "log.jsonl"),
    }
    if args.json:
        print_json(summary)
    else:
        last = result.last_metrics
        console = stderr_console()
        base = (result.baseline or {}).get("nme_image_pct")
        console.print(
            f"[bold]{spec}[/] [{protocol.name}] {result.epochs_done} epochs in {result.train_seconds:.1f} s on "
            f"{result.device} ({result.precision}): val NME {last.get('nme_image_pct', float('nan')):.3f} % of image "
            f"side, {last.get('nme_inter_ocular_pct', float('nan')):.2f} % inter-ocular"
            + (f"; mean-shape baseline {base:.3f} % of image side" if base is not None else "")
        )
        console.print(f"checkpoints: {result.best_path} (best epoch {result.best_epoch}), {result.last_path}")
    return 0
