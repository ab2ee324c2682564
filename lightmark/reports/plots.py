"""Plots a person reads at a glance: frontiers, optimisation history, importances, CED, predictions.

matplotlib with the Agg backend (no display); every figure has labelled axes with units, a legend
and a title, and is written atomically as PNG. Functions take Records / Optuna trials / arrays and
a path, and return the path written (or None with a reason where there is nothing to draw).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402

from lightmark.atomic import atomic_path  # noqa: E402
from lightmark.benchmarks.record import Record, Status  # noqa: E402
from lightmark.search.records import pareto_front as pareto_rows  # noqa: E402
from lightmark.search.records import trial_status  # noqa: E402,F401 (one status per trial, re-exported)

DPI = 120
NME_LABEL = {
    "nme_image_pct": "NME (% of image side)",
    "nme_inter_ocular_pct": "NME (% of inter-ocular distance)",
    "nme_inter_pupil_pct": "NME (% of inter-pupil distance)",
    "nme_bbox_pct": "NME (% of sqrt(box w*h))",
}
AXES = {
    # key: (Record attribute, scale, axis label, short unit for the budget label)
    "size": ("size_mb", 1.0, "Model size (MiB, fp32 state_dict)", "MiB"),
    "macs": ("macs", 1e-9, "Compute (GMACs per image, batch 1)", "GMACs"),
    "latency": ("latency_ms", 1.0, "Latency (ms per image, batch 1)", "ms"),
}


def save_figure(fig: Any, path: Path | str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both coordinates (both minimised), by x.

    An adapter over the search's `records.pareto_front` (one algorithm for the search's pareto.json
    and the plots): points become rows {"x", "y", "index"}."""
    rows = [{"x": float(x), "y": float(y), "index": i} for i, (x, y) in enumerate(points)]
    return [row["index"] for row in pareto_rows(rows, ("x", "y"))]


def _value(record: Record, attr: str, scale: float) -> float:
    value = getattr(record, attr)
    return float(value) * scale if value is not None else math.nan


FAR_BUDGET = 3.0  # a budget beyond this multiple of the largest point is not drawn to scale



def budget_off_axis(points_x: Sequence[float], budget: float | None) -> bool:
    """True when drawing the budget to scale would squeeze every point into the axis' left third."""
    finite = [x for x in points_x if math.isfinite(x)]
    return bool(budget is not None and finite and max(finite) > 0 and budget > FAR_BUDGET * max(finite))


def plot_frontier(
    records: Sequence[Record],
    path: Path | str,
    *,
    axis: str = "size",
    budget: float | None = None,
    nme_key: str = "nme_image_pct",
    title: str | None = None,
    annotate: bool = True,
) -> Path:
    """NME against size / MACs / latency for every trial, the Pareto front and the budget line.

    Completed candidates are dots, pruned ones hollow (their NME is the last one reported before
    pruning), infeasible ones (over budget, never trained) crosses on a strip at the top at
    their cost, failed ones are only counted in the title. `budget` is in the axis' unit
    (MiB, GMACs, ms).
    """
    attr, scale, xlabel, unit = AXES[axis]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    done = [r for r in records if r.status == Status.COMPLETE and getattr(r, nme_key) is not None
            and math.isfinite(_value(r, attr, scale))]
    pruned = [r for r in records if r.status == Status.PRUNED and getattr(r, nme_key) is not None
              and math.isfinite(_value(r, attr, scale))]
    infeasible = [r for r in records if r.status == Status.INFEASIBLE and math.isfinite(_value(r, attr, scale))]
    failed = [r for r in records if r.status == Status.FAILED]

    front_labels: list[tuple[str, float, float]] = []

    def xy(items: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([_value(r, attr, scale) for r in items]),
                np.array([float(getattr(r, nme_key)) for r in items]))

    if done:
        x, y = xy(done)
        within = np.ones_like(x, dtype=bool) if budget is None else x <= budget
        ax.scatter(x[within], y[within], s=36, color="tab:blue", alpha=0.8, zorder=3,
                   label=f"completed ({int(within.sum())})")
        if (~within).any():  # trained but over this axis' budget (e.g. a MACs view of a size budget)
            ax.scatter(x[~within], y[~within], s=36, color="tab:orange", alpha=0.8, zorder=3,
                       label=f"completed, over the {unit} budget ({int((~within).sum())})")
        pts = [(float(a), float(b)) for a, b, w in zip(x, y, within) if w]
        keep = [r for r, w in zip(done, within) if w]
        front = pareto_front(pts)
        if front:
            fx = [pts[i][0] for i in front]
            fy = [pts[i][1] for i in front]
            ax.step(fx, fy, where="post", color="tab:red", linewidth=1.8, zorder=4,
                    label=f"Pareto front ({len(front)})")
            ax.scatter(fx, fy, s=70, facecolors="none", edgecolors="tab:red", linewidths=1.5, zorder=5)
            if annotate:
                # an ablation trains one spec under several codecs/losses: then say which
                varied = len({(r.codec, r.loss, r.erasing) for r in done}) > 1
                for i in front[:12]:
                    r = keep[i]
                    text = r.spec + (f" ({r.codec}, {r.loss}{', erasing' if r.erasing else ''})"
                                     if varied else "")
                    front_labels.append((text, *pts[i]))
    if pruned:
        x, y = xy(pruned)
        ax.scatter(x, y, s=36, facecolors="none", edgecolors="grey", zorder=2,
                   label=f"pruned, last reported NME ({len(pruned)})")
    if infeasible:
        x = np.array([_value(r, attr, scale) for r in infeasible])
        strip = ax.get_xaxis_transform()  # x in data units, y in axes fraction
        ax.scatter(x, np.full_like(x, 0.96), transform=strip, marker="x", s=45, color="tab:purple",
                   zorder=3, clip_on=False, label=f"infeasible: over budget, not trained ({len(infeasible)})")
        ax.text(float(np.median(x)), 0.91, "over budget: no NME", transform=strip, fontsize=7,
                color="tab:purple", ha="center", va="top")
    points_x = [_value(r, attr, scale) for r in (*done, *pruned, *infeasible)]
    # A budget far to the right of every point would squeeze them into the left edge: keep the axis on
    # the points and say where the budget is instead of drawing it.
    far = budget_off_axis(points_x, budget)
    if budget is not None and not far:
        ax.axvline(budget, color="black", linestyle="--", linewidth=1.2, label=f"budget {budget:g} {unit}")
    xs = points_x + ([budget] if budget and not far else [])
    if xs:  # the infeasible strip is not autoscaled: make room for it and the budget line
        right = max(xs) * 1.08 if max(xs) > 0 else 1.0
        ax.set_xlim(min(0.0, min(xs)), right)
        if budget is not None and right > budget:
            ax.axvspan(budget, right, color="grey", alpha=0.08, zorder=0)
    if far:
        ax.annotate(f"budget {budget:g} {unit} is off the axis (all points are under a third of it)",
                    xy=(0.99, 0.03), xycoords="axes fraction", ha="right", fontsize=7, color="black")
    if front_labels:
        _place_labels(ax, front_labels, color="tab:red")
    if not (done or pruned or infeasible):
        ax.text(0.5, 0.5, "no completed candidates yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(NME_LABEL.get(nme_key, nme_key) + " (lower is better)")
    counts = f"{len(done)} completed, {len(pruned)} pruned, {len(infeasible)} infeasible, {len(failed)} failed"
    ax.set_title((title or f"NME vs {axis}") + f"\n{counts}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


@dataclass(frozen=True)
class ArchitecturePoint:
    """One architecture row of an ablation: our mean NME over seeds and the paper's own numbers."""

    label: str
    size_mb: float  # ours, MiB of the fp32 state_dict (nan: not trained yet)
    nme: float  # ours, mean over seeds (nan: no result yet)
    nme_std: float  # sample std over seeds (nan with one seed)
    paper_size_mb: float  # the paper's Model Size (MB), nan if absent
    paper_nme: float  # the paper's Test NME (%), nan if absent


def _place_labels(ax: Any, rows: Sequence[tuple[str, float, float]], *, fontsize: int = 7,
                  color: str | None = None) -> None:
    """Label points top-down, moving a label down until it clears those already placed (display
    pixels), so labels of nearly coinciding points stack instead of overlapping. A label that
    would run past the right edge of the axes goes to the left of its point."""
    ax.autoscale_view()
    line = fontsize * 1.6
    right_edge = ax.get_window_extent().x1
    char = 0.6 * fontsize * ax.figure.dpi / 72  # rough width of one character, display pixels
    placed: list[tuple[float, float]] = []
    for label, a, b in sorted(rows, key=lambda r: -r[2]):
        px, py = ax.transData.transform((a, b))
        ty = py + 4
        while any(abs(ty - qy) < line and abs(px - qx) < 8 * len(label) for qx, qy in placed):
            ty -= line
        placed.append((px, ty))
        left = px + 6 + char * len(label) > right_edge
        ax.annotate(label, (a, b), textcoords="offset pixels", xytext=(-6 if left else 6, ty - py),
                    ha="right" if left else "left", fontsize=fontsize, color=color)


def plot_architecture_frontier(
    points: Sequence[ArchitecturePoint],
    path: Path | str,
    *,
    ours: str,
    nme_label: str = NME_LABEL["nme_image_pct"],
) -> Path:
    """Size vs NME per architecture, ours beside the paper's, each with its own Pareto front.

    Two panels, never one axis: the paper's NME is on its data at 384 px, ours on `ours`, so only
    the orderings and the shape of the fronts compare. Error bars are one std over seeds."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), sharex=True)
    panels = (
        (left, [(p.label, p.size_mb, p.nme, p.nme_std) for p in points], f"ours: {ours}", "tab:blue"),
        (right, [(p.label, p.paper_size_mb, p.paper_nme, math.nan) for p in points],
         "the paper's numbers (its data, 384 px, its schedule)", "tab:green"),
    )
    for ax, rows, title, color in panels:
        rows = [r for r in rows if math.isfinite(r[1]) and math.isfinite(r[2])]
        if rows:
            x = np.array([r[1] for r in rows])
            y = np.array([r[2] for r in rows])
            err = np.array([r[3] if math.isfinite(r[3]) else 0.0 for r in rows])
            ax.errorbar(x, y, yerr=err if err.any() else None, fmt="o", color=color, ecolor=color,
                        capsize=3, zorder=3, label=f"architectures ({len(rows)})"
                        + (", bars: 1 std over seeds" if err.any() else ""))
            front = pareto_front(list(zip(x.tolist(), y.tolist())))
            ax.step(x[front], y[front], where="post", color="tab:red", linewidth=1.5, zorder=2,
                    label=f"Pareto front ({len(front)})")
            _place_labels(ax, [(label, a, b) for label, a, b, _ in rows])
            ax.legend(fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("Model size (MiB, fp32 state_dict; the paper writes MB)")
        ax.set_ylabel(nme_label + " (lower is better)")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Architectures of Tables 1-2: size vs NME (compare orderings, not values)", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


# -- Optuna study plots -------------------------------------------------------------------------

def _trial_value(trial: Any) -> float | None:
    if trial.values:
        value = float(trial.values[0])
        return value if math.isfinite(value) else None
    if trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return None


def plot_history(trials: Sequence[Any], path: Path | str, *, objective: str = "NME (% of image side)",
                 title: str = "Optimisation history") -> Path:
    """Objective per trial number (first objective of multi-objective studies) and the best so far.

    Infeasible trials are not part of the best-so-far line (they were never trained).
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    styles = {Status.COMPLETE: dict(color="tab:blue", marker="o"),
              Status.PRUNED: dict(facecolors="none", edgecolors="grey", marker="o"),
              Status.INFEASIBLE: dict(color="tab:purple", marker="x")}
    best_x, best_y, best = [], [], math.inf
    for status, style in styles.items():
        if status == Status.INFEASIBLE:  # never trained, no NME: a strip at the top at their number
            numbers = [t.number for t in trials if trial_status(t) == status]
            if numbers:
                ax.scatter(numbers, [0.96] * len(numbers), transform=ax.get_xaxis_transform(), s=30,
                           zorder=3, label=f"infeasible, not trained ({len(numbers)})", **style)
            continue
        chosen = [(t.number, _trial_value(t)) for t in trials if trial_status(t) == status]
        chosen = [(n, v) for n, v in chosen if v is not None]
        if chosen:
            ax.scatter([n for n, _ in chosen], [v for _, v in chosen], s=30, zorder=3,
                       label=f"{status} ({len(chosen)})", **style)
    for t in sorted(trials, key=lambda t: t.number):
        value = _trial_value(t)
        if trial_status(t) == Status.COMPLETE and value is not None and value < best:
            best = value
        if math.isfinite(best):
            best_x.append(t.number)
            best_y.append(best)
    if best_x:
        ax.step(best_x, best_y, where="post", color="tab:red", label="best so far (completed, feasible)")
    failed = sum(trial_status(t) == Status.FAILED for t in trials)
    if not best_x:
        ax.text(0.5, 0.5, "no completed trials yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Trial number")
    ax.set_ylabel(objective)
    ax.set_title(f"{title}\n{len(trials)} trials, {failed} failed (not shown)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def param_importances(study: Any) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances of the first objective over completed feasible trials.

    Returns (importances, "") or (None, why not): fANOVA needs at least two completed trials whose
    parameters differ.
    """
    trials = [t for t in study.trials if trial_status(t) == Status.COMPLETE and t.values and t.params]
    if len(trials) < 2:
        return None, f"needs at least 2 completed trials with parameters, have {len(trials)}"
    varying = [p for p in {k for t in trials for k in t.params}
               if len({repr(t.params.get(p)) for t in trials}) > 1]
    if not varying:
        return None, "the completed trials all share the same parameters"
    try:
        view = optuna.create_study(directions=["minimize"])
        for t in trials:  # a copy with just the usable trials and the first objective
            view.add_trial(optuna.trial.create_trial(
                params=t.params, distributions=t.distributions, value=float(t.values[0])))
        result = optuna.importance.get_param_importances(view)
    except Exception as exc:  # noqa: BLE001 - importances are an extra, never fatal to a report
        return None, f"optuna.importance failed: {exc}"
    return dict(result), ""


def plot_importances(importances: Mapping[str, float], path: Path | str, *,
                     title: str = "Parameter importances (fANOVA, first objective)") -> Path:
    names = list(importances)[::-1]
    values = [importances[n] for n in names]
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(names) + 1.5))
    bars = ax.barh(names, values, color="tab:blue", label="importance")
    for bar, value in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.2f}", va="center", fontsize=8)
    ax.set_xlabel("Importance (share of objective variance, sums to 1)")
    ax.set_ylabel("Search parameter")
    ax.set_xlim(0, max(values) * 1.2 if values and max(values) > 0 else 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


# -- evaluation plots ---------------------------------------------------------------------------

def plot_ced(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: Path | str,
    unit: str = "NME (% of inter-ocular distance)",
    *,
    title: str = "Cumulative error distribution",
) -> Path:
    """CED curves: share of images whose NME is at most x. `curves` maps a model name to
    (thresholds, fractions) as `lightmark.metrics.ced_curve` returns them; fractions in
    [0, 1] or in percent. The legend gives each curve's area under it up to its last threshold."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, (thresholds, fractions) in curves.items():
        x = np.asarray(_to_numpy(thresholds), dtype=float)
        y = np.asarray(_to_numpy(fractions), dtype=float)
        if y.size and np.nanmax(y) <= 1.0 + 1e-9:
            y = y * 100.0
        span = float(x[-1] - x[0]) if x.size > 1 else 0.0
        auc = float(np.trapezoid(y / 100.0, x) / span) if span > 0 else math.nan
        ax.plot(x, y, linewidth=1.8, label=f"{name} (AUC@{x[-1]:g} = {auc:.3f})" if x.size else name)
    ax.set_xlabel(unit)
    ax.set_ylabel("Images with error <= x (%)")
    ax.set_ylim(0, 101)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value)


def plot_predictions(
    images: Any,
    predicted: Any,
    truth: Any | None,
    path: Path | str,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    max_images: int = 16,
    title: str = "Sample predictions",
) -> Path:
    """A grid of images with predicted points (red x) and, when given, the true points (green o).

    images: uint8 or float [B,3,H,W] or [B,H,W,3] (numpy or torch); points [B,K,2] in pixels
    (x, y; integer = pixel centre, so they are drawn at the pixel centres).
    """
    imgs = _to_numpy(images)[:max_images]
    pred = _to_numpy(predicted)[:max_images]
    gt = _to_numpy(truth)[:max_images] if truth is not None else None
    if imgs.ndim == 4 and imgs.shape[1] in (1, 3) and imgs.shape[-1] not in (1, 3):
        imgs = imgs.transpose(0, 2, 3, 1)
    if imgs.dtype != np.uint8:
        imgs = np.clip(imgs if imgs.max() > 1.0 else imgs * 255.0, 0, 255).astype(np.uint8)
    n = len(imgs)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        image = imgs[i].squeeze(-1) if imgs.shape[-1] == 1 else imgs[i]
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        if gt is not None:
            ax.scatter(gt[i, :, 0], gt[i, :, 1], s=8, facecolors="none", edgecolors="lime",
                       linewidths=0.8, label="ground truth" if i == 0 else None)
        ax.scatter(pred[i, :, 0], pred[i, :, 1], s=8, marker="x", color="red", linewidths=0.8,
                   label="predicted" if i == 0 else None)
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=8)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(f"{title} (points in input pixels)", fontsize=10)
    return save_figure(fig, path)
