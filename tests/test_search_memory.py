"""An out-of-memory trial is told apart by its type (torch.OutOfMemoryError), not its message alone."""

import gc

import torch

from lightmark.device import configure_backend
from lightmark.search.memory import is_out_of_memory, release_gpu_memory


def test_out_of_memory_by_type():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(torch.OutOfMemoryError("no message to match"))


def test_plain_runtime_error_of_other_backends_still_matched_by_message():
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9.5 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # not a backend's error


def _count_calls(monkeypatch, target, name):
    calls = []
    monkeypatch.setattr(target, name, lambda *a, **k: calls.append(name))
    return calls


def test_release_gpu_memory_collects_and_empties_the_cuda_cache_only_when_there_is_one(monkeypatch):
    collected = _count_calls(monkeypatch, gc, "collect")
    emptied = _count_calls(monkeypatch, torch.cuda, "empty_cache")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    release_gpu_memory()
    assert collected == ["collect"] and emptied == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    release_gpu_memory()
    assert collected == ["collect"] * 2 and emptied == ["empty_cache"]


def test_cudnn_autotuning_stays_off_when_deterministic_algorithms_are_asked_for(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    configure_backend(torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is False
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    configure_backend(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    configure_backend(torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is True
