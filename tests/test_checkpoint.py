"""Checkpoints: atomic save, weights_only load, RNG round trip, clear errors for bad files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lightmark.errors import DataError
from lightmark.models.spec import ModelSpec
from lightmark.training.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    make_state,
    restore_rng_state,
    save_checkpoint,
)
from lightmark.training.protocol import PROTOCOLS
from lightmark.training.schedule import build_scheduler


def _draws():
    return (random.random(), float(np.random.rand()), float(torch.rand(1)))


def test_rng_state_round_trip():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    _draws()
    state = capture_rng_state()
    expected = [_draws() for _ in range(3)]
    restore_rng_state(state)
    assert [_draws() for _ in range(3)] == expected


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    protocol = PROTOCOLS["smoke"]
    opt = torch.optim.RMSprop(model.parameters(), lr=protocol.lr)
    sched, _ = build_scheduler(opt, protocol, total_steps=8)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step(), sched.step()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    mean_shape = np.arange(136, dtype=np.float32).reshape(68, 2)
    state = make_state(model=model, optimizer=opt, scheduler=sched, scaler=scaler, epoch=1, global_step=4,
                       history=[{"epoch": 1, "nme_image_pct": 3.5}], spec=ModelSpec.parse("s1-d2-c16").to_dict(),
                       protocol=protocol.to_dict(), mean_shape=mean_shape, best={"epoch": 1})
    after = _draws()
    path = tmp_path / "sub" / "last.pt"
    save_checkpoint(path, state)
    assert not list(path.parent.glob(".*tmp"))  # atomic: no temp file left behind

    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 1 and loaded["global_step"] == 4
    assert loaded["history"] == [{"epoch": 1, "nme_image_pct": 3.5}]
    assert ModelSpec.from_dict(loaded["spec"]) == ModelSpec.parse("s1-d2-c16")
    assert np.array_equal(loaded["mean_shape"].numpy(), mean_shape)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded["model"][key], value)
    opt2 = torch.optim.RMSprop(model.parameters(), lr=protocol.lr)
    opt2.load_state_dict(loaded["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["square_avg"], opt.state_dict()["state"][0]["square_avg"])
    sched2, _ = build_scheduler(opt2, protocol, total_steps=8)
    sched2.load_state_dict(loaded["scheduler"])
    assert sched2.last_epoch == 1
    restore_rng_state(loaded["rng"])
    assert _draws() == after


def test_bad_checkpoints_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(DataError, match="corrupt.pt"):
        load_checkpoint(corrupt)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(DataError, match="not a lightmark checkpoint"):
        load_checkpoint(other)
