"""The prescreen (proxy-chosen start-up trials) and the suggested trial count, without training."""

from __future__ import annotations

import numpy as np
import pytest

from lightmark.errors import ConfigError
from lightmark.models.spec import ModelSpec
from lightmark.search.prescreen import Prescreen, best_by_score, draw_candidates, score_candidates
from lightmark.search.space import SearchSpace
from lightmark.search.trials import count_feasible, suggest, suggested_trials
from lightmark.tabular.replay import landscape, prescreened, replay_one
from tests.test_replay import make_table


def test_prescreen_parses_only_the_proxies_that_earned_it():
    assert Prescreen.parse("naswot:32") == Prescreen("naswot", 32)
    assert str(Prescreen.parse(" NASWOT:8")) == "naswot:8"
    for bad, message in (("synflow:8", "must be one of naswot"), ("naswot", "PROXY:K"), ("naswot:0", ">= 1")):
        with pytest.raises(ConfigError, match=message):
            Prescreen.parse(bad)


def test_candidates_are_distinct_feasible_and_seeded():
    space = SearchSpace.from_dict({"n_stacks": [1, 2], "depth": [2, 3], "channels": [16, 24, 32]})
    fits = lambda spec: spec.channels <= 24  # noqa: E731
    drawn = draw_candidates(space.specs(), fits, 10, seed=3)
    assert len(drawn) == len({str(s) for s in drawn}) == 10
    assert all(fits(s) for s in drawn)
    assert drawn == draw_candidates(space.specs(), fits, 10, seed=3)
    assert drawn != draw_candidates(space.specs(), fits, 10, seed=4)
    everything = draw_candidates(space.specs(), fits, 10_000, seed=0)
    assert len(everything) == sum(1 for s in space.specs() if fits(s))  # K above the feasible count


def test_best_by_score_and_the_score_cache(tmp_path):
    specs = [ModelSpec.parse(t) for t in ("s1-d2-c16", "s1-d2-c24", "s1-d2-c32")]
    calls = []

    def score(spec):
        calls.append(str(spec))
        return float(spec.channels)

    cache = tmp_path / "prescreen-naswot.csv"
    scores = score_candidates(specs, score, cache)
    assert best_by_score(scores, specs, 2) == ["s1-d2-c32", "s1-d2-c24"]
    again = score_candidates(specs, score, cache)  # a resumed search scores nothing twice
    assert again == scores and len(calls) == 3


def test_a_perfect_proxy_starts_the_replay_at_the_best():
    land = landscape(make_table(), budget_mb=0.5)
    perfect = {name: -entry.final for name, entry in land.entries.items()}
    k = sum(1 for e in land.entries.values() if land.feasible(e))  # every feasible architecture scored
    chosen = prescreened(land, perfect, k, seed=0, keep=3)
    assert land.entries[chosen[0]].final == pytest.approx(land.best)
    run = replay_one(land, "tpe", "none", 0, 10, prescreen=(perfect, k))
    assert run.sampler == f"tpe+prescreen:{k}" and run.regret[0] == pytest.approx(0)
    worst = {name: entry.final for name, entry in land.entries.items()}  # an inverted proxy
    assert replay_one(land, "tpe", "none", 0, 10, prescreen=(worst, k)).regret[0] > 1


def test_suggested_trials_follow_the_replay_evidence():
    assert suggested_trials(12) == 12 and suggested_trials(30) == 30  # small: train them all
    assert suggested_trials(31) == suggested_trials(108) == 30  # measured on the table
    assert suggested_trials(216) == 40 and suggested_trials(1000) > suggested_trials(216)  # extrapolated
    small = SearchSpace.from_dict({"n_stacks": [1, 2], "depth": [2, 3], "channels": [16, 24, 32], "attention": "ca",
                                   "coordconv": False})
    fits = lambda spec: spec.n_stacks == 1  # noqa: E731
    assert count_feasible(small, fits) == (len(small) // 2, True)
    tip = suggest(small, fits)
    assert tip.grid and tip.n_trials == len(small) // 2 and "--sampler grid" in tip.describe()
    big = SearchSpace()  # 1-4 stacks, depth 2-5, 29 widths, 3 attentions, CoordConv: estimated from a sample
    estimate, exact = count_feasible(big, lambda spec: spec.n_stacks <= 2, seed=1)
    assert not exact and abs(estimate - len(big) / 2) < 0.25 * len(big)
    assert np.isclose(count_feasible(big, lambda spec: True)[0], len(big))
