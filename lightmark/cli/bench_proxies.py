"""`lightmark bench proxies --table NAME`: zero-cost proxies of every architecture of a tabular benchmark
against its trained NME (Kendall tau, Spearman rho, bootstrap intervals), beside params and MACs."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.table import Table

from lightmark.cli._common import print_json, stderr_console, stdout_console
from lightmark.device import intra_op_threads
from lightmark.tabular.proxies import DEFAULT_BATCH, evaluate_proxies
from lightmark.tabular.table import load_table


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser(
        "proxies", help="zero-cost proxies (synflow, NASWOT, grad_norm, SNIP) against a table's trained NME",
        description="Score every architecture of a tabular benchmark at initialisation, without training, "
                    "and measure how well each score ranks the trained NME (Kendall tau, Spearman rho, 95 % "
                    "bootstrap intervals), beside the trivial proxies params and MACs. Scores are cached in "
                    "--out, so a re-run only computes what is missing.")
    parser.add_argument("--table", required=True, help="a packaged table name or a table CSV")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                        help="training faces per proxy batch (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-proxies"))
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    console = stderr_console()

    def progress(scored: int, total: int) -> None:
        console.print(f"proxies: {scored} of {total} architectures", highlight=False)

    with intra_op_threads(args.threads):
        result = evaluate_proxies(table, args.out, batch_size=args.batch, seed=args.seed, on_progress=progress)
    if args.json:
        print_json(result)
    else:
        _print(result)
    return 0


def _print(result: dict) -> None:
    console = stdout_console()
    for metric, rows in result["proxies"].items():
        view = Table(title=f"zero-cost proxies vs trained {metric} on {result['table']} ({result['architectures']} "
                           f"architectures; positive = ranks better architectures higher; 95 % bootstrap)")
        for column in ("proxy", "Kendall tau", "Spearman rho"):
            view.add_column(column)
        for name, agreement in rows.items():
            view.add_row(name, _ci(agreement, "kendall_tau"), _ci(agreement, "spearman_rho"))
        console.print(view)
    versus = result["versus_trivial"]
    for name, d in versus["kendall_tau_difference"].items():
        console.print(f"{name} - {versus['baseline']}: Kendall tau {d['difference']:+.3f} "
                      f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] (paired bootstrap)", highlight=False)
    console.print("ranks better than the trivial proxies beyond the interval: "
                  + (", ".join(versus["better_beyond_noise"]) or "none"), highlight=False)
    if result["seed_to_seed_spearman"] is not None:
        console.print(f"ceiling: the table's own seed-to-seed Spearman rho is "
                      f"{result['seed_to_seed_spearman']:.3f}", highlight=False)


def _ci(agreement: dict, key: str) -> str:
    value = agreement[key]
    if not np.isfinite(value):
        return "-"
    return f"{value:+.3f} [{agreement[key + '_ci_low']:+.3f}, {agreement[key + '_ci_high']:+.3f}]"
