"""`bench train`: is the data path fast enough to keep the model busy?

In one run it measures images/s of the model step alone (one fixed batch already on the device,
heatmaps already made) and of the whole training loop (loader, augmentation, heatmap encoding on the
device, step), and the codec's encode/decode ms per batch. The two are timed in interleaved rounds
and the medians compared, so drift on a shared machine hits both sides alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from lightmark.landmarks.protocol import Protocol
from lightmark.models.spec import ModelSpec

TARGET_SLOWDOWN_PCT = 15.0
ROUNDS = 5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_model_step(trainer: Any, x: torch.Tensor, target: torch.Tensor, steps: int) -> float:
    _sync(trainer.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.optimise(x, target)
    _sync(trainer.device)
    return time.perf_counter() - t0


def _batches(trainer: Any, prefetch: bool) -> Iterator[dict]:
    """The training loader's batches, epoch after epoch, as the trainer iterates them."""
    from lightmark.landmarks.dataset import set_epoch
    from lightmark.landmarks.trainer import _prefetch

    epoch = 0
    while True:
        set_epoch(trainer.train_loader, epoch)
        batches = _prefetch(trainer.train_loader) if prefetch else iter(trainer.train_loader)
        try:
            yield from batches
        finally:
            if hasattr(batches, "close"):
                batches.close()
        epoch += 1


def _time_loop(trainer: Any, batches: Iterator[dict], steps: int) -> tuple[float, int]:
    images = 0
    _sync(trainer.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = next(batches)
        trainer.optimise(*trainer.prepare(batch))
        images += int(batch["image"].shape[0])
    _sync(trainer.device)
    return time.perf_counter() - t0, images


def bench_train(spec: ModelSpec, protocol: Protocol, *, steps: int = 20, warmup: int = 3, device: str = "auto",
                precision: str = "auto", prefetch: bool = True, threads: int | None = None) -> dict[str, Any]:
    """images/s of the model step alone vs the whole loop, their ratio, and codec ms per batch."""
    from lightmark.landmarks.device import intra_op_threads

    with intra_op_threads(threads):
        return _bench(spec, protocol, steps=steps, warmup=warmup, device=device, precision=precision,
                      prefetch=prefetch)


def _bench(spec: ModelSpec, protocol: Protocol, *, steps: int, warmup: int, device: str, precision: str,
           prefetch: bool) -> dict[str, Any]:
    from lightmark.landmarks.trainer import Trainer, mean_training_shape

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, protocol, Path(tmp), device=device, precision=precision, progress=False,
                          prefetch=prefetch)
    t0 = time.perf_counter()
    mean_training_shape(trainer.train_loader)  # renders (and caches) the training faces, as train() does
    cache_seconds = time.perf_counter() - t0
    batch = next(iter(trainer.train_loader))
    x, target = trainer.prepare(batch)
    bs = int(x.shape[0])
    trainer.model.train()
    _time_model_step(trainer, x, target, warmup)
    batches = _batches(trainer, prefetch)
    _time_loop(trainer, batches, 1)  # start the loader (and its prefetch thread) before timing
    # interleaved rounds: step alone, then the loop, ROUNDS times; medians of the per-round rates, so
    # load changes on a shared machine hit both sides alike
    per_round = max(1, steps // ROUNDS)
    step_rates, loop_rates = [], []
    for _ in range(ROUNDS):
        step_rates.append(per_round * bs / _time_model_step(trainer, x, target, per_round))
        seconds, images = _time_loop(trainer, batches, per_round)
        loop_rates.append(images / seconds)
    batches.close()
    step_ips, loop_ips = statistics.median(step_rates), statistics.median(loop_rates)
    result: dict[str, Any] = {
        "spec": str(spec),
        "protocol": protocol.name,
        "codec": protocol.codec,
        "input_size": protocol.input_size,
        "batch_size": bs,
        "steps": per_round * ROUNDS,
        "rounds": ROUNDS,
        "loop_over_step_by_round": [round(lr / sr, 4) for lr, sr in zip(loop_rates, step_rates)],
        "device": str(trainer.device),
        "precision": trainer.precision.name,
        "num_workers": protocol.num_workers,
        "prefetch_thread": prefetch,
        "threads": torch.get_num_threads(),
        "model_step_images_per_s": step_ips,
        "loop_images_per_s": loop_ips,
        "model_step_ms": 1000.0 * bs / step_ips,
        "loop_step_ms": 1000.0 * bs / loop_ips,
        "loop_over_step_ratio": loop_ips / step_ips,
        "slowdown_pct": (step_ips / loop_ips - 1.0) * 100.0,
        "target_slowdown_pct": TARGET_SLOWDOWN_PCT,
        "cache_fill_seconds": cache_seconds,
    }
    result["meets_target"] = result["slowdown_pct"] <= TARGET_SLOWDOWN_PCT
    try:
        from lightmark.landmarks.codecs import codec_speed

        speed = codec_speed(protocol.codec, batch=bs, size=protocol.input_size // 4,
                            threads=torch.get_num_threads(), device=str(trainer.device))
        result["codec_encode_ms"] = float(speed["encode_ms"])
        result["codec_decode_ms"] = float(speed["decode_ms"])
    except ImportError:
        result["codec_encode_ms"] = result["codec_decode_ms"] = None
    return result
