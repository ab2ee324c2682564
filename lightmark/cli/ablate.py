"""`lightmark ablate TABLE|all`: run the paper's ablation suites and write their tables
(`lightmark.reports.ablate`: resumable, identical candidates across tables trained once)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from lightmark.benchmarks.suites import EXTRA_SUITES, TABLE_NAMES, plan_candidates, resolve_tables
from lightmark.cli._common import (
    THREADS_PER_WORKER_HELP,
    add_device_args,
    add_protocol_args,
    note_precision,
    print_json,
    protocol_from_args,
    stderr_console,
    stdout_console,
    terminate_as_interrupt,
)
from lightmark.errors import DataError
from lightmark.reports import tables
from lightmark.reports.ablate import AblationResult, ablate
from lightmark.search.workers import resolve_workers
from lightmark.training.dataset import data_layout


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ablate", help="reproduce the paper's ablation tables (table1..table5 or all)",
        description="Train every row of the paper's ablation tables for K seeds under a protocol and "
                    "write each table as CSV, Markdown and LaTeX, with the paper's numbers beside ours, "
                    "seed statistics and a noise flag. Resumable: re-run the same command.",
    )
    parser.add_argument("table", choices=[*TABLE_NAMES, *EXTRA_SUITES, "all"],
                        help="which table (all: the paper's five; challenge: the challenge's families, ours)")
    add_protocol_args(parser, default="quick")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds per row (protocol.seed = 0..K-1; default %(default)s; 1 = no noise estimate)")
    parser.add_argument("--out", type=Path, help="run/output directory (default: runs/ablate-<protocol>)")
    parser.add_argument("--workers", default="auto",
                        help="parallel worker processes: a number, or auto = one per GPU, else one 1-thread "
                             "worker per CPU core (default: %(default)s)")
    parser.add_argument("--storage", help="Optuna storage URL (default: study.db in --out, a journal "
                                          "file with several workers)")
    add_device_args(parser, threads_help=THREADS_PER_WORKER_HELP)
    parser.add_argument("--test-data", type=Path, metavar="DIR",
                        help="also evaluate every trained candidate on this dataset (e.g. the real-photo dev set of "
                             "`lightmark data realdev`); its NME is a column beside the held-out NME")
    parser.add_argument("--no-report", action="store_true", help="skip report.md and its plots")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    protocol = protocol_from_args(args)
    if args.test_data is not None and not args.test_data.exists():
        raise DataError(f"--test-data {args.test_data}: no such file or directory")
    workers = resolve_workers(args.workers, args.device)
    note_precision(args, stderr_console())
    suites = resolve_tables(args.table)
    out = args.out or Path("runs") / f"ablate-{protocol.name}"
    plan = plan_candidates(suites, protocol, args.seeds, data_layout(protocol).n_points)
    stderr_console().print(
        f"[bold]ablate {args.table}[/]: {len(plan)} candidates to train ({args.seeds} seed(s), "
        f"identical rows shared) under protocol {protocol.name}; output in {out}")
    with terminate_as_interrupt():
        result = ablate(
            suites, protocol, seeds=args.seeds, out=out, study_name=f"ablate-{args.table}-{protocol.name}",
            storage=args.storage, workers=workers, device=args.device, precision=args.precision,
            threads=args.threads or None, progress=True,
            command=_command(args, workers), report=not args.no_report, test_data=args.test_data,
        )
    _print(args, result)
    return 1 if result.failed else 0


def _print(args: argparse.Namespace, result: AblationResult) -> None:
    console = stderr_console() if args.json else stdout_console()
    for frame in result.frames:
        tables.print_table(frame, console)
    if args.json:
        print_json(result.to_json())
    else:
        console.print(f"tables in {result.out} ({', '.join(f.attrs['name'] for f in result.frames)}); "
                      f"report: {result.report or 'skipped'}; {result.seconds:.0f} s")
    if result.failed:
        stderr_console().print(f"[red]{len(result.failed)} candidate(s) failed[/]: "
                               + "; ".join(f"{r.spec}: {r.error[:120]}" for r in result.failed[:5]))


def _command(args: argparse.Namespace, workers: int) -> str:
    """The command line that reproduces this run (for the manifest and the report)."""
    parts = ["lightmark", "ablate", args.table, "--protocol", args.protocol, "--seeds", str(args.seeds)]
    if args.protocol_file:
        parts += ["--protocol-file", str(args.protocol_file)]
    for item in args.overrides:
        parts += ["--set", item]
    if args.data:
        parts += ["--data", str(args.data)]
    if args.image_root:
        parts += ["--image-root", str(args.image_root)]
    if args.layout:
        parts += ["--layout", args.layout]
    if workers != 1:
        parts += ["--workers", str(workers)]
    if args.device != "auto":
        parts += ["--device", args.device]
    if args.precision != "auto":
        parts += ["--precision", args.precision]
    if args.threads:
        parts += ["--threads", str(args.threads)]
    if args.out:
        parts += ["--out", str(args.out)]
    if args.test_data:
        parts += ["--test-data", str(args.test_data)]
    return " ".join(shlex.quote(p) for p in parts)
