"""The training data path: sources, per-(seed, epoch, index) augmentation, loaders, determinism."""

from __future__ import annotations

import multiprocessing
import pickle
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lightmark.data import sources
from lightmark.data.formats import write_challenge_annotations
from lightmark.data.sample import FaceSample
from lightmark.data.sources import SyntheticSource
from lightmark.errors import ConfigError, DataError
from lightmark.training import dataset as ds
from lightmark.training.augment import build_augment
from lightmark.training.protocol import get_protocol


class FakeSynthFaces:
    """Stands in for SynthFaces: deterministic for (seed, index), counts renders."""

    renders = 0

    def __init__(self, size: int = 384, seed: int = 0) -> None:
        self.size, self.seed = size, seed

    def render(self, index: int) -> FaceSample:
        type(self).renders += 1
        rng = np.random.default_rng([self.seed, index])
        image = rng.integers(0, 256, (self.size, self.size, 3), dtype=np.uint8)
        points = rng.uniform(0.2 * self.size, 0.8 * self.size, (68, 2)).astype(np.float32)
        return FaceSample(image=image, points=points, name=f"fake-{self.seed}-{index}")


@pytest.fixture(autouse=True)
def fake_synth(monkeypatch):
    monkeypatch.setattr(sources, "SynthFaces", FakeSynthFaces)
    FakeSynthFaces.renders = 0
    return FakeSynthFaces


def smoke(**changes):
    return replace(get_protocol("smoke"), **changes)


def _batches(loader) -> list[dict[str, torch.Tensor]]:
    return [{k: v.clone() for k, v in batch.items()} for batch in loader]


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in ("image", "points", "index"))


def test_synthetic_source_uses_fixed_generator_seeds_and_caches():
    train, val = ds.build_sources(smoke())
    assert (train.seed, len(train), val.seed, len(val)) == (1, 32, 2, 16)
    assert train.size == val.size == 64
    np.testing.assert_array_equal(train[3].image, FakeSynthFaces(64, 1).render(3).image)
    before = FakeSynthFaces.renders
    train[5], train[5], train[5]
    assert FakeSynthFaces.renders == before + 1  # cached: small sets are rendered once
    other_seed, _ = ds.build_sources(smoke(seed=7))
    assert other_seed.seed == 1  # protocol.seed does not change which faces are trained on
    uncached = SyntheticSource(64, 1, 4, cache=False)
    uncached[0], uncached[0]
    assert FakeSynthFaces.renders == before + 3
    with pytest.raises(IndexError):
        uncached[4]


def test_dataset_items_are_tensors_of_the_contract():
    source = SyntheticSource(64, 1, 4)
    item = ds.LandmarkDataset(source, None, seed=0)[2]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 64, 64)
    assert item["image"].is_contiguous()
    assert item["points"].dtype == torch.float32 and item["points"].shape == (68, 2)
    assert item["index"].dtype == torch.int64 and int(item["index"]) == 2
    sample = source[2]
    assert torch.equal(item["image"], torch.from_numpy(sample.image).permute(2, 0, 1))
    assert torch.equal(item["points"], torch.from_numpy(sample.points))


def test_augmentation_depends_on_seed_epoch_index_only():
    protocol = smoke()
    source = SyntheticSource(64, 1, 8)
    data = ds.LandmarkDataset(source, build_augment(protocol.augment, 64), seed=0)
    a = data[(0, 3)]
    again = ds.LandmarkDataset(source, build_augment(protocol.augment, 64), seed=0)[(0, 3)]
    assert torch.equal(a["points"], again["points"])
    data.set_epoch(0)
    assert torch.equal(data[3]["image"], a["image"])  # int key uses the dataset's epoch
    later = [data[(e, 3)]["points"] for e in range(1, 6)]
    assert any(not torch.equal(p, a["points"]) for p in later)
    other_seed = ds.LandmarkDataset(source, build_augment(protocol.augment, 64), seed=1)
    assert any(not torch.equal(other_seed[(e, 3)]["points"], data[(e, 3)]["points"]) for e in range(5))


def test_loaders_shapes_order_and_drop_last():
    train, val = ds.build_loaders(smoke(train_samples=30))
    batches = _batches(train)
    assert len(batches) == 3  # 30 samples, batch 8, drop_last
    assert batches[0]["image"].shape == (8, 3, 64, 64) and batches[0]["image"].dtype == torch.uint8
    assert batches[0]["points"].shape == (8, 68, 2) and batches[0]["index"].dtype == torch.int64
    seen = torch.cat([b["index"] for b in batches])
    assert len(set(seen.tolist())) == 24 and seen.max() < 30
    assert seen.tolist() != sorted(seen.tolist())  # shuffled
    val_batches = _batches(val)
    assert torch.cat([b["index"] for b in val_batches]).tolist() == list(range(16))  # all, in order
    val_source = val.dataset.source
    assert torch.equal(val_batches[1]["image"][0], torch.from_numpy(val_source[8].image).permute(2, 0, 1))


def test_loaders_are_reproducible_and_epochs_differ():
    protocol = smoke()
    first, _ = ds.build_loaders(protocol)
    second, _ = ds.build_loaders(protocol)
    epoch0 = _batches(first)
    assert _same(epoch0, _batches(second))  # same seed, same batches (bytes)
    assert _same(epoch0, _batches(first))  # iterating again without set_epoch repeats the epoch
    ds.set_epoch(first, 1)
    epoch1 = _batches(first)
    assert not _same(epoch0, epoch1)
    assert [b["index"].tolist() for b in epoch0] != [b["index"].tolist() for b in epoch1]
    # the same face in epoch 0 and 1 is augmented differently
    pos0 = {int(i): (b, j) for b in range(len(epoch0)) for j, i in enumerate(epoch0[b]["index"])}
    pos1 = {int(i): (b, j) for b in range(len(epoch1)) for j, i in enumerate(epoch1[b]["index"])}
    differs = [not torch.equal(epoch0[pos0[i][0]]["points"][pos0[i][1]], epoch1[pos1[i][0]]["points"][pos1[i][1]])
               for i in set(pos0) & set(pos1)]
    assert sum(differs) > len(differs) // 2
    ds.set_epoch(second, 1)
    assert _same(epoch1, _batches(second))
    reseeded, _ = ds.build_loaders(replace(protocol, seed=3))
    assert not _same(epoch0, _batches(reseeded))


def test_worker_count_does_not_change_the_batches():
    protocol = smoke(train_samples=16, val_samples=8)
    single, _ = ds.build_loaders(protocol)
    multi, _ = ds.build_loaders(replace(protocol, num_workers=2))
    assert multi.persistent_workers and multi.num_workers == 2
    for epoch in (0, 1):  # persistent workers must still see the new epoch
        ds.set_epoch(single, epoch)
        ds.set_epoch(multi, epoch)
        assert _same(_batches(single), _batches(multi))


# -- real data ------------------------------------------------------------------------------------------
def _challenge(root: Path, n: int, size: int = 64) -> None:
    rng = np.random.default_rng(0)
    names = [f"{i:03d}.png" for i in range(n)]
    for name in names:
        cv2.imwrite(str(root / name), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    write_challenge_annotations(root / "annot.pkl", names, rng.uniform(10, 50, (n, 68, 2)))


def test_real_data_split_is_deterministic_disjoint_and_capped(tmp_path):
    _challenge(tmp_path, 40)
    protocol = smoke(data=str(tmp_path), train_samples=0, val_samples=0, val_fraction=0.25)
    train, val = ds.build_sources(protocol)
    assert (len(train), len(val)) == (30, 10)
    assert set(train.names).isdisjoint(val.names) and len(set(train.names) | set(val.names)) == 40
    again_train, again_val = ds.build_sources(replace(protocol, seed=5))
    assert again_val.names == val.names and again_train.names == train.names
    capped_train, capped_val = ds.build_sources(replace(protocol, train_samples=12, val_samples=4))
    assert (len(capped_train), len(capped_val)) == (12, 4)
    assert capped_val.names == val.names[:4]
    loader, val_loader = ds.build_loaders(protocol)
    batch = next(iter(loader))
    assert batch["image"].shape == (8, 3, 64, 64)
    assert sum(len(b["index"]) for b in val_loader) == 10


def test_real_data_separate_validation_set_and_resizing(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    _challenge(tmp_path / "train", 12, size=128)
    _challenge(tmp_path / "val", 5, size=128)
    protocol = smoke(data=str(tmp_path / "train"), val_data=str(tmp_path / "val"),
                     train_samples=0, val_samples=0)
    train, val = ds.build_loaders(protocol)
    assert len(train.dataset) == 12 and len(val.dataset) == 5
    batch = next(iter(val))
    assert batch["image"].shape == (5, 3, 64, 64)  # resized to the protocol's input size
    raw = val.dataset.source.raw_points
    np.testing.assert_allclose(batch["points"].numpy(), (raw + 0.5) / 2 - 0.5, atol=1e-5)


def test_bad_real_data_configurations(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        ds.build_sources(smoke(data=str(tmp_path / "missing")))
    _challenge(tmp_path, 1)
    with pytest.raises(DataError, match="too few"):
        ds.build_sources(smoke(data=str(tmp_path), val_fraction=0.5))
    with pytest.raises(ConfigError, match="val_fraction"):
        ds.build_sources(smoke(data=str(tmp_path), val_fraction=1.5))


def test_datasets_pickle_for_spawned_workers():
    train, _ = ds.build_loaders(smoke())
    copy = pickle.loads(pickle.dumps(train.dataset))
    for key in ((0, 3), (2, 5)):
        a, b = train.dataset[key], copy[key]
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_workers_start_from_a_clean_process_and_caches_are_not_shipped():
    source = SyntheticSource(64, 1, 4, cache=True)
    source[0]
    assert source._cache[0] is not None
    assert pickle.loads(pickle.dumps(source))._cache == [None] * 4
    loader = ds.make_loader(ds.LandmarkDataset(source), batch_size=2, shuffle=False, seed=0, num_workers=1)
    if "forkserver" in multiprocessing.get_all_start_methods():
        # plain fork inherits OpenCV/OpenMP pool state and could deadlock a worker
        assert loader.multiprocessing_context.get_start_method() == "forkserver"
    assert ds.make_loader(ds.LandmarkDataset(source), batch_size=2, shuffle=False, seed=0).num_workers == 0
