"""Data-path throughput on ONE core: generator, generator + augmentation, disk read + augmentation,
and the full DataLoader path, at each image size.

On a GPU the model step of the paper's network takes a few ms per image, so the data path decides
the speed of a search. The issue's targets (one core, samples/s): read + augment at 384 px >= 150;
generate at 384 px >= 100; generate at 128 px >= 300.

The augmentation measured is the paper's six (erasing on) at the protocol's default probabilities.
The disk cases read a temporary challenge folder (SynthFaces renders + `annot.pkl`) written before
timing; the files sit in the OS page cache, so this measures decoding, not the disk.

Everything runs in this process on one thread, so its CPU time is what the work costs one core;
targets are compared with samples per CPU-second, because on a shared machine the wall clock also
counts time other processes took from the core (both are reported).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lightmark.data.formats import ChallengeSource, write_challenge_annotations
from lightmark.data.synth import SynthFaces
from lightmark.device import intra_op_threads
from lightmark.training.augment import build_augment
from lightmark.training.dataset import LandmarkDataset, make_loader
from lightmark.training.protocol import AugmentConfig

# (case, size) -> target in samples/s, from the issue.
TARGETS: dict[tuple[str, int], float] = {
    ("generate", 384): 100.0,
    ("generate", 128): 300.0,
    ("read_png+augment", 384): 150.0,
    ("read_jpg+augment", 384): 150.0,
}
IMAGE_FORMATS = ("png", "jpg")


@dataclass(frozen=True)
class DataBenchRow:
    case: str  # generate | generate+augment | read_<fmt>+augment | loader_<fmt>
    size_px: int
    n: int  # samples timed
    seconds: float  # wall clock
    cpu_seconds: float  # this process's CPU time (one thread): what the work costs a core
    samples_per_s: float  # wall clock
    samples_per_cpu_s: float  # n / cpu_seconds: the one-core rate, fair on a shared machine
    ms_per_sample: float  # wall clock, mean
    median_ms_per_sample: float  # wall clock, robust to the core being stolen now and then
    batches_per_s: float | None  # loader cases only (wall clock)
    target_samples_per_s: float | None
    meets_target: bool | None  # samples_per_cpu_s >= target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(case: str, size: int, n: int, seconds: float, cpu_seconds: float | None = None,
         median_ms: float | None = None, batches: int | None = None) -> DataBenchRow:
    cpu_seconds = seconds if cpu_seconds is None else cpu_seconds
    per_s = n / seconds if seconds > 0 else float("inf")
    per_cpu_s = n / cpu_seconds if cpu_seconds > 0 else float("inf")
    target = TARGETS.get((case, size))
    return DataBenchRow(
        case=case, size_px=size, n=n, seconds=seconds, cpu_seconds=cpu_seconds,
        samples_per_s=per_s, samples_per_cpu_s=per_cpu_s,
        ms_per_sample=1e3 * seconds / max(n, 1),
        median_ms_per_sample=1e3 * seconds / max(n, 1) if median_ms is None else median_ms,
        batches_per_s=(batches / seconds if batches is not None and seconds > 0 else None),
        target_samples_per_s=target, meets_target=None if target is None else per_cpu_s >= target,
    )


@contextlib.contextmanager
def _one_core() -> Iterator[None]:
    """torch and OpenCV on one thread for the duration (restored afterwards)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with intra_op_threads(1):
            yield
    finally:
        cv2.setNumThreads(before)


def _timed(fn: Callable[[int], Any], n: int, warmup: int = 2) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, median wall ms per call) of fn(0..n-1) after a warm-up."""
    for i in range(min(warmup, n)):
        fn(i)
    times = np.empty(n)
    cpu = time.process_time()
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times[i] = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return float(times.sum()), cpu, float(np.median(times) * 1e3)


def write_challenge_folder(root: Path, generator: Any, n: int, image_format: str = "png") -> None:
    """n rendered faces as <root>/<i>.<fmt> plus annot.pkl (JPEG quality 95; PNG lossless)."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}")
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
    root.mkdir(parents=True, exist_ok=True)
    names, points = [], []
    for i in range(n):
        sample = generator.render(i)
        name = f"{i:06d}.{image_format}"
        cv2.imwrite(str(root / name), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR), params)
        names.append(name)
        points.append(sample.points)
    write_challenge_annotations(root / "annot.pkl", names, np.stack(points))


def run_data_bench(
    sizes: Sequence[int] = (128, 384),
    n: int = 200,
    *,
    image_formats: Sequence[str] = IMAGE_FORMATS,
    batch_size: int = 8,
    augment_cfg: AugmentConfig | None = None,
    make_generator: Callable[[int, int], Any] | None = None,
    on_row: Callable[[DataBenchRow], None] | None = None,
) -> list[DataBenchRow]:
    """Measure every case at every size on one core; rows in the order measured."""
    if make_generator is None:
        def make_generator(size: int, seed: int) -> Any:
            return SynthFaces(size=size, seed=seed)

    cfg = augment_cfg if augment_cfg is not None else replace(AugmentConfig(), erase=True)
    rows: list[DataBenchRow] = []

    def add(row: DataBenchRow) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(row)

    with _one_core(), tempfile.TemporaryDirectory(prefix="lightmark-databench-") as tmp:
        for size in sizes:
            generator = make_generator(size, 0)
            augment = build_augment(cfg, size)
            add(_row("generate", size, n, *_timed(generator.render, n)))

            def gen_aug(i: int, augment: Any = augment, generator: Any = generator) -> Any:
                return augment(generator.render(i), np.random.default_rng([0, i]))

            add(_row("generate+augment", size, n, *_timed(gen_aug, n)))
            for fmt in image_formats:
                root = Path(tmp) / f"{fmt}-{size}"
                write_challenge_folder(root, generator, n, fmt)
                source = ChallengeSource(root, size)

                def read_aug(i: int, source: ChallengeSource = source, augment: Any = augment) -> Any:
                    return augment(source[i], np.random.default_rng([0, i]))

                add(_row(f"read_{fmt}+augment", size, n, *_timed(read_aug, n)))
                dataset = LandmarkDataset(source, augment, seed=0)
                loader = make_loader(dataset, batch_size=batch_size, shuffle=True, seed=0,
                                     num_workers=0, drop_last=True)
                next(iter(loader))  # warm-up
                start, cpu = time.perf_counter(), time.process_time()
                batches = samples = 0
                for batch in loader:
                    batches += 1
                    samples += int(batch["index"].shape[0])
                add(_row(f"loader_{fmt}", size, samples, time.perf_counter() - start,
                         time.process_time() - cpu, batches=batches))
    return rows
