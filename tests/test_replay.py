"""Tabular benchmarks and replayed searches, without training: tables are written by the tests."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from lightmark.cli.main import main
from lightmark.data.synth import GENERATOR_VERSION
from lightmark.errors import ConfigError, DataError
from lightmark.models.spec import ModelSpec
from lightmark.tabular.replay import (
    Run,
    epochs_to_mean_regret,
    hand_design,
    landscape,
    nearest_feasible,
    replay_many,
    replay_one,
    summarise,
)
from lightmark.tabular.table import Table, TablePlan, curve_column, load_table, read_curve

EPOCHS = 6


def make_frame(noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """A 2 x 2 x 3 x 3 x 2 = 72-spec grid whose final NME falls with channels, stacks and attention;
    curves fall as 1/epoch towards it. s2-d3-c32-ca-cc is best overall; sizes grow with the width."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, d, c, a, cc in itertools.product((1, 2), (2, 3), (16, 24, 32), ("none", "se", "ca"), (False, True)):
        spec = ModelSpec(n_stacks=s, depth=d, channels=c, attention=a, coordconv=cc)
        final = 12 - 1.0 * s - 0.4 * d - c / 8 - {"none": 0, "se": 0.3, "ca": 0.6}[a] - 0.2 * cc
        final += rng.normal(0, noise) if noise else 0.0
        row = {"spec": str(spec), "n_stacks": s, "depth": d, "channels": c, "attention": a, "coordconv": cc,
               "seed": 0, "status": "complete", "params": 1000 * s * d * c, "size_mb": 0.01 * s * d * c,
               "nme_image_pct": final, "nme_inter_ocular_pct": 3 * final}
        for e in range(1, EPOCHS + 1):
            row[curve_column("nme_image_pct", e)] = final + 6.0 / e - 1.0
            row[curve_column("nme_inter_ocular_pct", e)] = 3 * (final + 6.0 / e - 1.0)
        row[curve_column("nme_image_pct", EPOCHS)] = final
        row[curve_column("nme_inter_ocular_pct", EPOCHS)] = 3 * final
        rows.append(row)
    return pd.DataFrame(rows)


def make_table(**kwargs) -> Table:
    return Table(name="toy", frame=make_frame(**kwargs), meta={"epochs": EPOCHS})


def test_landscape_knows_the_best_feasible_architecture():
    land = landscape(make_table(), budget_mb=None)
    assert len(land.entries) == 72
    assert land.best == pytest.approx(land.entries["s2-d3-c32-ca-cc"].final)
    small = landscape(make_table(), budget_mb=0.5)  # s*d*c*0.01 <= 0.5: s1-d2-c24 at most among the wide
    assert small.best == pytest.approx(min(e.final for e in small.entries.values() if e.size_mb <= 0.5))
    assert small.best > land.best
    with pytest.raises(ConfigError, match="fits"):
        _ = landscape(make_table(), budget_mb=0.01).best


def test_tpe_finds_the_known_best_and_beats_random_on_a_smooth_table():
    land = landscape(make_table(), budget_mb=None)
    tpe = [replay_one(land, "tpe", "none", seed, 40) for seed in range(8)]
    rnd = [replay_one(land, "random", "none", seed, 40) for seed in range(8)]
    assert np.mean([r.regret[-1] for r in tpe]) < np.mean([r.regret[-1] for r in rnd])
    assert sum(r.best_spec == "s2-d3-c32-ca-cc" for r in tpe) >= 4
    for run in tpe + rnd:
        assert list(run.regret) == sorted(run.regret, reverse=True)  # the incumbent only improves
        assert run.regret[-1] >= 0


def test_cost_counts_epochs_repeats_are_free_and_infeasible_cost_nothing():
    land = landscape(make_table(), budget_mb=0.5)
    run = replay_one(land, "random", "none", 0, 60)
    distinct_feasible = 60 - run.repeats - run.infeasible
    assert run.repeats > 0 and run.infeasible > 0
    assert run.epochs[-1] == distinct_feasible * EPOCHS


def test_pruners_save_epochs_and_keep_the_regret_on_parallel_curves():
    land = landscape(make_table(), budget_mb=None)
    plain = [replay_one(land, "tpe", "none", s, 30) for s in range(4)]
    pruned = [replay_one(land, "tpe", "median", s, 30) for s in range(4)]
    assert sum(r.pruned for r in pruned) > 0
    assert np.mean([r.epochs[-1] for r in pruned]) < np.mean([r.epochs[-1] for r in plain])
    # curves never cross, so the median pruner only stops architectures that would not have won
    assert np.mean([r.regret[-1] for r in pruned]) <= np.mean([r.regret[-1] for r in plain]) + 0.2


def test_replays_repeat_exactly_hyperband_included():
    """Hyperband picks a trial's bracket from a hash of the study name: an unnamed study made replays
    of the same seed differ from run to run."""
    land = landscape(make_table(noise=0.5), budget_mb=0.5)
    for pruner in ("hyperband", "median"):
        first, again = (replay_one(land, "tpe", pruner, 3, 25) for _ in range(2))
        assert first.regret == again.regret and first.epochs == again.epochs


def test_summaries_give_means_intervals_and_hit_rates():
    land = landscape(make_table(), budget_mb=None)
    runs = replay_many(land, ["tpe", "random"], ["none"], n_trials=20, seeds=list(range(6)), workers=1)
    arms = {a.sampler: a for a in summarise(land, runs, (10, 20), (EPOCHS * 5,))}
    for arm in arms.values():
        cell = arm.at_trials[20]
        assert cell["ci_low"] <= cell["mean"] <= cell["ci_high"]
        assert 0 <= arm.p_top1 <= arm.p_top5pct <= 1
        assert arm.seeds == 6
    assert arms["tpe"].at_trials[10]["mean"] >= arms["tpe"].at_trials[20]["mean"]


def test_epochs_to_a_mean_regret_compare_at_equal_regret():
    def run(regret, epochs):
        return Run(sampler="tpe", pruner="none", seed=0, regret=tuple(regret), epochs=tuple(epochs), repeats=0,
                   infeasible=0, pruned=0, best_spec=None)

    group = [run([1.0, 0.2, 0.0], [8, 16, 24]), run([1.0, 0.0, 0.0], [8, 16, 16])]
    # mean regret: 1.0 after 8 epochs, 0.1 after 16 (0.2 and 0.0), 0.0 after 24
    assert epochs_to_mean_regret(group, 0.1, worst_regret=2.0) == 16
    assert epochs_to_mean_regret(group, 0.05, worst_regret=2.0) == 24
    assert epochs_to_mean_regret(group, -1.0, worst_regret=2.0) is None


def test_hand_design_stand_ins_fit_the_budget():
    land = landscape(make_table(), budget_mb=0.5)
    rule = nearest_feasible(land, "s2-d4-c128-ca-cc")
    assert rule is not None and land.entries[rule].size_mb <= 0.5
    assert ModelSpec.parse(rule).attention == "ca" and ModelSpec.parse(rule).coordconv
    hand = hand_design(land)
    assert hand["design_rule"]["trainings"] == 1
    assert 1 < hand["hand_grid"]["trainings"] <= 11
    assert hand["hand_grid"]["epochs"] == hand["hand_grid"]["trainings"] * EPOCHS
    # On this table the hand grid (structure first, then the additions) reaches the best feasible
    # architecture, and the design rule's stand-in, which it never trains, is 0.6 pp off it.
    assert hand["hand_grid"]["best_spec"] == "s1-d2-c24-ca-cc"
    assert hand["hand_grid"]["regret"] == 0.0
    assert hand["design_rule"]["best_spec"] not in hand["hand_grid"]["specs"]
    assert hand["design_rule"]["regret"] == pytest.approx(0.6)


def test_incomplete_grid_and_bad_tables_are_refused(tmp_path):
    frame = make_frame().iloc[1:]
    holey = landscape(Table(name="holey", frame=frame, meta={"epochs": EPOCHS}))  # the complete part, said
    assert holey.left_out and len(holey.entries) + len(holey.left_out) == frame["spec"].nunique()
    assert all(str(s) in holey.entries for s in holey.space.specs())
    bad = tmp_path / "bad.csv"
    bad.write_text("spec,seed\ns1-d2-c16,0\n")
    with pytest.raises(DataError, match="missing column"):
        load_table(bad)
    with pytest.raises(ConfigError, match="no packaged table"):
        load_table("no-such-table")


def test_read_curve_names_the_bad_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"epoch": 1, "nme_image_pct": 5.0}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"log.jsonl:2"):
        read_curve(log)
    log.write_text("\n".join(json.dumps({"epoch": e, "nme_image_pct": 9.0 - e}) for e in (1, 2, 2)) + "\n")
    assert [c["nme_image_pct"] for c in read_curve(log)] == [8.0, 7.0]


def test_plan_gives_a_spread_second_seed():
    specs = tuple(ModelSpec(n_stacks=1, depth=2, channels=c) for c in range(8, 8 * 13, 8))
    plan = TablePlan(specs=specs, seeds=1, second_seed=4)
    noise = plan.noise_specs()
    assert len(noise) == 4 and len(set(noise)) == 4
    assert noise[0] == specs[0] and noise[-1] != specs[-4]  # spread over the grid, not its head
    from lightmark.training.protocol import get_protocol

    candidates = plan.candidates(get_protocol("smoke"))
    assert len(candidates) == len(specs) + 4
    assert {c[2].seed for c in candidates} == {0, 1}


def test_cli_replays_a_table_file(tmp_path, capsys):
    path = tmp_path / "toy.csv"
    make_frame().to_csv(path, index=False)
    (tmp_path / "toy.json").write_text(json.dumps({"name": "toy", "epochs": EPOCHS, "suggested_budget_mb": 0.5}))
    plot = tmp_path / "replay.png"
    assert main(["bench", "search", "--table", str(path), "--samplers", "tpe,random", "--pruners", "none,median",
                 "--seeds", "4", "--n-trials", "12", "--workers", "1", "--plot", str(plot), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["budget_mb"] == 0.5 and data["seeds"] == 4
    assert {(a["sampler"], a["pruner"]) for a in data["arms"]} == {
        ("tpe", "none"), ("tpe", "median"), ("random", "none"), ("random", "median")}
    for arm in data["arms"]:
        assert set(arm["regret_at_trials"]) >= {"5", "10"}
        assert math.isfinite(arm["regret_at_trials"]["10"]["mean"])
    assert plot.stat().st_size > 10_000
    assert main(["bench", "search", "--table", str(path), "--samplers", "grid-walk"]) == 2


@pytest.mark.slow
def test_tabulate_trains_a_tiny_space_resumes_and_replays(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text('n_stacks = 1\ndepth = 2\nchannels = [8, 16]\nattention = "none"\ncoordconv = false\n')
    args = ["bench", "tabulate", "--space", str(space), "--protocol", "smoke", "--set", "epochs=2",
            "--second-seed", "1", "--name", "tiny", "--out", str(tmp_path / "run"), "--device", "cpu",
            "--threads", "1", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["architectures"] == 2 and first["trainings"] == 3
    table = load_table(tmp_path / "run" / "tiny.csv")
    frame = table.frame
    assert len(frame) == 3 and set(frame["status"]) == {"complete"}
    assert sorted(frame["seed"]) == [0, 0, 1]
    for e in (1, 2):
        assert frame[curve_column("nme_image_pct", e)].notna().all()
        assert frame[curve_column("nme_inter_ocular_pct", e)].notna().all()
    assert (frame["nme_image_pct"] == frame[curve_column("nme_image_pct", 2)]).all()
    assert table.meta["data_version"] == f"synth-v{GENERATOR_VERSION}" and table.meta["protocol"]["epochs"] == 2
    assert table.summary()["architectures_with_two_seeds"] == 1
    trained = {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "candidates").glob("*/record.json")}
    assert main(args) == 0  # resumes: every candidate is reused, none retrained
    capsys.readouterr()
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "candidates").glob("*/record.json")} == trained
    assert len(json.loads((tmp_path / "run" / "tiny.json").read_text())["sittings"]) == 2


def test_pareto_pruner_rule_on_hand_made_curves():
    from lightmark.search.pareto_pruner import ParetoPruner, hypervolume_2d

    finished = [(1.0, {1: 10.0, 2: 8.0, 3: 7.0}), (3.0, {1: 6.0, 2: 5.0, 3: 4.5})]
    rule = ParetoPruner(warmup_epochs=2)
    assert not rule.should_prune(1, 20.0, 5.0, finished)  # warm-up: never judged on epoch 1
    assert rule.should_prune(2, 9.0, 1.5, finished)  # the 1.0-size trial was at 8.0 by epoch 2
    assert not rule.should_prune(2, 7.9, 1.5, finished)  # better than every trial of no larger size
    assert not rule.should_prune(2, 9.0, 0.5, finished)  # nothing finished is this small
    assert rule.should_prune(2, 5.5, 3.0, finished)  # the same size counts as no larger
    assert not ParetoPruner(warmup_epochs=2, min_dominators=2).should_prune(2, 9.0, 1.5, finished)
    assert ParetoPruner(warmup_epochs=2, min_dominators=2).should_prune(2, 9.0, 3.0, finished)
    assert not ParetoPruner(warmup_epochs=2, margin=0.2).should_prune(2, 9.0, 1.5, finished)  # 8 > 9 * 0.8
    assert not rule.should_prune(4, 99.0, 9.0, finished)  # no finished curve at that epoch
    assert ParetoPruner.for_epochs(8).warmup_epochs == 2 and ParetoPruner.for_epochs(2).warmup_epochs == 1
    assert hypervolume_2d([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(6.0)
    assert hypervolume_2d([(1, 1), (1.5, 1.5), (5, 0)], (2, 2)) == pytest.approx(1.0)
    assert hypervolume_2d([], (2, 2)) == 0.0


def test_two_objective_replay_prunes_and_keeps_the_front():
    from lightmark.tabular.replay import replay_pareto_many, summarise_pareto, true_front_hypervolume

    land = landscape(make_table(), budget_mb=None)
    runs = replay_pareto_many(land, ["random"], ["none", "pareto"], n_trials=30, seeds=list(range(5)), workers=1)
    rows = {r["pruner"]: r for r in summarise_pareto(land, runs)}
    assert rows["pareto"]["pruned_mean"] > 0
    assert rows["pareto"]["epochs_mean"] < rows["none"]["epochs_mean"]
    assert rows["pareto"]["epochs_saved_vs_none"]["mean"] > 0
    # curves of the toy table never cross, so a dominated curve is a dominated final: the front is kept
    assert rows["pareto"]["hypervolume_ratio_vs_none"]["mean"] == pytest.approx(1.0)
    assert 0 < rows["none"]["hypervolume_of_true_front"]["mean"] <= 1.0 + 1e-9
    assert true_front_hypervolume(land) > 0
