"""`lightmark models`: the preset architectures with their parameters, size and MACs."""

from __future__ import annotations

import argparse

from rich.progress import Progress
from rich.table import Table

from lightmark.benchmarks.presets import preset_rows
from lightmark.cli._common import print_json, stderr_console, stdout_console
from lightmark.models import registry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the preset architectures (the paper's Tables 1-2 and small CPU ones)",
        description=(
            "Presets with parameters, size (MiB of the saved fp32 state_dict) and MACs at the "
            "preset's input size (fvcore; multiply-accumulates, FLOPs = 2 x MACs)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--no-macs", action="store_true", help="skip MAC counting (instant)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with Progress(console=stderr_console(), transient=True, disable=args.no_macs) as bar:
        task = bar.add_task("counting MACs", total=len(registry.PRESETS))
        table_rows = preset_rows(with_macs=not args.no_macs, advance=lambda: bar.advance(task))
    if args.json:
        print_json(table_rows)
        return 0

    table = Table(title="lightmark presets (size = MiB of the saved fp32 state_dict)")
    for name, justify in (("name", "left"), ("spec", "left"), ("input", "right"), ("params", "right"),
                          ("size MiB", "right"), ("paper MiB", "right"), ("GMACs", "right")):
        table.add_column(name, justify=justify)
    for row in table_rows:
        table.add_row(
            row["name"], row["spec"], str(row["input_size"]), f"{row['params']:,}", f"{row['size_mb']:.3f}",
            "" if row["paper_size_mb"] is None else f"{row['paper_size_mb']:.2f}",
            f"{row['macs_fvcore'] / 1e9:.3f}" if "macs_fvcore" in row else "-",
        )
    console = stdout_console()
    if not console.is_terminal:  # pipes and files get 80 columns by default: too narrow for the names
        console.width = max(console.width, 110)
    console.print(table)
    return 0
