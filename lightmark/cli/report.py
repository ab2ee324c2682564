"""`lightmark report RUN_DIR`: a search or ablation run directory -> report.md plus CSV/LaTeX/PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightmark.cli._common import print_json, stderr_console


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
    parser.add_argument("--json", action="store_true", help="print the written files as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightmark.reports.report import build_report, load_run

    path = build_report(args.run_dir, evaluate_best=max(0, args.evaluate_best))
    data = load_run(args.run_dir)
    written = sorted(str(p) for p in args.run_dir.iterdir()
                     if p.is_file() and p.suffix in (".md", ".csv", ".tex", ".png"))
    counts: dict[str, int] = {}
    for record in data.records:
        counts[record.status] = counts.get(record.status, 0) + 1
    if args.json:
        print_json({"report": str(path), "files": written, "records": counts,
                    "studies": [v.name for v in data.studies], "notes": data.notes})
    else:
        stderr_console().print(f"report: {path} ({len(written)} files beside it; records: "
                               + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")")
    return 0
