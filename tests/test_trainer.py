"""The trainer on the smoke protocol with tiny specs: resume equivalence, callback, NaN guard,
weight-decay groups, the bf16 autocast + channels_last path on the CPU, logs and checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

import lightmark.training.trainer as trainer_mod
from lightmark.errors import ConfigError, DataError, NonFiniteLossError
from lightmark.models.spec import ModelSpec
from lightmark.training.checkpoint import load_checkpoint
from lightmark.training.protocol import get_protocol
from lightmark.training.trainer import parameter_groups, train

SPEC = ModelSpec.parse("s1-d2-c16")


def smoke(**updates):
    protocol = get_protocol("smoke")
    return protocol.override(updates) if updates else protocol


class Stop(Exception):
    pass


def _stop_after(n):
    def callback(epoch, metrics):
        if epoch >= n:
            raise Stop(epoch)
    return callback


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_weight_decay_only_on_conv_and_linear_weights():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2), nn.LayerNorm(2))
    decay, free = parameter_groups(model, 1e-6)
    assert decay["weight_decay"] == 1e-6 and free["weight_decay"] == 0.0
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == {id(model[0].weight), id(model[3].weight)}
    assert ids(free["params"]) == {id(model[0].bias), id(model[1].weight), id(model[1].bias), id(model[3].bias),
                                   id(model[4].weight), id(model[4].bias)}


@pytest.fixture(scope="module")
def full_run(smoke_run):
    """One uninterrupted smoke run of SPEC (the session's, conftest.py)."""
    return smoke_run


def test_train_writes_checkpoints_log_and_metrics(full_run):
    out, result = full_run
    assert result.epochs_done == 2 and result.global_step == 2 * (32 // 8)
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in lines] == [1, 2]
    for entry in lines:
        for key in ("train_loss", "lr", "train_epoch_seconds", "images_per_s", "nme_image_pct",
                    "nme_inter_ocular_pct", "nme_inter_pupil_pct", "nme_bbox_pct", "failure_rate_8_pct"):
            assert np.isfinite(entry[key]), key
    assert lines[1]["train_loss"] < lines[0]["train_loss"]  # it learns something even on smoke
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 2 and state["global_step"] == result.global_step
    assert state["mean_shape"].shape == (68, 2)
    assert (out / "best.pt").exists()
    assert result.baseline is not None and result.baseline["nme_image_pct"] > 0
    assert result.last_metrics["nme_image_pct"] == lines[-1]["nme_image_pct"]
    assert _same_weights(state["model"], {k: v.contiguous() for k, v in result.model.state_dict().items()})


def test_resume_gives_identical_weights(full_run, tmp_path):
    _, full = full_run
    with pytest.raises(Stop):
        train(SPEC, smoke(), tmp_path / "cut", device="cpu", progress=False, callback=_stop_after(1))
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1  # written before the callback raised
    resumed = train(SPEC, smoke(), tmp_path / "cut", device="cpu", progress=False, resume=True)
    assert resumed.epochs_done == 2 and resumed.global_step == full.global_step
    assert _same_weights(full.model.state_dict(), resumed.model.state_dict())
    assert resumed.last_metrics["nme_image_pct"] == pytest.approx(full.last_metrics["nme_image_pct"], abs=0)
    # a finished run resumes to "nothing to do"
    again = train(SPEC, smoke(), tmp_path / "cut", device="cpu", progress=False, resume=True)
    assert again.epochs_done == 2 and _same_weights(again.model.state_dict(), full.model.state_dict())


def test_best_checkpoint_holds_the_best_epoch_not_the_last(tmp_path, monkeypatch):
    """Scripted validation NMEs (5, 3, 4 %): best.pt must be epoch 2's state, weights included."""
    scripted = iter([5.0, 3.0, 4.0])
    real_evaluate = trainer_mod.Trainer.evaluate

    def evaluate(self):
        result = real_evaluate(self)
        result.summary["nme_image_pct"] = next(scripted)
        return result

    monkeypatch.setattr(trainer_mod.Trainer, "evaluate", evaluate)
    short = smoke(epochs=3, train_samples=16, val_samples=8)
    result = train(SPEC, short, tmp_path / "run", device="cpu", progress=False)
    monkeypatch.setattr(trainer_mod.Trainer, "evaluate", real_evaluate)
    with pytest.raises(Stop):
        train(SPEC, short, tmp_path / "two", device="cpu", progress=False, callback=_stop_after(2))
    best, last = load_checkpoint(tmp_path / "run" / "best.pt"), load_checkpoint(tmp_path / "run" / "last.pt")
    assert result.best_epoch == 2 and result.best_metrics["nme_image_pct"] == 3.0
    assert best["epoch"] == 2 and best["best"]["nme_image_pct"] == 3.0 and last["epoch"] == 3
    assert _same_weights(best["model"], load_checkpoint(tmp_path / "two" / "last.pt")["model"])
    assert not _same_weights(best["model"], last["model"])


def test_resume_refuses_a_different_protocol(tmp_path):
    with pytest.raises(Stop):
        train(SPEC, smoke(), tmp_path, device="cpu", progress=False, callback=_stop_after(1))
    with pytest.raises(ConfigError, match="different protocol"):
        train(SPEC, smoke(lr=0.5), tmp_path, device="cpu", progress=False, resume=True)


def test_callback_sees_each_evaluation_and_stops_training(tmp_path):
    seen = []

    def callback(epoch, metrics):
        seen.append((epoch, metrics["nme_image_pct"]))
        raise Stop

    with pytest.raises(Stop):
        train(SPEC, smoke(epochs=3, train_samples=16), tmp_path, device="cpu", progress=False, callback=callback)
    assert [e for e, _ in seen] == [1]
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_non_finite_loss_raises_with_the_step(tmp_path):
    with pytest.raises(NonFiniteLossError, match="step") as info:
        train(SPEC, smoke(lr=1e30, warmup=0.0, grad_clip=0.0), tmp_path, device="cpu", progress=False)
    assert isinstance(info.value.step, int) and info.value.step >= 0


def test_bf16_autocast_and_channels_last_on_cpu(tmp_path, monkeypatch):
    seen = {}
    original = trainer_mod.Trainer.optimise

    def spy(self, x, target, mask=None):
        seen["channels_last"] = x.is_contiguous(memory_format=torch.channels_last)
        with trainer_mod.autocast(self.device, self.precision):
            seen["dtype"] = self.model(x)[-1].dtype
        return original(self, x, target, mask)

    monkeypatch.setattr(trainer_mod.Trainer, "optimise", spy)
    result = train(SPEC, smoke(epochs=1, train_samples=16), tmp_path, device="cpu", precision="bf16",
                   progress=False)
    assert result.precision == "bf16"
    assert seen == {"channels_last": True, "dtype": torch.bfloat16}
    assert np.isfinite(result.last_metrics["nme_image_pct"])
    state = load_checkpoint(tmp_path / "last.pt")
    assert all(v.dtype != torch.bfloat16 for v in state["model"].values())  # weights stay fp32


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA"):
        train(SPEC, smoke(), tmp_path, device="cpu", precision="fp16", progress=False)


@pytest.mark.slow
def test_killed_cli_run_resumes_to_the_same_weights(tmp_path):
    """A real `lightmark train` process killed after its first checkpoint, then --resume."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", MPLBACKEND="Agg")
    args = [sys.executable, "-m", "lightmark.cli.main", "train", "s1-d2-c16", "--protocol", "smoke",
            "--set", "epochs=3", "--set", "train_samples=96", "--device", "cpu", "--threads", "1",
            "--no-progress", "--json"]
    # the reference runs in-process (same code path as the CLI, one thread like the subprocesses)
    train(SPEC, smoke(epochs=3, train_samples=96), tmp_path / "ref", device="cpu", progress=False, threads=1)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(args + ["--out", str(cut)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (cut / "last.pt").exists():
        time.sleep(0.02)
    proc.kill()  # at once: after the first checkpoint, inside the second epoch (no sleep to race with)
    proc.wait()
    assert (cut / "last.pt").exists()
    done = load_checkpoint(cut / "last.pt")["epoch"]
    assert done < 3, "the process finished before it was killed; nothing was tested"
    res = subprocess.run(args + ["--out", str(cut), "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    a, b = load_checkpoint(tmp_path / "ref" / "last.pt"), load_checkpoint(cut / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    assert _same_weights(a["model"], b["model"])


TINY = smoke(train_samples=8, val_samples=8, batch_size=4)  # two steps an epoch: a checkpoint in a second


def test_resume_refuses_a_checkpoint_of_another_spec_and_leaves_the_run_intact(tmp_path, capsys):
    with pytest.raises(Stop):
        train(SPEC, TINY, tmp_path, device="cpu", progress=False, callback=_stop_after(1))
    last, config = (tmp_path / "last.pt").read_bytes(), (tmp_path / "config.json").read_text()
    other = ModelSpec.parse("s1-d2-c24-se")
    with pytest.raises(ConfigError) as info:
        train(other, TINY, tmp_path, device="cpu", progress=False, resume=True)
    message = str(info.value)
    assert f"{tmp_path / 'last.pt'}: checkpoint is for spec s1-d2-c16, not s1-d2-c24-se" in message
    assert (tmp_path / "last.pt").read_bytes() == last and (tmp_path / "config.json").read_text() == config
    from lightmark.cli.main import main

    capsys.readouterr()
    assert main(["train", str(other), "--protocol", "smoke", "--set", "train_samples=8", "--set", "val_samples=8",
                 "--set", "batch_size=4", "--out", str(tmp_path), "--device", "cpu", "--no-progress", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint is for spec s1-d2-c16, not s1-d2-c24-se" in err and "Traceback" not in err
    assert (tmp_path / "last.pt").read_bytes() == last


def test_resume_accepts_a_checkpoint_whose_spec_lacks_a_later_default_field(tmp_path):
    """Checkpoints written before `in_channels` existed store the spec without it: the same spec."""
    one = TINY.override({"epochs": 1})
    first = train(SPEC, one, tmp_path, device="cpu", progress=False)
    state = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    del state["spec"]["in_channels"]
    torch.save(state, tmp_path / "last.pt")
    resumed = train(SPEC, one, tmp_path, device="cpu", progress=False, resume=True)  # finished: nothing to do
    assert resumed.epochs_done == 1 and _same_weights(resumed.model.state_dict(), first.model.state_dict())
    with pytest.raises(ConfigError, match="checkpoint is for spec s1-d2-c16, not s1-d2-c16-i1"):
        train(ModelSpec.parse("s1-d2-c16-i1"), one, tmp_path, device="cpu", progress=False, resume=True)
    state["spec"]["wings"] = 2  # a field this version does not know: not silently another spec
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(DataError, match=r"last\.pt: the checkpoint's spec is unreadable \(unknown spec field"):
        train(SPEC, one, tmp_path, device="cpu", progress=False, resume=True)
