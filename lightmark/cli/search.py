"""`lightmark search`: an Optuna architecture search under a model-size budget (the main job)."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console

from lightmark.benchmarks.record import Status
from lightmark.cli._common import (
    THREADS_PER_WORKER_HELP,
    add_device_args,
    add_protocol_args,
    comma_list,
    note_precision,
    print_json,
    protocol_from_args,
    stderr_console,
    terminate_as_interrupt,
)
from lightmark.errors import ConfigError
from lightmark.reports.report import build_report
from lightmark.search import plan as planning
from lightmark.search.budget import DEFAULT_BUDGET_MB, SIZE_METRICS
from lightmark.search.family_space import AnySpace
from lightmark.search.live import LiveView
from lightmark.search.objective import parse_objectives
from lightmark.search.plan import SearchPlan, SearchRequest, SpaceFlags
from lightmark.search.prescreen import Prescreen
from lightmark.search.promote import Promotion, parse_fidelity, run_promotion
from lightmark.search.samplers import PRUNERS, SAMPLERS
from lightmark.search.storage_retry import redact_url
from lightmark.search.study import run_search
from lightmark.search.workers import resolve_workers

# Test/plug-in hooks: "module:function" replacing the candidate runner / the size function.
RUNNER_ENV = "LIGHTMARK_SEARCH_RUNNER"
SIZER_ENV = "LIGHTMARK_SEARCH_SIZER"
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
    _add_space_args(parser)
    _add_budget_args(parser)
    run = parser.add_argument_group("study")
    _add_study_args(run)
    _add_run_args(run)
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")
    parser.set_defaults(func=cmd_search)


def _add_space_args(parser: argparse.ArgumentParser) -> None:
    space = parser.add_argument_group("search space (a TOML file, then flags fix or narrow it)")
    space.add_argument("--space", type=Path, help="search-space TOML, e.g. configs/tabular-space.toml (the demo's) or "
                       "configs/quick-space.toml (small networks for --protocol quick); docs/search.md")
    space.add_argument("--stacks", help="n_stacks values: 1-4, or 1,2, or 2")
    space.add_argument("--depth", help="depth values: 2-5, or 3,4 (bounded by the heatmap size)")
    space.add_argument("--channels", help="channel values: 32-256:8 (min-max:step) or 64,128")
    space.add_argument("--attention", help="attention values: none,se,ca")
    space.add_argument("--coordconv", help="CoordConv values: true, false or true,false")


def _add_budget_args(parser: argparse.ArgumentParser) -> None:
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


def _add_study_args(run: argparse._ArgumentGroup) -> None:
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


def _add_run_args(run: argparse._ArgumentGroup) -> None:
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
    run.add_argument("--fidelities", metavar="CHEAP,DEAR",
                     help="a two-fidelity search: CHEAP is this search's --protocol; its best --promote "
                          "architectures are retrained under DEAR and the pick is made there. A fidelity is a "
                          "protocol preset, or PRESET:FILE.toml (e.g. quick:configs/synth2real.toml); DEAR uses "
                          "the same --data and --layout, not --set (docs/search.md)")
    run.add_argument("--promote", type=int, default=5, metavar="K",
                     help="with --fidelities: how many of the cheap study's best are retrained (default: %(default)s)")


def _space_flags(args: argparse.Namespace) -> SpaceFlags:
    return SpaceFlags(space=args.space, stacks=args.stacks, depth=args.depth, channels=args.channels,
                      attention=args.attention, coordconv=args.coordconv)


def build_space(args: argparse.Namespace, input_size: int) -> AnySpace:
    """The space of the parsed flags (`search.plan.build_space`)."""
    return planning.build_space(_space_flags(args), input_size)


def _request(args: argparse.Namespace) -> SearchRequest:
    protocol = protocol_from_args(args)
    objectives = parse_objectives(args.objectives)
    return SearchRequest(
        protocol=protocol, out=args.out, space=_space_flags(args), objectives=objectives,
        budget_mb=args.budget_mb, size_metric=args.size_metric, budget_macs=args.budget_macs,
        budget_latency_ms=args.budget_latency_ms, n_trials=args.n_trials, timeout=args.timeout,
        sampler=args.sampler, pruner=args.pruner, storage=args.storage, study=args.study,
        workers=resolve_workers(args.workers, args.device), seed=args.seed, device=args.device,
        precision=args.precision, threads=args.threads or None,
        runner=os.environ.get(RUNNER_ENV) or None, sizer=os.environ.get(SIZER_ENV) or None,
    )


def cmd_search(args: argparse.Namespace) -> int:
    console = stderr_console()
    request = _request(args)
    promotion = _promotion(args, request)
    note_precision(args, console)
    plan = planning.plan_search(request)
    _print_plan(plan, console)
    enqueue = _first_candidates(args, plan, console)
    config = plan.config
    with terminate_as_interrupt(), LiveView(config, console=console) as view:
        result = run_search(config, workers=plan.workers, hooks=view.hooks(), enqueue=enqueue, view=view)
    summary = result.to_json()
    if promotion is not None and result.exit_code == 0:
        summary["promotion"] = run_promotion(config, promotion, progress=not args.json)
    plots = None if args.no_report else _build_report(config.run_dir, console)
    summary["report"] = str(plots) if plots else None
    _print_summary({**summary, "notes": [n for n in summary["notes"] if n != config.storage.note]}, console)
    if args.json:
        print_json(summary)
    return result.exit_code  # 1: a worker died or a trial failed with an error of its own (the notes say which)


def _promotion(args: argparse.Namespace, request: SearchRequest) -> Promotion | None:
    """--fidelities CHEAP,DEAR: CHEAP must be the search's own protocol (no silent switch)."""
    if args.fidelities is None:
        return None
    names = comma_list(args.fidelities)
    if len(names) != 2:
        raise ConfigError(f"--fidelities {args.fidelities!r}: name two fidelities, CHEAP,DEAR")
    cheap, dear = (parse_fidelity(name) for name in names)
    if cheap.canonical_json() != request.protocol.canonical_json():
        raise ConfigError(f"--fidelities: the cheap fidelity {names[0]!r} must be this search's protocol "
                          f"({request.protocol.name}): pass --protocol {names[0].split(':')[0]} (and its file)")
    return Promotion(dear=dear, k=args.promote, workers=request.workers)


def _print_plan(plan: SearchPlan, console: Console) -> None:
    config = plan.config
    space, budget, protocol = config.space, config.budget, config.protocol
    if plan.suggestion is not None:
        console.print(plan.suggestion.describe(), highlight=False)
    console.print(f"search space: {space.describe()}", highlight=False)
    if len(space) != plan.untrimmed_size:
        console.print(f"  (trimmed from {plan.untrimmed_size} by the budget: wider/deeper values cannot fit "
                      f"{budget.describe()})", highlight=False)
    console.print(f"budget: {budget.describe()}; protocol {protocol.name} ({protocol.input_size} px, "
                  f"{protocol.epochs} epochs); storage {redact_url(config.storage.url)}; study {config.study_name}",
                  highlight=False)
    if config.storage.note:
        console.print(config.storage.note, highlight=False)


def _first_candidates(args: argparse.Namespace, plan: SearchPlan, console: Console) -> list[tuple[str, Any]]:
    """--enqueue-paper and --prescreen: the architectures tried before the sampler's own."""
    enqueue: list[tuple[str, Any]] = []
    if args.enqueue_paper:
        chosen, skipped = planning.paper_candidates(plan.config.space)
        if skipped:
            console.print(f"--enqueue-paper: not in the search space, skipped: "
                          f"{', '.join(str(spec) for spec in skipped)}", highlight=False)
        enqueue += chosen
    if args.prescreen:
        screen = Prescreen.parse(args.prescreen)
        chosen, seconds = planning.prescreen_candidates(screen, plan.config)
        console.print(f"--prescreen {screen}: {len(chosen)} of {screen.k} random feasible architectures chosen by "
                      f"{screen.proxy} in {seconds:.1f} s, tried first: "
                      f"{', '.join(str(spec) for _, spec in chosen)}", highlight=False)
        enqueue += chosen
    return enqueue


def _build_report(run_dir: Path, console: Console) -> Path | None:
    try:
        return Path(build_report(run_dir))
    except Exception as exc:  # noqa: BLE001 - the search result stands without its plots
        console.print(f"report not built: {type(exc).__name__}: {exc}", highlight=False)
        return None


def _print_summary(summary: dict, console: Console) -> None:
    counts = summary["counts"]
    console.print(
        f"\n{summary['trials']} trials in study {summary['study']}: {counts[Status.COMPLETE]} complete, "
        f"{counts[Status.PRUNED]} pruned, {counts[Status.INFEASIBLE]} over budget (not trained), "
        f"{counts[Status.FAILED]} failed; {summary['reused']} reused a cached Record; "
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
        if summary.get("best_checkpoint"):
            console.print(f"best checkpoint (export or retrain it): {summary['best_checkpoint']}", highlight=False,
                          soft_wrap=True)  # one line: the path stays whole to copy
    else:
        console.print("no feasible trial has completed yet.")
    console.print(f"records: {summary['records_csv']}\nPareto/best: {summary['pareto_json']}\n"
                  f"study: {summary['storage']}", highlight=False)
    if summary.get("promotion"):
        _print_promotion(summary["promotion"], console)
    if summary.get("report"):
        console.print(f"report and plots: {summary['report']}", highlight=False)
    if summary["storage"].startswith("sqlite"):
        console.print(dashboard_hint(summary["storage"]), highlight=False, markup=False)  # keeps '[dashboard]'


def _print_promotion(p: dict, console: Console) -> None:
    cheap, dear = p["fidelities"]
    console.print(f"\npromoted to {dear}: the {len(p['promoted'])} best of {cheap} retrained "
                  f"({p['train_seconds_dear']:.0f} s); NME % of image side at {cheap} -> {dear}:", highlight=False)
    for row in p["promoted"]:
        console.print(f"  {row['spec']}: {row['nme_cheap']:.3f} -> {_fmt(row['nme_dear'])}", highlight=False)
    if p["pick"]:
        same = "the cheap study's best too" if p["pick_is_cheap_best"] else "not the cheap study's best"
        console.print(f"[bold green]pick at {dear}:[/] {p['pick']['spec']} ({same}); checkpoint "
                      f"{p['pick']['checkpoint']}", soft_wrap=True)


def dashboard_hint(storage: str) -> str:
    """The command that shows the study live, when it is installed; else how to install it."""
    if shutil.which(DASHBOARD) is not None:
        return f"watch it live: {DASHBOARD} {storage}"
    return (f"watch it live with {DASHBOARD} (not installed: pip install -e '.[dashboard]' in the "
            f"checkout, then {DASHBOARD} {storage})")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


