"""Device and numeric-precision selection for training, evaluation and benchmarks.

One place decides "auto": CUDA when present, else the CPU; on CUDA mixed precision is bf16 where the
card supports it, else fp16 with a gradient scaler. The CPU runs fp32 by default, but the same
autocast + channels_last path can be forced with ``precision="bf16"`` so tests exercise it without a GPU.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from lightmark.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: ``dtype`` None means plain fp32 (no autocast)."""

    name: str  # fp32 | bf16 | fp16
    dtype: torch.dtype | None
    use_scaler: bool  # fp16 needs loss scaling; bf16 has fp32's exponent range and does not

    @property
    def autocast(self) -> bool:
        return self.dtype is not None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA if available else CPU; an explicit CUDA request without CUDA is a user error."""
    if isinstance(device, torch.device):
        return device
    text = (device or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"--device: unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    if resolved.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device}: only cpu and cuda are supported")
    return resolved


def resolve_precision(precision: str, device: torch.device, amp: bool = True) -> Precision:
    """Pick the autocast dtype. ``amp`` is the protocol's switch for the "auto" choice on CUDA."""
    name = (precision or "auto").lower()
    if name not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if name == "auto":
        if device.type == "cuda" and amp:
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            name = "fp32"
    if name == "fp32":
        return Precision("fp32", None, False)
    if name == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("--precision bf16: this CUDA device does not support bfloat16")
        return Precision("bf16", torch.bfloat16, False)
    if device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device (use bf16 or fp32 on the CPU)")
    return Precision("fp16", torch.float16, True)


def use_channels_last(device: torch.device, precision: Precision, requested: bool = True) -> bool:
    """channels_last pays on CUDA; on the CPU it is used with bf16 so that path stays tested."""
    return bool(requested) and (device.type == "cuda" or precision.autocast)


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """Autocast for the forward pass (a no-op for fp32)."""
    if precision.dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=precision.dtype):
        yield


def make_scaler(device: torch.device, precision: Precision) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 (disabled scalers pass gradients through)."""
    return torch.amp.GradScaler(device.type, enabled=precision.use_scaler)


def configure_backend(device: torch.device) -> None:
    """cudnn autotuning for fixed input sizes (every batch has the protocol's size), unless the caller
    asked for deterministic algorithms: autotuning may pick another algorithm in each process."""
    if device.type == "cuda" and not torch.are_deterministic_algorithms_enabled():
        torch.backends.cudnn.benchmark = True


def describe(device: torch.device) -> str:
    """A short device label for Records: ``cpu`` or ``cuda:NVIDIA H100 80GB HBM3``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{torch.cuda.get_device_name(index)}"
    return "cpu"


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 convolutions natively on this CPU (avx512_bf16 or AMX). Without
    them bf16 autocast falls back to a slow reference convolution: measured 5x slower than fp32 for
    s2-d2-c32-ca-cc on an AMD EPYC with AVX2 only (docs/training.md)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def precision_warning(precision: str, device: torch.device) -> str | None:
    """A line for the user when the requested precision is a known slow path on this machine."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        return ("--precision bf16: this CPU has no bf16 units (no avx512_bf16 or AMX), so bf16 autocast runs "
                "about 5x slower than fp32 here; leave --precision at auto (fp32 on the CPU)")
    return None


def host_name(device: torch.device | None = None) -> str:
    """Which machine measured a number: the GPU's name on CUDA, else the CPU model and core count.

    Timings taken on different machines are not comparable; Records and latency sheets carry this."""
    if device is not None and device.type == "cuda":
        return describe(device).removeprefix("cuda:")
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    return f"{model}, {os.cpu_count() or '?'} CPUs"


@contextlib.contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """Run with `n` torch CPU threads (None or 0: leave the current setting), restored afterwards.

    On a loaded shared VM two OpenMP threads can be many times slower than one, so the CLI exposes
    --threads."""
    if not n:
        yield
        return
    if n < 0:
        raise ConfigError(f"--threads must be >= 0, got {n}")
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
