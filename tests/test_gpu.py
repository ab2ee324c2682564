"""The CUDA path: fp16 with a GradScaler, bf16 with channels_last, a bit-exact resume, CUDA-event latency and
CUDA peak memory, and two search workers sharing one GPU.

The `gpu` tier: every test here is skipped without a CUDA device (the 2-core CI machine has none), and
`scripts/gpu-check` runs it, plus one timed `paper`-protocol epoch, on a machine that has one.
Run it alone with `pytest -m gpu`.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import optuna
import pytest
import torch

from lightmark.models.spec import ModelSpec
from lightmark.search.storage import open_storage
from lightmark.training.protocol import get_protocol
from lightmark.training.trainer import Trainer, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device: the gpu tier runs where a GPU is (scripts/gpu-check)"),
]

SPEC = ModelSpec.parse("s1-d2-c16")


def smoke(**updates):
    protocol = get_protocol("smoke")
    return protocol.override(updates) if updates else protocol


def _first_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def _finite_metrics(metrics: dict) -> None:
    for key in ("train_loss", "nme_image_pct", "nme_inter_ocular_pct"):
        assert math.isfinite(metrics[key]), key


def test_fp16_training_scales_its_gradients(tmp_path):
    trainer = Trainer(SPEC, smoke(), tmp_path, device="cuda", precision="fp16", progress=False)
    assert trainer.device.type == "cuda" and trainer.precision.name == "fp16"
    assert trainer.scaler.is_enabled()  # fp16 without a scaler underflows small gradients
    result = trainer.run()
    assert result.precision == "fp16" and result.device.startswith("cuda:")
    _finite_metrics(result.last_metrics)
    # The loss scale starts at 2**16 and halves on each overflowing step; a scale far below that means
    # the scaler skipped most steps (gradients were inf/nan throughout), not that it worked.
    assert 2.0**10 <= trainer.scaler.get_scale() <= 2.0**17
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"]


@pytest.mark.skipif(torch.cuda.is_available() and not torch.cuda.is_bf16_supported(),
                    reason="this GPU has no bf16")
def test_bf16_training_runs_channels_last(tmp_path):
    trainer = Trainer(SPEC, smoke(channels_last=True), tmp_path, device="cuda", precision="bf16", progress=False)
    assert trainer.precision.name == "bf16" and not trainer.scaler.is_enabled()  # bf16 needs no scaling
    assert trainer.channels_last
    assert _first_conv(trainer.model).weight.is_contiguous(memory_format=torch.channels_last)
    result = trainer.run()
    _finite_metrics(result.last_metrics)


@pytest.fixture
def deterministic_cuda(monkeypatch):
    """Bit-exact GPU training needs deterministic kernels; cudnn autotuning may pick another algorithm
    per process, so it is off here too (the trainer turns it on for speed)."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


def test_resume_on_the_gpu_is_bit_exact(tmp_path, deterministic_cuda):
    class Stop(Exception):
        pass

    def stop_after_one(epoch, metrics):
        if epoch >= 1:
            raise Stop

    protocol = smoke(epochs=3)
    full = train(SPEC, protocol, tmp_path / "full", device="cuda", precision="fp16", progress=False)
    with pytest.raises(Stop):
        train(SPEC, protocol, tmp_path / "cut", device="cuda", precision="fp16", progress=False,
              callback=stop_after_one)
    resumed = train(SPEC, protocol, tmp_path / "cut", device="cuda", precision="fp16", progress=False, resume=True)
    assert resumed.global_step == full.global_step
    a, b = full.model.state_dict(), resumed.model.state_dict()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ after resume, e.g. {different[:3]}"
    assert resumed.last_metrics["nme_image_pct"] == full.last_metrics["nme_image_pct"]


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "lightmark.cli.main", *args], capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_profile_times_with_cuda_events_and_reads_cuda_peak_memory():
    report = json.loads(_cli("profile", "s1-d2-c16", "--device", "cuda", "--input-size", "64",
                             "--batch-sizes", "1,8", "--json").stdout)
    assert report["device"].startswith("cuda")
    for batch in ("1", "8"):
        timing = report["latency"][batch]
        assert timing["device"].startswith("cuda") and 0 < timing["min_ms"] <= timing["median_ms"]
    weights = report["param_bytes"]
    assert report["peak_memory_kind"].startswith("cuda max_memory_allocated")
    assert report["peak_memory_bytes"] > weights  # weights + input + activations


def test_two_search_workers_share_one_gpu(tmp_path):
    out = tmp_path / "run"
    _cli("search", "--protocol", "smoke", "--budget-mb", "1", "--n-trials", "4", "--pruner", "none",
         "--workers", "2", "--device", "cuda", "--out", str(out), "--no-report", "--json", timeout=600)
    with (out / "records.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["status"] == "complete"]
    assert rows, "no candidate finished"
    assert all(row["device"].startswith("cuda:") for row in rows)
    study = optuna.load_study(study_name=None, storage=open_storage(f"journal:{out / 'study.journal'}"))
    assert len({t.user_attrs["pid"] for t in study.trials if "pid" in t.user_attrs}) == 2, "both workers took trials"
