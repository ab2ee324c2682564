"""`--test-data` in reports: every candidate's NME on a given test set (e.g. the real-photo dev set) beside
its held-out NME, in the ablation tables, the leaderboard and a table of its own."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightmark.benchmarks import suites
from lightmark.benchmarks.evaluation import DatasetNme, dataset_nme
from lightmark.benchmarks.record import Record, candidate_key
from lightmark.cli.ablate import ablate
from lightmark.cli.main import main
from lightmark.models.hourglass import build_model
from lightmark.models.spec import ModelSpec
from lightmark.reports import report, tables
from lightmark.training.checkpoint import make_state, save_checkpoint
from lightmark.training.evaluate import evaluate_checkpoint
from lightmark.training.protocol import get_protocol
from tests.test_cli_ablate import FakeRunner


def _record(spec: ModelSpec, protocol, nme: float) -> Record:
    return Record(
        key=candidate_key(spec, protocol), spec=str(spec), n_stacks=spec.n_stacks, depth=spec.depth,
        channels=spec.channels, attention=spec.attention, coordconv=spec.coordconv, protocol=protocol.name,
        input_size=protocol.input_size, seed=protocol.seed, status="complete", params=1000, size_mb=1.0,
        macs=1_000_000, latency_ms=1.0, nme_image_pct=nme, nme_inter_ocular_pct=3 * nme, train_seconds=1.0,
        codec=protocol.codec, loss=protocol.loss)


def _write_record(run_dir, rec: Record) -> None:
    folder = run_dir / "candidates" / rec.key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "record.json").write_text(json.dumps(rec.to_dict()))


def test_the_ablation_tables_show_the_test_data_nme_beside_the_held_out_nme(tmp_path):
    base = get_protocol("smoke")
    suite = suites.get_suite("table2")
    records = [_record(row.spec, row.protocol(base, 0), 3.0 - 0.1 * i) for i, row in enumerate(suite.rows[:3])]
    for rec in records:
        _write_record(tmp_path, rec)
    (tmp_path / "ablation.json").write_text(json.dumps(
        {"tables": ["table2"], "protocol": base.to_dict(), "seeds": 1, "roundtrip": {}}))
    test = DatasetNme("realdev", 19, {records[0].key: {"nme_image_pct": 9.0, "nme_inter_ocular_pct": 30.0},
                                      records[2].key: {"nme_image_pct": 7.0, "nme_inter_ocular_pct": 21.0}}, 1)
    text = report.build_report(tmp_path, evaluate_best=0, test=test).read_text()
    frame = pd.read_csv(tmp_path / "table2.csv")
    assert frame[tables.TEST_NME].tolist()[:3] == [9.0, pytest.approx(math.nan, nan_ok=True), 7.0]
    assert frame[tables.TEST_NME_IO].tolist()[0] == 30.0 and frame[tables.TEST_NME].iloc[3:].isna().all()
    assert frame[tables.NME].tolist()[:3] == pytest.approx([3.0, 2.9, 2.8])  # the held-out NME stays
    shown = tables.display_frame(frame)
    columns = list(shown.columns)
    assert columns.index(tables.TEST_NME) == columns.index(tables.PAPER_NME) + 1
    assert "NME on --test-data: realdev (19 images)" in text and "1 candidate(s) had no checkpoint" in text
    per_candidate = pd.read_csv(tmp_path / report.TEST_DATA_CSV)
    assert per_candidate["Key"].tolist() == [records[2].key, records[0].key]  # best held-out NME first
    assert per_candidate[tables.TEST_NME].tolist() == [7.0, 9.0]
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert board[tables.TEST_NME].tolist() == [7.0, pytest.approx(math.nan, nan_ok=True), 9.0]


def test_without_test_data_the_tables_are_unchanged(tmp_path):
    base = get_protocol("smoke")
    row = suites.get_suite("table2").rows[0]
    _write_record(tmp_path, _record(row.spec, row.protocol(base, 0), 3.0))
    (tmp_path / "ablation.json").write_text(json.dumps(
        {"tables": ["table2"], "protocol": base.to_dict(), "seeds": 1, "roundtrip": {}}))
    text = report.build_report(tmp_path, evaluate_best=0).read_text()
    assert tables.TEST_NME not in pd.read_csv(tmp_path / "table2.csv").columns
    assert "NME on the test data" not in text and not (tmp_path / report.TEST_DATA_CSV).exists()


def test_a_candidate_checkpoint_is_evaluated_on_the_test_data(tmp_path):
    protocol = get_protocol("smoke")
    spec = ModelSpec.parse("s1-d2-c16")
    rec = _record(spec, protocol, 5.0)
    _write_record(tmp_path / "run", rec)
    torch.manual_seed(0)
    model = build_model(spec)
    ckpt = tmp_path / "run" / "candidates" / rec.key / "last.pt"
    save_checkpoint(ckpt, make_state(model=model, optimizer=None, scheduler=None, scaler=None, epoch=1,
                                     global_step=1, history=[], spec=spec.to_dict(), protocol=protocol.to_dict()))
    data = tmp_path / "faces"
    assert main(["data", "synth", "--out", str(data), "--n", "3", "--size", "96", "--seed", "7"]) == 0
    found = dataset_nme([rec], tmp_path / "run", data)
    want, _ = evaluate_checkpoint(ckpt, data=data, device="cpu")
    assert found.n_images == 3 and found.without_checkpoint == 0
    assert found.by_key[rec.key]["nme_image_pct"] == pytest.approx(want.summary["nme_image_pct"])
    faces = want.per_image["inter_ocular"]  # beside the mean: the median and the worst face, by name
    assert found.by_key[rec.key]["worst_nme_inter_ocular_pct"] == pytest.approx(faces.max())
    assert found.by_key[rec.key]["median_nme_inter_ocular_pct"] == pytest.approx(float(np.median(faces)))
    names = sorted(p.name for p in data.glob("*.png"))
    assert found.by_key[rec.key]["worst_face"] == names[int(want.indices[faces.argmax()])]
    assert main(["report", str(tmp_path / "run"), "--evaluate-best", "0", "--test-data", str(data), "--json"]) == 0
    per_candidate = pd.read_csv(tmp_path / "run" / report.TEST_DATA_CSV)
    assert per_candidate[tables.TEST_NME_IO].tolist() == pytest.approx([want.summary["nme_inter_ocular_pct"]])
    assert per_candidate[tables.TEST_WORST_IO].tolist() == pytest.approx([faces.max()])
    assert per_candidate[tables.TEST_WORST_FACE].tolist() == [names[int(want.indices[faces.argmax()])]]


def test_a_missing_test_data_path_exits_2(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run"), "--test-data", str(tmp_path / "nope")]) == 2
    assert "--test-data" in capsys.readouterr().err
    assert main(["ablate", "table2", "--protocol", "smoke", "--seeds", "1", "--out", str(tmp_path / "a"),
                 "--test-data", str(tmp_path / "nope")]) == 2
    assert "--test-data" in capsys.readouterr().err and not (tmp_path / "a").exists()


def test_ablate_puts_the_test_data_nme_in_its_tables(tmp_path):
    class CheckpointingRunner(FakeRunner):
        """The fake runner, plus an untrained checkpoint for the baseline row (one row evaluated for real)."""

        def __call__(self, spec, protocol, run_dir, **kwargs):
            rec = super().__call__(spec, protocol, run_dir, **kwargs)
            if str(spec) == "s2-d4-c128":
                torch.manual_seed(0)
                save_checkpoint(Path(run_dir) / "candidates" / rec.key / "last.pt", make_state(
                    model=build_model(spec), optimizer=None, scheduler=None, scaler=None, epoch=1, global_step=1,
                    history=[], spec=spec.to_dict(), protocol=protocol.to_dict()))
            return rec

    data = tmp_path / "faces"
    assert main(["data", "synth", "--out", str(data), "--n", "2", "--size", "64", "--seed", "7"]) == 0
    result = ablate([suites.get_suite("table2")], get_protocol("smoke"), seeds=1, out=tmp_path / "abl",
                    study_name="ablate-table2-smoke", progress=False, runner=CheckpointingRunner(), report=True,
                    test_data=data)
    frame = result.frames[0].set_index("Row")
    assert math.isfinite(frame.loc["s2-d4-c128", tables.TEST_NME])
    assert frame[tables.TEST_NME].drop("s2-d4-c128").isna().all()
    assert any("5 candidate(s) had no checkpoint" in note for note in result.frames[0].attrs["notes"])
    written = pd.read_csv(tmp_path / "abl" / "table2.csv").set_index("Row")
    assert written.loc["s2-d4-c128", tables.TEST_NME] == pytest.approx(frame.loc["s2-d4-c128", tables.TEST_NME])
    assert "NME on the test data" in result.report.read_text()
