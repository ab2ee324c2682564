"""`lightmark bench merge`: several `bench tabulate` runs (one per fidelity) into one multi-fidelity table."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from lightmark.cli._common import print_json, stdout_console
from lightmark.tabular.merge import merge_tables
from lightmark.tabular.table import load_table


def register_bench(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge", help="merge tables of several fidelities into one multi-fidelity table",
        description="Merge the tables of several `bench tabulate` runs (the base fidelity with every "
                    "architecture, dearer ones with a subset, each with its dev-set NME) into one table: "
                    "rows keyed by (spec, fidelity, seed), a sidecar with each fidelity's protocol, data "
                    "version and train seconds. To package it: --out lightmark/tabular/tables.")
    parser.add_argument("tables", nargs="+", metavar="TABLE", help="table CSV files or packaged names")
    parser.add_argument("--name", required=True, help="the merged table's name")
    parser.add_argument("--out", type=Path, default=Path("runs/tables"),
                        help="where <name>.csv and <name>.json go (default %(default)s)")
    parser.add_argument("--budget-mb", type=float,
                        help="the table's suggested size budget, the default of its replays and `bench transfer` "
                             "(default: the first input's)")
    parser.add_argument("--json", action="store_true", help="print the merged table's summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = " ".join(shlex.quote(a) for a in args.argv)
    csv_path, meta_path = merge_tables(args.tables, args.name, args.out, command=command,
                                       budget_mb=args.budget_mb)
    summary = {"table": str(csv_path), "meta": str(meta_path), **load_table(csv_path).summary()}
    if args.json:
        print_json(summary)
        return 0
    counts = ", ".join(f"{name} {n}" for name, n in summary["fidelities"].items())
    stdout_console().print(f"table: {csv_path} (metadata {meta_path}); architectures per fidelity: {counts}",
                           highlight=False)
    return 0
