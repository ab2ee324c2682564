"""Anytime curves of replayed searches: regret against trials and against epochs spent, mean and 95 %
interval over the replay seeds, with the paper's hand design at the compute it cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightmark.intervals import mean_ci
from lightmark.reports.plots import plt, save_figure
from lightmark.tabular.replay import Landscape, Run, regret_at_epochs


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    stats = np.array([mean_ci(column) for column in values.T])
    return stats[:, 0], stats[:, 1], stats[:, 2]


def plot_replay(land: Landscape, runs: list[Run], hand: dict[str, Any], path: Path | str, title: str) -> Path:
    arms: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        arms.setdefault((run.sampler, run.pruner), []).append(run)
    n_trials = len(runs[0].regret)
    max_epochs = max(r.epochs[-1] for r in runs) or land.epochs
    grid = np.unique(np.linspace(land.epochs, max_epochs, 60).astype(int))
    worst = float(land.feasible_finals[-1]) - land.best
    fig, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    trials = np.arange(1, n_trials + 1)
    samplers = list(dict.fromkeys(s for s, _ in arms))
    pruners = list(dict.fromkeys(p for _, p in arms))
    colours = {s: f"C{i}" for i, s in enumerate(samplers)}
    styles = {p: ("-", "--", ":", "-.")[i % 4] for i, p in enumerate(pruners)}
    for (sampler, pruner), group in arms.items():
        label = f"{sampler}, pruner {pruner} ({len(group)} seeds)"
        style = dict(color=colours[sampler], linestyle=styles[pruner])
        band = pruner == pruners[0]  # one band per sampler keeps the plot readable
        mean, lo, hi = _band(np.array([r.regret for r in group]))
        ax_t.plot(trials, mean, label=label, **style)
        if band:
            ax_t.fill_between(trials, lo, hi, color=colours[sampler], alpha=0.12)
        per_budget = np.array([[regret_at_epochs(r, int(b), worst) for b in grid] for r in group])
        mean, lo, hi = _band(per_budget)
        ax_e.plot(grid, mean, label=label, **style)
        if band:
            ax_e.fill_between(grid, lo, hi, color=colours[sampler], alpha=0.12)
    for key, marker in (("design_rule", "*"), ("hand_grid", "D")):
        item = hand.get(key) or {}
        if item.get("regret") is None:
            continue
        name = "paper's final design" if key == "design_rule" else "paper's hand procedure"
        label = f"{name}: {item['best_spec']} ({item['trainings']} training(s))"
        ax_t.scatter([item["trainings"]], [item["regret"]], marker=marker, s=90, color="black", zorder=5)
        ax_e.scatter([item["epochs"]], [item["regret"]], marker=marker, s=90, color="black", zorder=5,
                     label=label)
    unit = "NME, % of image side" if land.metric == "nme_image_pct" else "NME, % inter-ocular"
    ax_t.set_xlabel("trials")
    ax_t.set_ylabel(f"regret: best feasible found - table's best ({unit})")
    ax_e.set_xlabel("epochs trained (pruned trials count the epochs they ran; repeats are free)")
    for ax in (ax_t, ax_e):
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_e.legend(fontsize=7, loc="upper right")
    budget = "no budget" if land.budget_mb is None else f"budget {land.budget_mb:g} MiB"
    fig.suptitle(f"{title}: mean over seeds (band: 95 % interval, pruner {pruners[0]}), {budget}")
    fig.tight_layout()
    return save_figure(fig, path)
