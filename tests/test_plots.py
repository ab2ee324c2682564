"""Plots: written, non-empty, readable (opened and checked for size and content)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from matplotlib import image as mpimg

from lightmark.benchmarks.record import Record
from lightmark.reports import plots


def rec(spec, size, nme, status="complete", macs=1e9, latency=5.0):
    return Record(key=spec + status, spec=spec, n_stacks=1, depth=2, channels=32, attention="none",
                  coordconv=False, protocol="smoke", input_size=64, seed=0, status=status, params=1000,
                  size_mb=size, macs=int(macs), latency_ms=latency, nme_image_pct=nme)


RECORDS = [
    rec("s1-d2-c32", 0.5, 5.0), rec("s1-d2-c64", 1.5, 4.0), rec("s2-d2-c64", 3.0, 4.2),
    rec("s2-d3-c64", 4.0, 3.5), rec("s1-d3-c48", 2.0, 4.8, status="pruned"),
    rec("s4-d4-c256", 30.0, None, status="infeasible"), rec("s2-d2-c16", 0.2, None, status="failed"),
]


def assert_png(path, min_w=300, min_h=200):
    assert path.exists() and path.stat().st_size > 5_000
    img = mpimg.imread(path)
    assert img.shape[0] >= min_h and img.shape[1] >= min_w
    rgb = img[..., :3]
    assert rgb.std() > 0.01  # not a blank canvas
    return img


def test_pareto_front_minimises_both():
    pts = [(0.5, 5.0), (1.5, 4.0), (3.0, 4.2), (4.0, 3.5), (1.0, 6.0)]
    assert plots.pareto_front(pts) == [0, 1, 3]


@pytest.mark.parametrize("axis,budget", [("size", 15.0), ("macs", None), ("latency", 6.0)])
def test_frontier_plots_are_written_and_readable(tmp_path, axis, budget):
    path = plots.plot_frontier(RECORDS, tmp_path / f"{axis}.png", axis=axis, budget=budget)
    img = assert_png(path)
    # the Pareto front is drawn in tab:red: some pixels must be strongly red
    red = (img[..., 0] > 0.8) & (img[..., 1] < 0.3) & (img[..., 2] < 0.3)
    assert red.sum() > 50


def test_a_far_budget_does_not_squeeze_the_points(tmp_path):
    small = [rec("s1-d2-c16", 0.14, 9.0), rec("s1-d2-c32", 0.3, 6.0), rec("s2-d3-c32", 0.62, 5.5)]
    assert plots.budget_off_axis([r.size_mb for r in small], 15.0)
    assert not plots.budget_off_axis([r.size_mb for r in small], 0.5)
    assert not plots.budget_off_axis([], 15.0) and not plots.budget_off_axis([0.3], None)
    assert_png(plots.plot_frontier(small, tmp_path / "far.png", axis="size", budget=15.0))


def test_frontier_without_results_still_draws(tmp_path):
    assert_png(plots.plot_frontier([], tmp_path / "empty.png", budget=1.0))


def _study_with_everything():
    study = optuna.create_study(direction="minimize")
    for i in range(8):
        t = study.ask()
        x = t.suggest_int("channels", 16, 64, step=16)
        t.suggest_categorical("attention", ["none", "se", "ca"])
        if i == 3:
            t.set_user_attr("status", "infeasible")
            t.set_constraint("size_mb", 2.0)
            study.tell(t, float("inf"))
        elif i == 5:
            t.report(6.0, 0)
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
        elif i == 6:
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(t, 10.0 - x / 16 + 0.01 * i)
    return study


def test_history_and_importances(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = _study_with_everything()
    statuses = [plots.trial_status(t) for t in study.trials]
    assert statuses.count("infeasible") == 1 and statuses.count("pruned") == 1
    assert statuses.count("failed") == 1 and statuses.count("complete") == 5
    assert_png(plots.plot_history(study.trials, tmp_path / "history.png"))
    importances, why = plots.param_importances(study)
    assert why == "" and set(importances) == {"channels", "attention"}
    assert sum(importances.values()) == pytest.approx(1.0)
    assert_png(plots.plot_importances(importances, tmp_path / "imp.png"), min_h=100)


def test_importances_fall_back_with_too_few_trials():
    study = optuna.create_study()
    t = study.ask()
    t.suggest_int("channels", 16, 64)
    study.tell(t, 1.0)
    importances, why = plots.param_importances(study)
    assert importances is None and "at least 2" in why


def test_ced_and_prediction_grid(tmp_path):
    x = np.linspace(0, 10, 101)
    curves = {"good": (x, np.clip(x / 4, 0, 1)), "bad": (x, np.clip(x / 10, 0, 1))}
    assert_png(plots.plot_ced(curves, tmp_path / "ced.png", unit="NME (% of image side)"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(5, 3, 64, 64), dtype=np.uint8)
    gt = rng.uniform(0, 63, size=(5, 68, 2))
    path = plots.plot_predictions(images, gt + 1.0, gt, tmp_path / "grid.png",
                                  titles=[f"NME {i}" for i in range(5)], ncols=3)
    assert_png(path)


def test_architecture_frontier_has_two_panels_and_tolerates_missing_results(tmp_path):
    points = [
        plots.ArchitecturePoint("s1-d4-c128", 6.1, 4.5, 0.1, 6.12, 2.42),
        plots.ArchitecturePoint("s2-d4-c128", 11.9, 4.1, 0.2, 11.8, 2.29),
        plots.ArchitecturePoint("s4-d2-c128", float("nan"), float("nan"), float("nan"), 13.8, 2.70),
    ]
    img = assert_png(plots.plot_architecture_frontier(points, tmp_path / "arch.png", ours="synthetic faces"),
                     min_w=900)
    assert img.shape[1] > 1.8 * img.shape[0]  # side by side: ours and the paper's
    empty = [plots.ArchitecturePoint("s1-d4-c128", float("nan"), float("nan"), float("nan"), 6.12, 2.42)]
    assert_png(plots.plot_architecture_frontier(empty, tmp_path / "empty.png", ours="x"), min_w=900)


def test_plots_and_search_counts_agree_on_every_trial():
    """The plots' colours and the search's counts come from one status per trial."""
    from lightmark.search import records

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = _study_with_everything()
    odd = study.ask()  # a finished trial whose attrs say failed: one answer for both
    odd.set_user_attr("status", "failed")
    study.tell(odd, 1.0)
    running = study.ask()
    assert running.number == 9
    assert plots.trial_status is records.trial_status
    counts = records.summarise_trials(study.trials, ["nme"])["counts"]
    for status, n in counts.items():
        assert sum(plots.trial_status(t) == status for t in study.trials) == n
    assert counts["running"] == 1 and counts["infeasible"] == 1


def test_pareto_front_is_the_search_front_with_ties_and_gaps():
    from lightmark.search import records

    pts = [(1.0, 5.0), (1.0, 5.0), (2.0, 4.0), (2.0, 3.0), (float("nan"), 1.0), (3.0, 3.0), (0.5, 9.0)]
    rows = [{"x": x, "y": y, "i": i} for i, (x, y) in enumerate(pts)]
    assert plots.pareto_front(pts) == [r["i"] for r in records.pareto_front(rows, ["x", "y"])] == [6, 0, 3]
