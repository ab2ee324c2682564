"""`bench search --table`: every sampler x pruner replayed on a tabular benchmark (replay.py), and
what the comparison reports: regret with intervals at a few trial counts and epoch budgets, the
chance of finding the best architectures, the paper's hand design beside them; or, with two
objectives, the hypervolume each arm reaches and what the Pareto pruner saves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightmark.search.pareto_pruner import ParetoPruner
from lightmark.tabular.replay import (
    DEFAULT_REPORT_TRIALS,
    Landscape,
    ParetoRun,
    Run,
    hand_design,
    reference_point,
    replay_many,
    replay_pareto_many,
    summarise,
    summarise_pareto,
    true_front_hypervolume,
)
from lightmark.tabular.table import Table

EPOCH_MULTIPLES = (1, 5, 10, 20, 40)  # epoch budgets reported: these many full trainings


def default_budget(table: Table) -> float:
    """The table's suggested budget (its metadata), else the median size: half the space fits."""
    suggested = table.meta.get("suggested_budget_mb")
    if suggested:
        return float(suggested)
    return float(table.base().frame["size_mb"].median())


def report_trials(n_trials: int) -> tuple[int, ...]:
    """The trial counts a table reports: the two largest defaults below n_trials, and n_trials."""
    shown = tuple(t for t in DEFAULT_REPORT_TRIALS if t < n_trials)[-2:]
    return shown if n_trials in shown else (*shown, n_trials)


def epoch_budgets(land: Landscape, n_trials: int) -> tuple[int, ...]:
    return tuple(sorted({land.epochs * k for k in EPOCH_MULTIPLES if land.epochs * k <= n_trials * land.epochs}))


@dataclass(frozen=True)
class ArmsReplay:
    """The replayed studies, the trial counts reported, and the summary `bench search --json` prints."""

    runs: list[Run]
    report_trials: tuple[int, ...]
    result: dict[str, Any]


def replay_arms(table: Table, land: Landscape, samplers: list[str], pruners: list[str], *, n_trials: int,
                seeds: list[int], metric: str, plot: Path, startup_trials: int | None = None,
                workers: int | None = None, prescreen: tuple[dict[str, float], int] | None = None) -> ArmsReplay:
    """Every sampler x pruner x seed, and again with `prescreen` (proxy scores, K) when given. `plot`:
    where the caller draws the anytime curves (`reports.replay_plot`), named in the summary."""
    start = time.perf_counter()
    runs = replay_many(land, samplers, pruners, n_trials=n_trials, seeds=seeds, startup_trials=startup_trials,
                       workers=workers)
    if prescreen is not None:
        runs += replay_many(land, samplers, pruners, n_trials=n_trials, seeds=seeds,
                            startup_trials=startup_trials, workers=workers, prescreen=prescreen)
    seconds = time.perf_counter() - start
    trials = report_trials(n_trials)
    arms = summarise(land, runs, trials, epoch_budgets(land, n_trials))
    result = {
        "table": table.name, "metric": metric, "budget_mb": land.budget_mb, "n_trials": n_trials,
        "seeds": len(seeds), "architectures": len(land.entries), "feasible_architectures": len(land.feasible_finals),
        "best_feasible": land.best, "top5pct_threshold": land.top_threshold,
        "arms": [a.to_dict() for a in arms], "hand_design": hand_design(land), "plot": str(plot),
        "seconds": round(seconds, 2),
    }
    return ArmsReplay(runs, trials, result)


def replay_pareto_arms(table: Table, land: Landscape, samplers: list[str], pruners: list[str], *,
                       n_trials: int, seeds: list[int], metric: str, startup_trials: int | None = None,
                       workers: int | None = None) -> tuple[list[ParetoRun], dict[str, Any]]:
    """Two objectives (NME, size): every sampler x pruner x seed, and the hypervolume summary."""
    start = time.perf_counter()
    runs = replay_pareto_many(land, samplers, pruners, n_trials=n_trials, seeds=seeds,
                              startup_trials=startup_trials, workers=workers)
    seconds = time.perf_counter() - start
    rule = ParetoPruner.for_epochs(land.epochs)
    return runs, {
        "table": table.name, "objectives": ["nme", "size"], "metric": metric, "budget_mb": land.budget_mb,
        "n_trials": n_trials, "seeds": len(seeds), "reference_point": list(reference_point(land)),
        "true_front_hypervolume": true_front_hypervolume(land),
        "pareto_rule": {"warmup_epochs": rule.warmup_epochs, "min_dominators": rule.min_dominators,
                        "margin": rule.margin},
        "arms": summarise_pareto(land, runs), "seconds": round(seconds, 2),
    }
