"""`lightmark codec-check`: ground-truth round trip of every heatmap codec (the paper's Table 3,
left half) and the codecs' encode/decode time per batch on the CPU."""

from __future__ import annotations

import argparse

from rich.table import Table

from lightmark.cli._common import print_json, stdout_console
from lightmark.heatmaps.codec_check import TIMING_BATCH, TIMING_HEATMAP, TIMING_THREADS, codec_check
from lightmark.layouts import DEFAULT_LAYOUT

TIMING_KEYS = ("encode_ms", "decode_ms", "encode_cpu_ms_1_thread", "decode_cpu_ms_1_thread")


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
    result = codec_check(args.input_size, args.n_images, args.n_points, args.seed, args.repeats,
                         timing=not args.no_timing)
    if args.json:
        print_json(result)
        return 0
    _print_table(result)
    return 0


def _print_table(result: dict) -> None:
    table = Table(title=f"Codec round trip on ground truth ({result['input_size']} px, {result['heatmap_size']} px "
                        f"heatmaps, {result['n_images']}x{result['n_points']} uniform points)")
    table.add_column("codec", no_wrap=True)
    for col in ("NME %", "paper %", "L1 %", "enc ms", "dec ms", "enc cpu", "dec cpu"):
        table.add_column(col, justify="right", no_wrap=True)
    paper = {row["codec"]: row["nme_pct"] for row in result["paper"]}
    times = {t["codec"]: t for t in result["timing"]}
    for row in result["l1_error"]:
        name = row["codec"]
        t = times.get(name, {})
        table.add_row(
            name, f"{result['codecs'][name]:.3g}", f"{paper[name]:.4f}" if name in paper else "-",
            f"{row['nme_l1_pct']:.3g}", *(f"{t[key]:.1f}" if t else "-" for key in TIMING_KEYS),
        )
    stdout_console().print(table)
    if result["timing"]:
        stdout_console().print(
            "NME % = mean point error / image side * 100 (L1 %: with |dx| + |dy|). Times: median ms per batch of "
            f"{TIMING_BATCH} x {result['n_points']} points at {TIMING_HEATMAP}x{TIMING_HEATMAP} (enc = heatmaps + "
            f"weighted-MSE mask): elapsed on {TIMING_THREADS} threads (ms), CPU time on 1 thread (cpu)")
