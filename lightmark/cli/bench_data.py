"""`lightmark bench data`: samples/s of the data path on one core, beside the issue's targets."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from lightmark.benchmarks.databench import IMAGE_FORMATS, DataBenchRow, run_data_bench
from lightmark.cli._common import print_json, stderr_console, stdout_console
from lightmark.errors import ConfigError


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 16 or v % 4 for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be multiples of 4 and >= 16, got {text!r}")
    return values


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser(
        "data", help="data path samples/s on one core: generator, augmentation, disk read, DataLoader",
    )
    parser.add_argument("--sizes", type=_int_list, default=[128, 384], help="image sizes in px (default: 128,384)")
    parser.add_argument("--n", type=int, default=200, help="samples timed per case (default: %(default)s)")
    parser.add_argument("--formats", default="png,jpg",
                        help="image formats of the temporary challenge folder (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8, help="DataLoader batch size (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in IMAGE_FORMATS]
    if bad or not formats:
        raise ConfigError(f"--formats: choose from {', '.join(IMAGE_FORMATS)}, got {args.formats!r}")
    if args.n < 1 or args.batch_size < 1:
        raise ConfigError("--n and --batch-size must be >= 1")
    cases_per_size = 2 + 2 * len(formats)
    with Progress(TextColumn("bench data"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), console=stderr_console(), transient=True) as bar:
        task = bar.add_task("", total=cases_per_size * len(args.sizes))

        def on_row(row) -> None:
            bar.update(task, advance=1, description=f"{row.case} {row.size_px}px: {row.samples_per_s:.0f}/s")

        rows = run_data_bench(args.sizes, args.n, image_formats=formats, batch_size=args.batch_size,
                              on_row=on_row)
    if args.json:
        print_json({"threads": 1, "n": args.n, "batch_size": args.batch_size,
                    "rows": [row.to_dict() for row in rows]})
    else:
        _print(rows, args.batch_size)
    return 0


def _print(rows: list[DataBenchRow], batch_size: int) -> None:
    table = Table(title="data path throughput on one core (torch and OpenCV at 1 thread)")
    table.add_column("case", no_wrap=True)
    for column in ("px", "samples/cpu-s", "samples/s", "median ms", "batch/s", "target/s", "meets"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.case, str(row.size_px), f"{row.samples_per_cpu_s:.0f}", f"{row.samples_per_s:.0f}",
            f"{row.median_ms_per_sample:.2f}",
            "" if row.batches_per_s is None else f"{row.batches_per_s:.1f}",
            "" if row.target_samples_per_s is None else f">= {row.target_samples_per_s:.0f}",
            "" if row.meets_target is None else ("yes" if row.meets_target else "NO"),
        )
    console = stdout_console()
    if not console.is_terminal:  # piped: rich would squeeze the table into 80 columns
        console = Console(width=110)
    console.print(table)
    console.print(
        "augmentation: the paper's six with erasing, default probabilities; disk cases read a temporary "
        "challenge folder from the page cache (PNG lossless, JPEG quality 95); "
        f"loader: batch {batch_size}, num_workers=0. samples/cpu-s = samples per CPU-second of this "
        "one-thread process (what a core does; targets are judged on it); samples/s and median ms are "
        "wall clock, which also counts time other processes take from the core."
    )
