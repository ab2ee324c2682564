"""Forward-pass latency: one model (`latency_stats`) or several timed in interleaved rounds."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lightmark.device import intra_op_threads


def latency_stats(
    model: nn.Module,
    input_size: int,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    *,
    warmup: int = 1,
    repeats: int = 10,
    min_repeats: int = 3,
    budget_s: float = 2.0,
    threads: int | None = None,
    amp: bool | None = None,
) -> dict:
    """Forward-pass latency in ms (eval, no_grad): median and spread over timed repeats.

    CPU: a fixed thread count (default: torch's current), wall clock. CUDA: CUDA events around each
    forward, synchronised, under autocast fp16 (amp=True by default on CUDA). Stops after `repeats`
    or once `budget_s` is spent (but never before `min_repeats`), so big models stay affordable.
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    use_amp = (dev.type == "cuda") if amp is None else amp
    in_channels = getattr(getattr(model, "spec", None), "in_channels", 3)
    model = model.to(dev).eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size, device=dev)
    amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    times: list[float] = []
    with intra_op_threads(threads if dev.type == "cpu" else None), torch.no_grad():
        n_threads = torch.get_num_threads()
        autocast = torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp)
        with autocast:
            for _ in range(warmup):
                model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            started = time.perf_counter()
            while len(times) < repeats:
                if dev.type == "cuda":
                    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    begin.record()
                    model(x)
                    end.record()
                    torch.cuda.synchronize(dev)
                    times.append(begin.elapsed_time(end))
                else:
                    t0 = time.perf_counter()
                    model(x)
                    times.append((time.perf_counter() - t0) * 1e3)
                if len(times) >= min_repeats and time.perf_counter() - started > budget_s:
                    break
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(times),
        "min_ms": ordered[0],
        "p90_ms": ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)],
        "repeats": len(times),
        "batch_size": batch_size,
        "threads": n_threads if dev.type == "cpu" else None,
        "amp": use_amp,
        "device": str(dev),
    }


def measure_latency(
    model: nn.Module, input_size: int, device: str | torch.device = "cpu", batch_size: int = 1, **kwargs
) -> float:
    """Median forward latency in ms (see latency_stats for the method)."""
    return latency_stats(model, input_size, device, batch_size, **kwargs)["median_ms"]



def interleaved_latency(runners: dict[str, Callable[[], Any]], *, warmup: int = 2, repeats: int = 20,
                        min_repeats: int = 5, budget_s: float = 4.0, block: int = 4,
                        settle_s: float = 0.05) -> dict[str, dict]:
    """Median/min ms of each runner, timed in rounds so that a shared machine's slow spells fall on all of
    them alike and their ratios hold.

    Each round times every runner in a block of `block` calls, after a pause of `settle_s` and one untimed
    call. Runtimes keep their thread pools spinning for a moment after a call (ONNX Runtime and OpenMP
    both do); timing one call of each runner in turn measured the next runner against the last one's
    spinning threads, which made PyTorch eager look 5x slower beside ONNX Runtime on 2 cores than alone.
    The pause lets those threads go to sleep; the untimed call wakes the next runner's own."""
    for _ in range(warmup):
        for run in runners.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    started = time.perf_counter()
    while min(len(values) for values in times.values()) < repeats:
        for name, run in runners.items():
            time.sleep(settle_s)  # the previous runner's spinning threads go to sleep
            run()  # untimed: this runner's threads wake
            for _ in range(block):
                t0 = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - t0) * 1e3)
        if min(len(v) for v in times.values()) >= min_repeats and time.perf_counter() - started > budget_s:
            break
    return {name: {"median_ms": statistics.median(values), "min_ms": min(values), "repeats": len(values)}
            for name, values in times.items()}

