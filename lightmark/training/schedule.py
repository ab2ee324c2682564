"""The paper's learning-rate schedule: linear warm-up, then step decay at milestones.

The `paper` protocol counts warm-up and milestones in absolute optimizer steps (2k warm-up, 5e-5 at
80k, 2e-5 at 120k); smaller protocols count them as fractions of the whole run so the same shape
fits a run of any length (`Protocol.schedule_unit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lightmark.training.protocol import Protocol


@dataclass(frozen=True)
class StepSchedule:
    """Learning rate as a pure function of the optimizer step (0-based), in absolute steps."""

    lr: float
    warmup_steps: int
    milestones: tuple[int, ...]  # steps at which the rate drops (ascending)
    milestone_lrs: tuple[float, ...]

    @classmethod
    def from_protocol(cls, protocol: Protocol, total_steps: int) -> StepSchedule:
        if protocol.schedule_unit == "fraction":
            warmup = int(round(protocol.warmup * total_steps))
            milestones = tuple(int(round(m * total_steps)) for m in protocol.milestones)
        else:
            warmup = int(protocol.warmup)
            milestones = tuple(int(m) for m in protocol.milestones)
        order = sorted(range(len(milestones)), key=milestones.__getitem__)
        return cls(
            lr=float(protocol.lr),
            warmup_steps=max(0, warmup),
            milestones=tuple(milestones[i] for i in order),
            milestone_lrs=tuple(float(protocol.milestone_lrs[i]) for i in order),
        )

    def lr_at(self, step: int) -> float:
        """Warm-up rises linearly so that step `warmup_steps - 1` is the first at the full rate."""
        rate = self.lr
        for milestone, value in zip(self.milestones, self.milestone_lrs):
            if step >= milestone:
                rate = value
        if step < self.warmup_steps:
            rate = min(rate, self.lr * (step + 1) / self.warmup_steps)
        return rate

    def factor(self, step: int) -> float:
        return self.lr_at(step) / self.lr if self.lr else 0.0

    def __call__(self, step: int) -> float:  # LambdaLR's lr_lambda
        return self.factor(step)


def build_scheduler(
    optimizer: torch.optim.Optimizer, protocol: Protocol, total_steps: int
) -> tuple[torch.optim.lr_scheduler.LambdaLR, StepSchedule]:
    """A LambdaLR stepped once per optimizer step; its state_dict restores the step on resume.

    The optimizer's base lr must be `protocol.lr` (the schedule is a multiplier of it).
    """
    schedule = StepSchedule.from_protocol(protocol, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=schedule), schedule


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    """Training drops the last incomplete batch."""
    return max(1, n_samples // batch_size) if n_samples >= batch_size else max(1, math.ceil(n_samples / batch_size))
