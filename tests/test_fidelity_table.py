"""Multi-fidelity tables without training: the format (rows keyed by spec, fidelity and seed; the dev-set
columns), the v1 table still loading, merging runs, the spanning subset, and the dev-set evaluation
of `bench tabulate --test-data` resuming (the evaluation and the runner are stand-ins)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from fidelity_tables import SPECS, write_multi_fidelity, write_runs

from lightmark.cli.main import main
from lightmark.errors import ConfigError
from lightmark.models.spec import ModelSpec
from lightmark.search.space import DIMS, SearchSpace
from lightmark.search.testing import synthetic_runner
from lightmark.tabular import devset
from lightmark.tabular.merge import merge_tables
from lightmark.tabular.replay import landscape
from lightmark.tabular.subset import choose_subset, ranked_architectures, read_specs_file, spanning_subset
from lightmark.tabular.table import (
    FIDELITY,
    REALDEV_COLUMNS,
    list_tables,
    load_table,
    plan_table,
    realdev_column,
    tabulate,
)
from lightmark.training.protocol import get_protocol

V1 = "hourglass108-tabular"
TOY_SPACE = 'n_stacks = [1, 2, 3]\ndepth = 2\nchannels = 16\nattention = ["none", "ca"]\ncoordconv = [false, true]\n'


def test_the_v1_table_loads_as_one_fidelity_at_its_protocol():
    table = load_table(V1)
    assert set(table.frame[FIDELITY]) == {"tabular"} and table.fidelity_names == ["tabular"]
    assert table.fidelities() == {"tabular": 108}
    assert all(table.frame[c].isna().all() for c in REALDEV_COLUMNS)  # the dev-set columns, empty
    assert table.base() is table and len(table.base().frame) == 144
    with pytest.raises(ConfigError, match="no fidelity 'quick'.*tabular"):
        table.at("quick")


def test_bench_tables_json_prints_fidelities_data_version_and_architectures(capsys):
    assert main(["bench", "tables", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[V1]["fidelities"] == {"tabular": 108}
    assert rows[V1]["data_version"] == "synth-v1" and rows[V1]["architectures"] == 108


def test_a_merged_table_holds_every_fidelity_and_says_what_each_cost(tmp_path):
    table = load_table(write_multi_fidelity(tmp_path))
    meta = table.meta
    assert meta["fidelities"] == {"tabular": 12, "quick": 12, "synth2real": 4, "realdev": 12}
    assert table.fidelities() == meta["fidelities"]
    assert meta["base_fidelity"] == "tabular" and meta["architectures"] == 12 and meta["data_version"] == "synth-v2"
    per = meta["per_fidelity"]
    assert per["tabular"]["train_seconds_total"] == 18 * 10.0 and per["quick"]["train_seconds_total"] == 1200.0
    assert per["synth2real"]["train_hours"] == pytest.approx(1200 / 3600)
    assert per["quick"]["protocol"]["input_size"] == 128 and per["quick"]["data_version"] == "synth-v2"
    assert per["realdev"]["by_fidelity"] == {"tabular": 12, "quick": 8, "synth2real": 4}
    assert meta["train_seconds_total"] == 180 + 1200 + 1200 == pytest.approx(meta["train_hours"] * 3600)
    assert not table.frame.duplicated(["spec", FIDELITY, "seed"]).any() and meta["rows"] == 34
    # one fidelity as a table of its own; the base one replays
    quick = table.at("quick")
    assert len(quick.frame) == 12 and quick.meta["protocol_name"] == "quick" and quick.epochs == 2
    assert quick.frame[realdev_column("nme_inter_ocular_pct")].notna().sum() == 8
    assert len(landscape(table).entries) == 12 and len(table.base().frame) == 18
    assert table.summary()["architectures"] == 12 and table.summary()["fidelities"]["synth2real"] == 4
    listed = list_tables(tmp_path)
    assert [t["fidelities"]["quick"] for t in listed] == [12]


def test_merge_refuses_a_fidelity_twice_a_row_twice_and_mixed_data_versions(tmp_path):
    runs = write_runs(tmp_path / "runs")
    with pytest.raises(ConfigError, match="fidelity 'quick' is in"):
        merge_tables([str(runs[1]), str(runs[1])], "twice", tmp_path)
    meta = json.loads(runs[2].with_suffix(".json").read_text())
    runs[2].with_suffix(".json").write_text(json.dumps({**meta, "data_version": "synth-v1"}))
    with pytest.raises(ConfigError, match="different data versions"):
        merge_tables([str(p) for p in runs], "mixed", tmp_path)
    frame = pd.read_csv(runs[0])
    pd.concat([frame, frame.iloc[:1]]).to_csv(runs[0], index=False)
    with pytest.raises(ConfigError, match=r"\(s1-d2-c16, tabular, seed 0\) is in two inputs"):
        merge_tables([str(runs[0]), str(runs[1])], "dup", tmp_path)


def test_bench_merge_cli(tmp_path, capsys):
    runs = write_runs(tmp_path / "runs")
    assert main(["bench", "merge", *map(str, runs), "--name", "toy", "--out", str(tmp_path), "--budget-mb", "0.3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["suggested_budget_mb"] == 0.3
    assert out["fidelities"] == {"tabular": 12, "quick": 12, "synth2real": 4, "realdev": 12}
    assert out["data_version"] == "synth-v2" and out["architectures"] == 12
    assert json.loads((tmp_path / "toy.json").read_text())["command"].startswith("lightmark bench merge")


# -- the subset a dearer fidelity trains ---------------------------------------------------------------
def _ranked_toy() -> pd.DataFrame:
    return pd.DataFrame({"spec": SPECS, "size_mb": [0.2] * 12, "value": [float(i) for i in range(12)]})


def test_spanning_subset_by_hand_on_twelve():
    # top ceil(4/3) = 2: i0, i1; spread over the other ten: i2 and the worst i11; two stacks missing:
    # the best two-stack architecture i4 replaces i2 (whose values others carry), not a top pick or the worst
    assert spanning_subset(_ranked_toy(), 4) == (SPECS[0], SPECS[1], SPECS[4], SPECS[11])
    assert spanning_subset(_ranked_toy(), 12) == tuple(SPECS)
    with pytest.raises(ConfigError, match="--subset must be >= 3"):
        spanning_subset(_ranked_toy(), 2)


def test_spanning_subset_of_the_108_spans_the_space():
    ranked = ranked_architectures(load_table(V1))
    chosen = spanning_subset(ranked, 36, budget_mb=0.5)
    assert len(chosen) == len(set(chosen)) == 36 and spanning_subset(ranked, 36, budget_mb=0.5) == chosen
    feasible = list(ranked.loc[ranked["size_mb"] <= 0.5, "spec"])
    assert set(feasible[:12]) <= set(chosen)  # the top under the budget
    assert ranked["spec"].iloc[-1] in chosen  # the bottom
    order = list(ranked["spec"])
    positions = sorted(order.index(s) for s in chosen)
    assert any(40 <= p <= 70 for p in positions)  # the middle
    for dim in DIMS:
        assert {getattr(ModelSpec.parse(s), dim) for s in chosen} == {getattr(ModelSpec.parse(s), dim) for s in order}


def test_specs_files_and_the_subset_flags(tmp_path):
    path = tmp_path / "specs.txt"
    path.write_text("# quick subset\ns1-d2-c16\n\ns2-d3-c32-ca-cc  # the biggest\n")
    assert [str(s) for s in read_specs_file(path)] == ["s1-d2-c16", "s2-d3-c32-ca-cc"]
    path.write_text("s1-d2-c16\ns1-dx-c16\n")
    with pytest.raises(ConfigError, match=r"--specs .*specs.txt:2"):
        read_specs_file(path)
    with pytest.raises(ConfigError, match="--specs and --subset"):
        choose_subset(path, 3, V1, None)
    with pytest.raises(ConfigError, match="--subset N needs --subset-table"):
        choose_subset(None, 3, None, None)
    with pytest.raises(ConfigError, match="--budget-mb"):
        choose_subset(None, None, None, 0.5)
    space = SearchSpace(n_stacks=(1,), depth=(2,), channels=(16,), attention=("none",), coordconv=(False,))
    with pytest.raises(ConfigError, match="--specs/--subset: s2-d2-c16 not in the space"):
        plan_table(space, get_protocol("smoke"), 1, 0, [ModelSpec.parse("s2-d2-c16")])


# -- bench tabulate --test-data: the dev-set NME, resumable ----------------------------------------------
def test_tabulate_evaluates_every_checkpoint_on_the_dev_set_and_resumes(tmp_path):
    space = SearchSpace(n_stacks=(1,), depth=(2,), channels=(8, 16), attention=("none",), coordconv=(False,))
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "annot.pkl").write_bytes(b"faces")
    calls: list[str] = []

    def fake(record, run_dir, data):
        calls.append(record.key)
        return {"nme_image_pct": 1.0 + len(calls), "nme_inter_ocular_pct": 3.0 + len(calls),
                "median_nme_inter_ocular_pct": 2.5 + len(calls), "worst_nme_inter_ocular_pct": 9.0 + len(calls),
                "worst_face": f"face{len(calls)}.png"}

    out = tmp_path / "run"
    kwargs = dict(seeds=1, second_seed=0, out=out, name="tiny", progress=False, fidelity="quick",
                  test_data=dev, evaluate=fake, runner=synthetic_runner)

    def run() -> pd.DataFrame:
        tabulate(space, get_protocol("smoke"), **kwargs)
        return load_table(out / "tiny.csv").frame

    frame = run()
    assert calls == [] and frame[list(REALDEV_COLUMNS)].isna().all().all()  # no checkpoint yet: nothing to evaluate
    keys = sorted(p.name for p in (out / "candidates").iterdir())
    (out / "candidates" / keys[0] / "last.pt").write_bytes(b"")
    frame = run()
    assert calls == [keys[0]]
    (out / "candidates" / keys[1] / "last.pt").write_bytes(b"")
    run()
    assert calls == keys[:1] + keys[1:]  # only the one not yet evaluated
    frame = run()
    assert len(calls) == 2  # nothing left to evaluate
    assert set(frame[FIDELITY]) == {"quick"} and frame[realdev_column("nme_inter_ocular_pct")].notna().all()
    assert sorted(frame[realdev_column("worst_face")]) == ["face1.png", "face2.png"]
    assert sorted(frame[realdev_column("worst_nme_inter_ocular_pct")]) == [10.0, 11.0]
    meta = json.loads((out / "tiny.json").read_text())
    assert meta["fidelities"] == {"quick": 2, "realdev": 2} and meta["base_fidelity"] == "quick"
    total = meta["per_fidelity"]["quick"]["train_seconds_total"]
    assert total == pytest.approx(frame["train_seconds"].sum(), rel=1e-4)  # the CSV keeps 6 digits
    assert meta["per_fidelity"]["realdev"]["data"] == str(dev)
    cache_path = out / devset.CACHE_NAME  # an entry from before the faces were kept: evaluated again
    cache = json.loads(cache_path.read_text())
    entry = next(iter(cache.values()))["by_key"][keys[0]]
    for key in ("median_nme_inter_ocular_pct", "worst_nme_inter_ocular_pct", "worst_face"):
        del entry[key]
    cache_path.write_text(json.dumps(cache))
    frame = run()
    assert calls == keys + [keys[0]] and frame[realdev_column("worst_face")].notna().all()
    (dev / "annot.pkl").write_bytes(b"other faces")  # another dev set: evaluated afresh
    run()
    assert len(calls) == 5
    cache = json.loads((out / devset.CACHE_NAME).read_text())
    assert len(cache) == 2 and all(len(entry["by_key"]) == 2 for entry in cache.values())


def test_bench_tabulate_cli_trains_a_subset_at_a_named_fidelity(tmp_path, monkeypatch, capsys):
    toy = write_multi_fidelity(tmp_path / "toy")
    space = tmp_path / "space.toml"
    space.write_text(TOY_SPACE)
    dev = tmp_path / "dev"
    dev.mkdir()
    monkeypatch.setenv("LIGHTMARK_SEARCH_RUNNER", "lightmark.search.testing:synthetic_runner")
    monkeypatch.setattr(devset, "checkpoint_of", lambda record, run_dir: Path("last.pt"))
    monkeypatch.setattr(devset, "evaluate_checkpoint_nme",
                        lambda record, run_dir, data: {"nme_image_pct": 4.0, "nme_inter_ocular_pct": 12.0,
                                                       "median_nme_inter_ocular_pct": 11.0,
                                                       "worst_nme_inter_ocular_pct": 20.0, "worst_face": "a.png"})
    out = tmp_path / "run"
    args = ["bench", "tabulate", "--space", str(space), "--protocol", "smoke", "--fidelity", "smoke2real",
            "--subset", "4", "--subset-table", str(toy), "--budget-mb", "5", "--second-seed", "0",
            "--test-data", str(dev), "--name", "sub", "--out", str(out), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["fidelity"] == "smoke2real" and summary["architectures"] == summary["trainings"] == 4
    table = load_table(out / "sub.csv")
    assert sorted(table.frame["spec"]) == sorted((SPECS[0], SPECS[1], SPECS[4], SPECS[11]))
    assert table.fidelities() == {"smoke2real": 4, "realdev": 4}
    assert table.meta["subset"] and table.meta["per_fidelity"]["smoke2real"]["protocol_name"] == "smoke"
    assert main([*args[:-1], "--specs", str(space)]) == 2  # --specs and --subset together
    assert "--specs and --subset" in capsys.readouterr().err
    assert math.isclose(table.frame[realdev_column("nme_inter_ocular_pct")].mean(), 12.0)
