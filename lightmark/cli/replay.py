"""`lightmark bench search --table ...`: replayed searches on a tabular benchmark, printed and plotted."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from lightmark.cli._common import comma_list, parse_seeds, print_json, stderr_console, stdout_console
from lightmark.cli.bench_proxies import proxy_scores
from lightmark.errors import ConfigError
from lightmark.reports.replay_plot import plot_replay
from lightmark.search.pareto_pruner import ParetoPruner
from lightmark.search.prescreen import Prescreen
from lightmark.search.replay import (
    DEFAULT_REPORT_TRIALS,
    hand_design,
    landscape,
    reference_point,
    replay_many,
    replay_pareto_many,
    summarise,
    summarise_pareto,
    true_front_hypervolume,
)
from lightmark.search.tabular import TABLES_DIR, load_table
from lightmark.training.protocol import Protocol, get_protocol


def default_budget(table: Any) -> float:
    """The table's suggested budget (its metadata), else the median size: half the space fits."""
    suggested = table.meta.get("suggested_budget_mb")
    if suggested:
        return float(suggested)
    return float(table.frame["size_mb"].median())


def table_proxy_scores(table: Any, proxy: str, out: Path) -> dict[str, float]:
    """Proxy scores of every architecture of a table: packaged beside it, else computed (and cached in
    --out) as `bench proxies` computes them."""
    packaged = TABLES_DIR / "proxies" / f"{table.name}.csv"
    if packaged.exists():
        frame = pd.read_csv(packaged)
    else:
        protocol = (Protocol.from_dict(table.meta["protocol"]) if table.meta.get("protocol")
                    else get_protocol("tabular"))
        out.mkdir(parents=True, exist_ok=True)
        frame = proxy_scores(table, protocol, batch_size=32, seed=0, cache=out / f"proxies-{table.name}-seed0.csv")
    if proxy not in frame:
        raise ConfigError(f"{packaged}: no {proxy!r} column")
    return dict(zip(frame["spec"].astype(str), frame[proxy].astype(float)))


def run_replay(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    budget = default_budget(table) if args.budget_mb is None else args.budget_mb
    if budget <= 0:
        raise ConfigError(f"--budget-mb must be > 0, got {budget}")
    land = landscape(table, budget_mb=budget, metric=args.metric)
    samplers = comma_list(args.samplers or "tpe,random,nsga2")
    seeds = parse_seeds(args.seeds or "100")
    n_trials = args.n_trials or 40
    if args.objectives == "nme,size":
        return _run_pareto(args, table, land, samplers, comma_list(args.pruners or "none,pareto"), seeds, n_trials)
    pruners = comma_list(args.pruners or "none,median,hyperband")
    start = time.perf_counter()
    runs = replay_many(land, samplers, pruners, n_trials=n_trials, seeds=seeds,
                       startup_trials=args.startup_trials, workers=args.workers)
    if args.prescreen:
        screen = Prescreen.parse(args.prescreen)
        scores = table_proxy_scores(table, screen.proxy, args.out)
        runs += replay_many(land, samplers, pruners, n_trials=n_trials, seeds=seeds,
                            startup_trials=args.startup_trials, workers=args.workers,
                            prescreen=(scores, screen.k))
    seconds = time.perf_counter() - start
    report_trials = tuple(t for t in DEFAULT_REPORT_TRIALS if t < n_trials)[-2:]
    if n_trials not in report_trials:
        report_trials = (*report_trials, n_trials)
    epoch_budgets = tuple(sorted({land.epochs * k for k in (1, 5, 10, 20, 40) if land.epochs * k
                                  <= n_trials * land.epochs}))
    arms = summarise(land, runs, report_trials, epoch_budgets)
    hand = hand_design(land)
    plot = args.plot or args.out / f"replay-{table.name}.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot_replay(land, runs, hand, plot, title=f"replay on {table.name} ({args.metric})")
    n_feasible = len(land.feasible_finals)
    result = {
        "table": table.name, "metric": args.metric, "budget_mb": budget, "n_trials": n_trials,
        "seeds": len(seeds), "architectures": len(land.entries), "feasible_architectures": n_feasible,
        "best_feasible": land.best, "top5pct_threshold": land.top_threshold,
        "arms": [a.to_dict() for a in arms], "hand_design": hand, "plot": str(plot),
        "seconds": round(seconds, 2),
    }
    if args.json:
        print_json(result)
    else:
        _print(result, report_trials)
    stderr_console().print(f"{len(runs)} replayed studies in {seconds:.1f} s; plot: {plot}", highlight=False)
    return 0


def _run_pareto(args: argparse.Namespace, table: Any, land: Any, samplers: list[str], pruners: list[str],
                seeds: list[int], n_trials: int) -> int:
    start = time.perf_counter()
    runs = replay_pareto_many(land, samplers, pruners, n_trials=n_trials, seeds=seeds,
                              startup_trials=args.startup_trials, workers=args.workers)
    seconds = time.perf_counter() - start
    rule = ParetoPruner.for_epochs(land.epochs)
    rows = summarise_pareto(land, runs)
    result = {
        "table": table.name, "objectives": ["nme", "size"], "metric": args.metric, "budget_mb": land.budget_mb,
        "n_trials": n_trials, "seeds": len(seeds), "reference_point": list(reference_point(land)),
        "true_front_hypervolume": true_front_hypervolume(land),
        "pareto_rule": {"warmup_epochs": rule.warmup_epochs, "min_dominators": rule.min_dominators,
                        "margin": rule.margin},
        "arms": rows, "seconds": round(seconds, 2),
    }
    if args.json:
        print_json(result)
    else:
        view = Table(title=f"two-objective replay (NME, size) on {table.name}: {n_trials} trials, {len(seeds)} seeds, "
                           f"budget {land.budget_mb:g} MiB; hypervolume as a share of the table's true front")
        for column in ("sampler", "pruner", "epochs", "pruned", "hypervolume", "epochs saved", "HV kept"):
            view.add_column(column, justify="right")
        for row in rows:
            view.add_row(row["sampler"], row["pruner"], f"{row['epochs_mean']:.0f}", f"{row['pruned_mean']:.1f}",
                         _cell(row["hypervolume_of_true_front"]), _cell(row.get("epochs_saved_vs_none")),
                         _cell(row.get("hypervolume_ratio_vs_none")))
        console = stdout_console()
        console.width = max(console.width, 170)
        console.print(view)
    stderr_console().print(f"{len(runs)} replayed two-objective studies in {seconds:.1f} s", highlight=False)
    return 0


def _cell(item: dict[str, float] | None) -> str:
    if not item or item.get("mean") is None or math.isnan(item["mean"]):
        return "-"
    return f"{item['mean']:.3f}±{(item['ci_high'] - item['ci_low']) / 2:.3f}"


def _print(result: dict[str, Any], report_trials: tuple[int, ...]) -> None:
    console = stdout_console()
    console.width = max(console.width, 170)
    title = (f"regret (pp of {result['metric']}) on {result['table']}: mean ± 95 % interval over "
             f"{result['seeds']} seeds; budget {result['budget_mb']:g} MiB, {result['feasible_architectures']} of "
             f"{result['architectures']} architectures feasible, best {result['best_feasible']:.3f}")
    view = Table(title=title)
    view.add_column("sampler")
    view.add_column("pruner")
    for t in report_trials:
        view.add_column(f"{t} trials", justify="right")
    targets = list(result["arms"][0]["epochs_to_mean_regret"]) if result["arms"] else []
    for column in ("epochs", *(f"epochs to ≤{t}" for t in targets), "top-1", "top-5%", "repeat", "pruned"):
        view.add_column(column, justify="right")
    for arm in result["arms"]:
        view.add_row(arm["sampler"], arm["pruner"],
                     *[_cell(arm["regret_at_trials"].get(str(t))) for t in report_trials],
                     f"{arm['epochs_spent_mean']:.0f}",
                     *["-" if arm["epochs_to_mean_regret"][t] is None else f"{arm['epochs_to_mean_regret'][t]:.0f}"
                       for t in targets],
                     f"{arm['p_top1']:.2f}", f"{arm['p_top5pct']:.2f}",
                     f"{arm['repeats_mean']:.1f}", f"{arm['pruned_mean']:.1f}")
    console.print(view)
    for key, name in (("design_rule", "paper's final design"), ("hand_grid", "paper's hand procedure")):
        item = result["hand_design"][key]
        regret = "-" if item["regret"] is None else f"{item['regret']:.3f}"
        console.print(f"{name} ({item['paper'] if key == 'design_rule' else 'Tables 1-2'}): stand-in "
                      f"{item.get('best_spec')}, regret {regret}, {item['trainings']} training(s), "
                      f"{item['epochs']} epochs", highlight=False)
