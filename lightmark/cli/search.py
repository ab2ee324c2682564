"""`lightmark search`: an Optuna architecture search under a model-size budget (the main job)."""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from lightmark.benchmarks.proxies import naswot, proxy_batch
from lightmark.cli._common import (
    THREADS_PER_WORKER_HELP,
    add_device_args,
    add_protocol_args,
    note_precision,
    print_json,
    protocol_from_args,
    stderr_console,
    terminate_as_interrupt,
)
from lightmark.errors import ConfigError
from lightmark.models.registry import paper_presets
from lightmark.reports.report import build_report
from lightmark.search.budget import DEFAULT_BUDGET_MB, SIZE_METRICS, Budget
from lightmark.search.config import SearchConfig, default_study_name
from lightmark.search.live import LiveView
from lightmark.search.objective import parse_objectives
from lightmark.search.prescreen import Prescreen, prescreen_space
from lightmark.search.samplers import PRUNERS, SAMPLERS, default_startup_trials
from lightmark.search.space import SearchSpace
from lightmark.search.storage import choose_storage
from lightmark.search.study import run_search
from lightmark.search.trials import suggest as suggest_trials
from lightmark.search.workers import resolve_workers
from lightmark.training.dataset import data_layout

# Test/plug-in hooks: "module:function" replacing the candidate runner / the size function.
RUNNER_ENV = "LIGHTMARK_SEARCH_RUNNER"
SIZER_ENV = "LIGHTMARK_SEARCH_SIZER"
SIZE_CACHE = "deployed_sizes.json"  # exported sizes of --size-metric onnx_*, per architecture
DASHBOARD = "optuna-dashboard"  # the `dashboard` extra's command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search architectures under a size budget (Optuna; resumable, multi-worker)",
        description=(
            "Sample stacked-hourglass architectures from a search space, skip those over the "
            "budget without training, train + evaluate the rest, and keep every result in an "
            "Optuna study (default: <out>/study.db). Re-running the same command continues the "
            "study up to --n-trials finished trials."
        ),
    )
    add_protocol_args(parser)
    space = parser.add_argument_group("search space (a TOML file, then flags fix or narrow it)")
    space.add_argument("--space", type=Path, help="search-space TOML, e.g. configs/tabular-space.toml (the demo's) or "
                       "configs/quick-space.toml (small networks for --protocol quick); docs/search.md")
    space.add_argument("--stacks", help="n_stacks values: 1-4, or 1,2, or 2")
    space.add_argument("--depth", help="depth values: 2-5, or 3,4 (bounded by the heatmap size)")
    space.add_argument("--channels", help="channel values: 32-256:8 (min-max:step) or 64,128")
    space.add_argument("--attention", help="attention values: none,se,ca")
    space.add_argument("--coordconv", help="CoordConv values: true, false or true,false")
    budget = parser.add_argument_group("budget (checked from the spec alone, before training)")
    budget.add_argument("--budget-mb", type=float, default=DEFAULT_BUDGET_MB,
                        help="max model size in MiB of --size-metric (default: %(default)s)")
    budget.add_argument("--size-metric", choices=SIZE_METRICS, default="state_dict",
                        help="what --budget-mb limits: the fp32 state_dict (the write-up's size) or the "
                             "file `lightmark export` writes, onnx_fp16 or onnx_int8 (exported untrained, "
                             "cached in <out>/deployed_sizes.json; needs the export extra) "
                             "(default: %(default)s)")
    budget.add_argument("--budget-macs", type=float, help="max MACs at the protocol's input size")
    budget.add_argument("--budget-latency-ms", type=float,
                        help="max batch-1 latency in ms on --device")
    run = parser.add_argument_group("study")
    run.add_argument("--n-trials", type=int,
                     help="TOTAL finished trials the study should have (a re-run tops it up; default: suggested "
                          "from how many architectures fit the budget, by the tabular replay's evidence: all of "
                          "them up to 30, else 30 up to 108, then 10 more per doubling; docs/search.md)")
    run.add_argument("--timeout", type=float,
                     help="seconds after which no new trial starts; a trial still running at "
                          "1.2x this is stopped and queued again (resumes on the next run)")
    run.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    run.add_argument("--pruner", choices=PRUNERS, default="median",
                     help="median | hyperband (one objective, Optuna's) | pareto (two objectives: stop a trial "
                          "whose NME at an epoch is beaten by a finished trial of no larger cost; any pruner "
                          "other than none selects it in a two-objective search) | none (default: %(default)s)")
    run.add_argument("--objectives", default="nme",
                     help="nme | nme,size | nme,macs | nme,latency (default: %(default)s)")
    run.add_argument("--storage", help="Optuna storage: sqlite:///F.db, journal:F.log, "
                                       "postgresql://user:pw@host/db (default: <out>/study.db)")
    run.add_argument("--study", help="study name (default: lightmark-<protocol>)")
    run.add_argument("--workers", default="1",
                     help="local worker processes: a number, or auto = one per GPU, else one 1-thread worker "
                          "per CPU core (1.5x the candidates per hour of one 2-thread process on a 2-core CPU; "
                          "the study then lives in a journal file, not SQLite) (default: %(default)s, one "
                          "process with all cores and a zero-set-up SQLite study)")
    run.add_argument("--seed", type=int, default=0, help="sampler seed (default: %(default)s)")
    add_device_args(run, threads_help=THREADS_PER_WORKER_HELP)
    run.add_argument("--out", type=Path, default=Path("runs/search"),
                     help="run directory (default: %(default)s)")
    run.add_argument("--prescreen", metavar="PROXY:K",
                     help="before the study, score K random feasible architectures with a zero-cost proxy "
                          "(naswot: seconds each, no training) and try the best first, in place of TPE's random "
                          "start-up trials (replay evidence: docs/search.md)")
    run.add_argument("--enqueue-paper", action="store_true",
                     help="try the paper's Table 1 architectures first (those inside the space)")
    run.add_argument("--no-report", action="store_true", help="skip the plots/report at the end")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")
    parser.set_defaults(func=cmd_search)


def _range_values(text: str, kind: str, step: int = 1) -> list[Any]:
    """'2-5' / '32-256:8' / '1,2' / 'ca' / 'true,false' -> a list of values."""
    text = text.strip()
    items: list[Any] = []
    for part in text.split(","):
        part = part.strip()
        if kind == "int":
            body, _, step_text = part.partition(":")
            if "-" in body:
                low, _, high = body.partition("-")
                try:
                    items.extend(range(int(low), int(high) + 1, int(step_text or step)))
                except ValueError:
                    raise ConfigError(f"cannot read {part!r} as MIN-MAX[:STEP]") from None
            else:
                try:
                    items.append(int(body))
                except ValueError:
                    raise ConfigError(f"cannot read {part!r} as an integer") from None
        elif kind == "bool":
            if part.lower() not in ("true", "false", "on", "off", "1", "0"):
                raise ConfigError(f"cannot read {part!r} as true/false")
            items.append(part.lower() in ("true", "on", "1"))
        else:
            items.append(part)
    return items


def build_space(args: argparse.Namespace, input_size: int) -> SearchSpace:
    space = SearchSpace.from_toml(args.space) if args.space else SearchSpace()
    fixed = {
        "n_stacks": args.stacks and _range_values(args.stacks, "int"),
        "depth": args.depth and _range_values(args.depth, "int"),
        "channels": args.channels and _range_values(args.channels, "int", step=8),
        "attention": args.attention and _range_values(args.attention, "str"),
        "coordconv": args.coordconv and _range_values(args.coordconv, "bool"),
    }
    return space.with_fixed(**fixed).bounded(input_size)


def paper_candidates(space: Any, console: Any) -> list[tuple[str, Any]]:
    presets = paper_presets(table=1)
    chosen, skipped = [], []
    for preset in presets:
        (chosen if space.contains(preset.spec) else skipped).append(preset)
    if skipped:
        console.print(f"--enqueue-paper: not in the search space, skipped: "
                      f"{', '.join(str(p.spec) for p in skipped)}", highlight=False)
    return [(p.name, p.spec) for p in chosen]


def prescreen_candidates(screen: Any, space: Any, budget: Any, protocol: Any, config: Any,
                         console: Any) -> list[tuple[str, Any]]:
    """`--prescreen PROXY:K`: the start-up trials chosen by the proxy (scores cached in the run directory)."""
    keep = default_startup_trials(config.n_trials)
    start = time.perf_counter()
    batch = proxy_batch(protocol)
    chosen = prescreen_space(space, budget.fits, screen, keep, config.seed,
                             score=lambda spec: naswot(spec, batch, seed=config.seed),
                             cache=Path(config.run_dir) / f"prescreen-{screen.proxy}.csv")
    console.print(f"--prescreen {screen}: {len(chosen)} of {screen.k} random feasible architectures chosen by "
                  f"{screen.proxy} in {time.perf_counter() - start:.1f} s, tried first: "
                  f"{', '.join(str(spec) for _, spec in chosen)}", highlight=False)
    return chosen


def cmd_search(args: argparse.Namespace) -> int:
    console = stderr_console()
    protocol = protocol_from_args(args)
    objectives = parse_objectives(args.objectives)
    if args.n_trials is not None and args.n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, got {args.n_trials}")
    args.workers = resolve_workers(args.workers, args.device)
    note_precision(args, console)
    space = replace(build_space(args, protocol.input_size), n_landmarks=data_layout(protocol).n_points)
    device = args.device
    budget = Budget(
        size_mb=args.budget_mb, macs=None if args.budget_macs is None else int(args.budget_macs),
        latency_ms=args.budget_latency_ms, input_size=protocol.input_size,
        device=_latency_device(device), sizer=os.environ.get(SIZER_ENV) or None,
        size_metric=args.size_metric, size_cache=str(args.out / SIZE_CACHE),
    )
    smallest = space.smallest(budget.fits)
    if smallest is None:
        tiny = space.smallest()
        raise ConfigError(
            f"no architecture of the search space fits {budget.describe()}: the smallest, {tiny}, "
            f"is {budget.metric_size_of(tiny):.3f} MiB. Raise --budget-mb or allow fewer stacks, "
            "shallower or narrower networks"
        )
    if budget.macs is not None or budget.latency_ms is not None:
        check = budget.check(smallest)
        if not check.feasible:
            raise ConfigError(
                f"no architecture of the search space fits {budget.describe()}: the smallest, "
                f"{smallest}, is over ({', '.join(f'{k} +{v:.4g}' for k, v in check.violations().items())})"
            )
    full = space
    space = space.trimmed(budget.fits)
    if args.n_trials is None:
        # an ONNX size metric would export every architecture to count them: count the whole space instead
        fits = budget.fits if args.size_metric == "state_dict" else (lambda spec: True)
        suggestion = suggest_trials(space, fits, seed=args.seed)
        args.n_trials = suggestion.n_trials
        console.print(suggestion.describe(), highlight=False)
    run_dir = args.out
    storage = choose_storage(args.storage, run_dir, args.workers)
    config = SearchConfig(
        protocol=protocol, run_dir=run_dir, storage=storage,
        study_name=args.study or default_study_name(protocol), space=space, budget=budget,
        objectives=objectives, sampler=args.sampler, pruner=args.pruner, seed=args.seed,
        n_trials=args.n_trials, timeout=args.timeout, device=device, precision=args.precision,
        threads=args.threads or None, runner=os.environ.get(RUNNER_ENV) or None,
    )
    console.print(f"search space: {space.describe()}", highlight=False)
    if len(space) != len(full):
        console.print(f"  (trimmed from {len(full)} by the budget: wider/deeper values cannot fit "
                      f"{budget.describe()})", highlight=False)
    console.print(f"budget: {budget.describe()}; protocol {protocol.name} ({protocol.input_size} px, "
                  f"{protocol.epochs} epochs); storage {storage.url}; study {config.study_name}",
                  highlight=False)
    if storage.note:
        console.print(storage.note, highlight=False)
    enqueue = paper_candidates(space, console) if args.enqueue_paper else []
    if args.prescreen:
        enqueue += prescreen_candidates(Prescreen.parse(args.prescreen), space, budget, protocol, config, console)
    with terminate_as_interrupt(), LiveView(config, console=console) as view:
        result = run_search(config, workers=args.workers, hooks=view.hooks(), enqueue=enqueue,
                            view=view)
    summary = result.to_json()
    plots = None if args.no_report else _build_report(run_dir, console)
    summary["report"] = str(plots) if plots else None
    _print_summary({**summary, "notes": [n for n in summary["notes"] if n != storage.note]}, console)
    if args.json:
        print_json(summary)
    return 0


def _latency_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _build_report(run_dir: Path, console: Any) -> Path | None:
    try:
        return Path(build_report(run_dir))
    except Exception as exc:  # noqa: BLE001 - the search result stands without its plots
        console.print(f"report not built: {type(exc).__name__}: {exc}", highlight=False)
        return None


def _print_summary(summary: dict, console: Any) -> None:
    counts = summary["counts"]
    console.print(
        f"\n{summary['trials']} trials in study {summary['study']}: {counts['complete']} complete, "
        f"{counts['pruned']} pruned, {counts['infeasible']} over budget (not trained), "
        f"{counts['failed']} failed; {summary['reused']} reused a cached Record; "
        f"{summary.get('repeats', 0)} repeated an architecture proposed earlier in the study (free: "
        f"answered from the cache, but each uses a trial of --n-trials).",
        highlight=False,
    )
    for note in summary.get("notes", []):
        console.print(note, highlight=False)
    best = summary.get("best")
    if best:
        macs = f", {best['macs'] / 1e9:.3f} GMACs" if best.get("macs") else ""
        latency = f", {best['latency_ms']:.2f} ms" if best.get("latency_ms") else ""
        console.print(
            f"[bold green]best under budget:[/] {best['spec']} (trial {best['trial']}): NME "
            f"{best['nme_image_pct']:.3f} % of image side, inter-ocular "
            f"{_fmt(best.get('nme_inter_ocular_pct'))} %, {best['size_mb']:.2f} MiB, "
            f"{best['params']:,} params{macs}{latency}, trained {best.get('train_seconds') or 0:.0f} s "
            f"on {best.get('device') or '?'}",
        )
    else:
        console.print("no feasible trial has completed yet.")
    console.print(f"records: {summary['records_csv']}\nPareto/best: {summary['pareto_json']}\n"
                  f"study: {summary['storage']}", highlight=False)
    if summary.get("report"):
        console.print(f"report and plots: {summary['report']}", highlight=False)
    if summary["storage"].startswith("sqlite"):
        console.print(dashboard_hint(summary["storage"]), highlight=False)


def dashboard_hint(storage: str) -> str:
    """The command that shows the study live, when it is installed; else how to install it."""
    if shutil.which(DASHBOARD) is not None:
        return f"watch it live: {DASHBOARD} {storage}"
    return (f"watch it live with {DASHBOARD} (not installed: pip install -e '.[dashboard]' in the "
            f"checkout, then {DASHBOARD} {storage})")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


