"""`--workers N`: N local processes on one study (spawned, so each gets a clean CUDA state).

Each worker opens the storage itself and runs the same loop as a single-process search; a lock
file in the run directory makes "is there work left? then ask" atomic between them, so the
study reaches its target exactly. On a machine with several GPUs worker i sees only GPU
i % n_gpus (CUDA_VISIBLE_DEVICES, set before the child starts). Ctrl-C reaches every worker
(same process group; forwarded when only the parent got it); each fails and re-queues its
current trial, and the parent exits 130 once they are done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch

from lightmark.errors import LightmarkError
from lightmark.search.config import SearchConfig
from lightmark.search.loop import worker_loop

INTERRUPTED_EXIT = 130


def visible_gpus() -> list[str]:
    """The GPU ids this process may hand out (respects an existing CUDA_VISIBLE_DEVICES)."""
    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    if current is not None:
        return [g for g in current.split(",") if g.strip() and g.strip() != "-1"]
    return [str(i) for i in range(torch.cuda.device_count())]  # 0 without a driver: CPU workers


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_workers(text: str | int, device: str = "auto") -> int:
    """`--workers auto`: one worker per GPU on CUDA, else one 1-thread worker per CPU core (more
    candidates per hour than one process using every core: docs/search.md); a number is taken as it is."""
    if str(text).strip().lower() == "auto":
        gpus = visible_gpus() if device != "cpu" else []
        return max(1, len(gpus)) if gpus else usable_cores()
    try:
        value = int(text)
    except ValueError:
        raise LightmarkError(f"--workers must be a number or auto, got {text!r}") from None
    if value < 1:
        raise LightmarkError(f"--workers must be >= 1, got {value}")
    return value


def gpu_for_worker(index: int, gpus: list[str]) -> str | None:
    return gpus[index % len(gpus)] if gpus else None


def threads_per_worker(threads: int | None, n_workers: int, gpus: list[str]) -> int | None:
    """CPU workers share the cores instead of each starting one torch thread per core.

    N processes x all-cores OpenMP pools oversubscribe the CPU; 1-thread workers train more images per
    second than one process with every core (docs/training.md). An explicit `threads` wins; GPU
    workers keep torch's default."""
    if threads or gpus:
        return threads or None
    return max(1, usable_cores() // max(n_workers, 1))


@contextlib.contextmanager
def _env(**updates: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in updates}
    try:
        for key, value in updates.items():
            if value is not None:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _worker_main(config: SearchConfig, index: int) -> None:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignored it
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        worker_loop(config, worker=index)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED_EXIT)
    except LightmarkError as exc:
        print(f"lightmark search: worker {index}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)  # 3: storage unreachable or disk full (resumable), 2: anything else of the user's


@dataclasses.dataclass(frozen=True)
class WorkerExit:
    index: int
    pid: int
    code: int  # the process's exit status; -N: killed by signal N

    @property
    def died(self) -> bool:
        """Stopped by anything but the end of its work (a signal, a crash, an error)."""
        return self.code not in (0, INTERRUPTED_EXIT)

    def describe(self) -> str:
        how = f"killed by signal {-self.code}" if self.code < 0 else f"exit {self.code}"
        return f"worker {self.index} (pid {self.pid}, {how})"


def run_workers(config: SearchConfig, n_workers: int, *, view: Any = None, poll_s: float = 1.0) -> list[WorkerExit]:
    """Start `n_workers` spawned processes on the study and wait; returns how each ended."""
    ctx = mp.get_context("spawn")
    gpus = visible_gpus() if config.device != "cpu" else []
    config = dataclasses.replace(config, threads=threads_per_worker(config.threads, n_workers, gpus))
    processes = []
    for index in range(n_workers):
        with _env(CUDA_VISIBLE_DEVICES=gpu_for_worker(index, gpus)):
            process = ctx.Process(target=_worker_main, args=(config, index),
                                  name=f"lightmark-worker-{index}")
            process.start()
        processes.append(process)
    try:
        while any(p.is_alive() for p in processes):
            if view is not None:
                view.poll()
            for p in processes:
                p.join(timeout=poll_s / max(len(processes), 1))
    except KeyboardInterrupt:
        for p in processes:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGINT)  # ours, by pid
        deadline = time.monotonic() + 60
        for p in processes:
            p.join(timeout=max(deadline - time.monotonic(), 0.1))
        for p in processes:
            if p.is_alive():
                p.terminate()  # the next run recovers its trial
        raise
    if view is not None:
        view.poll()
    exits = [WorkerExit(i, p.pid or 0, p.exitcode if p.exitcode is not None else -1)
             for i, p in enumerate(processes)]
    if any(e.code == INTERRUPTED_EXIT for e in exits):
        raise KeyboardInterrupt
    dead = [e for e in exits if e.died]
    if dead:
        print("lightmark search: " + ", ".join(e.describe() for e in dead)
              + " stopped early; re-run the command to recover their trials", file=sys.stderr)
    return exits
