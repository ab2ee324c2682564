"""An out-of-memory trial is told apart by its type (torch.OutOfMemoryError), not its message alone."""

import torch

from lightmark.search.memory import is_out_of_memory, release_gpu_memory


def test_out_of_memory_by_type():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(torch.OutOfMemoryError("no message to match"))


def test_plain_runtime_error_of_other_backends_still_matched_by_message():
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9.5 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # not a backend's error


def test_release_gpu_memory_runs_without_cuda():
    release_gpu_memory()
