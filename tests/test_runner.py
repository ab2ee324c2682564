"""The candidate runner: one Record per (spec, protocol), cached, pruned runs recorded, resumable."""

from __future__ import annotations

import json
import math

import pytest

import lightmark.training.trainer as trainer_mod
from lightmark.benchmarks import deployed
from lightmark.benchmarks.record import Record, candidate_key
from lightmark.benchmarks.runner import candidate_dir, load_records, run_candidate
from lightmark.benchmarks.size import MIB
from lightmark.models.spec import ModelSpec
from lightmark.training.protocol import get_protocol

SPEC = ModelSpec.parse("s1-d2-c16")


class Prune(Exception):
    pass


@pytest.fixture
def cheap_profile(monkeypatch):
    """Skip MACs/latency measurement where a test is about caching and pruning, not profiling."""
    import lightmark.benchmarks.runner as runner

    monkeypatch.setattr(runner, "profile_candidate",
                        lambda spec, protocol, device, cache=None: {"params": 1, "size_mb": 0.5, "macs": 2,
                                                                     "latency_ms": 1.0})


@pytest.fixture(params=[pytest.param(False, id="torch-profile"),
                        pytest.param(True, id="with-onnx", marks=pytest.mark.slow)])
def with_onnx(request, monkeypatch):
    """The fast tier profiles in PyTorch only (the ONNX exports and runtimes take seconds per candidate);
    the slow tier also measures what ships, as a search does with the export extra installed."""
    if not request.param:
        monkeypatch.setattr(deployed, "record_fields", lambda *args, **kwargs: {})
    return request.param


def test_run_candidate_writes_and_caches_a_record(tmp_path, monkeypatch, with_onnx):
    protocol = get_protocol("smoke")
    record = run_candidate(SPEC, protocol, tmp_path, device="cpu", progress=False)
    key = candidate_key(SPEC, protocol)
    assert record.key == key and record.status == "complete" and record.spec == "s1-d2-c16"
    assert record.params > 0 and record.size_mb > 0 and record.macs and record.macs > 0
    assert record.latency_ms and record.latency_ms > 0
    if with_onnx and deployed.export_extra_installed():  # what ships: ONNX file sizes, ONNX Runtime beside eager
        expected = {dtype: deployed.deployed_size_bytes(SPEC, "onnx", dtype, protocol.input_size) / MIB
                    for dtype in ("fp32", "fp16", "int8")}
        got = {"fp32": record.onnx_fp32_mb, "fp16": record.onnx_fp16_mb, "int8": record.onnx_int8_mb}
        assert got == pytest.approx(expected, rel=0.01)
        assert expected["fp32"] > expected["fp16"] > expected["int8"] > 0
        assert record.ort_fp32_ms > 0 and record.ort_int8_ms > 0 and record.eager_cpu_ms > 0
    else:
        assert record.onnx_fp32_mb is None and record.ort_fp32_ms is None
    assert record.epochs_done == protocol.epochs and record.train_seconds > 0
    assert record.precision == "fp32" and record.threads >= 1  # how it ran is recorded
    assert record.host and "CPUs" in record.host  # and where: timings compare only on one machine
    assert 0 < record.nme_image_pct < 100  # a point is never off by more than the image side on average
    for name in ("nme_inter_ocular_pct", "nme_inter_pupil_pct", "nme_bbox_pct"):  # smaller lengths: unbounded
        assert math.isfinite(getattr(record, name)) and getattr(record, name) > 0, name
    for name in ("failure_rate_8_pct", "failure_rate_10_pct"):
        assert 0 <= getattr(record, name) <= 100, name
    # each normalisation divides by a smaller length than the image side, so its NME is larger
    assert record.nme_inter_ocular_pct > record.nme_image_pct and record.nme_bbox_pct > record.nme_image_pct
    # the record's NME is the last epoch's validation NME (no selection on the held-out faces)
    log_path = candidate_dir(SPEC, protocol, tmp_path) / "log.jsonl"
    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert record.nme_image_pct == pytest.approx(log[-1]["nme_image_pct"])
    path = tmp_path / "candidates" / key / "record.json"
    assert Record.from_dict(json.loads(path.read_text())) == record

    def boom(*args, **kwargs):
        raise AssertionError("a cached candidate must not train again")

    monkeypatch.setattr(trainer_mod, "train", boom)
    assert run_candidate(SPEC, protocol, tmp_path, device="cpu", progress=False) == record
    assert load_records(tmp_path) == [record]


def test_pruned_candidate_writes_a_pruned_record_and_reraises(tmp_path, cheap_profile):
    protocol = get_protocol("smoke").override({"epochs": 3, "train_samples": 16})

    def callback(epoch, metrics):
        assert "nme_image_pct" in metrics
        raise Prune

    with pytest.raises(Prune):
        run_candidate(SPEC, protocol, tmp_path, device="cpu", progress=False, callback=callback)
    (record,) = load_records(tmp_path)
    assert record.status == "pruned" and record.epochs_done == 1 and 0 < record.nme_image_pct < 100
    # cached: the same call returns the pruned record without training or calling back
    again = run_candidate(SPEC, protocol, tmp_path, device="cpu", progress=False, callback=callback)
    assert again == record


def test_interrupted_candidate_resumes(tmp_path, cheap_profile):
    protocol = get_protocol("smoke")
    out = candidate_dir(SPEC, protocol, tmp_path)

    class Crash(Exception):
        pass

    def crash(epoch, metrics):
        raise Crash

    # a crash outside the runner's callback (the trainer called directly) leaves last.pt behind
    with pytest.raises(Crash):
        trainer_mod.train(SPEC, protocol, out, device="cpu", progress=False, callback=crash)
    record = run_candidate(SPEC, protocol, tmp_path, device="cpu", progress=False)
    log = (out / "log.jsonl").read_text().splitlines()
    assert record.status == "complete" and record.epochs_done == 2
    assert [json.loads(line)["epoch"] for line in log] == [1, 2]  # epoch 1 was not trained again


def test_failures_propagate_without_a_record(tmp_path, cheap_profile):
    from lightmark.errors import SpecError

    with pytest.raises(SpecError):
        run_candidate(ModelSpec.parse("s1-d5-c16"), get_protocol("smoke"), tmp_path, device="cpu", progress=False)
    assert load_records(tmp_path) == []


def test_precision_and_threads_reach_training_and_the_record_but_not_the_key(tmp_path, cheap_profile):
    import torch

    before = torch.get_num_threads()
    protocol = get_protocol("smoke").override({"epochs": 1, "train_samples": 16})
    record = run_candidate(SPEC, protocol, tmp_path, device="cpu", progress=False, precision="bf16", threads=1)
    assert (record.precision, record.threads) == ("bf16", 1)
    assert record.key == candidate_key(SPEC, protocol)
    config = json.loads((candidate_dir(SPEC, protocol, tmp_path) / "config.json").read_text())
    assert "bf16" in json.dumps(config)
    assert torch.get_num_threads() == before  # restored afterwards
