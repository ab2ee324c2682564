"""`lightmark bench search --table ...`: replayed searches on a tabular benchmark, printed and plotted."""

from __future__ import annotations

import argparse
import math
from typing import Any

from rich.table import Table

from lightmark.cli._common import comma_list, parse_seeds, print_json, stderr_console, stdout_console
from lightmark.errors import ConfigError
from lightmark.reports.replay_plot import plot_replay
from lightmark.search.family_space import load_space
from lightmark.search.prescreen import Prescreen
from lightmark.tabular import table as tabular
from lightmark.tabular.proxies import table_proxy_scores
from lightmark.tabular.replay import Landscape, landscape
from lightmark.tabular.replay_bench import default_budget, replay_arms, replay_pareto_arms
from lightmark.tabular.table import load_table


def run_replay(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    budget = default_budget(table) if args.budget_mb is None else args.budget_mb
    if budget <= 0:
        raise ConfigError(f"--budget-mb must be > 0, got {budget}")
    land = landscape(table, budget_mb=budget, metric=args.metric,
                     space=load_space(args.space) if args.space else None)
    if land.left_out:
        stderr_console().print(f"{table.name}: its grid is not complete; replaying the {len(land.entries)} "
                               f"architectures that form a complete one, {len(land.left_out)} left out "
                               f"({', '.join(land.left_out[:3])}{' ...' if len(land.left_out) > 3 else ''}); "
                               "--space FILE picks another part", highlight=False)
    samplers = comma_list(args.samplers or "tpe,random,nsga2")
    seeds = parse_seeds(args.seeds or "100")
    n_trials = args.n_trials or 40
    if args.objectives == "nme,size":
        return _run_pareto(args, table, land, samplers, comma_list(args.pruners or "none,pareto"), seeds, n_trials)
    pruners = comma_list(args.pruners or "none,median,hyperband")
    prescreen = None
    if args.prescreen:
        screen = Prescreen.parse(args.prescreen)
        prescreen = (table_proxy_scores(table, screen.proxy, args.out, on_progress=_proxy_progress), screen.k)
    plot = args.plot or args.out / f"replay-{table.name}.png"
    replay = replay_arms(table, land, samplers, pruners, n_trials=n_trials, seeds=seeds, metric=args.metric,
                         plot=plot, startup_trials=args.startup_trials, workers=args.workers, prescreen=prescreen)
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot_replay(land, replay.runs, replay.result["hand_design"], plot,
                title=f"replay on {table.name} ({args.metric})")
    if args.json:
        print_json(replay.result)
    else:
        _print(replay.result, replay.report_trials)
    stderr_console().print(f"{len(replay.runs)} replayed studies in {replay.result['seconds']:.1f} s; plot: {plot}",
                           highlight=False)
    return 0


def _proxy_progress(scored: int, total: int) -> None:
    stderr_console().print(f"proxies: {scored} of {total} architectures", highlight=False)


def _run_pareto(args: argparse.Namespace, table: tabular.Table, land: Landscape, samplers: list[str],
                pruners: list[str], seeds: list[int], n_trials: int) -> int:
    runs, result = replay_pareto_arms(table, land, samplers, pruners, n_trials=n_trials, seeds=seeds,
                                      metric=args.metric, startup_trials=args.startup_trials, workers=args.workers)
    if args.json:
        print_json(result)
    else:
        _print_pareto(result)
    stderr_console().print(f"{len(runs)} replayed two-objective studies in {result['seconds']:.1f} s",
                           highlight=False)
    return 0


def _print_pareto(result: dict[str, Any]) -> None:
    view = Table(title=f"two-objective replay (NME, size) on {result['table']}: {result['n_trials']} trials, "
                       f"{result['seeds']} seeds, budget {result['budget_mb']:g} MiB; hypervolume as a share of the "
                       "table's true front")
    for column in ("sampler", "pruner", "epochs", "pruned", "hypervolume", "epochs saved", "HV kept"):
        view.add_column(column, justify="right")
    for row in result["arms"]:
        view.add_row(row["sampler"], row["pruner"], f"{row['epochs_mean']:.0f}", f"{row['pruned_mean']:.1f}",
                     _cell(row["hypervolume_of_true_front"]), _cell(row.get("epochs_saved_vs_none")),
                     _cell(row.get("hypervolume_ratio_vs_none")))
    console = stdout_console()
    console.width = max(console.width, 170)
    console.print(view)


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
