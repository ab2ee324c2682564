"""What ships: the file size of every export format and dtype, and batch-1 CPU latency of ONNX
Runtime beside PyTorch eager, timed in the same rounds (`deployed_profile`, with the export extra)."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightmark.benchmarks.size import MIB, as_spec, size_mb, state_dict_bytes
from lightmark.benchmarks.timing import interleaved_latency
from lightmark.deploy import export as deploy
from lightmark.device import intra_op_threads
from lightmark.errors import ConfigError
from lightmark.models.specs import AnySpec, build_network

# (format, dtype) pairs `lightmark export` writes; keys of the deployed sizes are f"{format}_{dtype}"
DEPLOYED = (("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"), ("torchscript", "fp32"), ("torchscript", "fp16"))
SIZE_METRICS = ("state_dict", "onnx_fp16", "onnx_int8")  # what a search budget can limit
DEFAULT_CODEC = "subpixel"  # the protocols' default: only the metadata's few bytes depend on it


@torch.no_grad()
def _trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm distinct statistics, as training does. Freshly built ones are all equal
    (weight 1, bias 0, mean 0, var 1), and the ONNX exporter stores equal tensors once, which made
    an untrained network's file smaller than the trained one's."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.weight.copy_(0.5 + torch.rand(n, generator=gen))
            module.bias.copy_(0.1 * torch.randn(n, generator=gen))
            module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    return model


def _export_fresh(spec: AnySpec, folder: Path, fmt: str, dtype: str, input_size: int) -> Path:
    """Export an untrained network of `spec` (int8 calibrated on random images) into `folder`."""
    model = _trained_like(build_network(spec)).eval()
    path = folder / f"{fmt}_{dtype}{deploy.SUFFIXES[fmt]}"
    calibration = deploy.dummy_calibration(input_size, in_channels=spec.in_channels) if dtype == "int8" else None
    metadata = deploy.model_metadata(spec, input_size=input_size, codec=DEFAULT_CODEC, output="heatmaps",
                                     fmt=fmt, dtype=dtype)
    deploy.export_model(model, path, fmt=fmt, dtype=dtype, input_size=input_size, calibration=calibration,
                        metadata=metadata)
    return path


@functools.lru_cache(maxsize=512)  # the search asks once per sampled architecture; an export takes seconds
def deployed_size_bytes(spec: AnySpec | str, fmt: str, dtype: str, input_size: int) -> int:
    """Bytes of the file `lightmark export` writes for `spec`, computed without training: an untrained
    network is exported (int8: calibrated on random images). Weights' values do not change the size;
    a trained network differs by a few hundred bytes at most (shared scalar constants, and BatchNorms
    whose scale is not positive stay a multiply-add instead of folding)."""
    spec = as_spec(spec)
    spec.check_input_size(input_size)
    deploy.require_export_extra(f"the {fmt} {dtype} size")
    with tempfile.TemporaryDirectory(prefix="lightmark-size-") as tmp:
        return _export_fresh(spec, Path(tmp), fmt, dtype, input_size).stat().st_size


def metric_size_mb(spec: AnySpec | str, metric: str, input_size: int) -> float:
    """A size metric in MiB: `state_dict` (the paper's), `onnx_fp16` or `onnx_int8` (exported files)."""
    if metric == "state_dict":
        return size_mb(spec)
    if metric not in SIZE_METRICS:
        raise ConfigError(f"size metric: {metric!r} is not one of {', '.join(SIZE_METRICS)}")
    fmt, dtype = metric.split("_")
    return deployed_size_bytes(as_spec(spec), fmt, dtype, int(input_size)) / MIB



def deployed_profile(spec: AnySpec | str, input_size: int, *, threads: int | None = None,
                     latency: bool = True, repeats: int = 20, budget_s: float = 4.0,
                     formats: tuple[str, ...] = ("onnx", "torchscript")) -> dict:
    """File size of every export of `spec` (untrained; sizes do not depend on training), and batch-1
    CPU latency of the ONNX files in ONNX Runtime beside PyTorch eager fp32, with the same thread count,
    timed in the same rounds (`interleaved_latency`)."""
    import onnxruntime  # deferred: optional export extra (its version goes into the result)

    spec = as_spec(spec)
    spec.check_input_size(input_size)
    deploy.require_export_extra("profiling what ships")
    result: dict[str, Any] = {"onnxruntime": onnxruntime.__version__,
                              "int8_calibration": "random images (file sizes do not depend on calibration)"}
    with tempfile.TemporaryDirectory(prefix="lightmark-profile-") as tmp:
        paths = {f"{fmt}_{dtype}": _export_fresh(spec, Path(tmp), fmt, dtype, input_size)
                 for fmt, dtype in DEPLOYED if fmt in formats}
        sizes = {key: path.stat().st_size for key, path in paths.items()}
        result["size_bytes"] = sizes
        result["size_mb"] = {key: value / MIB for key, value in sizes.items()}
        result["size_vs_state_dict"] = {key: value / state_dict_bytes(spec) for key, value in sizes.items()}
        if not latency:
            return result
        with intra_op_threads(threads):
            n_threads = torch.get_num_threads()
            model = build_network(spec).eval()
            x = torch.rand(1, spec.in_channels, input_size, input_size) * 255
            prepared = (x - 127.5) / 63.75
            sessions = {key.removeprefix("onnx_"): deploy.ort_session(path, n_threads)
                        for key, path in paths.items() if key.startswith("onnx_")}
            feed = {deploy.INPUT_NAME: x.numpy()}

            def eager() -> None:
                with torch.no_grad():
                    model(prepared)

            runners: dict[str, Callable[[], Any]] = {"torch_eager_fp32": eager}
            for dtype, session in sessions.items():
                runners[f"onnxruntime_{dtype}"] = functools.partial(session.run, None, feed)
            stats = interleaved_latency(runners, repeats=repeats, budget_s=budget_s)
    eager_ms = stats["torch_eager_fp32"]["median_ms"]
    result.update(
        latency_batch_size=1, latency_threads=n_threads, latency_device="cpu",
        latency_ms={name: value["median_ms"] for name, value in stats.items()},
        latency_repeats=min(value["repeats"] for value in stats.values()),
        speedup_vs_eager={name: eager_ms / value["median_ms"] for name, value in stats.items()
                          if name != "torch_eager_fp32"},
    )
    return result


# The Record's deployed fields (MiB of each ONNX file; ms of batch-1 CPU inference, `threads` threads)
RECORD_FIELDS = ("onnx_fp32_mb", "onnx_fp16_mb", "onnx_int8_mb", "ort_fp32_ms", "ort_int8_ms", "eager_cpu_ms")


def export_extra_installed() -> bool:
    try:
        deploy.require_export_extra()
    except ConfigError:
        return False
    return True


DEPLOYED_PROFILE_ENV = "LIGHTMARK_DEPLOYED_PROFILE"


def record_fields(spec: AnySpec | str, input_size: int, *, threads: int | None = None) -> dict[str, float]:
    """What a candidate's Record says of its deployment: the ONNX file sizes and ONNX Runtime's batch-1
    CPU latency (fp32 and int8 files) beside PyTorch eager fp32 timed in the same rounds, so their ratio
    holds on a busy machine. Empty without the export extra, or with LIGHTMARK_DEPLOYED_PROFILE=0 (for
    runs where those seconds per candidate matter more than the fields: most of a `smoke` candidate's)."""
    if os.environ.get(DEPLOYED_PROFILE_ENV, "1") == "0" or not export_extra_installed():
        return {}
    found = deployed_profile(spec, input_size, threads=threads, formats=("onnx",), repeats=10, budget_s=1.0)
    sizes, latency = found["size_mb"], found["latency_ms"]
    return {"onnx_fp32_mb": sizes["onnx_fp32"], "onnx_fp16_mb": sizes["onnx_fp16"],
            "onnx_int8_mb": sizes["onnx_int8"], "ort_fp32_ms": latency["onnxruntime_fp32"],
            "ort_int8_ms": latency["onnxruntime_int8"], "eager_cpu_ms": latency["torch_eager_fp32"]}
