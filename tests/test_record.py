from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import pytest

from lightmark.atomic import atomic_path, write_json_atomic
from lightmark.benchmarks.record import Record, candidate_key
from lightmark.models.spec import ModelSpec
from lightmark.training.protocol import AugmentConfig, Protocol, get_protocol


def test_candidate_key_depends_on_spec_and_every_protocol_field():
    spec = ModelSpec.parse("s1-d2-c32")
    smoke = get_protocol("smoke")
    key = candidate_key(spec, smoke)
    assert key == candidate_key(ModelSpec.parse("s1-d2-c32"), get_protocol("smoke"))
    assert key != candidate_key(ModelSpec.parse("s1-d2-c32-cc"), smoke)
    keys = {key}
    for name, value in PROTOCOL_ALTERNATIVES.items():
        keys.add(candidate_key(spec, smoke.override({name: value})))
        assert len(keys) == 2 + list(PROTOCOL_ALTERNATIVES).index(name), f"{name} does not change the key"
    for field in dataclasses.fields(AugmentConfig):
        value = getattr(smoke.augment, field.name)
        other = (not value) if isinstance(value, bool) else (value / 2 if value else 0.1)
        before = len(keys)
        keys.add(candidate_key(spec, smoke.override({f"augment.{field.name}": other})))
        assert len(keys) == before + 1, f"augment.{field.name} does not change the key"


# One other valid value for every protocol field (augment's are made by the test): a new field must be
# added here, so that it is proven to reach the candidate key.
PROTOCOL_ALTERNATIVES = {
    "name": "other", "input_size": 68, "epochs": 3, "batch_size": 4, "train_samples": 33, "val_samples": 17,
    "lr": 0.002, "warmup": 0.2, "milestones": (0.5, 0.85), "milestone_lrs": (0.0004, 0.0002),
    "schedule_unit": "steps", "weight_decay": 1e-5, "grad_clip": 1.0, "codec": "plain", "loss": "mse",
    "loss_weight": 5.0, "seed": 1, "data": "/data/a", "data_format": "pts", "val_data": "/data/b",
    "val_fraction": 0.2, "num_workers": 1, "amp": False, "channels_last": False, "eval_every": 2,
    "layout": "ibug68", "image_root": "/data/images",
}


def test_every_protocol_field_has_an_alternative_in_the_key_test():
    assert set(PROTOCOL_ALTERNATIVES) == {f.name for f in dataclasses.fields(Protocol)} - {"augment"}


def test_record_round_trips_through_json_and_ignores_unknown_keys():
    record = Record(
        key="k", spec="s1-d2-c32", n_stacks=1, depth=2, channels=32, attention="none", coordconv=False,
        protocol="smoke", input_size=64, seed=0, status="complete", params=1234, size_mb=0.5,
        nme_image_pct=3.25,
    )
    data = json.loads(json.dumps(record.to_dict()))
    data["something_new"] = 1
    assert Record.from_dict(data) == record


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp files left behind
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


def test_atomic_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "r.json", {})
    finally:
        os.umask(umask)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


def test_json_writes_are_strict_json(tmp_path):
    write_json_atomic(tmp_path / "r.json", {"nme": float("nan"), "size": float("inf"), "p": tmp_path, "l": [1.5]})
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nme": None, "size": None, "p": str(tmp_path), "l": [1.5]}


def test_candidate_key_changes_with_the_synthetic_generator(monkeypatch):
    """A new generator must not reuse candidates trained on the old faces; v1 keys stay as they were."""
    import lightmark.training.dataset as dataset
    from lightmark.benchmarks.record import candidate_key
    from lightmark.models.spec import ModelSpec
    from lightmark.training.protocol import get_protocol

    spec, protocol = ModelSpec.parse("s1-d2-c16"), get_protocol("smoke")
    v2 = candidate_key(spec, protocol)
    assert dataset.data_version(protocol) == "synth-v2"
    monkeypatch.setattr(dataset, "GENERATOR_VERSION", 1)
    assert dataset.data_version(protocol) == "synth-v1"
    v1 = candidate_key(spec, protocol)
    assert v1 != v2
    # v1 keys were made before the data version joined the hash: they are the hash without it.
    payload = {"spec": spec.to_dict(), "protocol": protocol.to_dict()}
    assert v1 == hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    monkeypatch.setattr(dataset, "GENERATOR_VERSION", 2)
    assert candidate_key(spec, protocol) == v2


def test_record_from_spec_fills_the_candidate_fields():
    import torch

    from lightmark import __version__

    spec = ModelSpec.parse("s2-d2-c32-ca-cc")
    protocol = get_protocol("smoke").override({"augment.erase": True, "seed": 3})
    record = Record.from_spec(spec, protocol, status="complete", params=1234, size_mb=0.5, nme_image_pct=3.0,
                              created="2026-01-01T00:00:00+00:00")
    assert record.key == candidate_key(spec, protocol) and record.spec == str(spec)
    assert (record.n_stacks, record.depth, record.channels, record.attention, record.coordconv) == (
        2, 2, 32, "ca", True)
    assert (record.protocol, record.input_size, record.seed) == ("smoke", protocol.input_size, 3)
    assert (record.codec, record.loss, record.erasing) == (protocol.codec, protocol.loss, True)
    assert (record.torch_version, record.lightmark_version) == (torch.__version__, __version__)
    assert record.created == "2026-01-01T00:00:00+00:00" and record.nme_image_pct == 3.0
    assert Record.from_dict(json.loads(json.dumps(record.to_dict()))) == record
