"""Peak memory of one inference forward: CUDA allocator statistics, or live tensors on the CPU."""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils import _pytree
from torch.utils._python_dispatch import TorchDispatchMode


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks bytes of tensor storages created by ops and still alive; remembers the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list] = {}  # data_ptr -> [tensors alive, bytes]

    def _release(self, ptr: int) -> None:
        entry = self._refs.get(ptr)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._refs[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in _pytree.tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            ptr = storage.data_ptr()
            if ptr == 0:
                continue
            entry = self._refs.get(ptr)
            if entry is None:
                self._refs[ptr] = [1, storage.nbytes()]
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
            else:
                entry[0] += 1
            weakref.finalize(tensor, self._release, ptr)
        return out


def peak_memory(model: nn.Module, input_size: int, device: str | torch.device = "cpu", batch_size: int = 1) -> dict:
    """Peak memory of one inference forward (eval, no_grad), in bytes, and how it was obtained.

    CUDA: torch.cuda.max_memory_allocated over the forward (weights and input included).
    CPU: no allocator statistics exist, so we track the storages ops create (a dispatch mode) and take
    the peak of those alive at once, plus the weights and the input. It excludes allocator slack and
    the convolution library's internal scratch space: a lower bound on what the process needs.
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    in_channels = getattr(getattr(model, "spec", None), "in_channels", 3)
    model = model.to(dev).eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size, device=dev)
    static = sum(t.numel() * t.element_size() for t in model.state_dict().values()) + x.numel() * x.element_size()
    with torch.no_grad():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            model(x)
            torch.cuda.synchronize(dev)
            return {
                "peak_memory_bytes": int(torch.cuda.max_memory_allocated(dev)),
                "peak_memory_kind": "cuda max_memory_allocated (weights + input + activations)",
                "batch_size": batch_size,
            }
        tracker = _LiveTensorBytes()
        with tracker:
            out = model(x)
        del out
    return {
        "peak_memory_bytes": int(static + tracker.peak),
        "peak_memory_kind": "cpu estimate: weights + input + peak live activation tensors (lower bound)",
        "batch_size": batch_size,
    }

