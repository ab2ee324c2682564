"""How close a training step comes to what the machine can do: its FLOP rate over a large fp32 matmul's.

A matrix multiply of two n x n fp32 matrices is the practical peak of a CPU (or GPU) as PyTorch drives
it: the best-tuned kernel there is, on the same threads. A training step's FLOP rate is counted, not
sampled: forward MACs per image (fvcore, at the protocol's input size) x 2 FLOPs per MAC x 3 for forward
plus backward (the backward pass costs about two forwards: gradients of the inputs and of the weights),
times the images per second. The fraction of the two says how much a faster kernel, layout or compiler
could still win; a small, memory-bound network stays far from 1 whatever one does.
"""

from __future__ import annotations

import statistics
import time

import torch

MATMUL_N = 2048  # 17 GFLOP a product: long enough to time, short enough to interleave with steps
FLOPS_PER_MAC = 2
TRAIN_OVER_FORWARD = 3  # forward + backward (input and weight gradients)


def training_flops_per_image(forward_macs: int) -> float:
    """FLOPs of one image's forward + backward pass, from its forward MACs."""
    return float(forward_macs) * FLOPS_PER_MAC * TRAIN_OVER_FORWARD


class MatmulProbe:
    """An n x n fp32 matmul on `device`, timed one product at a time so the calls can be interleaved
    with other measurements (drift on a shared machine then hits both sides alike)."""

    def __init__(self, device: torch.device | str = "cpu", n: int = MATMUL_N, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.device = torch.device(device)
        self.n = n
        self.a = torch.randn(n, n, generator=gen).to(self.device)
        self.b = torch.randn(n, n, generator=gen).to(self.device)
        self.gflops: list[float] = []
        self._product()  # untimed: the first call allocates and picks its kernel

    def _product(self) -> None:
        torch.mm(self.a, self.b)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def sample(self, repeats: int = 3) -> float:
        """The best of `repeats` products, in GFLOP/s; kept in `gflops`."""
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            self._product()
            best = min(best, time.perf_counter() - t0)
        rate = 2.0 * self.n**3 / best / 1e9
        self.gflops.append(rate)
        return rate

    @property
    def median(self) -> float:
        return statistics.median(self.gflops) if self.gflops else self.sample()


def peak_fraction(images_per_s: float, forward_macs: int, peak_gflops: float) -> tuple[float, float]:
    """(the step's GFLOP/s, its fraction of the matmul's)."""
    gflops = images_per_s * training_flops_per_image(forward_macs) / 1e9
    return gflops, gflops / peak_gflops
