"""`lightmark report RUN_DIR`: a search or ablation run directory -> report.md plus CSV/LaTeX/PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightmark.benchmarks.latency import SHEET_NAME, measure_run_latency
from lightmark.cli._common import print_json, stderr_console
from lightmark.errors import ConfigError, DataError
from lightmark.reports.report import build_report, load_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write report.md (tables, frontiers, history, importances) for a run directory",
        description="Read a search or ablation run directory (study storage, records, ablation "
                    "manifest) and write report.md with its tables (CSV/Markdown/LaTeX) and plots (PNG) "
                    "beside it. Works on a run that is still going or was interrupted.",
    )
    parser.add_argument("run_dir", type=Path, help="the --out directory of a search or ablate run")
    parser.add_argument("--evaluate-best", type=int, default=3, metavar="N",
                        help="CED curves / prediction grid for the N best checkpoints (0 = skip; default 3)")
    parser.add_argument("--measure-latency", action="store_true",
                        help="time every trained architecture in one interleaved sitting on this machine "
                             "and write latency.json; tables and plots then use it (run it on a quiet machine)")
    parser.add_argument("--device", default="cpu", help="device for --measure-latency (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="CPU threads for --measure-latency (default: torch's)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds for --measure-latency (default: %(default)s)")
    parser.add_argument("--test-data", type=Path, metavar="DIR",
                        help="also evaluate every candidate's checkpoint on this dataset (e.g. the real-photo dev "
                             "set of `lightmark data realdev`) and show its NME beside the held-out NME")
    parser.add_argument("--json", action="store_true", help="print the written files as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.measure_latency:
        if args.threads is not None and args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        if args.rounds < 1:
            raise ConfigError(f"--rounds must be >= 1, got {args.rounds}")
        if not args.run_dir.is_dir():
            raise DataError(f"{args.run_dir}: no such run directory")
        command = " ".join([f"lightmark report {args.run_dir} --measure-latency",
                            *([f"--device {args.device}"] if args.device != "cpu" else []),
                            *([f"--threads {args.threads}"] if args.threads else []),
                            *([f"--rounds {args.rounds}"] if args.rounds != 5 else [])])
        with stderr_console().status("timing every architecture, interleaved"):
            records = load_run(args.run_dir).records
            sheet = measure_run_latency(args.run_dir, records, device=args.device, threads=args.threads,
                                        rounds=args.rounds, command=command)
        stderr_console().print(f"latency of {len(sheet.median_ms)} architecture(s) on {sheet.host}: "
                               f"{args.run_dir / SHEET_NAME}")
    if args.test_data is not None and not args.test_data.exists():
        raise DataError(f"--test-data {args.test_data}: no such file or directory")
    path = build_report(args.run_dir, evaluate_best=max(0, args.evaluate_best), test_data=args.test_data)
    data = load_run(args.run_dir)
    written = sorted(str(p) for p in args.run_dir.iterdir()
                     if p.is_file() and p.suffix in (".md", ".csv", ".tex", ".png"))
    counts: dict[str, int] = {}
    for record in data.records:
        counts[record.status] = counts.get(record.status, 0) + 1
    if args.json:
        print_json({"report": str(path), "files": written, "records": counts,
                    "latency": str(args.run_dir / SHEET_NAME) if data.latency else None,
                    "test_data": str(args.test_data) if args.test_data else None,
                    "studies": [v.name for v in data.studies], "notes": data.notes})
    else:
        stderr_console().print(f"report: {path} ({len(written)} files beside it; records: "
                               + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")")
    return 0
