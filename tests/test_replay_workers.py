"""Replays spread over worker processes give what a serial replay gives, seed for seed, and every sampler
the replay offers (not only TPE), with every pruner, replays deterministically with finite regrets.
On the packaged v1 table (108 architectures, 8 epochs), whose replays take milliseconds."""

from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor

import pytest

import lightmark.tabular.replay as replay_mod
from lightmark.cli.main import main
from lightmark.tabular.replay import (
    REPLAY_SAMPLERS,
    landscape,
    replay_many,
    replay_one,
    replay_pareto,
    replay_pareto_many,
    true_front_hypervolume,
)
from lightmark.tabular.table import load_table

TABLE = "hourglass108-tabular"


@pytest.fixture(scope="module")
def land():
    return landscape(load_table(TABLE), budget_mb=0.5)


@pytest.fixture
def pools(monkeypatch) -> list[int]:
    """Counts the process pools the replay opens (proof that `workers=2` used processes)."""
    opened: list[int] = []

    class Counting(ProcessPoolExecutor):
        def __init__(self, max_workers=None, **kwargs):
            opened.append(max_workers)
            super().__init__(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(replay_mod, "ProcessPoolExecutor", Counting)
    return opened


def test_two_workers_give_the_serial_replays_seed_for_seed(land, pools):
    kwargs = dict(n_trials=15, seeds=[0, 1, 2])
    serial = replay_many(land, ["tpe", "random", "nsga2"], ["none", "median"], workers=1, **kwargs)
    assert pools == []
    parallel = replay_many(land, ["tpe", "random", "nsga2"], ["none", "median"], workers=2, **kwargs)
    assert pools == [2]  # 18 jobs: one pool of two processes
    assert len(serial) == len(parallel) == 18
    assert parallel == serial  # same order, same regrets, epochs, repeats, pruned and best specs
    assert len({run.regret for run in serial}) > 3  # the seeds and samplers do differ


def test_two_workers_give_the_serial_two_objective_replays(land, pools):
    kwargs = dict(n_trials=15, seeds=[0, 1])
    serial = replay_pareto_many(land, ["nsga2", "random"], ["none", "pareto"], workers=1, **kwargs)
    parallel = replay_pareto_many(land, ["nsga2", "random"], ["none", "pareto"], workers=2, **kwargs)
    assert pools == [2] and parallel == serial and len(serial) == 8


def test_cli_table_replay_is_the_same_with_one_and_two_workers(tmp_path, capsys, pools):
    def replay(workers: int) -> dict:
        assert main(["bench", "search", "--table", TABLE, "--samplers", "tpe,random", "--pruners", "none,median",
                     "--seeds", "2", "--n-trials", "10", "--workers", str(workers), "--out", str(tmp_path),
                     "--plot", str(tmp_path / f"replay-{workers}.png"), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        result.pop("seconds"), result.pop("plot")
        return result

    serial, parallel = replay(1), replay(2)
    assert pools == [2]
    assert parallel == serial
    assert len(serial["arms"]) == 4 and serial["architectures"] == 108


@pytest.mark.parametrize("sampler", REPLAY_SAMPLERS)
@pytest.mark.parametrize("pruner", ["none", "median", "hyperband"])
def test_every_sampler_and_pruner_replays_deterministically_with_finite_regrets(land, sampler, pruner):
    runs = [replay_one(land, sampler, pruner, seed, 20) for seed in (0, 1)]
    for seed, run in zip((0, 1), runs):
        assert replay_one(land, sampler, pruner, seed, 20) == run  # the same seed, the same study
        assert run.sampler == sampler and run.pruner == pruner and len(run.regret) == 20
        assert all(math.isfinite(r) and r >= 0 for r in run.regret)
        assert list(run.regret) == sorted(run.regret, reverse=True)
        assert land.entries[run.best_spec].final - land.best == pytest.approx(run.regret[-1])
        assert land.feasible(land.entries[run.best_spec])
        assert list(run.epochs) == sorted(run.epochs) and run.epochs[-1] <= 20 * land.epochs
        if pruner == "none":
            assert run.pruned == 0 and run.epochs[-1] % land.epochs == 0
    assert runs[0].regret != runs[1].regret or runs[0].epochs != runs[1].epochs  # seeds differ


@pytest.mark.parametrize("sampler", REPLAY_SAMPLERS)
def test_every_sampler_replays_two_objectives_deterministically(land, sampler):
    true_front = true_front_hypervolume(land)
    for pruner in ("none", "pareto"):
        run = replay_pareto(land, sampler, pruner, 3, 20)
        assert replay_pareto(land, sampler, pruner, 3, 20) == run
        assert 0 < run.hypervolume <= true_front + 1e-9
        assert all(size <= 0.5 and math.isfinite(nme) for size, nme in run.points)
        assert run.epochs <= 20 * land.epochs and (pruner == "pareto" or run.pruned == 0)
