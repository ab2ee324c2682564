"""The MACs and latency budgets: non-positive limits refused, the check's constraints (value - limit),
an architecture over a limit never trained and one under it trained, through `run_search` and through
`lightmark search --budget-macs / --budget-latency-ms`.

The slow measurements (fvcore's MAC count, the latency timing) are replaced by a fake `profile` with
known numbers, except in one slow test that measures a tiny network for real."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import lightmark.search.budget as budget_mod
from lightmark.cli.main import main
from lightmark.errors import ConfigError
from lightmark.models.spec import ModelSpec
from lightmark.search import testing
from lightmark.search.budget import BUDGET_FLAGS, Budget
from lightmark.search.config import SearchConfig
from lightmark.search.space import SearchSpace
from lightmark.search.storage import choose_storage, open_storage
from lightmark.search.study import run_search
from lightmark.training.protocol import get_protocol

SIZER = "lightmark.search.testing:synthetic_size_mb"
RUNNER = "lightmark.search.testing:synthetic_runner"
SMALL, LARGE = ModelSpec.parse("s1-d2-c16"), ModelSpec.parse("s2-d2-c32")
# four architectures: MACs and latency grow with stacks and channels
SPACE = SearchSpace(n_stacks=(1, 2), depth=(2,), channels=(16, 32), attention=("none",), coordconv=(False,))


def fake_macs(spec: ModelSpec) -> int:
    return testing.synthetic_params(spec) * 50


def fake_latency(spec: ModelSpec) -> float:
    return testing.synthetic_params(spec) / 1e4


class FakeProfile:
    """Stands in for benchmarks.profile.profile: known MACs and latency, and a log of the calls."""

    def __init__(self):
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, spec, input_size, device="cpu", latency=True, **_):
        self.calls.append((str(spec), latency))
        numbers = {"macs_fvcore": fake_macs(spec), "macs": fake_macs(spec) + 1}
        if latency:
            numbers["latency_ms"] = fake_latency(spec)
        return numbers


@pytest.fixture
def profile(monkeypatch) -> FakeProfile:
    fake = FakeProfile()
    monkeypatch.setattr(budget_mod, "profile_spec", fake)
    return fake


def _between(values: list[float]) -> float:
    """A limit with the two smallest values under it and the two largest over it."""
    ordered = sorted(values)
    assert len(ordered) == 4 and ordered[1] < ordered[2]
    return (ordered[1] + ordered[2]) / 2


# -- the limits themselves ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, value", [("size_mb", 0.0), ("size_mb", -1.0), ("macs", 0), ("macs", -5),
                                         ("latency_ms", 0.0), ("latency_ms", -0.5),
                                         ("latency_ms", float("nan"))])
def test_non_positive_limits_are_refused_naming_the_flag(name, value):
    with pytest.raises(ConfigError, match=rf"{BUDGET_FLAGS[name]} must be > 0, got {value:g}"):
        Budget(**{name: value})


@pytest.mark.parametrize("flag, value, quantity", [("--budget-macs", "0", "macs"), ("--budget-macs", "-5", "macs"),
                                                   ("--budget-latency-ms", "0", "latency_ms"),
                                                   ("--budget-latency-ms", "-1", "latency_ms"),
                                                   ("--budget-mb", "0", "size_mb")])
def test_cli_refuses_non_positive_budgets_with_exit_2(tmp_path, capsys, monkeypatch, flag, value, quantity):
    monkeypatch.setenv("LIGHTMARK_SEARCH_RUNNER", RUNNER)
    monkeypatch.setenv("LIGHTMARK_SEARCH_SIZER", SIZER)
    code = main(["search", "--protocol", "smoke", "--n-trials", "2", "--out", str(tmp_path / "run"), "--no-report",
                 "--workers", "1", flag, value])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{flag} must be > 0, got {value}" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "study.db").exists()  # refused before any study exists


@pytest.mark.parametrize("flag, value", [("--budget-macs", "0.5"), ("--budget-latency-ms", "0")])
def test_cli_budget_message_names_the_flag_and_the_value_typed(tmp_path, capsys, flag, value):
    assert main(["search", "--protocol", "smoke", "--n-trials", "2", "--out", str(tmp_path), "--no-report",
                 "--workers", "1", flag, value]) == 2
    err = capsys.readouterr().err
    assert flag in err and f"got {value}" in err


# -- the check ---------------------------------------------------------------------------------------
def test_macs_over_the_limit_is_infeasible_by_the_excess_and_under_it_feasible(profile):
    limit = fake_macs(SMALL) + 1000
    assert fake_macs(LARGE) > limit
    budget = Budget(size_mb=None, macs=limit, input_size=64, sizer=SIZER)
    over, under = budget.check(LARGE), budget.check(SMALL)
    assert not over.feasible and over.violations() == {"macs": fake_macs(LARGE) - limit}
    assert over.macs == fake_macs(LARGE)  # fvcore's count, not thop's ("macs")
    assert under.feasible and under.constraints == {"macs": -1000} and under.violations() == {}
    assert under.latency_ms is None
    exact = Budget(size_mb=None, macs=fake_macs(SMALL), input_size=64, sizer=SIZER).check(SMALL)
    assert exact.feasible and exact.constraints["macs"] == 0  # at the limit is within it
    assert profile.calls == [(str(LARGE), False), (str(SMALL), False), (str(SMALL), False)]  # no latency asked
    budget.check(LARGE)
    assert len(profile.calls) == 3  # cached per spec


def test_latency_over_the_limit_is_infeasible_and_under_it_feasible(profile):
    limit = (fake_latency(SMALL) + fake_latency(LARGE)) / 2
    budget = Budget(size_mb=None, latency_ms=limit, input_size=64, sizer=SIZER)
    over, under = budget.check(LARGE), budget.check(SMALL)
    assert not over.feasible and over.violations() == {"latency_ms": pytest.approx(fake_latency(LARGE) - limit)}
    assert under.feasible and under.constraints["latency_ms"] == pytest.approx(fake_latency(SMALL) - limit)
    assert over.latency_ms == pytest.approx(fake_latency(LARGE)) and over.macs == fake_macs(LARGE)
    assert [latency for _, latency in profile.calls] == [True, True]


def test_slow_quantities_are_not_measured_when_the_size_is_already_over(profile):
    budget = Budget(size_mb=testing.synthetic_size_mb(SMALL) + 1e-4, macs=10**12, latency_ms=1e6, input_size=64,
                    sizer=SIZER)
    over = budget.check(LARGE)
    assert not over.feasible and set(over.violations()) == {"size_mb"}
    assert over.constraints["macs"] == 0.0 and over.constraints["latency_ms"] == 0.0  # not measured
    assert over.macs is None and over.latency_ms is None and profile.calls == []
    both = budget.check(SMALL)
    assert both.feasible and profile.calls == [(str(SMALL), True)]
    assert both.constraints["macs"] == fake_macs(SMALL) - 10**12


@pytest.mark.slow
def test_real_measurements_decide_feasibility_at_the_limit():
    """fvcore's count and the real timing of s1-d2-c16 at 64 px, on both sides of each limit."""
    loose = Budget(size_mb=None, macs=10**12, latency_ms=1e6, input_size=64).check(SMALL)
    assert loose.feasible and loose.macs > 10**6 and loose.latency_ms > 0
    tight = Budget(size_mb=None, macs=loose.macs - 1, input_size=64).check(SMALL)
    assert not tight.feasible and tight.violations() == {"macs": 1} and tight.macs == loose.macs
    slow = Budget(size_mb=None, latency_ms=1e-6, input_size=64).check(SMALL)
    assert not slow.feasible and slow.violations()["latency_ms"] > 0


# -- in a search ---------------------------------------------------------------------------------------
def _config(run_dir: Path, budget: Budget) -> SearchConfig:
    return SearchConfig(protocol=get_protocol("smoke"), run_dir=run_dir, storage=choose_storage(None, run_dir, 1),
                        study_name="t", space=SPACE, budget=budget, n_trials=4, sampler="grid", runner=RUNNER)


def _trials(config: SearchConfig) -> dict[str, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=config.study_name, storage=open_storage(config.storage))
    trials = {t.user_attrs["spec"]: t for t in study.trials}
    assert len(trials) == 4 == len(study.trials)  # the grid: every architecture once
    return trials


@pytest.mark.parametrize("quantity", ["macs", "latency_ms"])
def test_search_trains_nothing_over_a_macs_or_latency_budget(tmp_path, profile, quantity):
    measure = fake_macs if quantity == "macs" else fake_latency
    values = {str(spec): measure(spec) for spec in SPACE.specs()}
    limit = _between(list(values.values()))
    limit = int(limit) if quantity == "macs" else limit
    config = _config(tmp_path, Budget(size_mb=50.0, input_size=64, sizer=SIZER, **{quantity: limit}))
    run_search(config)
    trials = _trials(config)
    over = {spec for spec, value in values.items() if value > limit}
    assert len(over) == 2
    trained = set(testing.trainings(tmp_path))
    for spec, trial in trials.items():
        assert trial.constraints[quantity] == pytest.approx(values[spec] - limit)  # value - limit, > 0: over
        assert trial.constraints["size_mb"] < 0
        if spec in over:
            assert trial.state == TrialState.COMPLETE and trial.value == float("inf")
            assert trial.user_attrs["status"] == "infeasible" and not trial.intermediate_values
            assert f"{quantity} over by" in trial.user_attrs["reason"]
            assert trial.user_attrs["key"] not in trained
        else:
            assert trial.user_attrs["status"] == "complete"
            assert trial.value == pytest.approx(testing.synthetic_nme(ModelSpec.parse(spec), config.protocol))
            assert trial.user_attrs["key"] in trained
    assert len(trained) == 2
    rows = {r["spec"]: r for r in csv.DictReader(open(tmp_path / "records.csv"))}
    assert {s for s, r in rows.items() if r["status"] == "infeasible"} == over


@pytest.mark.parametrize("flag, quantity", [("--budget-macs", "macs"), ("--budget-latency-ms", "latency_ms")])
def test_cli_budget_flags_reach_the_search(tmp_path, capsys, monkeypatch, profile, flag, quantity):
    monkeypatch.setenv("LIGHTMARK_SEARCH_RUNNER", RUNNER)
    monkeypatch.setenv("LIGHTMARK_SEARCH_SIZER", SIZER)
    measure = fake_macs if quantity == "macs" else fake_latency
    limit = _between([measure(spec) for spec in SPACE.specs()])
    limit = int(limit) if quantity == "macs" else round(limit, 3)
    def argv(out: Path, value: float) -> list[str]:
        return ["search", "--protocol", "smoke", "--stacks", "1,2", "--depth", "2", "--channels", "16,32",
                "--attention", "none", "--coordconv", "false", "--budget-mb", "50", "--sampler", "grid",
                "--n-trials", "4", "--out", str(out), "--no-report", "--workers", "1", "--device", "cpu", "--json",
                flag, str(value)]

    out = tmp_path / "run"
    assert main(argv(out, limit)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["budget"][quantity] == limit and summary["budget"]["size_mb"] == 50
    assert summary["counts"]["infeasible"] == 2 and summary["counts"]["complete"] == 2
    assert summary["skipped_over_budget"] == 2
    assert measure(ModelSpec.parse(summary["best"]["spec"])) <= limit
    assert len(testing.trainings(out)) == 2
    # a limit below the smallest architecture: refused before the study, naming it and the excess
    smallest = min(SPACE.specs(), key=measure)
    tiny = int(measure(smallest) // 2) if quantity == "macs" else measure(smallest) / 2
    assert main(argv(tmp_path / "none", tiny)) == 2
    err = capsys.readouterr().err
    assert "no architecture of the search space fits" in err
    assert f"the smallest, {smallest}, is over ({quantity} +" in err
