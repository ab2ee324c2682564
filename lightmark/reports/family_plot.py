"""The cross-family frontier: every architecture of a table at its size and NME, coloured by family,
each family's own Pareto front, and the size bands `bench families` judges."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightmark.reports.plots import pareto_front, plt, save_figure
from lightmark.tabular.families import Architecture


def plot_family_frontier(archs: Sequence[Architecture], path: Path | str, *, bands: Sequence[float] = (),
                         title: str = "", ylabel: str = "NME, % of image side (lower is better)") -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    families = sorted({a.family for a in archs})
    for i, family in enumerate(families):
        own = sorted((a for a in archs if a.family == family), key=lambda a: a.size_mb)
        colour = f"C{i}"
        ax.scatter([a.size_mb for a in own], [a.nme for a in own], s=28, alpha=0.75, color=colour,
                   label=f"{family} ({len(own)})", zorder=3)
        points = [(a.size_mb, a.nme) for a in own]
        front = pareto_front(points)
        if front:
            ax.step([points[j][0] for j in front], [points[j][1] for j in front], where="post", color=colour,
                    linewidth=1.5, zorder=4)
    for edge in bands[1:-1]:
        ax.axvline(edge, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("size, MiB of the saved fp32 state_dict (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "NME against size, by family (lines: each family's Pareto front)", fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)
