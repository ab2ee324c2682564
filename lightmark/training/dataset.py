"""The training data path: sources -> augmented samples -> DataLoader batches of images and points.

Batches are dicts: `image` uint8 [B, 3, H, W], `points` float32 [B, K, 2] (input pixels), `index`
int64 [B]. Every source says its `layout` (K, flip pairs, eye points); the datasets carry it on.
Heatmaps are not made here: the trainer encodes them in batches on its device.

Reproducibility: a sample's augmentation is drawn from a generator seeded by (seed, epoch, index),
and the epoch travels with each index through the sampler, so the batches depend neither on the
number of workers nor on persistent workers keeping stale copies of the dataset. Shuffling uses a
torch.Generator seeded by (protocol.seed, epoch).

Synthetic data (the default): train faces are generator seed 1, indices 0..train_samples-1;
validation faces generator seed 2, indices 0..val_samples-1, whatever protocol.seed is, so every
seed and every candidate is scored on the same held-out faces.
"""

from __future__ import annotations

import logging
import multiprocessing
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lightmark.data.formats import open_source
from lightmark.data.images import resize_sample
from lightmark.data.sample import FaceSample
from lightmark.data.sources import FaceSource, SubsetSource, SyntheticSource
from lightmark.data.synth import GENERATOR_VERSION
from lightmark.errors import ConfigError, DataError
from lightmark.layouts import DEFAULT_LAYOUT, Layout
from lightmark.training.augment import Augment, build_augment
from lightmark.training.protocol import Protocol

log = logging.getLogger(__name__)

TRAIN_SEED = 1  # synthetic generator seed of the training faces
VAL_SEED = 2  # synthetic generator seed of the held-out faces
SPLIT_SEED = 20_240_601  # fixed: the val_fraction split does not move with protocol.seed
AUTO_CACHE_BYTES = 512 * 2**20  # build_loaders caches rendered synthetic sets up to this size


class LandmarkDataset(Dataset):
    """Map-style dataset of tensors; accepts `i` (uses `self.epoch`) or `(epoch, i)` from EpochSampler."""

    def __init__(self, source: FaceSource, augment: Augment | None = None, seed: int = 0,
                 input_size: int | None = None) -> None:
        self.source = source
        self.augment = augment
        self.seed = int(seed)
        self.input_size = input_size
        self.layout: Layout = getattr(source, "layout", DEFAULT_LAYOUT)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def sample(self, key: int | tuple[int, int]) -> FaceSample:
        """The (augmented) FaceSample for `i` or `(epoch, i)`, before tensor conversion."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        sample = self.source[int(index)]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, int(epoch), int(index)])
            sample = self.augment(sample, rng)
        if self.input_size is not None and sample.image.shape[:2] != (self.input_size,) * 2:
            image, points = resize_sample(sample.image, sample.points, self.input_size)
            sample = FaceSample(image=image, points=points, name=sample.name,
                                occluded=sample.occluded, meta=sample.meta)
        return sample

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index = key[1] if isinstance(key, tuple) else key
        sample = self.sample(key)
        image = torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1)))
        return {
            "image": image,
            "points": torch.from_numpy(np.asarray(sample.points, dtype=np.float32).copy()),
            "index": torch.tensor(int(index), dtype=torch.int64),
        }


class EpochSampler(Sampler):
    """Yields (epoch, index) pairs; shuffled by a torch.Generator seeded from (seed, epoch)."""

    def __init__(self, n: int, *, shuffle: bool, seed: int = 0) -> None:
        self.n, self.shuffle, self.seed = int(n), bool(shuffle), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(_mix(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = range(self.n)
        epoch = self.epoch
        return iter([(epoch, i) for i in order])


def _mix(seed: int, epoch: int) -> int:
    """A 63-bit torch seed from (seed, epoch), different for every pair."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


def _worker_init(worker_id: int) -> None:
    """One thread per worker (workers are the parallelism); numpy/random seeded per worker."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def set_epoch(loader_or_dataset: DataLoader | LandmarkDataset | EpochSampler, epoch: int) -> None:
    """Select the epoch whose shuffling and augmentation the next iteration uses."""
    target = loader_or_dataset
    if isinstance(target, DataLoader):
        sampler = target.sampler
        if isinstance(sampler, EpochSampler):
            sampler.set_epoch(epoch)
        target = target.dataset
    if hasattr(target, "set_epoch"):
        target.set_epoch(epoch)


def make_loader(dataset: LandmarkDataset, *, batch_size: int, shuffle: bool, seed: int,
                num_workers: int = 0, drop_last: bool = False, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over `dataset` with the epoch-aware sampler and worker set-up."""
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed)
    workers = int(num_workers)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
        # a train set smaller than one batch still yields one batch instead of none
        drop_last=drop_last and len(dataset) >= batch_size, pin_memory=pin_memory,
        persistent_workers=workers > 0, worker_init_fn=_worker_init if workers > 0 else None,
        multiprocessing_context=_worker_context() if workers > 0 else None,
    )


def _worker_context() -> Any:
    """Workers start from a clean process ("forkserver") where available.

    Plain fork copies the parent's OpenCV / OpenMP thread-pool state; a worker then calling
    cv2 (or cv2.setNumThreads) can deadlock, which we saw intermittently. The dataset is pickled
    to each worker instead (sources keep names and points; caches are not sent).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    # forkserver re-imports the main script in each worker; code fed through stdin cannot be
    # re-imported, so it keeps plain fork.
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is not None and not Path(main_file).is_file():
        return None
    context = multiprocessing.get_context("forkserver")
    # The server imports these once (no thread pools start on import); workers fork from it.
    context.set_forkserver_preload(["torch", "cv2", "lightmark.training.dataset",
                                    "lightmark.training.augment", "lightmark.data.formats"])
    return context


def _cap(source: FaceSource, cap: int) -> FaceSource:
    if cap and cap < len(source):
        return SubsetSource(source, range(cap))
    return source


def data_version(protocol: Protocol) -> str:
    """What the protocol's faces are, beyond the protocol's own fields: `synth-vN` for the embedded
    generator (its GENERATOR_VERSION), `disk` for a dataset path (the path is in the protocol)."""
    if protocol.data is None or protocol.data_format == "synthetic":
        return f"synth-v{GENERATOR_VERSION}"
    return "disk"


def build_sources(protocol: Protocol) -> tuple[FaceSource, FaceSource]:
    """(train_source, val_source) for a protocol: synthetic by default, else the dataset on disk.
    Both have the same `layout` (the data's own, or protocol.layout when that is a part of it)."""
    size = protocol.input_size
    if protocol.data is None or protocol.data_format == "synthetic":
        _synthetic_layout(protocol)
        if protocol.train_samples < 1 or protocol.val_samples < 1:
            raise ConfigError("synthetic data needs train_samples >= 1 and val_samples >= 1")
        train_cache = protocol.train_samples * size * size * 3 <= AUTO_CACHE_BYTES
        val_cache = protocol.val_samples * size * size * 3 <= AUTO_CACHE_BYTES
        return (SyntheticSource(size, TRAIN_SEED, protocol.train_samples, cache=train_cache),
                SyntheticSource(size, VAL_SEED, protocol.val_samples, cache=val_cache))
    data = Path(protocol.data)
    source = open_source(data, protocol.data_format, size, layout=protocol.layout, image_root=protocol.image_root)
    if protocol.val_data is not None:
        train = source
        val = open_source(Path(protocol.val_data), protocol.data_format, size, layout=protocol.layout,
                          image_root=protocol.image_root)
        if val.layout != train.layout:
            raise DataError(f"{protocol.val_data}: validation points are {val.layout.name} "
                            f"({val.layout.n_points} points), training points ({data}) are "
                            f"{train.layout.name} ({train.layout.n_points} points)")
    else:
        n = len(source)
        n_val = max(1, int(round(n * protocol.val_fraction)))
        if n - n_val < 1:
            raise DataError(f"{data}: {n} samples are too few to split off a validation set")
        order = np.random.default_rng(SPLIT_SEED).permutation(n)
        train = SubsetSource(source, np.sort(order[n_val:]))
        val = SubsetSource(source, np.sort(order[:n_val]))
    for name, part in (("train", train), ("validation", val)):
        if len(part) == 0:
            raise DataError(f"{data}: the {name} set is empty")
    train, val = _cap(train, protocol.train_samples), _cap(val, protocol.val_samples)
    log.info("%s: %d training and %d validation samples (%d dropped for points outside the image)",
             data, len(train), len(val),
             getattr(source, "n_dropped", 0) + (getattr(val, "n_dropped", 0) if protocol.val_data else 0))
    return train, val


def data_layout(protocol: Protocol) -> Layout:
    """The layout of a protocol's data (opens the annotations, decodes no image)."""
    if protocol.data is None or protocol.data_format == "synthetic":
        return _synthetic_layout(protocol)  # no face rendered
    return build_sources(protocol)[0].layout


def _synthetic_layout(protocol: Protocol) -> Layout:
    """The synthetic faces draw the iBUG 68 points; another protocol.layout is an error."""
    if protocol.layout not in ("auto", DEFAULT_LAYOUT.name):
        raise ConfigError(f"layout: the synthetic faces are {DEFAULT_LAYOUT.name} "
                          f"({DEFAULT_LAYOUT.n_points} points), not {protocol.layout}")
    return DEFAULT_LAYOUT


def check_points(n_landmarks: int, layout: Layout, protocol: Protocol, what: str = "the spec") -> None:
    """A network must predict as many points as the data has: ConfigError naming both counts."""
    if n_landmarks != layout.n_points:
        data = protocol.data or "the synthetic faces"
        hint = f"-k{layout.n_points}" if layout != DEFAULT_LAYOUT else "no -k suffix"
        raise ConfigError(f"{what} predicts {n_landmarks} points but {data} has {layout.n_points} "
                          f"({layout.name}); use a spec with {hint}, e.g. s1-d2-c16"
                          + (f"-k{layout.n_points}" if layout != DEFAULT_LAYOUT else ""))


def build_loaders(protocol: Protocol, *, pin_memory: bool = False) -> tuple[DataLoader, DataLoader]:
    """(train_loader, val_loader): train augmented, shuffled per epoch and drop_last; val plain.
    Their datasets carry the data's `layout`; the augmentation flips by it."""
    train_source, val_source = build_sources(protocol)
    augment = build_augment(protocol.augment, protocol.input_size, train_source.layout)
    train_set = LandmarkDataset(train_source, augment, seed=protocol.seed, input_size=protocol.input_size)
    val_set = LandmarkDataset(val_source, None, seed=protocol.seed, input_size=protocol.input_size)
    train = make_loader(train_set, batch_size=protocol.batch_size, shuffle=True, seed=protocol.seed,
                        num_workers=protocol.num_workers, drop_last=True, pin_memory=pin_memory)
    val = make_loader(val_set, batch_size=protocol.batch_size, shuffle=False, seed=protocol.seed,
                      num_workers=protocol.num_workers, drop_last=False, pin_memory=pin_memory)
    return train, val
