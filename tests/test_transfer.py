"""`bench transfer` on the tiny multi-fidelity table of fidelity_tables.py, whose numbers are known by
hand (see its docstring): rank correlations, top-5 overlap, regret and its seed-noise interval, how
`realdev` resolves, and the errors that name the flag."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fidelity_tables import SPECS, write_multi_fidelity

from lightmark.cli.main import main
from lightmark.errors import ConfigError
from lightmark.tabular.table import FIDELITY, Table, load_table
from lightmark.tabular.transfer import transfer

NEEDED = ("n", "spearman", "spearman_ci", "kendall", "kendall_ci", "top5_overlap", "regret_pp")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Table:
    return load_table(write_multi_fidelity(tmp_path_factory.mktemp("toy")))


def test_tabular_to_quick_by_hand(toy):
    r = transfer(toy, "tabular", "quick")
    assert r["n"] == r["feasible"] == 12 and r["budget_mb"] is None
    assert r["spearman"] == pytest.approx(1 - 6 * 12 / (12 * 143))
    assert r["kendall"] == pytest.approx((60 - 6) / 66)
    for key in ("spearman", "kendall"):
        low, high = r[f"{key}_ci"]
        assert -1 <= low <= r[key] <= high <= 1
    assert r["top5_overlap"] == 4 and r["top5_of"] == 5
    assert (r["pick"], r["best_to"], r["pick_rank_to"]) == (SPECS[0], SPECS[1], 2)
    assert r["regret_pp"] == pytest.approx(1.0) and r["regret_ci"] == pytest.approx([1.0, 1.0])
    # tabular's sd: 0.2 / sqrt 2 over the 6 with a second seed; quick has none (its noise counts as 0)
    assert "tabular 0.14 pp from 6 architectures; quick unknown" in r["regret_ci_method"]
    # an interval that moved only tabular's pick says nothing of quick's own noise: no "beyond the noise"
    assert r["regret_ci_counts"] == ["tabular"] and "beyond the seed noise" not in r["verdict"]
    assert r["verdict"].startswith("tabular may mislead: its pick s1-d2-c16 ranks 2nd of 12 at quick, 1.00 pp "
                                   "behind s1-d2-c16-cc, beyond tabular's seed noise, but quick's is unknown")
    assert r["metric_from"] == r["metric_to"] == "nme_image_pct"
    assert transfer(toy, "tabular", "quick") == r  # fixed bootstrap seeds: the numbers reproduce


def test_a_budget_that_excludes_quicks_best_leaves_tabulars_pick_best(toy):
    r = transfer(toy, "tabular", "quick", budget_mb=0.5)
    assert r["n"] == 12 and r["feasible"] == 11
    assert r["regret_pp"] == 0 and r["pick_rank_to"] == 1 and r["top5_overlap"] == 5
    assert r["verdict"].startswith("tabular transfers to quick")


def test_one_seed_gives_no_regret_interval(toy):
    r = transfer(toy, "tabular", "quick", seeds=1)
    assert r["regret_ci"] is None and "no architecture at either side has a second seed" in r["regret_ci_method"]
    assert "the noise is unknown" in r["verdict"]


def test_the_regret_interval_comes_from_the_seed_noise(toy):
    frame = toy.frame.copy()
    tab = frame[FIDELITY] == "tabular"
    frame.loc[tab & (frame["spec"] == SPECS[0]) & (frame["seed"] == 1), "nme_image_pct"] = 6.8  # mean 5.9
    frame.loc[tab & (frame["spec"] == SPECS[1]) & (frame["seed"] == 0), "nme_image_pct"] = 6.0  # mean 6.1
    r = transfer(Table(toy.name, frame, toy.meta), "tabular", "quick")
    # i0 stays the pick (5.9 < 6.1), but with the seed sd these pairs show, often i1 (quick's best) wins
    assert r["regret_pp"] == pytest.approx(1.0) and r["regret_ci"] == pytest.approx([0.0, 1.0])
    assert "within the seed noise" in r["verdict"]


def test_with_both_sides_noise_known_a_gap_beyond_it_misleads(toy):
    frame = toy.frame
    quick = frame[(frame[FIDELITY] == "quick") & frame["spec"].isin(SPECS[:6])].copy()
    quick["seed"], quick["nme_image_pct"] = 1, quick["nme_image_pct"] + 0.02  # quick's sd: 0.014 pp
    r = transfer(Table(toy.name, pd.concat([frame, quick], ignore_index=True), toy.meta), "tabular", "quick")
    assert r["regret_ci_counts"] == ["tabular", "quick"] and r["regret_ci"][0] > 0.9
    assert r["verdict"].startswith("tabular misleads: its pick s1-d2-c16 ranks 2nd of 12 at quick")
    assert "beyond the seed noise" in r["verdict"]


def test_architectures_trained_once_are_as_noisy_as_the_rest(toy):
    """The pick and the best trained once each, 1 pp apart, where seeds differ by 3 pp: not a verdict."""
    frame = toy.frame.copy()
    tab = frame[FIDELITY] == "tabular"
    frame = frame[~(tab & frame["spec"].isin(SPECS[:2]) & (frame["seed"] == 1))]
    tab = frame[FIDELITY] == "tabular"
    frame.loc[tab & frame["spec"].isin(SPECS[2:6]) & (frame["seed"] == 1), "nme_image_pct"] += 3.0
    r = transfer(Table(toy.name, frame, toy.meta), "tabular", "quick")
    assert (r["pick"], r["best_to"], r["regret_pp"]) == (SPECS[0], SPECS[1], pytest.approx(1.0))
    assert r["regret_ci"][0] == 0 and "within the seed noise" in r["verdict"]


def test_realdev_resolves_to_the_dearest_fidelity_measured_there(toy):
    r = transfer(toy, "tabular", "realdev")
    assert r["to_resolved"] == "synth2real@realdev" and r["n"] == 4  # i = 0, 3, 6, 9
    assert r["metric_to"] == "realdev_nme_inter_ocular_pct"  # inter-ocular on the dev set by default
    assert r["spearman"] == pytest.approx(1) and r["regret_pp"] == 0
    assert transfer(toy, "quick", "realdev")["to_resolved"] == "synth2real@realdev"
    back = transfer(toy, "realdev", "quick")
    assert back["from_resolved"] == "synth2real@realdev" and back["to_resolved"] == "quick"
    image = transfer(toy, "tabular", "realdev", metric="nme_image_pct")
    assert image["metric_to"] == "realdev_nme_image_pct"


def test_the_picks_worst_face_is_reported_beside_the_mean(toy):
    r = transfer(toy, "tabular", "tabular@realdev")  # tabular's pick i = 0 (dev 30), best there i = 11 (19)
    assert r["pick"] == SPECS[0] and r["best_to"] == SPECS[11]
    # i = 0 has two seeds: worst 40 and 41, named face-0 and face-1 (the mode of a tie: the first by name)
    assert r["pick_worst_face_to"] == {"nme_inter_ocular_pct": 40.5, "face": "face-0.png", "seeds": 2}
    assert r["best_worst_face_to"] == {"nme_inter_ocular_pct": 29.0, "face": "face-2.png", "seeds": 1}
    assert transfer(toy, "tabular", "quick")["pick_worst_face_to"] is None  # not on the dev set


def test_a_models_own_dev_set_nme_and_a_reversed_ranking(toy):
    r = transfer(toy, "tabular", "tabular@realdev")
    assert r["spearman"] == pytest.approx(-1) and r["kendall"] == pytest.approx(-1)
    assert r["regret_pp"] == pytest.approx(11.0) and r["pick_rank_to"] == 12 and r["top5_overlap"] == 0
    assert "rankings are reversed" in r["verdict"]
    dear = transfer(toy, "quick", "synth2real")  # 11, 12, 17, 18 against 11, 10, 9, 8
    assert dear["n"] == 4 and dear["regret_pp"] == pytest.approx(3.0) and dear["spearman"] == pytest.approx(-1)


def test_errors_name_the_flag(toy):
    with pytest.raises(ConfigError, match="--from paper: table toy has no fidelity 'paper' .*tabular, quick"):
        transfer(toy, "paper", "quick")
    with pytest.raises(ConfigError, match="--to quick@photos"):
        transfer(toy, "tabular", "quick@photos")
    with pytest.raises(ConfigError, match="both plain realdev"):
        transfer(toy, "realdev", "realdev")
    with pytest.raises(ConfigError, match="both sides are quick"):
        transfer(toy, "quick", "quick")
    with pytest.raises(ConfigError, match="--budget-mb 0.01: none of the 12"):
        transfer(toy, "tabular", "quick", budget_mb=0.01)
    with pytest.raises(ConfigError, match="--seeds must be >= 1"):
        transfer(toy, "tabular", "quick", seeds=0)
    frame = toy.frame
    keep = ~((frame[FIDELITY] == "synth2real") & frame["spec"].isin([SPECS[6], SPECS[9]]))
    with pytest.raises(ConfigError, match=r"--from tabular --to synth2real: 2 architecture\(s\) measured at both "
                                          r"\(need >= 3\)"):
        transfer(Table("few", frame[keep], toy.meta), "tabular", "synth2real")


def test_the_cli_prints_the_checks_keys_and_the_intervals(toy, tmp_path, capsys):
    path = write_multi_fidelity(tmp_path)
    for source, target in (("tabular", "quick"), ("quick", "realdev"), ("tabular", "realdev")):
        assert main(["bench", "transfer", "--table", str(path), "--from", source, "--to", target, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert all(key in data for key in NEEDED) and data["budget_mb"] == 0.5  # the table's suggested budget
        assert len(data["spearman_ci"]) == 2 and data["verdict"]
    assert main(["bench", "transfer", "--table", str(path), "--from", "tabular", "--to", "quick"]) == 0
    text = capsys.readouterr().out
    assert "Spearman 0.96 [" in text and "top-5 overlap" in text and "regret 0.00 pp [0.00, 0.00]" in text
    assert "verdict: tabular transfers to quick" in text and "worst face" not in text
    assert main(["bench", "transfer", "--table", str(path), "--from", "tabular", "--to", "realdev"]) == 0
    text = capsys.readouterr().out
    assert f"worst face at synth2real@realdev: pick {SPECS[0]} 25.00 % inter-ocular (face-0.png" in text
    assert main(["bench", "transfer", "--table", str(path), "--from", "photos", "--to", "quick"]) == 2
    assert "--from photos" in capsys.readouterr().err
