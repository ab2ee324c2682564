"""One latency sheet per run: every architecture timed in one sitting, on one machine, interleaved.

A Record's `latency_ms` is taken when its candidate starts, beside whatever else is training, and
a run that is resumed elsewhere mixes machines: such numbers rank noise, not architectures. A
sheet times each distinct (spec, input size) in round-robin rounds (every model once per round, so
drifting load hits all of them alike), keeps each round's median and reports the median over
rounds with the spread, and says where, when and with how many threads it measured.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from lightmark.atomic import write_json_atomic
from lightmark.benchmarks.record import Record, Status
from lightmark.benchmarks.timing import latency_stats
from lightmark.device import host_name, intra_op_threads, resolve_device
from lightmark.errors import DataError
from lightmark.models.specs import AnySpec, build_network, parse_spec

SHEET_NAME = "latency.json"


def sheet_key(spec: AnySpec | str, input_size: int) -> str:
    return f"{spec}@{int(input_size)}"


@dataclass(frozen=True)
class LatencySheet:
    """Batch-1 forward latency (ms, fp32, eval, no_grad) of several architectures, one machine."""

    median_ms: dict[str, float]  # sheet_key -> median over rounds of the per-round medians
    spread_ms: dict[str, tuple[float, float]]  # sheet_key -> (fastest, slowest) round median
    device: str
    host: str
    threads: int | None  # CPU threads (None on CUDA)
    rounds: int
    repeats: int  # timed forward passes per model per round
    measured: str  # ISO time
    torch_version: str
    command: str = ""

    def lookup(self, spec: AnySpec | str, input_size: int) -> float | None:
        return self.median_ms.get(sheet_key(spec, input_size))

    def describe(self) -> str:
        """One sentence for captions: what the Latency column is and where it came from."""
        how = f"{self.threads} thread(s)" if self.threads else "CUDA"
        by = f" by `{self.command}`" if self.command else ""
        return (f"Latency: batch-1 fp32 forward, median of {self.rounds} interleaved rounds x {self.repeats} "
                f"passes, every architecture measured in one sitting{by} on {self.host} ({self.device}, {how}) "
                f"at {self.measured}, so rows compare.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["spread_ms"] = {k: list(v) for k, v in self.spread_ms.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencySheet:
        return cls(
            median_ms={str(k): float(v) for k, v in data["median_ms"].items()},
            spread_ms={str(k): (float(v[0]), float(v[1])) for k, v in data.get("spread_ms", {}).items()},
            device=str(data["device"]), host=str(data["host"]),
            threads=None if data.get("threads") is None else int(data["threads"]),
            rounds=int(data["rounds"]), repeats=int(data["repeats"]), measured=str(data["measured"]),
            torch_version=str(data.get("torch_version", "")), command=str(data.get("command", "")),
        )


def read_sheet(path: Path | str) -> LatencySheet | None:
    """The sheet at `path`, None when there is none; a damaged one is an error naming the file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return LatencySheet.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise DataError(f"{path}: unreadable latency sheet ({type(exc).__name__}: {exc}); "
                        "delete it or measure again with `lightmark report RUN_DIR --measure-latency`") from None


def write_sheet(sheet: LatencySheet, path: Path | str) -> Path:
    write_json_atomic(Path(path), sheet.to_dict())
    return Path(path)


def measure_sheet(
    items: Iterable[tuple[AnySpec, int]],
    *,
    device: str = "cpu",
    threads: int | None = None,
    rounds: int = 5,
    repeats: int = 3,
    command: str = "",
    progress: Any = None,
) -> LatencySheet:
    """Time every distinct (spec, input size) of `items`, interleaved over `rounds`.

    `progress`: an optional callable(done, total) for a progress bar."""
    if rounds < 1 or repeats < 1:
        raise DataError(f"latency sheet: rounds and repeats must be >= 1, got {rounds} and {repeats}")
    dev = resolve_device(device)
    unique = {sheet_key(spec, size): (spec, int(size)) for spec, size in items}
    for spec, size in unique.values():
        spec.check_input_size(size)
    per_round: dict[str, list[float]] = {key: [] for key in unique}
    with intra_op_threads(threads if dev.type == "cpu" else None):
        n_threads = torch.get_num_threads() if dev.type == "cpu" else None
        models = {key: build_network(spec).to(dev).eval() for key, (spec, _) in unique.items()}
        total, done = rounds * len(unique), 0
        for round_index in range(rounds):
            for key, (_, size) in unique.items():
                stats = latency_stats(models[key], size, dev, 1, warmup=1 if round_index == 0 else 0,
                                      repeats=repeats, min_repeats=repeats, budget_s=float("inf"), amp=False)
                per_round[key].append(stats["median_ms"])
                done += 1
                if progress is not None:
                    progress(done, total)
    return LatencySheet(
        median_ms={k: statistics.median(v) for k, v in per_round.items()},
        spread_ms={k: (min(v), max(v)) for k, v in per_round.items()},
        device=str(dev), host=host_name(dev), threads=n_threads, rounds=rounds, repeats=repeats,
        measured=datetime.now(UTC).isoformat(timespec="seconds"), torch_version=torch.__version__,
        command=command,
    )


def measure_run_latency(run_dir: Path | str, records: Iterable[Record], *, device: str = "cpu",
                        threads: int | None = None, rounds: int = 5, repeats: int = 3, command: str = "",
                        progress: Any = None) -> LatencySheet:
    """Time every trained architecture of a run (`records`: its complete and pruned candidates count)
    in one sitting and write `latency.json` into `run_dir`."""
    items = [(parse_spec(r.spec), r.input_size) for r in records
             if r.status in (Status.COMPLETE, Status.PRUNED)]
    sheet = measure_sheet(items, device=device, threads=threads, rounds=rounds, repeats=repeats,
                          command=command, progress=progress)
    write_sheet(sheet, Path(run_dir) / SHEET_NAME)
    return sheet
