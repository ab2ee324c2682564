"""`bench train`: is the training step as fast as the model, and does the data path keep up?

In one run it measures three things on the same model, batch and precision:

- the bare step: a plain forward, an unweighted MSE over the stacks, backward and a default RMSprop
  step, on a second copy of the model: what the architecture itself costs;
- the trainer's step (`Trainer.optimise`: the weighted loss, clipping, scaler, autocast, schedule),
  on one fixed batch already on the device with its heatmaps made;
- the whole loop (loader, augmentation, heatmap encoding on the device, the trainer's step).

They are timed in interleaved rounds and the medians compared, so drift on a shared machine hits
every side alike. Each round also times a large fp32 matmul on the same threads (`peak.py`): the
practical peak that the step's FLOP rate is measured against (`peak_fraction`). The loop's
background batch thread is stopped after each loop round, so it never
runs beside the two step measurements (where it did, it made the trainer's step look slower).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lightmark.benchmarks.macs import count_macs
from lightmark.benchmarks.peak import MatmulProbe, peak_fraction
from lightmark.device import autocast, intra_op_threads
from lightmark.heatmaps.codecs import codec_speed
from lightmark.models.specs import AnySpec, build_network
from lightmark.training.dataset import set_epoch
from lightmark.training.protocol import Protocol
from lightmark.training.trainer import Trainer, _prefetch, mean_training_shape

TARGET_SLOWDOWN_PCT = 15.0  # the whole loop vs the trainer's step
TARGET_TRAINER_OVER_BARE = 1.1  # the trainer's step vs the bare step
ROUNDS = 5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn: Callable[[], Any], steps: int) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return time.perf_counter() - t0


def bare_step_fn(trainer: Any, x: torch.Tensor, target: torch.Tensor, compile: bool = False) -> Callable[[], None]:
    """A plain training step of a fresh copy of the trainer's model (same spec, device, memory format
    and autocast): forward, unweighted MSE summed over the stacks, backward, default RMSprop step.
    `compile=True` runs the model through torch.compile (its first call compiles)."""
    model = build_network(trainer.spec).to(trainer.device)
    if trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=trainer.protocol.lr)
    if compile:
        model = torch.compile(model)

    def step() -> None:
        with autocast(trainer.device, trainer.precision):
            outputs = model(x)
        loss = sum(F.mse_loss(o.float(), target) for o in outputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _loop_round(trainer: Any, epoch_batches: Iterator[dict], prefetch: bool, steps: int) -> tuple[float, int]:
    """`steps` loop steps with a background batch thread that is started (and primed with one untimed
    batch) before the clock starts and stopped when the round ends."""
    batches = _prefetch(epoch_batches, depth=2) if prefetch else epoch_batches
    images = 0
    try:
        trainer.optimise(*trainer.prepare(next(batches)))  # untimed: the thread is running now
        _sync(trainer.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            batch = next(batches)
            trainer.optimise(*trainer.prepare(batch))
            images += int(batch["image"].shape[0])
        _sync(trainer.device)
        return time.perf_counter() - t0, images
    finally:
        if prefetch:
            batches.close()


def _compile_cost(trainer: Any, x: torch.Tensor, target: torch.Tensor, bare_ms: float, steps: int) -> dict:
    """torch.compile on the bare step: seconds of the first (compiling) step, the compiled step's ms,
    and how many steps it takes to earn the compile time back (None: it never does)."""
    t0 = time.perf_counter()
    compiled = bare_step_fn(trainer, x, target, compile=True)
    compiled()  # compiles forward and backward
    compiled()  # a recompile can follow the first step (optimizer state appears)
    compile_s = time.perf_counter() - t0
    ms = statistics.median(1000.0 * _timed(trainer.device, compiled, steps) / steps for _ in range(ROUNDS))
    gain = bare_ms - ms
    return {"compile_seconds": compile_s, "compiled_step_ms": ms,
            "compile_break_even_steps": math.ceil(1000.0 * compile_s / gain) if gain > 0 else None}


def _endless(trainer: Any) -> Iterator[dict]:
    """The training loader's batches, epoch after epoch, as the trainer iterates them."""
    epoch = 0
    while True:
        set_epoch(trainer.train_loader, epoch)
        yield from trainer.train_loader
        epoch += 1


def bench_train(spec: AnySpec, protocol: Protocol, *, steps: int = 20, warmup: int = 3, device: str = "auto",
                precision: str = "auto", prefetch: bool = True, threads: int | None = None,
                compile: bool = False) -> dict[str, Any]:
    """Bare step, trainer step and whole loop (ms per batch), codec ms; with `compile`, what
    torch.compile costs and gains on the bare step."""
    with intra_op_threads(threads):
        return _bench(spec, protocol, steps=steps, warmup=warmup, device=device, precision=precision,
                      prefetch=prefetch, compile=compile)


def _bench(spec: AnySpec, protocol: Protocol, *, steps: int, warmup: int, device: str, precision: str,
           prefetch: bool, compile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, protocol, Path(tmp), device=device, precision=precision, progress=False,
                          prefetch=prefetch)
    t0 = time.perf_counter()
    mean_training_shape(trainer.train_loader)  # renders (and caches) the training faces, as train() does
    cache_seconds = time.perf_counter() - t0
    batch = next(iter(trainer.train_loader))
    x, target, mask = trainer.prepare(batch)
    bs = int(x.shape[0])
    trainer.model.train()
    bare = bare_step_fn(trainer, x, target)
    trainer_step = lambda: trainer.optimise(x, target, mask)  # noqa: E731
    for fn in (bare, trainer_step):  # warm-up (allocator, oneDNN primitives)
        _timed(trainer.device, fn, warmup)
    epoch_batches = _endless(trainer)
    _loop_round(trainer, epoch_batches, prefetch, 1)
    # interleaved rounds: bare step, trainer step, whole loop, ROUNDS times; medians of the per-round
    # times, so load changes on a shared machine hit every side alike
    per_round = max(1, steps // ROUNDS)
    bare_ms, step_ms, loop_ms = [], [], []
    probe = MatmulProbe(trainer.device)
    for _ in range(ROUNDS):
        probe.sample()
        bare_ms.append(1000.0 * _timed(trainer.device, bare, per_round) / per_round)
        step_ms.append(1000.0 * _timed(trainer.device, trainer_step, per_round) / per_round)
        seconds, images = _loop_round(trainer, epoch_batches, prefetch, per_round)
        loop_ms.append(1000.0 * seconds / per_round)
    bare_med, step_med, loop_med = (statistics.median(v) for v in (bare_ms, step_ms, loop_ms))
    step_ips, loop_ips = 1000.0 * bs / step_med, 1000.0 * bs / loop_med
    result: dict[str, Any] = {
        "spec": str(spec),
        "protocol": protocol.name,
        "codec": protocol.codec,
        "loss": protocol.loss,
        "input_size": protocol.input_size,
        "batch_size": bs,
        "steps": per_round * ROUNDS,
        "rounds": ROUNDS,
        "device": str(trainer.device),
        "precision": trainer.precision.name,
        "num_workers": protocol.num_workers,
        "prefetch_thread": prefetch,
        "threads": torch.get_num_threads(),
        "bare_step_ms": bare_med,
        "trainer_step_ms": step_med,
        "loop_ms": loop_med,
        "bare_step_ms_by_round": [round(v, 2) for v in bare_ms],
        "trainer_step_ms_by_round": [round(v, 2) for v in step_ms],
        "loop_ms_by_round": [round(v, 2) for v in loop_ms],
        "trainer_over_bare": step_med / bare_med,
        "target_trainer_over_bare": TARGET_TRAINER_OVER_BARE,
        "model_step_images_per_s": step_ips,
        "loop_images_per_s": loop_ips,
        "model_step_ms": step_med,
        "loop_step_ms": loop_med,
        "loop_over_step_ratio": loop_ips / step_ips,
        "slowdown_pct": (step_ips / loop_ips - 1.0) * 100.0,
        "target_slowdown_pct": TARGET_SLOWDOWN_PCT,
        "cache_fill_seconds": cache_seconds,
        **_peak_fields(spec, protocol.input_size, probe, bs, bare_med, step_med, loop_med),
    }
    if compile:
        result.update(_compile_cost(trainer, x, target, bare_med, per_round))
    result["meets_target"] = result["slowdown_pct"] <= TARGET_SLOWDOWN_PCT
    result["trainer_meets_target"] = result["trainer_over_bare"] <= TARGET_TRAINER_OVER_BARE
    try:
        speed = codec_speed(protocol.codec, batch=bs, size=protocol.input_size // 4,
                            threads=torch.get_num_threads(), device=str(trainer.device))
        result["codec_encode_ms"] = float(speed["encode_ms"])
        result["codec_decode_ms"] = float(speed["decode_ms"])
    except ImportError:
        result["codec_encode_ms"] = result["codec_decode_ms"] = None
    return result


def _peak_fields(spec: AnySpec, input_size: int, probe: MatmulProbe, batch: int, bare_ms: float,
                 step_ms: float, loop_ms: float) -> dict[str, Any]:
    """GFLOP/s of the bare step, the trainer's step and the loop, and their fractions of the matmul's
    (`peak_fraction` is the trainer's step: what training runs at)."""
    macs = count_macs(spec, input_size).fvcore
    fields: dict[str, Any] = {"forward_macs": macs, "peak_gflops": probe.median, "peak_matmul_n": probe.n,
                              "peak_gflops_by_round": [round(v, 1) for v in probe.gflops]}
    for name, ms in (("bare_step", bare_ms), ("trainer_step", step_ms), ("loop", loop_ms)):
        gflops, fraction = peak_fraction(1000.0 * batch / ms, macs, probe.median)
        fields[f"{name}_gflops"], fields[f"{name}_peak_fraction"] = gflops, fraction
    fields["peak_fraction"] = fields["trainer_step_peak_fraction"]
    return fields
