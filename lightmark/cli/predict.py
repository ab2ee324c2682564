"""`lightmark predict CHECKPOINT|MODEL.onnx IMAGES... [--out DIR]`: landmarks for image files or folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightmark.cli._common import print_json, stdout_console
from lightmark.data.images import read_image
from lightmark.deploy.export import load_onnx
from lightmark.deploy.predict import collect_images, predict_files, predict_files_with, write_predictions
from lightmark.device import resolve_device
from lightmark.heatmaps.codecs import get_codec
from lightmark.training.checkpoint import load_model


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict landmarks on images (JSON, CSV, solution.txt, PNGs)",
        description="Predict the model's points (its layout's K) on images or folders of images, with a "
                    "checkpoint or a file written by `lightmark export --format onnx` (run by ONNX Runtime "
                    "on the CPU; needs the export extra).")
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a checkpoint (.pt) or an exported .onnx")
    parser.add_argument("images", nargs="+", metavar="IMAGES", help="image files or folders")
    parser.add_argument("--out", type=Path, default=Path("predictions"), help="output directory (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=0,
                        help="ONNX Runtime CPU threads for an .onnx model (default 0: its own choice)")
    parser.add_argument("--no-draw", action="store_true", help="skip the PNGs with the points drawn")
    parser.add_argument("--json", action="store_true", help="print a summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = collect_images(args.images)
    for path in files:  # fail before any work on an unreadable image (one line, naming it)
        read_image(path)
    if args.checkpoint.suffix.lower() == ".onnx":
        exported = load_onnx(args.checkpoint, args.threads)
        spec, input_size = exported.spec, exported.input_size
        predictions = predict_files_with(exported, files, input_size)
    else:
        device = resolve_device(args.device)
        model, spec, protocol, _ = load_model(args.checkpoint, device)
        input_size = protocol.input_size
        codec = get_codec(protocol.codec, input_size)
        predictions = predict_files(model, files, codec, input_size, device)
    paths = write_predictions(args.out, predictions, draw=not args.no_draw)
    summary = {"checkpoint": str(args.checkpoint), "spec": str(spec), "input_size": input_size,
               "n_images": len(predictions), "files": {k: str(v) for k, v in paths.items()}}
    if args.json:
        print_json(summary)
    else:
        stdout_console().print(f"{len(predictions)} images -> {args.out} (points.json, points.csv, solution.txt"
                               + ("" if args.no_draw else ", drawn/*.png") + ")")
    return 0
