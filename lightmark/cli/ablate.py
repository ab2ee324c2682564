"""`lightmark ablate TABLE|all`: run the paper's ablation suites and write their tables.

Every row x seed goes through the search's machinery (`run_fixed_candidates`: same runner, same
storage, same workers), so a re-run resumes, finished candidates are reused, and identical
candidates across tables (the s2-d4-c128 baseline of Tables 1-4) are trained once.
"""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightmark.benchmarks.ablation import prepare_ablation
from lightmark.benchmarks.record import Record, Status
from lightmark.benchmarks.suites import TABLE_NAMES, Suite, plan_candidates, resolve_tables
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
from lightmark.reports.report import ablation_frames, build_report, evaluate_test_data
from lightmark.search.fixed import run_fixed_candidates
from lightmark.search.workers import resolve_workers
from lightmark.training.dataset import data_layout
from lightmark.training.protocol import Protocol


@dataclass
class AblationResult:
    study_name: str
    records: list[Record]
    frames: list[Any]  # pandas DataFrames, one per suite
    paths: dict[str, dict[str, Path]] = field(default_factory=dict)  # suite -> {csv, md, tex}
    report: Path | None = None


def ablate(
    suites: Sequence[Suite],
    protocol: Protocol,
    *,
    seeds: int,
    out: Path | str,
    study_name: str,
    storage: str | None = None,
    workers: int = 1,
    device: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
    progress: bool = True,
    command: str = "",
    report: bool = True,
    runner: Callable[..., Record] | str | None = None,
    test_data: Path | str | None = None,
) -> AblationResult:
    """Train (or reuse) every candidate of `suites` and write their tables into `out`.

    The plan and manifest come from `benchmarks.ablation`, the training from the search's
    `run_fixed_candidates` (same runner, storage, workers and resume), the tables from `reports`.
    `runner`: None = the real candidate runner; a callable (one process) or "module:function"
    (also used by worker processes) for tests. `test_data`: a dataset every trained candidate is also
    evaluated on (e.g. the real-photo dev set); its NME is a column beside the held-out NME."""
    out = Path(out)
    plan, manifest = prepare_ablation(suites, protocol, seeds=seeds, out=out, study_name=study_name,
                                      command=command)
    kwargs: dict[str, Any] = dict(run_dir=out, study_name=study_name, storage=storage, workers=workers,
                                  device=device, precision=precision, threads=threads, progress=progress)
    if runner is not None:
        kwargs["runner"] = runner
    records = run_fixed_candidates([(c.label, c.spec, c.protocol) for c in plan], **kwargs)

    test = evaluate_test_data(out, test_data, records) if test_data is not None else None
    frames = ablation_frames({**manifest, "tables": [s.name for s in suites]}, records, test=test)
    result = AblationResult(study_name=study_name, records=records, frames=frames)
    for frame in frames:
        result.paths[frame.attrs["name"]] = tables.write_table(frame, out, frame.attrs["name"])
    if report:
        result.report = build_report(out, test=test)
    return result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ablate", help="reproduce the paper's ablation tables (table1..table5 or all)",
        description="Train every row of the paper's ablation tables for K seeds under a protocol and "
                    "write each table as CSV, Markdown and LaTeX, with the paper's numbers beside ours, "
                    "seed statistics and a noise flag. Resumable: re-run the same command.",
    )
    parser.add_argument("table", choices=[*TABLE_NAMES, "all"], help="which table (or all five)")
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
    args.workers = resolve_workers(args.workers, args.device)
    note_precision(args, stderr_console())
    suites = resolve_tables(args.table)
    out = args.out or Path("runs") / f"ablate-{protocol.name}"
    console = stderr_console() if args.json else stdout_console()
    plan = plan_candidates(suites, protocol, args.seeds, data_layout(protocol).n_points)
    stderr_console().print(
        f"[bold]ablate {args.table}[/]: {len(plan)} candidates to train ({args.seeds} seed(s), "
        f"identical rows shared) under protocol {protocol.name}; output in {out}")
    start = time.perf_counter()
    with terminate_as_interrupt():
        result = ablate(
            suites, protocol, seeds=args.seeds, out=out, study_name=f"ablate-{args.table}-{protocol.name}",
            storage=args.storage, workers=args.workers, device=args.device, precision=args.precision,
            threads=args.threads or None, progress=True,
            command=_command(args), report=not args.no_report, test_data=args.test_data,
        )
    seconds = time.perf_counter() - start
    for frame in result.frames:
        tables.print_table(frame, console)
    failed = [r for r in result.records if r.status == Status.FAILED]
    summary = {
        "out": str(out), "study": result.study_name, "protocol": protocol.name, "seeds": args.seeds,
        "candidates": len(plan), "failed": len(failed), "seconds": round(seconds, 1),
        "report": str(result.report) if result.report else None,
        "tables": {
            frame.attrs["name"]: {
                **{k: str(v) for k, v in result.paths[frame.attrs["name"]].items()},
                "rows": frame.to_dict(orient="records"),
            }
            for frame in result.frames
        },
    }
    if args.json:
        print_json(summary)
    else:
        console.print(f"tables in {out} ({', '.join(f.attrs['name'] for f in result.frames)}); "
                      f"report: {result.report or 'skipped'}; {seconds:.0f} s")
    if failed:
        stderr_console().print(f"[red]{len(failed)} candidate(s) failed[/]: "
                               + "; ".join(f"{r.spec}: {r.error[:120]}" for r in failed[:5]))
        return 1
    return 0


def _command(args: argparse.Namespace) -> str:
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
    if args.workers != 1:
        parts += ["--workers", str(args.workers)]
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
