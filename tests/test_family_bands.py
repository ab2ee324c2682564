"""`bench families` on a cross-family table the test writes (no training): band winners, the seed-noise
intervals and the frontier plot."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from lightmark.benchmarks.record import architecture_fields
from lightmark.errors import ConfigError
from lightmark.models.specs import parse_spec
from lightmark.tabular.families import band_winners, seed_sd
from lightmark.tabular.table import Table, with_fidelity

# (spec, family, size MiB, NME seed 0, NME seed 1 or None)
ROWS = [
    ("s1-d2-c16", "hourglass", 0.13, 8.0, 8.2), ("s1-d2-c24", "hourglass", 0.30, 6.0, 5.8),
    ("s1-d3-c24", "hourglass", 0.40, 5.5, 5.7), ("s2-d2-c24", "hourglass", 0.60, 5.0, 4.8),
    ("s1-d2-c32", "hourglass", 0.55, 4.9, None),
    ("mnv3s-w0.5-o16-h16", "mobilenetv3", 0.14, 7.0, 7.2), ("mnv3s-w0.5-o16-h32", "mobilenetv3", 0.33, 9.0, 8.8),
    ("mnv3s-w0.75-o16-h16", "mobilenetv3", 0.56, 10.0, 10.2), ("mnv3l-w0.35-o16-h16", "mobilenetv3", 0.53, 9.5, 9.3),
    ("snv2-w0.5-o16-h16", "shufflenetv2", 0.33, 5.95, None),
]


def _table(rows=ROWS) -> Table:
    lines = []
    for spec, family, size, nme0, nme1 in rows:
        for seed, nme in ((0, nme0), (1, nme1)):
            if nme is not None:
                lines.append({"spec": spec, "family": family, "n_stacks": None, "depth": None, "channels": None,
                              "attention": None, "coordconv": None, "seed": seed, "status": "complete",
                              "size_mb": size, "nme_image_pct": nme})
    meta = {"name": "toy-families", "protocol_name": "tabular"}
    return Table(name="toy-families", frame=with_fidelity(pd.DataFrame(lines), meta), meta=meta)


def test_seed_sd_is_measured_per_family_and_pooled_where_too_few_pairs() -> None:
    noise = seed_sd(_table())
    assert noise["pairs"] == {"hourglass": 4, "mobilenetv3": 4, "shufflenetv2": 0}
    assert noise["per_family"]["hourglass"] == pytest.approx(0.2 / math.sqrt(2) * math.sqrt(4 / 3))
    assert noise["per_family"]["shufflenetv2"] == noise["pooled"]


def test_band_winners_name_the_best_per_family_and_say_when_it_is_noise() -> None:
    result = band_winners(_table(), (0.0, 0.25, 0.5, 1.2), rounds=4000)
    low, mid, high = result["bands"]
    # 0-0.25: mobilenetv3's 7.0 beats the hourglass's 8.0 by 1 pp against a seed sd of ~0.16: clear
    assert low["winner"] == "mobilenetv3" and low["margin_pp"] == pytest.approx(1.0) and not low["contested"]
    assert low["win_share"]["mobilenetv3"] > 0.99
    # 0.25-0.5: the hourglass's two-seed mean 5.6 at 0.40 MiB against shufflenetv2's one seed 5.95
    assert mid["families"]["hourglass"]["spec"] == "s1-d3-c24" and mid["winner"] == "hourglass"
    assert mid["runner_up"] == "shufflenetv2" and mid["margin_pp"] == pytest.approx(0.35)
    # 0.5-1.2: the hourglass's two-seed mean 4.9 (s2-d2-c24) ties s1-d2-c32's one seed 4.9 within the
    # family; against mobilenetv3's 9.3 it is no contest
    assert high["winner"] == "hourglass" and high["families"]["mobilenetv3"]["nme"] == pytest.approx(9.4)
    assert result["families"] == ["hourglass", "mobilenetv3", "shufflenetv2"]


def test_a_near_tie_is_contested() -> None:
    rows = [*ROWS[:5], ("mnv3s-w0.35-o16-h32", "mobilenetv3", 0.33, 5.52, 5.48), *ROWS[6:9]]
    mid = band_winners(_table(rows), (0.25, 0.5), rounds=4000)["bands"][0]
    assert mid["contested"] and mid["margin_ci_pp"][0] < 0 < mid["margin_ci_pp"][1]
    assert 0.2 < mid["win_share"]["hourglass"] < 0.8


def test_bad_bands_and_a_table_without_second_seeds_are_refused() -> None:
    with pytest.raises(ConfigError, match="increasing"):
        band_winners(_table(), (0.5, 0.25))
    one_seed = [(s, f, z, a, None) for s, f, z, a, _ in ROWS]
    with pytest.raises(ConfigError, match="--second-seed"):
        band_winners(_table(one_seed))


def test_the_cli_prints_bands_and_draws_the_frontier(tmp_path, capsys) -> None:
    from lightmark.cli.main import main

    table = _table()
    csv = tmp_path / "toy.csv"
    table.frame.to_csv(csv, index=False)
    (tmp_path / "toy.json").write_text(json.dumps(table.meta))
    plot = tmp_path / "frontier.png"
    assert main(["bench", "families", "--table", str(csv), "--bands", "0,0.25,0.5,1.2", "--plot", str(plot),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [b["winner"] for b in result["bands"]] == ["mobilenetv3", "hourglass", "hourglass"]
    assert plot.stat().st_size > 5000
    assert main(["bench", "families", "--table", str(csv), "--bands", "0,0.25,1.2"]) == 0
    text = capsys.readouterr().out
    assert "mobilenetv3 by 1.00 pp over hourglass as measured" in text and "wins beyond the seed noise" in text
    assert main(["bench", "families", "--table", str(csv), "--bands", "a,b"]) == 2


def test_a_search_replays_on_a_cross_family_table() -> None:
    """`bench search --table` on a table of several families: the replayed study asks the family first."""
    from lightmark.search.family_space import MixedSpace
    from lightmark.tabular.replay import landscape, replay_one

    specs = {"s1-d2-c16": 6.0, "s2-d2-c16": 5.0, "snv2-w0.5-o8-h16": 7.0, "snv2-w0.5-o16-h16": 6.5,
             "mnv3s-w0.5-o16-h16": 4.0, "mnv3s-w0.5-o16-h32": 4.5}
    lines = []
    for spec, nme in specs.items():
        lines.append({**architecture_fields(parse_spec(spec)), "seed": 0, "status": "complete", "size_mb": 0.2,
                      "nme_image_pct": nme, "nme_image_pct_e1": nme + 2, "nme_image_pct_e2": nme})
    meta = {"name": "toy-mixed", "protocol_name": "tabular", "epochs": 2}
    land = landscape(Table(name="toy-mixed", frame=with_fidelity(pd.DataFrame(lines), meta), meta=meta))
    assert isinstance(land.space, MixedSpace) and land.best == 4.0
    assert land.space.names == ("hourglass", "mobilenetv3", "shufflenetv2")
    run = replay_one(land, "tpe", "none", seed=0, n_trials=12)
    assert run.regret[-1] == 0.0 and run.best_spec == "mnv3s-w0.5-o16-h16"

    # one more head width for one backbone: the grid is no longer complete; --space replays the part that is
    extra = {**architecture_fields(parse_spec("snv2-w0.5-o8-h64")), "seed": 0, "status": "complete",
             "size_mb": 0.2, "nme_image_pct": 3.0, "nme_image_pct_e1": 5.0, "nme_image_pct_e2": 3.0}
    wider = Table(name="toy-mixed", frame=with_fidelity(pd.DataFrame([*lines, extra]), meta), meta=meta)
    whole = landscape(wider)  # a largest complete part (here two of one size: o8 x h16/h64 or o8/o16 x h16)
    assert len(whole.left_out) == 1 and whole.left_out[0] in ("snv2-w0.5-o8-h64", "snv2-w0.5-o16-h16")
    assert len(whole.entries) == 6 and all(str(s) in whole.entries for s in whole.space.specs())
    part = landscape(wider, space=land.space)
    assert part.best == 4.0 and "snv2-w0.5-o8-h64" not in part.entries
    with pytest.raises(ConfigError, match="grid of --space is not complete"):
        landscape(Table(name="toy-mixed", frame=with_fidelity(pd.DataFrame(lines[1:]), meta), meta=meta),
                  space=land.space)


def test_merge_joins_two_families_trained_under_one_protocol(tmp_path) -> None:
    """A cross-family table from two tabulate runs of one fidelity (hourglasses, backbones)."""
    from lightmark.tabular.merge import merge_tables
    from lightmark.tabular.table import load_table

    table = _table()
    frame = table.frame
    paths = []
    for name, rows, space in (("hg", frame[frame["family"] == "hourglass"], {"n_stacks": [1, 2]}),
                              ("bb", frame[frame["family"] != "hourglass"],
                               {"family": ["mobilenetv3", "shufflenetv2"], "mobilenetv3": {}, "shufflenetv2": {}})):
        rows = rows.assign(train_seconds=10.0)
        path = tmp_path / f"{name}.csv"
        rows.to_csv(path, index=False)
        meta = {"name": name, "protocol_name": "tabular", "protocol": {"name": "tabular", "epochs": 8},
                "data_version": "synth-v2", "space": space, "second_seed": 1}
        path.with_suffix(".json").write_text(json.dumps(meta))
        paths.append(path)
    csv, _ = merge_tables([str(p) for p in paths], "toy-families", tmp_path / "out")
    merged = load_table(csv)
    summary = merged.summary()
    assert summary["families"] == ["hourglass", "mobilenetv3", "shufflenetv2"] and summary["architectures"] == 10
    assert merged.meta["space"]["family"] == ["hourglass", "mobilenetv3", "shufflenetv2"]
    detail = merged.meta["per_fidelity"]["tabular"]
    assert detail["architectures"] == 10 and detail["sources"] == [str(p) for p in paths]
    assert detail["train_seconds_total"] == pytest.approx(10.0 * len(frame))
    meta = json.loads(paths[1].with_suffix(".json").read_text())
    paths[1].with_suffix(".json").write_text(json.dumps({**meta, "protocol": {"name": "tabular", "epochs": 4}}))
    with pytest.raises(ConfigError, match="different protocols"):
        merge_tables([str(p) for p in paths], "bad", tmp_path / "out")


def test_the_cli_reads_the_dev_set_column_when_asked(tmp_path, capsys) -> None:
    """--metric realdev_*: the same models ranked on the photos; a reversed column reverses the winners,
    and a table without the column is refused naming it."""
    from lightmark.cli.main import main

    table = _table()
    frame = table.frame.assign(realdev_nme_inter_ocular_pct=100.0 - table.frame["nme_image_pct"])
    csv = tmp_path / "toy.csv"
    frame.to_csv(csv, index=False)
    (tmp_path / "toy.json").write_text(json.dumps(table.meta))
    assert main(["bench", "families", "--table", str(csv), "--bands", "0,0.25,1.2", "--json",
                 "--metric", "realdev_nme_inter_ocular_pct"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metric"] == "realdev_nme_inter_ocular_pct"
    assert [b["winner"] for b in result["bands"]] == ["hourglass", "mobilenetv3"]
    table.frame.to_csv(csv, index=False)
    assert main(["bench", "families", "--table", str(csv), "--metric", "realdev_nme_image_pct"]) == 2
    assert "realdev_nme_image_pct" in capsys.readouterr().err


def test_a_family_is_not_favoured_for_having_many_near_ties() -> None:
    """Ten hourglasses 5.0-5.9 against one backbone at 5.2, seed sd about 0.5: the hourglasses' best of
    ten noisy draws flatters them (selection bias), the backbone's single one does not. The pivotal
    interval keeps the observed margin inside it and calls the band contested."""
    rows = [(f"s1-d2-c{8 * (i + 1)}", "hourglass", 0.3, 5.0 + 0.1 * i + (0.35 if i % 2 else -0.35),
             5.0 + 0.1 * i - (0.35 if i % 2 else -0.35)) for i in range(10)]
    rows.append(("mnv2-w0.5-o8-h32", "mobilenetv2", 0.3, 5.2, None))
    band = band_winners(_table(rows), (0.0, 1.0))["bands"][0]
    assert (band["winner"], band["runner_up"]) == ("hourglass", "mobilenetv2")
    assert band["margin_pp"] == pytest.approx(0.2)
    low, high = band["margin_ci_pp"]
    assert low <= band["margin_pp"] <= high and band["contested"]
    bias = band["selection_bias_pp"]
    assert bias["hourglass"] > 0.1 and abs(bias["mobilenetv2"]) < 0.05
    assert band["win_share"]["mobilenetv2"] > 0.3  # the percentile bootstrap gave it about 0.05
