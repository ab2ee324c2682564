"""`lightmark ablate`: suites through run_fixed_candidates (fake runner for speed; the real runner
end to end in the slow tier), shared candidates trained once, resume, tables written."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib import image as mpimg

from lightmark.benchmarks import suites
from lightmark.benchmarks.latency import read_sheet
from lightmark.benchmarks.record import Record, candidate_key
from lightmark.cli.ablate import ablate
from lightmark.reports import stats, tables
from lightmark.training.protocol import get_protocol


class FakeRunner:
    """Stands in for run_candidate: a deterministic NME per (spec, protocol), cached like the runner."""

    def __init__(self):
        self.calls = []

    def __call__(self, spec, protocol, run_dir, *, device="auto", callback=None, progress=True, **_):
        key = candidate_key(spec, protocol)
        path = Path(run_dir) / "candidates" / key / "record.json"
        if path.exists():
            return Record.from_dict(json.loads(path.read_text()))
        self.calls.append((str(spec), protocol.codec, protocol.loss, protocol.augment.erase, protocol.seed))
        nme = 3.0 - 0.05 * spec.n_stacks + 0.01 * protocol.seed + (0.2 if protocol.codec == "plain" else 0.0)
        rec = Record(key=key, spec=str(spec), n_stacks=spec.n_stacks, depth=spec.depth, channels=spec.channels,
                     attention=spec.attention, coordconv=spec.coordconv, protocol=protocol.name,
                     input_size=protocol.input_size, seed=protocol.seed, status="complete",
                     params=1000 * spec.channels, size_mb=0.01 * spec.channels, macs=10**6 * spec.channels,
                     latency_ms=1.0, nme_image_pct=nme, nme_inter_ocular_pct=3 * nme, train_seconds=1.0,
                     codec=protocol.codec, loss=protocol.loss, erasing=protocol.augment.erase)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec.to_dict()))
        return rec


def test_ablate_all_trains_shared_candidates_once_and_resumes(tmp_path):
    runner = FakeRunner()
    protocol = get_protocol("smoke")
    result = ablate(suites.all_suites(), protocol, seeds=2, out=tmp_path, study_name="ablate-all-smoke",
                    progress=False, runner=runner, report=False)
    # 18 train rows, s2-d5-c128 does not fit 64 px, the s2-d4-c128 baseline is shared by Tables 1-4: 16 x 2 seeds
    assert len(runner.calls) == 32 == len(set(runner.calls))
    assert [f.attrs["name"] for f in result.frames] == list(suites.TABLE_NAMES)
    assert [len(f) for f in result.frames] == [6, 6, 6, 3, 2]
    for frame in result.frames:
        written = pd.read_csv(tmp_path / f"{frame.attrs['name']}.csv")
        assert written.shape == frame.shape
        assert (tmp_path / f"{frame.attrs['name']}.md").exists() and (tmp_path / f"{frame.attrs['name']}.tex").exists()
    t1, t2, t3 = (f.set_index("Row") for f in result.frames[:3])
    assert t1.loc["s2-d5-c128", tables.STATUS].startswith("skipped")
    assert t1.loc["s2-d4-c128", tables.NME] == t2.loc["s2-d4-c128", tables.NME]  # the same candidate
    assert t2.loc["s2-d4-c128", tables.NME] == pytest.approx(2.905)  # mean of seeds 0 and 1
    assert t2.loc["s2-d4-c128", tables.SEEDS] == 2
    # Table 3: round trips measured with the real codecs, predictions from the runner
    assert t3.loc["round trip, offset", tables.NME] < t3.loc["round trip, plain", tables.NME]
    assert t3.loc["round trip, subpixel", tables.NME] < 0.01
    assert t3.loc["s2-d4-c128, offset", tables.DELTA] == pytest.approx(-0.2)
    assert t3.loc["s2-d4-c128, offset", tables.NOISE] == stats.BEYOND  # identical seed noise, clear shift
    manifest = json.loads((tmp_path / "ablation.json").read_text())
    assert manifest["seeds"] == 2 and len(manifest["candidates"]) == 32

    again = ablate([suites.get_suite("table2")], protocol, seeds=2, out=tmp_path,
                   study_name="ablate-table2-smoke", progress=False, runner=runner, report=True)
    assert len(runner.calls) == 32  # nothing retrained: the runner's cache answers
    resumed = json.loads((tmp_path / "ablation.json").read_text())
    assert resumed["started"] == manifest["started"]  # when the run first started, not the last resume
    assert len(resumed["resumed"]) == 1
    assert len(again.frames[0]) == 6 and again.report is not None
    text = again.report.read_text()
    assert "Table 1" in text and "Table 5" in text  # the report keeps every table of the run dir


def test_ablate_cli_rejects_bad_arguments(tmp_path):
    from lightmark.cli.main import main

    assert main(["ablate", "table2", "--protocol", "nope", "--out", str(tmp_path)]) == 2
    assert main(["ablate", "table2", "--protocol", "smoke", "--seeds", "0", "--out", str(tmp_path)]) == 2
    for argv in (["ablate", "table9"], ["ablate", "table2", "--threads", "-1", "--out", str(tmp_path)],
                 ["ablate", "table2", "--precision", "fp8", "--out", str(tmp_path)]):
        with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
            main(argv)
        assert exit_info.value.code == 2, argv


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_ablate_all_smoke_end_to_end(tmp_path, monkeypatch, capsys):
    """`lightmark ablate all --protocol smoke --seeds 1`: 16 candidates through the real runner.

    The slowest test of the suite (each s2-d4-c128-class candidate is profiled, trained for 2 tiny
    epochs and evaluated). It runs without the runner's ONNX profile (LIGHTMARK_DEPLOYED_PROFILE=0:
    three exports and an int8 calibration per candidate were most of its time; tests/test_runner.py's
    with-onnx case covers those fields, and no ablation table shows them). It covers `ablate table2`
    (the acceptance check's command) too: that table's six candidates are among the sixteen."""
    from lightmark.benchmarks.deployed import DEPLOYED_PROFILE_ENV
    from lightmark.cli.main import main

    monkeypatch.setenv(DEPLOYED_PROFILE_ENV, "0")  # the spawned workers inherit it
    out = tmp_path / "all"
    assert main(["ablate", "all", "--protocol", "smoke", "--seeds", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["candidates"] == 16 and summary["failed"] == 0
    assert all(json.loads(p.read_text()).get("onnx_fp32_mb") is None for p in out.glob("candidates/*/record.json"))
    expected_rows = {"table1": 6, "table2": 6, "table3": 6, "table4": 3, "table5": 2}
    config = {"table1": ["Stacks", "Depth", "Channels"], "table2": ["Attention", "CoordConv"],
              "table3": ["Task", "Kernel"], "table4": ["Loss"], "table5": ["Erasing"]}
    for name, n_rows in expected_rows.items():
        frame = pd.read_csv(out / f"{name}.csv")
        assert len(frame) == n_rows, name
        for col in ["Row", *config[name], tables.SIZE, tables.NME, tables.PAPER_SIZE, tables.PAPER_NME,
                    tables.NME_STD, tables.NME_CI, tables.DELTA, tables.NOISE, tables.PARAMS, tables.MACS,
                    tables.LATENCY, "nme_normalisation", "data"]:
            assert col in frame.columns, (name, col)
        paper = [r.paper_nme_pct for r in suites.get_suite(name).rows]
        assert [None if math.isnan(v) else v for v in frame[tables.PAPER_NME]] == paper
        ran = frame[~frame[tables.STATUS].str.startswith("skipped")]
        assert ran[tables.NME].notna().all(), name
        assert (out / f"{name}.md").exists() and (out / f"{name}.tex").exists()
    t2 = pd.read_csv(out / "table2.csv")  # the acceptance check's table (`ablate table2` runs a subset of `all`)
    assert t2[tables.PAPER_NME].tolist() == [2.2929, 2.2347, 2.3044, 2.2121, 2.2211, 2.1242]
    assert t2[tables.NOISE].tolist() == [stats.BASELINE] + [stats.UNDECIDED] * 5
    assert not math.isnan(t2[tables.MACS].iloc[0])
    assert summary["tables"]["table2"]["csv"].endswith("table2.csv")
    assert (out / "frontier_size.png").stat().st_size > 5000
    t1 = pd.read_csv(out / "table1.csv").set_index("Row")
    assert t1.loc["s2-d5-c128", tables.STATUS].startswith("skipped")  # depth 5 needs >= 128 px
    t3 = pd.read_csv(out / "table3.csv").set_index("Row")
    assert t3.loc["round trip, subpixel", tables.NME] < t3.loc["round trip, offset", tables.NME] \
        < t3.loc["round trip, plain", tables.NME]
    text = (out / "report.md").read_text()
    assert "## Best models on the held-out data" in text  # the best checkpoints evaluated and drawn
    for name in ("ced_best.png", "predictions_best.png", "frontier_architectures.png"):
        assert mpimg.imread(out / name)[..., :3].std() > 0.01, name

    # latencies that compare across rows: every architecture timed in one sitting
    proc = subprocess.run(
        [sys.executable, "-m", "lightmark.cli.main", "report", str(out), "--measure-latency", "--rounds", "1",
         "--evaluate-best", "0", "--json"],
        capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    sheet = read_sheet(json.loads(proc.stdout)["latency"])
    assert len(sheet.median_ms) == 10  # Tables 1-2's architectures at 64 px, s2-d5-c128 skipped
    t2 = pd.read_csv(out / "table2.csv")
    assert t2[tables.LATENCY].tolist() == pytest.approx([sheet.lookup(s, 64) for s in t2["Spec"]])


@pytest.mark.slow
def test_ablate_with_two_worker_processes_trains_each_candidate_once(tmp_path):
    """Workers share one journal storage: every row x seed is trained exactly once."""
    protocol = get_protocol("smoke")
    result = ablate([suites.get_suite("table2")], protocol, seeds=2, out=tmp_path, study_name="ablate-table2-smoke",
                    workers=2, progress=False, report=False, runner="lightmark.search.testing:synthetic_runner")
    logs = sorted(tmp_path.glob("candidates/*/trainings.log"))
    assert len(logs) == 12
    assert all(len(p.read_text().splitlines()) == 1 for p in logs)
    per_worker = max(1, len(os.sched_getaffinity(0)) // 2)  # CPU workers split the cores
    assert all(f" threads {per_worker} precision auto start" in p.read_text() for p in logs)
    frame = result.frames[0]
    assert len(frame) == 6 and frame[tables.SEEDS].tolist() == [2] * 6
    assert any(tmp_path.glob("*.journal"))


def test_ablate_exits_1_when_a_candidate_fails_and_0_once_it_trains(tmp_path, capsys, monkeypatch):
    """A candidate whose training raises: its row has no NME, the others do, and the command exits 1 naming
    it; the same command again (the fault gone) trains only that candidate and exits 0."""
    from functools import partial

    import lightmark.cli.ablate as ablate_cli
    from lightmark.cli.main import main
    from lightmark.errors import NonFiniteLossError

    class FailingRunner(FakeRunner):
        def __call__(self, spec, protocol, run_dir, **kwargs):
            if str(spec) == "s2-d4-c128-se":
                self.calls.append(("failed", str(spec)))
                raise NonFiniteLossError(f"loss became nan at epoch 1 ({spec})")
            return super().__call__(spec, protocol, run_dir, **kwargs)

    argv = ["ablate", "table2", "--protocol", "smoke", "--seeds", "1", "--workers", "1", "--out", str(tmp_path),
            "--no-report", "--json"]
    failing = FailingRunner()
    monkeypatch.setattr(ablate_cli, "ablate", partial(ablate, runner=failing))
    assert main(argv) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["candidates"] == 6 and summary["failed"] == 1
    err = " ".join(captured.err.split())  # rich wraps long lines
    assert "1 candidate(s) failed: s2-d4-c128-se: NonFiniteLossError: loss became nan at epoch 1" in err
    frame = pd.read_csv(tmp_path / "table2.csv").set_index("Row")
    assert frame[tables.NME].isna().sum() == 1 and math.isnan(frame.iloc[1][tables.NME])
    assert len(failing.calls) == 6 and ("failed", "s2-d4-c128-se") in failing.calls

    healthy = FakeRunner()
    monkeypatch.setattr(ablate_cli, "ablate", partial(ablate, runner=healthy))
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 0
    assert [call[0] for call in healthy.calls] == ["s2-d4-c128-se"]  # only the failed one trains again
    assert pd.read_csv(tmp_path / "table2.csv")[tables.NME].notna().all()
