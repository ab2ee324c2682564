"""The two-fidelity search replayed on the tiny multi-fidelity table of fidelity_tables.py (no training):
what each arm spends and finds, known by hand where the universe is small, and the CLI."""

from __future__ import annotations

import json

import pytest
from fidelity_tables import SPECS, write_multi_fidelity

from lightmark.cli.main import main
from lightmark.errors import ConfigError
from lightmark.tabular.multifidelity import (
    CHEAP_ALONE,
    CHEAP_EQUAL,
    DEAR_EQUAL,
    MULTI,
    replay_multifidelity,
    replay_seed,
    two_fidelities,
)
from lightmark.tabular.table import FIDELITY, Table, load_table


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Table:
    return load_table(write_multi_fidelity(tmp_path_factory.mktemp("toy")))


def test_the_universe_is_the_architectures_measured_at_both(toy):
    two = two_fidelities(toy, ["tabular", "synth2real"], budget_mb=None)
    assert sorted(two.archs) == sorted(SPECS[i] for i in (0, 3, 6, 9))
    assert two.archs[SPECS[0]].value == (5.0, 11.0) and two.archs[SPECS[0]].seconds == (10.0, 300.0)  # seed 0
    assert two.best_dear == 8.0 and two.regret(SPECS[0]) == 3.0 and two.regret(None) == 3.0
    assert len(list(two.space.specs())) == 12  # TPE proposes from the cheap fidelity's grid


def test_on_four_reversed_architectures_promotion_finds_the_best_and_trust_does_not(toy):
    """tabular ranks i = 0, 3, 6, 9 in that order, synth2real in the reverse; 40 trials train all four."""
    two = two_fidelities(toy, ["tabular", "synth2real"], budget_mb=None)
    for seed in range(3):
        arms = {o.arm: o for o in replay_seed(two, seed, 40, 4)}
        assert arms[MULTI].trainings == (4, 4) and arms[MULTI].seconds == 4 * 10 + 4 * 300
        assert arms[MULTI].pick == SPECS[9] and arms[MULTI].regret == 0
        assert arms[CHEAP_ALONE].pick == SPECS[0] and arms[CHEAP_ALONE].regret == 3.0
        assert arms[CHEAP_EQUAL].regret == 3.0 and arms[CHEAP_EQUAL].seconds == 40  # nothing more to train
        assert arms[DEAR_EQUAL].trainings == (0, 4) and arms[DEAR_EQUAL].regret == 0
        assert arms[DEAR_EQUAL].seconds == 1200
        one = {o.arm: o for o in replay_seed(two, seed, 40, 1)}  # promote only tabular's best: trust it
        assert one[MULTI].pick == SPECS[0] and one[MULTI].regret == 3.0 and one[MULTI].seconds == 340
        assert one[DEAR_EQUAL].trainings == (0, 1)  # 340 s buys one synth2real training


def test_every_arm_keeps_to_the_compute_and_promotion_never_hurts(toy):
    two = two_fidelities(toy, ["tabular", "quick"], budget_mb=None)
    for seed in range(6):
        arms = {o.arm: o for o in replay_seed(two, seed, 12, 3)}
        mf = arms[MULTI]
        assert mf.seconds == 10 * mf.trainings[0] + 100 * mf.trainings[1] and mf.trainings[1] == 3
        assert arms[CHEAP_EQUAL].seconds <= mf.seconds and arms[DEAR_EQUAL].seconds <= mf.seconds
        assert arms[DEAR_EQUAL].trainings[1] <= mf.seconds // 100
        assert 0 <= mf.regret <= arms[CHEAP_ALONE].regret  # the cheap pick is among the promoted
        if arms[CHEAP_EQUAL].trainings[0] == 12:  # all trained at tabular: its pick i0 is 1 pp behind i1
            assert arms[CHEAP_EQUAL].regret == 1.0
        assert replay_seed(two, seed, 12, 3) == list(arms.values())  # replays repeat exactly


def test_the_summary_pairs_the_arms_by_seed(toy):
    two = two_fidelities(toy, ["tabular", "synth2real"], budget_mb=None)
    result = replay_multifidelity(two, n_trials=40, promote=4, seeds=list(range(4)), workers=1)
    arms = {a["arm"]: a for a in result["arms"]}
    assert set(arms) == {MULTI, CHEAP_ALONE, CHEAP_EQUAL, DEAR_EQUAL}
    assert arms[MULTI]["regret_pp"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0} and arms[MULTI]["p_best"] == 1
    assert arms[CHEAP_EQUAL]["regret_pp"]["mean"] == 3.0 and arms[MULTI]["seconds_mean"] == 1240
    assert arms[CHEAP_EQUAL]["capped"] == arms[DEAR_EQUAL]["capped"] == 0
    assert result["versus"][CHEAP_EQUAL]["mean"] == -3.0 and result["versus"][DEAR_EQUAL]["mean"] == 0.0
    assert "not distinguishable from TPE at synth2real only" in result["verdict"]
    assert result["architectures"] == 4 and "measured at both" in result["universe"]
    assert arms[MULTI]["label"] == "TPE at tabular, best 4 promoted to synth2real"


def test_errors_name_the_flag(toy):
    with pytest.raises(ConfigError, match="--fidelities: two different names"):
        two_fidelities(toy, ["tabular"], budget_mb=None)
    with pytest.raises(ConfigError, match="--fidelities: table toy has no fidelity 'paper'"):
        two_fidelities(toy, ["tabular", "paper"], budget_mb=None)
    with pytest.raises(ConfigError, match="--budget-mb 0.01"):
        two_fidelities(toy, ["tabular", "quick"], budget_mb=0.01)
    frame = toy.frame[~((toy.frame[FIDELITY] == "synth2real") & toy.frame["spec"].isin([SPECS[6], SPECS[9]]))]
    with pytest.raises(ConfigError, match=r"--fidelities tabular,synth2real: 2 architecture\(s\) measured at both"):
        two_fidelities(Table("few", frame, toy.meta), ["tabular", "synth2real"], budget_mb=None)
    two = two_fidelities(toy, ["tabular", "quick"], budget_mb=None)
    with pytest.raises(ConfigError, match="--promote"):
        replay_multifidelity(two, n_trials=10, promote=0, seeds=[0])


def test_bench_search_fidelities_cli(tmp_path, capsys):
    path = write_multi_fidelity(tmp_path)
    args = ["bench", "search", "--table", str(path), "--fidelities", "tabular,quick", "--seeds", "4",
            "--n-trials", "10", "--promote", "2", "--workers", "1"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cheap"] == "tabular" and data["dear"] == "quick" and data["seeds"] == 4 and data["promote"] == 2
    assert data["budget_mb"] == 0.5 and data["feasible_architectures"] == 11 and data["verdict"]
    assert {a["arm"] for a in data["arms"]} == {MULTI, CHEAP_ALONE, CHEAP_EQUAL, DEAR_EQUAL}
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "measured at both" in text and "verdict: the two-fidelity search (tabular then quick)" in text
    assert main(["bench", "search", "--fidelities", "tabular,quick"]) == 2
    assert "--fidelities replays on a multi-fidelity table" in capsys.readouterr().err
