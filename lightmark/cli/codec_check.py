"""`lightmark codec-check`: ground-truth round trip of every heatmap codec (the paper's Table 3,
left half) and the codecs' encode/decode time per batch on the CPU."""

from __future__ import annotations

import argparse

import torch
from rich.table import Table

from lightmark.cli._common import print_json, stdout_console
from lightmark.errors import ConfigError
from lightmark.heatmaps.codecs import CODEC_NAMES, codec_speed, get_codec, round_trip_errors, uniform_points
from lightmark.layouts import DEFAULT_LAYOUT

PAPER_NME_PCT = {"plain": 0.5127, "offset": 0.0076, "subpixel": None}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "codec-check", help="round-trip NME of the heatmap codecs on ground truth, and their speed"
    )
    parser.add_argument("--input-size", type=int, default=384, help="input side in px (default: %(default)s)")
    parser.add_argument("--n-images", type=int, default=200, help="images of --n-points points (default: %(default)s)")
    parser.add_argument("--n-points", type=int, default=DEFAULT_LAYOUT.n_points,
                        help="points per image (default: %(default)s, the iBUG layout)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the uniform points (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=20, help="timing repeats, median (default: %(default)s)")
    parser.add_argument("--no-timing", action="store_true", help="skip the encode/decode timing")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.n_images < 1 or args.n_points < 1:
        raise ConfigError("--n-images/--n-points: must be at least 1")
    codec0 = get_codec("plain", args.input_size)  # validates --input-size
    points = uniform_points(args.n_images, args.input_size, args.n_points, args.seed)
    nme_pct: dict[str, float] = {}
    l1_pct: list[dict] = []
    for name in CODEC_NAMES:
        diff = round_trip_errors(name, points, args.input_size)
        nme_pct[name] = float(diff.norm(dim=-1).mean() / args.input_size * 100)
        l1_pct.append({"codec": name, "nme_l1_pct": float(diff.abs().sum(-1).mean() / args.input_size * 100)})
    timing = []
    if not args.no_timing:
        for name in CODEC_NAMES:
            speed = codec_speed(name, batch=8, size=96, repeats=args.repeats, n_points=args.n_points)
            cpu = codec_speed(name, batch=8, size=96, repeats=args.repeats, n_points=args.n_points, threads=1,
                              clock="cpu")
            timing.append({"codec": name, "batch": 8, "heatmap_size": 96, "threads": 2, **speed,
                           "encode_cpu_ms_1_thread": cpu["encode_ms"], "decode_cpu_ms_1_thread": cpu["decode_ms"]})
    result = {
        "input_size": args.input_size,
        "heatmap_size": codec0.heatmap_size,
        "unit": "NME % of image side",
        "n_images": args.n_images,
        "n_points": args.n_points,
        "seed": args.seed,
        "codecs": nme_pct,
        "paper": [{"codec": k, "nme_pct": v} for k, v in PAPER_NME_PCT.items() if v is not None],
        # |dx| + |dy| instead of the Euclidean distance: the paper's 0.5127 for `plain` matches this one
        "l1_error": l1_pct,
        "timing": timing,
        "torch_threads_for_timing": 2,
        "torch_version": torch.__version__,
    }
    if args.json:
        print_json(result)
        return 0
    table = Table(title=f"Codec round trip on ground truth ({args.input_size} px, "
                        f"{codec0.heatmap_size} px heatmaps, {args.n_images}x{args.n_points} uniform points)")
    table.add_column("codec", no_wrap=True)
    for col in ("NME %", "paper %", "L1 %", "enc ms", "dec ms", "enc cpu", "dec cpu"):
        table.add_column(col, justify="right", no_wrap=True)
    times = {t["codec"]: t for t in timing}
    for row in l1_pct:
        name = row["codec"]
        paper = PAPER_NME_PCT[name]
        t = times.get(name, {})
        table.add_row(
            name, f"{nme_pct[name]:.3g}", "-" if paper is None else f"{paper:.4f}", f"{row['nme_l1_pct']:.3g}",
            *(f"{t[key]:.1f}" if t else "-"
              for key in ("encode_ms", "decode_ms", "encode_cpu_ms_1_thread", "decode_cpu_ms_1_thread")),
        )
    stdout_console().print(table)
    if timing:
        stdout_console().print("NME % = mean point error / image side * 100 (L1 %: with |dx| + |dy|). "
                               f"Times: median ms per batch of 8 x {args.n_points} points at 96x96 (enc = heatmaps + "
                               "weighted-MSE mask): elapsed on 2 threads (ms), CPU time on 1 thread (cpu)")
    return 0
