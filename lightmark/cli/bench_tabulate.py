"""`lightmark bench tabulate` (train a space, or a spread of it at a dearer fidelity, into a tabular
benchmark, and evaluate it on the dev set) and `lightmark bench tables`."""

from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path

from lightmark.cli._common import (
    THREADS_PER_WORKER_HELP,
    add_device_args,
    add_protocol_args,
    print_json,
    protocol_from_args,
    stderr_console,
    stdout_console,
    terminate_as_interrupt,
)
from lightmark.cli.search import RUNNER_ENV
from lightmark.errors import ConfigError, DataError
from lightmark.search.family_space import load_space
from lightmark.tabular.subset import choose_subset
from lightmark.tabular.table import list_tables, plan_table, tabulate


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser(
        "tabulate", help="train every architecture of a space into a tabular benchmark (resumable)",
        description="Train every architecture of a search space (the grid) under a protocol and write a "
                    "table: one row per (spec, seed) with size, MACs, latency, train seconds and the "
                    "validation NME after every epoch. Search strategies then replay on it in seconds "
                    "(`lightmark bench search --table`). A dearer fidelity trains a spread of the space "
                    "(--subset, --specs); --test-data adds every model's NME on the real-photo dev set. "
                    "Re-run the same command to resume.")
    parser.add_argument("--space", type=Path, required=True, help="search-space TOML file")
    add_protocol_args(parser, default="tabular")
    parser.add_argument("--seeds", type=int, default=1, help="seeds for every architecture (default 1)")
    parser.add_argument("--second-seed", type=int, default=36, metavar="N",
                        help="with --seeds 1: N architectures, evenly spread over the grid, also get seed 1, "
                             "to measure the seed noise (default %(default)s)")
    _add_fidelity_args(parser)
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--name", help="table name (default: <space file stem>-<fidelity>)")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/tabulate-<name>)")
    parser.add_argument("--storage", help="Optuna storage URL (default: in --out)")
    add_device_args(parser, threads_help=THREADS_PER_WORKER_HELP)
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run)

    tables = bench_subparsers.add_parser(
        "tables", help="list the packaged tabular benchmarks",
        description="The tabular benchmarks that ship with lightmark: name, protocol, data version, "
                    "architectures, fidelities, model families, seeds and size range (MiB).")
    tables.add_argument("--json", action="store_true", help="print a JSON list")
    tables.set_defaults(func=run_tables)


def _add_fidelity_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fidelity", metavar="NAME",
                        help="the fidelity its rows are at (default: the protocol's name, e.g. tabular, quick, "
                             "or synth2real from configs/synth2real.toml)")
    parser.add_argument("--specs", type=Path, metavar="FILE",
                        help="train only these architectures of the space (one spec a line, # comments)")
    parser.add_argument("--subset", type=int, metavar="N",
                        help="train N architectures spanning the space, ranked by --subset-table: the best "
                             "third under --budget-mb, the rest spread down to the worst, every value of "
                             "every dimension present")
    parser.add_argument("--subset-table", metavar="TABLE",
                        help="with --subset: the table (name or CSV) whose base fidelity ranks the space")
    parser.add_argument("--budget-mb", type=float,
                        help="with --subset: the size budget of its top third (default: the table's suggested)")
    parser.add_argument("--test-data", type=Path, metavar="DIR",
                        help="evaluate every trained model on this test set (the real-photo dev set of "
                             "`lightmark data realdev`) into the realdev_* columns; resumable")


def run(args: argparse.Namespace) -> int:
    protocol = protocol_from_args(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.test_data is not None and not args.test_data.exists():
        raise DataError(f"--test-data {args.test_data}: no such file or directory")
    space = load_space(args.space)
    subset = choose_subset(args.specs, args.subset, args.subset_table, args.budget_mb)
    fidelity = args.fidelity or protocol.name
    name = args.name or f"{args.space.stem}-{fidelity}"
    out = args.out or Path("runs") / f"tabulate-{name}"
    plan = plan_table(space, protocol, args.seeds, args.second_seed, subset)
    n = len(plan.candidates(protocol))
    stderr_console().print(f"[bold]tabulate {name}[/]: {len(plan.specs)} architectures, {n} trainings "
                           f"under protocol {protocol.name} (fidelity {fidelity}); output in {out}")
    start = time.perf_counter()
    with terminate_as_interrupt():
        csv_path, meta_path = tabulate(
            space, protocol, seeds=args.seeds, second_seed=args.second_seed, out=out, name=name,
            workers=args.workers, device=args.device, precision=args.precision, threads=args.threads or None,
            progress=not args.json, command=" ".join(shlex.quote(a) for a in args.argv), storage=args.storage,
            fidelity=fidelity, subset=subset, test_data=args.test_data, runner=os.environ.get(RUNNER_ENV) or None)
    seconds = time.perf_counter() - start
    summary = {"table": str(csv_path), "meta": str(meta_path), "fidelity": fidelity,
               "architectures": len(plan.specs), "trainings": n, "seconds": round(seconds, 1)}
    if args.json:
        print_json(summary)
    else:
        stdout_console().print(f"table: {csv_path} (metadata {meta_path}); {seconds:.0f} s")
    return 0


def run_tables(args: argparse.Namespace) -> int:
    tables = list_tables()
    if args.json:
        print_json(tables)
        return 0
    if not tables:
        stdout_console().print("no packaged tabular benchmark yet: build one with `lightmark bench tabulate` "
                               "(docs/search.md) and replay it from its CSV with `bench search --table FILE`")
        return 0
    console = stdout_console()
    for t in tables:
        rho = t.get("seed_spearman")
        low, high = t.get("seed_spearman_ci") or (float("nan"), float("nan"))
        noise = f" (seed-to-seed Spearman {rho:.2f} [{low:.2f}, {high:.2f}])" if rho is not None else ""
        budget = t.get("suggested_budget_mb")
        console.print(
            f"{t['name']}: protocol {t['protocol']} on {t['data_version']}"
            + ("" if t.get("reproducible", True) else " (faces today's generator no longer makes: its numbers "
               "cannot be re-run)") + f", {t['architectures']} architectures x "
            f"{t['epochs']} epochs, {t['size_mb_min']:.2f}-{t['size_mb_max']:.2f} MiB, {t['seeds']} seed(s), "
            f"{t['architectures_with_two_seeds']} architectures with two{noise}; best NME "
            f"{t['nme_image_pct_best']:.3f} % of image side"
            + (f"; suggested budget {budget} MiB" if budget else "") + _fidelities(t)
            + (f"; families: {', '.join(t['families'])}" if len(t.get("families") or []) > 1 else ""),
            highlight=False)
    return 0


def _fidelities(summary: dict) -> str:
    counts = summary.get("fidelities") or {}
    if len(counts) < 2:
        return ""
    return "; architectures per fidelity: " + ", ".join(f"{name} {n}" for name, n in counts.items())
