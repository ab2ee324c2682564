"""A trial that ran out of accelerator memory: tell it apart, and free the cache for the next one."""

from __future__ import annotations

import gc

import torch


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):  # CUDA (and torch's own allocators) raise this
        return True
    # Other backends (MPS, some XPU/ROCm builds) raise a plain RuntimeError that only says so in
    # its message; nothing else identifies them.
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def release_gpu_memory() -> None:
    """After an out-of-memory trial, give the cached blocks back before the next candidate."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
