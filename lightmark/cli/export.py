"""`lightmark export CHECKPOINT --format onnx|torchscript --out FILE`: a verified deployable file."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightmark.cli._common import print_json, stderr_console, stdout_console
from lightmark.deploy.export import (
    DEFAULT_CALIBRATION_IMAGES,
    DTYPES,
    FORMATS,
    TOLERANCES,
    ExportOptions,
    Tolerance,
    export_checkpoint,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = "; ".join(f"{dtype}: {tol.describe()}" for dtype, tol in TOLERANCES.items())
    parser = subparsers.add_parser(
        "export", help="export a checkpoint to ONNX or TorchScript (fp32, fp16, int8), verified",
        description=(
            "Write a checkpoint's network as an ONNX or TorchScript file (input: float32 RGB 0-255, "
            "[B,3,N,N]; output: the last stack's heatmaps, or the points with --decode), then run it and "
            "the checkpoint on the protocol's held-out faces: the largest point difference and both NMEs "
            "(image side) are printed, and an export outside its tolerance is not written (exit 2). "
            f"Tolerances: {defaults}. ONNX needs the export extra: pip install -e '.[export]'."
        ),
    )
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    parser.add_argument("--format", choices=FORMATS, required=True, dest="fmt")
    parser.add_argument("--dtype", choices=DTYPES, default="fp32",
                        help="fp32 | fp16 | int8 (int8: ONNX only, static quantisation calibrated on "
                             "training faces) (default: %(default)s)")
    parser.add_argument("--input-size", type=int, help="input side in pixels (default: the checkpoint's protocol's)")
    parser.add_argument("--decode", action="store_true",
                        help="the graph returns the points (the codec's decode inside) instead of heatmaps")
    parser.add_argument("--out", type=Path, required=True, help="the file to write (e.g. model.onnx)")
    parser.add_argument("--calibration-images", type=int, default=DEFAULT_CALIBRATION_IMAGES,
                        help="int8: training faces to calibrate on (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch and ONNX Runtime CPU threads (default 0: their own choice)")
    parser.add_argument("--max-point-diff-px", type=float,
                        help="tolerance: largest point difference in px (replaces the dtype's default)")
    parser.add_argument("--max-nme-change-pct", type=float,
                        help="tolerance: largest relative NME change in %% (replaces the dtype's default)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    tolerance = None
    if args.max_point_diff_px is not None or args.max_nme_change_pct is not None:
        tolerance = Tolerance(max_point_diff_px=args.max_point_diff_px, max_nme_change_pct=args.max_nme_change_pct)
    options = ExportOptions(format=args.fmt, dtype=args.dtype, input_size=args.input_size, decode=args.decode,
                            calibration_images=args.calibration_images, threads=args.threads,
                            tolerance=tolerance)
    with stderr_console().status(f"exporting {args.checkpoint} to {args.fmt} {args.dtype} and verifying it"):
        report = export_checkpoint(args.checkpoint, args.out, options)
    if args.json:
        print_json(report.to_dict())
        return 0
    console = stdout_console()
    console.print(
        f"{report.spec} -> {report.path}: {report.format} {report.dtype}, {report.output}, {report.input_size} px, "
        f"{report.size_bytes:,} bytes ({report.size_bytes / 2**20:.3f} MiB)", highlight=False)
    console.print(
        f"verified on {report.n_faces} faces ({report.data}): largest point difference "
        f"{report.max_point_diff_px:.4g} px (mean {report.mean_point_diff_px:.4g} px); NME, image side: "
        f"checkpoint {report.nme_checkpoint_pct:.4f} %, export {report.nme_export_pct:.4f} % "
        f"({report.nme_change_pct:+.2f} % relative); tolerance: {Tolerance(**report.tolerance).describe()}",
        highlight=False)
    return 0
