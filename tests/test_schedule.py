"""The paper's warm-up + step-decay schedule, in absolute steps and in fractions of the run."""

from __future__ import annotations

import pytest
import torch

from lightmark.training.protocol import PROTOCOLS, Protocol
from lightmark.training.schedule import StepSchedule, build_scheduler


def test_paper_schedule_absolute_steps():
    s = StepSchedule.from_protocol(PROTOCOLS["paper"], total_steps=10**9)
    assert s.warmup_steps == 2000 and s.milestones == (80_000, 120_000)
    assert s.lr_at(0) == pytest.approx(1e-4 / 2000)
    assert s.lr_at(999) == pytest.approx(1e-4 * 1000 / 2000)
    assert s.lr_at(1999) == pytest.approx(1e-4)
    assert s.lr_at(2000) == pytest.approx(1e-4)
    assert s.lr_at(79_999) == pytest.approx(1e-4)
    assert s.lr_at(80_000) == pytest.approx(5e-5)
    assert s.lr_at(119_999) == pytest.approx(5e-5)
    assert s.lr_at(120_000) == pytest.approx(2e-5)
    assert s.lr_at(10**7) == pytest.approx(2e-5)


def test_fraction_schedule_scales_with_run_length():
    p = Protocol(name="t", input_size=64, epochs=2, batch_size=8, train_samples=16, val_samples=8, lr=1e-3,
                 warmup=0.1, milestones=(0.5, 0.75), milestone_lrs=(5e-4, 1e-4), schedule_unit="fraction")
    s = StepSchedule.from_protocol(p, total_steps=200)
    assert (s.warmup_steps, s.milestones) == (20, (100, 150))
    assert s.lr_at(0) == pytest.approx(1e-3 / 20)
    assert s.lr_at(19) == pytest.approx(1e-3)
    assert s.lr_at(99) == pytest.approx(1e-3)
    assert s.lr_at(100) == pytest.approx(5e-4)
    assert s.lr_at(150) == pytest.approx(1e-4)
    s2 = StepSchedule.from_protocol(p, total_steps=1000)
    assert (s2.warmup_steps, s2.milestones) == (100, (500, 750))


def test_no_warmup_and_lambda_lr_follow_the_schedule():
    p = Protocol(name="t", input_size=64, epochs=1, batch_size=8, train_samples=16, val_samples=8, lr=1e-2,
                 warmup=0, milestones=(3,), milestone_lrs=(1e-3,))
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.RMSprop([param], lr=p.lr)
    sched, s = build_scheduler(opt, p, total_steps=10)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([1e-2, 1e-2, 1e-2, 1e-3, 1e-3])
    # the scheduler's state round-trips (resume restores the step)
    state = sched.state_dict()
    opt2 = torch.optim.RMSprop([torch.nn.Parameter(torch.zeros(1))], lr=p.lr)
    sched2, _ = build_scheduler(opt2, p, total_steps=10)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 5
    assert sched2.get_last_lr() == pytest.approx([1e-3])
