"""The tabular benchmarks packaged in lightmark/tabular/tables: every table's CSV agrees with its JSON
sidecar and with today's networks, the v1 table has its known shape, and a search replays on it.

Written for any number of tables: a new one (a v2 table, say) is checked for consistency without a
change here; only the v1 table's counts are pinned. A multi-fidelity table is checked at its base
fidelity (the grid), and each fidelity against the sidecar's `fidelities` and `per_fidelity`."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from lightmark.benchmarks.size import size_breakdown
from lightmark.cli.main import main
from lightmark.models.specs import family_of, parse_spec
from lightmark.search.space import DIMS
from lightmark.tabular.replay import landscape, replay_one
from lightmark.tabular.table import CURVE_METRICS, TABLES_DIR, curve_column, list_tables, load_table

PACKAGED = sorted(p.stem for p in TABLES_DIR.glob("*.csv"))
V1 = "hourglass108-tabular"


def test_the_v1_table_is_packaged_and_listed(capsys):
    assert V1 in PACKAGED
    listed = {t["name"]: t for t in list_tables()}
    assert sorted(listed) == PACKAGED
    assert main(["bench", "tables", "--json"]) == 0
    printed = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert set(printed) == set(PACKAGED)
    # made on generator v1, which today's code no longer runs: listed, and marked as such
    assert printed[V1]["reproducible"] is False and printed[V1]["families"] == ["hourglass"]
    assert main(["bench", "tables"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # the console wraps lines
    assert f"{V1}: protocol tabular on synth-v1 (faces today's generator no longer makes" in text


@pytest.mark.parametrize("name", PACKAGED)
def test_every_packaged_table_agrees_with_its_sidecar(name):
    whole = load_table(name)  # by name, as `--table NAME` loads it
    assert (TABLES_DIR / f"{name}.json").is_file() and whole.name == whole.meta["name"] == name
    assert whole.meta["rows"] == len(whole.frame)
    assert whole.meta["complete_rows"] == (whole.frame["status"] == "complete").sum()
    assert whole.meta.get("fidelities", whole.fidelities()) == whole.fidelities()
    assert math.isclose(whole.frame["train_seconds"].sum(), whole.meta["train_seconds_total"], rel_tol=1e-5)
    table = whole.base()
    frame, meta = table.frame, table.meta
    done = frame[frame["status"] == "complete"]
    assert meta["architectures"] == frame["spec"].nunique()
    assert table.epochs == meta["epochs"] == meta["protocol"]["epochs"]
    assert meta["protocol_name"] == meta["protocol"]["name"]
    # the curve columns: every epoch 1..E of both metrics, none beyond
    for metric in CURVE_METRICS:
        assert all(curve_column(metric, e) in frame for e in range(1, table.epochs + 1))
        assert curve_column(metric, table.epochs + 1) not in frame
        # the final value is the last epoch's evaluation
        np.testing.assert_allclose(done[metric], done[curve_column(metric, table.epochs)], rtol=1e-6)
    assert done[[curve_column(m, e) for m in CURVE_METRICS for e in range(1, table.epochs + 1)]].notna().all().all()
    assert (done["epochs_done"] == table.epochs).all()
    # the grid: every combination of the sidecar's space, once per seed-0 row; across families, the
    # hourglasses' grid whole and every backbone within its family's values (their grid may have gaps)
    space = meta["space"]
    seed0 = frame[frame["seed"] == 0]
    assert len(seed0) == seed0["spec"].nunique() == meta["architectures"]
    hourglass_space = space.get("hourglass") if "family" in space else space
    hourglasses = seed0[seed0["family"] == "hourglass"] if "family" in seed0 else seed0
    if hourglass_space is not None:
        grid = {tuple(c) for c in itertools.product(*(hourglass_space[d] for d in DIMS))}
        assert {tuple(row) for row in hourglasses[list(DIMS)].itertuples(index=False)} == grid
    for row in seed0.drop(hourglasses.index).itertuples(index=False):
        spec = parse_spec(row.spec)
        assert family_of(spec) == row.family and row.family in space["family"], row.spec
        assert all(getattr(spec, dim) in values for dim, values in space[row.family].items()), row.spec
    # seeds 0..S-1 for every architecture, then one more seed for meta["second_seed"] of them
    seeds = meta["seeds"]
    for seed in range(seeds):
        assert set(frame.loc[frame["seed"] == seed, "spec"]) == set(seed0["spec"])
    assert (frame["seed"] == seeds).sum() == meta["second_seed"]
    assert len(frame) == seeds * meta["architectures"] + meta["second_seed"]
    # each row's spec string is its fields
    for row in frame.itertuples(index=False):
        spec = parse_spec(row.spec)
        if family_of(spec) != "hourglass":  # a backbone: its family named, no hourglass dimensions
            assert row.family == family_of(spec) and all(pd.isna(getattr(row, dim)) for dim in DIMS), row.spec
            continue
        assert (spec.n_stacks, spec.depth, spec.channels, spec.attention, spec.coordconv) == (
            row.n_stacks, row.depth, row.channels, row.attention, bool(row.coordconv))
    # the dearer fidelities: their protocol and data version in the sidecar, their train seconds summed
    for fidelity in whole.fidelity_names[1:]:
        own, at = whole.meta["per_fidelity"][fidelity], whole.at(fidelity).frame
        assert own["data_version"] == whole.meta["data_version"] and own["protocol"]["name"] == own["protocol_name"]
        assert math.isclose(at["train_seconds"].sum(), own["train_seconds_total"], rel_tol=1e-5)
        assert set(at["spec"]) <= set(frame["spec"])
    # the summary `bench tables` prints says the same
    summary = whole.summary()
    assert summary["architectures"] == meta["architectures"] and summary["rows"] == len(done)
    two = meta["second_seed"] if seeds == 1 else meta["architectures"]
    assert summary["architectures_with_two_seeds"] == two


@pytest.mark.parametrize("name", PACKAGED)
def test_sizes_and_params_are_those_of_todays_networks(name):
    """The table describes the networks the code builds now (a spread of 12 architectures, min and max)."""
    seed0 = load_table(name).frame.query("seed == 0").sort_values("size_mb")
    picks = seed0.iloc[sorted({0, len(seed0) - 1, *range(0, len(seed0), max(1, len(seed0) // 10))})]
    for row in picks.itertuples(index=False):
        sizes = size_breakdown(parse_spec(row.spec))
        assert sizes.params == row.params, row.spec
        assert sizes.total_bytes / 2**20 == pytest.approx(row.size_mb, rel=1e-5), row.spec


def test_the_v1_table_has_its_known_shape():
    table = load_table(V1)
    frame, meta = table.frame, table.meta
    assert meta["data_version"] == "synth-v1" and meta["protocol_name"] == "tabular"
    assert meta["protocol"]["input_size"] == 64
    assert frame["spec"].nunique() == 108 and len(frame) == 144
    assert (frame["status"] == "complete").sum() == 144
    assert table.epochs == 8 and curve_column("nme_image_pct", 8) in frame
    assert frame["seed"].value_counts().to_dict() == {0: 108, 1: 36}
    assert frame["size_mb"].min() == pytest.approx(0.1347) and frame["size_mb"].max() == pytest.approx(1.20038)
    assert frame.loc[frame["size_mb"].idxmin(), "spec"] == "s1-d2-c16"
    assert frame.loc[frame["size_mb"].idxmax(), "spec"] == "s3-d3-c32-ca-cc"
    assert meta["suggested_budget_mb"] == 0.5
    assert meta["space"] == {"n_stacks": [1, 2, 3], "depth": [2, 3], "channels": [16, 24, 32],
                             "attention": ["none", "se", "ca"], "coordconv": [False, True]}
    noise = table.seed_noise()
    assert noise["architectures"] == 36 and 0.7 < noise["spearman"] <= 1


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_search_replays_on_the_v1_table(sampler):
    land = landscape(load_table(V1), budget_mb=0.5)
    seed0 = load_table(V1).frame.query("seed == 0")
    feasible = seed0[seed0["size_mb"] <= 0.5]
    assert len(land.entries) == 108 and land.epochs == 8
    assert land.best == pytest.approx(feasible["nme_image_pct"].min())
    for seed in (0, 1):
        run = replay_one(land, sampler, "none", seed, 20)
        assert len(run.regret) == 20 and all(math.isfinite(r) and r >= 0 for r in run.regret)
        assert list(run.regret) == sorted(run.regret, reverse=True)  # the incumbent only improves
        assert run.best_spec in set(feasible["spec"])
        assert land.entries[run.best_spec].final - land.best == pytest.approx(run.regret[-1])
        trained = 20 - run.repeats - run.infeasible
        assert run.epochs[-1] == 8 * trained and trained >= 5
        assert replay_one(land, sampler, "none", seed, 20) == run  # the same seed replays identically
