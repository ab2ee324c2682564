"""Measuring one architecture: `profile` puts every number of one spec at one input size together.

The measurements live in one module per job, imported from there by whoever needs only one:
`size` (parameters, bytes of the saved state_dict), `macs` (fvcore and thop), `timing` (latency),
`memory` (peak memory of a forward) and `deployed` (what `lightmark export` ships: file sizes and
ONNX Runtime latency, with the export extra).
"""

from __future__ import annotations

import torch

from lightmark.benchmarks.deployed import deployed_profile
from lightmark.benchmarks.macs import count_macs
from lightmark.benchmarks.memory import peak_memory
from lightmark.benchmarks.size import MIB, as_spec, size_breakdown
from lightmark.benchmarks.timing import latency_stats
from lightmark.device import resolve_device
from lightmark.errors import ConfigError, SpecError
from lightmark.models.specs import AnySpec, build_network


def profile(
    spec: AnySpec | str,
    input_size: int,
    device: str = "cpu",
    latency: bool = True,
    *,
    batch_sizes: tuple[int, ...] = (1, 8),
    threads: int | None = None,
    macs: bool = True,
    memory: bool = True,
    deployed: bool = False,
) -> dict:
    """All numbers for one spec at one input size, as a flat JSON-ready dict.

    `deployed=True` (needs the export extra) adds "deployed": `deployed_profile`'s file sizes and
    ONNX Runtime latency (when `latency`), with the same thread count as the eager numbers."""
    spec = as_spec(spec)
    if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 4:
        raise SpecError(f"input size must be a positive multiple of 4, got {input_size!r}")
    spec.check_input_size(input_size)
    if any(b < 1 for b in batch_sizes):
        raise SpecError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    try:
        dev = resolve_device(device)
    except ConfigError as exc:  # profile's contract: a bad spec, size or device is a SpecError
        raise SpecError(f"device: {exc}") from None
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SpecError(f"device: {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    sizes = size_breakdown(spec)
    result: dict = {
        "spec": str(spec),
        "input_size": input_size,
        "heatmap_size": spec.heatmap_size(input_size),
        "params": sizes.params,
        "size_bytes": sizes.total_bytes,
        "size_mb": sizes.total_bytes / MIB,
        "param_bytes": sizes.param_bytes,
        "buffer_bytes": sizes.buffer_bytes,
        "overhead_bytes": sizes.overhead_bytes,
        "n_tensors": sizes.n_tensors,
        "device": str(dev),
        "threads": torch.get_num_threads() if not threads else threads,
        "torch": torch.__version__,
    }
    model = build_network(spec) if (macs or latency or memory) else None
    if macs:
        count = count_macs(model, input_size)
        result.update(
            macs_fvcore=count.fvcore,
            macs_thop=count.thop,
            macs_conv=count.conv,
            macs_rel_diff=count.rel_diff,
            macs_flagged=count.flagged,
            fvcore_skipped_ops=count.fvcore_skipped_ops,
            fvcore_skipped_elements=count.fvcore_skipped_elements,
            fvcore_skipped_pct=count.fvcore_skipped_pct,
            macs_fvcore_by_op=count.fvcore_by_op,
            gflops_fvcore=2 * count.fvcore / 1e9,
        )
    if latency:
        per_batch = {}
        for batch in batch_sizes:
            stats = latency_stats(model, input_size, dev, batch, threads=threads)
            per_batch[str(batch)] = stats
        result["latency"] = per_batch
        result["latency_ms_by_batch"] = {b: s["median_ms"] for b, s in per_batch.items()}
        first = per_batch[str(batch_sizes[0])]
        result["latency_ms"] = per_batch["1"]["median_ms"] if "1" in per_batch else first["median_ms"]
        result["latency_amp"] = first["amp"]
        if dev.type == "cpu":
            result["threads"] = first["threads"]
    else:
        result["latency_ms"] = None
        result["latency_ms_by_batch"] = {}
    if memory:
        mem = peak_memory(model, input_size, dev, batch_sizes[0])
        result["peak_memory_bytes"] = mem["peak_memory_bytes"]
        result["peak_memory_mb"] = mem["peak_memory_bytes"] / MIB
        result["peak_memory_kind"] = mem["peak_memory_kind"]
        result["peak_memory_batch_size"] = mem["batch_size"]
    if deployed:
        result["deployed"] = deployed_profile(spec, input_size, threads=threads, latency=latency)
    return result

