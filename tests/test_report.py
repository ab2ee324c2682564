"""Reports from run directories: a real Optuna study with complete, pruned, failed, infeasible and
running trials (Records in user attrs), runner-cached records, and an ablation manifest."""

from __future__ import annotations

import json
import math
import re

import optuna
import pandas as pd
import pytest
from matplotlib import image as mpimg

from lightmark.benchmarks import suites
from lightmark.benchmarks.record import Record
from lightmark.errors import DataError
from lightmark.models.spec import ModelSpec
from lightmark.reports import report, tables
from lightmark.training.protocol import get_protocol

optuna.logging.set_verbosity(optuna.logging.ERROR)


def record_for(spec: ModelSpec, protocol, status, nme=None, size=1.0, error=""):
    from lightmark.benchmarks.record import candidate_key

    return Record(
        key=candidate_key(spec, protocol), spec=str(spec), n_stacks=spec.n_stacks, depth=spec.depth,
        channels=spec.channels, attention=spec.attention, coordconv=spec.coordconv,
        protocol=protocol.name, input_size=protocol.input_size, seed=protocol.seed, status=status,
        params=50_000 * spec.channels, size_mb=size, macs=10_000_000 * spec.channels, latency_ms=2.0,
        nme_image_pct=nme, nme_inter_ocular_pct=None if nme is None else 3 * nme,
        train_seconds=5.0 if status in ("complete", "pruned") else 0.0, error=error,
        codec=protocol.codec, loss=protocol.loss,
    )


def make_search_run(run_dir):
    """A search-like run: SQLite study in run_dir/study.db with every kind of trial, each stored the
    way the search stores it (Record in user attrs, size constraint in system attrs)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    protocol = get_protocol("smoke")
    storage = f"sqlite:///{run_dir / 'study.db'}"
    study = optuna.create_study(study_name="search-smoke", storage=storage, direction="minimize")
    study.set_user_attr("budget", json.dumps({"size_mb": 2.0, "macs": None, "latency_ms": None}))
    dists = {"channels": IntDistribution(16, 128, step=8),
             "attention": CategoricalDistribution(["none", "se", "ca"])}
    plan = [  # (channels, attention, status, nme, size)
        (16, "none", "complete", 6.0, 0.3), (32, "none", "complete", 5.0, 0.8), (48, "se", "complete", 5.5, 1.5),
        (64, "ca", "complete", 4.5, 1.9), (56, "none", "pruned", 7.0, 1.7), (128, "ca", "infeasible", None, 6.0),
        (24, "se", "failed", None, 0.5), (40, "ca", "running", None, 1.1),
    ]
    state = {"complete": TrialState.COMPLETE, "infeasible": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
             "failed": TrialState.FAIL, "running": TrialState.RUNNING}
    for channels, attention, status, nme, size in plan:
        spec = ModelSpec(n_stacks=1, depth=2, channels=channels, attention=attention)
        rec = record_for(spec, protocol, status if status != "running" else "complete", nme, size,
                         error="RuntimeError: out of memory" if status == "failed" else "")
        attrs = {k: v for k, v in rec.to_dict().items() if status != "running" or k in ("key", "spec", "size_mb")}
        if status == "failed":
            attrs["reason"] = "RuntimeError: out of memory"
        value = nme if status == "complete" else (float("inf") if status == "infeasible" else None)
        study.add_trial(create_trial(
            state=state[status], value=value, params={"channels": channels, "attention": attention},
            distributions=dists, user_attrs=attrs, system_attrs={"constraints:size_mb": size - 2.0},
            intermediate_values={0: nme} if status == "pruned" else None,
        ))
        if status == "complete":
            folder = run_dir / "candidates" / rec.key
            folder.mkdir(parents=True)
            (folder / "record.json").write_text(json.dumps(rec.to_dict()))
    return study


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("search-run")
    make_search_run(run_dir)
    return run_dir


def test_report_from_study_with_failed_pruned_infeasible_and_running_trials(search_run):
    tmp_path = search_run
    path = report.build_report(tmp_path, evaluate_best=0)
    text = path.read_text()
    assert path == tmp_path / "report.md"
    assert re.search(r"4 complete", text) and "1 pruned" in text and "1 infeasible" in text
    assert "1 failed" in text and "1 running" in text and "still going" in text
    assert "out of memory" in text  # the failed trial's reason is listed
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert {"frontier_size.png", "frontier_macs.png", "frontier_latency.png",
            "history_search-smoke.png", "importances_search-smoke.png"} <= set(images)
    for name in images:
        assert (tmp_path / name).stat().st_size > 5_000
    img = mpimg.imread(tmp_path / "frontier_size.png")
    assert img.shape[1] > 400 and img[..., :3].std() > 0.01
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(board) == 4 and board[tables.NME].tolist() == sorted(board[tables.NME].tolist())
    assert board[tables.NME].iloc[0] == 4.5
    every = pd.read_csv(tmp_path / "all_records.csv")
    # the running trial has no Record yet (only its key and size): counted and listed, not a row
    assert sorted(every["status"].tolist()) == sorted(["complete"] * 4 + ["pruned", "infeasible", "failed"])
    assert re.search(r"\| 7 \| running \| s1-d2-c40-ca \|", text)
    # the budget stored by the search is the frontier's budget line
    assert report._budgets(report.load_run(tmp_path)) == {"size": 2.0}


def test_report_on_an_empty_or_missing_run(tmp_path):
    with pytest.raises(DataError, match="no such run directory"):
        report.build_report(tmp_path / "nope")
    text = report.build_report(tmp_path, evaluate_best=0).read_text()
    assert "nothing has finished yet" in text


def test_report_rebuilds_ablation_tables_from_records(tmp_path):
    base = get_protocol("smoke")
    suite = suites.get_suite("table2")
    for i, row in enumerate(suite.rows[:4]):  # an interrupted ablation: two rows have no result yet
        rec = record_for(row.spec, row.protocol(base, 0), "complete", nme=3.0 - 0.1 * i, size=11.0 + i)
        folder = tmp_path / "candidates" / rec.key
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(rec.to_dict()))
    (tmp_path / "ablation.json").write_text(json.dumps(
        {"tables": ["table2"], "protocol": base.to_dict(), "seeds": 1, "roundtrip": {},
         "command": "lightmark ablate table2 --protocol smoke --seeds 1"}))
    text = report.build_report(tmp_path, evaluate_best=0).read_text()
    frame = pd.read_csv(tmp_path / "table2.csv")
    assert len(frame) == 6
    assert frame[tables.PAPER_NME].tolist() == [2.2929, 2.2347, 2.3044, 2.2121, 2.2211, 2.1242]
    assert frame[tables.NME].tolist()[:4] == pytest.approx([3.0, 2.9, 2.8, 2.7])
    assert frame[tables.NME].isna().tolist() == [False] * 4 + [True] * 2
    assert frame[tables.STATUS].tolist()[4].startswith("complete 0/1")
    assert "not the paper's data" in text and "| s2-d4-c128-ca-cc |" in text
    assert (tmp_path / "table2.tex").exists() and "frontier_size.png" in text
    # one point per architecture: ours for the four finished rows, the paper's for all six
    assert "frontier_architectures.png" in text and (tmp_path / "frontier_architectures.png").exists()
    points = report.architecture_points(report.ablation_frames(
        json.loads((tmp_path / "ablation.json").read_text()), report.load_run(tmp_path).records))
    assert [p.label for p in points] == frame["Row"].tolist()
    assert sum(math.isfinite(p.nme) for p in points) == 4 and all(math.isfinite(p.paper_nme) for p in points)


def test_report_command_prints_json(search_run, capsys):
    from lightmark.cli.main import main

    tmp_path = search_run
    assert main(["report", str(tmp_path), "--json", "--evaluate-best", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["report"].endswith("report.md") and out["studies"] == ["search-smoke"]
    assert out["records"] == {"complete": 4, "pruned": 1, "infeasible": 1, "failed": 1}
    assert out["latency"] is None  # no sheet measured: each record keeps its own number
    assert any(f.endswith("frontier_size.png") for f in out["files"])
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_measured_latency_sheet_replaces_every_candidates_own_number(tmp_path, capsys):
    from lightmark.benchmarks.latency import read_sheet, sheet_key, write_sheet
    from lightmark.cli.main import main

    make_search_run(tmp_path)  # every record says 2.0 ms, as if measured beside training
    assert main(["report", str(tmp_path), "--measure-latency", "--threads", "1", "--rounds", "1",
                 "--evaluate-best", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sheet = read_sheet(tmp_path / "latency.json")
    # the four complete and the pruned architecture, at the smoke protocol's 64 px; nothing untrained
    assert sorted(sheet.median_ms) == sorted(f"s1-d2-c{c}@64" for c in ("16", "32", "48-se", "64-ca", "56"))
    assert sheet.threads == 1 and sheet.rounds == 1
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert board[tables.LATENCY].tolist() == pytest.approx([sheet.lookup(s, 64) for s in board["Spec"]])
    text = (tmp_path / "report.md").read_text()
    assert sheet.describe() in text and "[latency.json](latency.json)" in text
    assert out["latency"] == str(tmp_path / "latency.json")

    # a candidate that finished after the sheet was measured gets no latency rather than a mixed one
    partial = type(sheet)(**{**sheet.__dict__, "median_ms": {k: v for k, v in sheet.median_ms.items()
                                                            if k != sheet_key("s1-d2-c16", 64)}})
    write_sheet(partial, tmp_path / "latency.json")
    data = report.load_run(tmp_path)
    by_spec = {r.spec: r.latency_ms for r in data.records}
    assert by_spec["s1-d2-c16"] is None and by_spec["s1-d2-c32"] == sheet.lookup("s1-d2-c32", 64)
    assert any("finished after latency.json" in note and "s1-d2-c16" in note for note in data.notes)


def test_ablation_captions_name_the_latency_sheet(tmp_path):
    base = get_protocol("smoke")
    suite = suites.get_suite("table4")
    frame = tables.suite_table(suite, {}, protocol=base, seeds=3, latency_note="Latency: measured in one sitting.")
    assert "Latency: measured in one sitting." in tables.to_markdown(frame)
    default = tables.suite_table(suite, {}, protocol=base, seeds=3)
    assert "--measure-latency" in tables.to_markdown(default)


def test_best_model_curves_get_distinct_labels():
    from dataclasses import replace

    spec = ModelSpec.parse("s2-d4-c128-ca-cc")
    plain = replace(record_for(spec, get_protocol("quick"), "complete", nme=2.2), codec="offset", loss="mse")
    erased = replace(plain, erasing=True, key="e" * 16)
    twin = replace(plain, key="abcdef0123456789")  # same settings, another candidate (e.g. another protocol)
    first = report.curve_label(plain, [])
    assert first == "s2-d4-c128-ca-cc seed 0 (offset, mse)"
    assert report.curve_label(erased, [first]) == "s2-d4-c128-ca-cc seed 0 (offset, mse, erasing)"
    assert report.curve_label(twin, [first]) == f"{first} [abcdef]"


def test_bad_records_csv_rows_and_pareto_json_are_reported(tmp_path, capsys):
    protocol = get_protocol("smoke")
    good = record_for(ModelSpec.parse("s1-d2-c16"), protocol, "complete", nme=5.0, size=0.3)
    bad = record_for(ModelSpec.parse("s1-d2-c32"), protocol, "complete", nme=4.0, size=0.8)
    rows = pd.DataFrame([good.to_dict(), {**bad.to_dict(), "size_mb": "big"}, {**good.to_dict(), "key": ""}])
    rows.insert(0, "trial", range(3))  # the search's extra columns are not Record fields
    (tmp_path / "records.csv").write_text(rows.to_csv(index=False))
    (tmp_path / "pareto.json").write_text("{not json")
    data = report.load_run(tmp_path)
    err = capsys.readouterr().err
    assert [r.key for r in data.records] == [good.key]
    assert data.records[0] == good  # every field read back with its type
    csv_path = tmp_path / "records.csv"
    assert f"{csv_path}, row 3: not a float (size_mb='big'); row skipped" in err
    assert f"{csv_path}, row 4: no key or spec" in err
    assert f"{tmp_path / 'pareto.json'}: unreadable" in err
    assert sum("row skipped" in n for n in data.notes) == 2 and any("pareto.json" in n for n in data.notes)
