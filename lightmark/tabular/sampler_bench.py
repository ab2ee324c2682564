"""`bench search` without a table: real searches that train, one study per (sampler, seed), to check a
replay against reality.

All runs share one candidate cache, so an architecture is trained once under the protocol however
many runs propose it: the comparison measures what each sampler chooses, not training noise, and
costs only the distinct candidates.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError
from lightmark.search.budget import Budget
from lightmark.search.config import SearchConfig
from lightmark.search.family_space import AnySpace, load_space
from lightmark.search.space import SearchSpace
from lightmark.search.storage import choose_storage
from lightmark.search.study import run_search
from lightmark.training.protocol import Protocol

CACHE = "cache"  # the shared candidate cache, in the bench's output folder


def bench_space(protocol: Protocol, space_file: Path | None, budget_mb: float,
                sizer: str | None = None) -> tuple[AnySpace, Budget]:
    """The space (a TOML file, else the full one) bounded by the input size and trimmed by the budget."""
    space = (load_space(space_file) if space_file else SearchSpace()).bounded(protocol.input_size)
    budget = Budget(size_mb=budget_mb, input_size=protocol.input_size, sizer=sizer)
    if space.smallest(budget.fits) is None:
        raise ConfigError(f"no architecture of the search space fits {budget.describe()}")
    return space.trimmed(budget.fits), budget


def _run_one(sampler: str, seed: int, *, n_trials: int, protocol: Protocol, space: AnySpace, budget: Budget,
             out: Path, device: str, runner: str | None) -> dict[str, Any]:
    run_dir = out / f"{sampler}-seed{seed}"
    config = SearchConfig(
        protocol=protocol, run_dir=run_dir, storage=choose_storage(None, run_dir),
        study_name=f"bench-{sampler}-{seed}", space=space, budget=budget,
        sampler=sampler, pruner="none", seed=seed, n_trials=n_trials, device=device,
        cache_dir=out / CACHE, runner=runner,
    )
    summary = run_search(config).summary
    best, counts = summary["best"], summary["counts"]
    return {
        "sampler": sampler, "seed": seed,
        "best_nme_image_pct": best["nme_image_pct"] if best else None,
        "best_spec": best["spec"] if best else None,
        "best_size_mb": best["size_mb"] if best else None,
        "feasible": counts[Status.COMPLETE], "infeasible": counts[Status.INFEASIBLE],
        "failed": counts[Status.FAILED],
        "budget_check_ms_max": summary["budget_check_ms"]["max"],
    }


def run_bench(
    *, n_trials: int, seeds: list[int], samplers: list[str], protocol: Protocol, space: AnySpace,
    budget: Budget, out: Path, device: str = "auto", runner: str | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every (sampler, seed) search, then the mean best NME per sampler and whether TPE is at least as
    good as random. `on_row` hears each finished search's row."""
    rows = []
    for sampler in samplers:
        for seed in seeds:
            rows.append(_run_one(sampler, seed, n_trials=n_trials, protocol=protocol, space=space, budget=budget,
                                 out=out, device=device, runner=runner))
            if on_row is not None:
                on_row(rows[-1])
    means = {}
    for sampler in samplers:
        values = [r["best_nme_image_pct"] for r in rows if r["sampler"] == sampler]
        means[sampler] = statistics.fmean(values) if values and None not in values else None
    checks = [r["budget_check_ms_max"] for r in rows if r["budget_check_ms_max"] is not None]
    verdict = None
    if "tpe" in means and "random" in means and None not in (means["tpe"], means["random"]):
        verdict = means["tpe"] <= means["random"]
    return {
        "protocol": protocol.name, "n_trials": n_trials, "seeds": seeds,
        "budget_mb": budget.size_mb, "space": space.describe(), "rows": rows,
        "mean_best_nme_image_pct": means, "tpe_at_least_as_good": verdict,
        "cache": str(out / CACHE),
        "budget_check_ms_max": max(checks) if checks else None,
        "trainings": len(list((out / CACHE / "candidates").glob("*/record.json"))),
    }
