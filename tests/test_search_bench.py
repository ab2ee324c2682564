from __future__ import annotations

from lightmark.search import testing
from lightmark.search.budget import Budget
from lightmark.search.space import SearchSpace
from lightmark.tabular.sampler_bench import run_bench
from lightmark.training.protocol import get_protocol


def test_bench_compares_samplers_on_a_shared_cache(tmp_path):
    budget = Budget(size_mb=1.0, input_size=64, sizer="lightmark.search.testing:synthetic_size_mb")
    space = SearchSpace().bounded(64).trimmed(budget.fits)
    result = run_bench(n_trials=5, seeds=[0, 1], samplers=["tpe", "random"],
                       protocol=get_protocol("smoke"), space=space, budget=budget, out=tmp_path,
                       runner="lightmark.search.testing:synthetic_runner")
    rows = result["rows"]
    assert [(r["sampler"], r["seed"]) for r in rows] == [("tpe", 0), ("tpe", 1), ("random", 0), ("random", 1)]
    for row in rows:
        assert row["feasible"] + row["infeasible"] + row["failed"] == 5
        assert row["feasible"] >= 1 and row["failed"] == 0  # every run found an architecture within budget
        assert row["best_nme_image_pct"] > 0 and row["best_spec"]
        assert row["best_size_mb"] <= 1.0
        assert row["budget_check_ms_max"] >= 0
    for sampler in ("tpe", "random"):
        values = [r["best_nme_image_pct"] for r in rows if r["sampler"] == sampler]
        assert None not in values
        assert result["mean_best_nme_image_pct"][sampler] == sum(values) / 2
    assert isinstance(result["tpe_at_least_as_good"], bool)
    assert result["tpe_at_least_as_good"] == (result["mean_best_nme_image_pct"]["tpe"]
                                              <= result["mean_best_nme_image_pct"]["random"])
    assert result["budget_check_ms_max"] >= 0
    counts = testing.trainings(tmp_path / "cache")
    assert counts and all(n == 1 for n in counts.values())  # each architecture trained once
    assert result["trainings"] == len(counts)
