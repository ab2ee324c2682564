"""The candidate runner: "train + evaluate this spec under this protocol" -> one Record.

The bridge used by the search and the ablation suites. Every candidate lives in
`run_dir/candidates/<candidate_key>/`: its profile, training checkpoints and log, and finally
`record.json`. A finished record is returned without any work; an interrupted candidate resumes from
its `last.pt`. A pruned run (the callback raised) still writes a Record with status "pruned" and
re-raises; other failures propagate with their reason for the caller to record.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lightmark.atomic import write_json_atomic
from lightmark.benchmarks import deployed
from lightmark.benchmarks import profile as profiling
from lightmark.benchmarks.record import Record, Status, candidate_key
from lightmark.benchmarks.size import count_params, size_mb
from lightmark.device import (
    describe,
    host_name,
    intra_op_threads,
    resolve_device,
    resolve_precision,
)
from lightmark.errors import DataError
from lightmark.models.spec import ModelSpec
from lightmark.training import trainer  # called as trainer.train: tests replace it
from lightmark.training.protocol import Protocol

RECORD_NAME = "record.json"
PROFILE_NAME = "profile.json"
METRIC_KEYS = ("nme_image_pct", "nme_inter_ocular_pct", "nme_inter_pupil_pct", "nme_bbox_pct",
               "failure_rate_8_pct", "failure_rate_10_pct")


def candidate_dir_of(run_dir: Path | str, key: str) -> Path:
    """Where the runner keeps candidate `key` (its candidate_key): checkpoints, log and record.json."""
    return Path(run_dir) / "candidates" / key


def candidate_dir(spec: ModelSpec, protocol: Protocol, run_dir: Path | str) -> Path:
    return candidate_dir_of(run_dir, candidate_key(spec, protocol))


def read_record(path: Path) -> Record:
    try:
        return Record.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: unreadable record ({exc})") from None


def profile_candidate(spec: ModelSpec, protocol: Protocol, device: Any, cache: Path | None = None) -> dict:
    """params, size_mb (arithmetic), MACs (fvcore, protocol input size, batch 1), latency (batch 1,
    median of repeats on `device`), and with the export extra the deployed fields (ONNX sizes, ONNX Runtime
    and eager CPU latency). Cached in `cache` so a resumed candidate does not re-measure."""
    if cache is not None and cache.exists():
        try:
            return json.loads(cache.read_text())
        except ValueError:
            pass
    info = dict(profiling.profile(spec, protocol.input_size, device=str(device), latency=True, batch_sizes=(1,),
                             memory=False))
    result = {
        "params": int(info.get("params") or count_params(spec)),
        "size_mb": float(info.get("size_mb") or size_mb(spec)),
        "macs": info.get("macs_fvcore", info.get("macs")),
        "latency_ms": info.get("latency_ms"),
        "macs_thop": info.get("macs_thop"),
        "profile": {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool)) or v is None},
        **deployed.record_fields(spec, protocol.input_size, threads=torch.get_num_threads()),
    }
    if cache is not None:
        write_json_atomic(cache, result)
    return result


def make_record(spec: ModelSpec, protocol: Protocol, status: str, prof: dict, metrics: dict | None,
                *, epochs_done: int = 0, train_seconds: float = 0.0, device: str = "", error: str = "",
                precision: str = "", threads: int = 0, host: str = "") -> Record:
    metrics = metrics or {}
    return Record.from_spec(
        spec, protocol, status=status, params=int(prof.get("params", 0)), size_mb=float(prof.get("size_mb", 0.0)),
        macs=None if prof.get("macs") is None else int(prof["macs"]),
        latency_ms=None if prof.get("latency_ms") is None else float(prof["latency_ms"]),
        **{k: float(prof[k]) for k in deployed.RECORD_FIELDS if prof.get(k) is not None},
        **{k: (None if metrics.get(k) is None else float(metrics[k])) for k in METRIC_KEYS},
        epochs_done=int(epochs_done), train_seconds=float(train_seconds), device=device,
        precision=precision, threads=int(threads), host=host, error=error,
    )


def run_candidate(
    spec: ModelSpec,
    protocol: Protocol,
    run_dir: Path | str,
    *,
    device: str = "auto",
    callback: Callable[[int, dict], None] | None = None,
    progress: bool = True,
    precision: str = "auto",
    threads: int | None = None,
) -> Record:
    """Profile, train (resuming if a last.pt exists), evaluate and cache one candidate's Record.

    The Record's NME fields are the LAST evaluated epoch's validation numbers (no selection on the
    held-out faces); best.pt in the candidate directory keeps the best epoch for users.
    If `callback` raises, a Record with status "pruned" is written and the exception re-raised.
    A cached record (any status) is returned as is: callers treat status "pruned" themselves.
    `precision` and `threads` are how it runs, not what it is: they are recorded, not part of the key."""
    out_dir = candidate_dir(spec, protocol, run_dir)
    record_path = out_dir / RECORD_NAME
    if record_path.exists():
        return read_record(record_path)
    spec.check_input_size(protocol.input_size)
    dev = resolve_device(device)
    precision_name = resolve_precision(precision, dev, protocol.amp).name
    host = host_name(dev)
    out_dir.mkdir(parents=True, exist_ok=True)
    with intra_op_threads(threads):
        prof = profile_candidate(spec, protocol, dev, out_dir / PROFILE_NAME)
        n_threads = torch.get_num_threads()

    seen: dict[str, Any] = {}

    def watch(epoch: int, metrics: dict) -> None:
        seen["epoch"], seen["metrics"] = epoch, metrics
        if callback is not None:
            try:
                callback(epoch, metrics)
            except BaseException:
                seen["raised"] = True
                raise

    start = time.perf_counter()
    try:
        resume = (out_dir / trainer.LAST_NAME).exists()
        result = trainer.train(spec, protocol, out_dir, device=str(dev), resume=resume,
                       callback=watch, progress=progress, precision=precision, threads=threads)
    except BaseException as exc:
        if seen.get("raised"):
            metrics = seen.get("metrics", {})
            record = make_record(
                spec, protocol, Status.PRUNED, prof, metrics, epochs_done=seen.get("epoch", 0),
                train_seconds=float(metrics.get("train_seconds", time.perf_counter() - start)),
                device=describe(dev), error=f"pruned at epoch {seen.get('epoch', 0)}: {type(exc).__name__}",
                precision=precision_name, threads=n_threads, host=host,
            )
            write_json_atomic(record_path, record.to_dict())
        raise
    record = make_record(spec, protocol, Status.COMPLETE, prof, result.last_metrics, epochs_done=result.epochs_done,
                         train_seconds=result.train_seconds, device=result.device,
                         precision=result.precision, threads=n_threads, host=host)
    write_json_atomic(record_path, record.to_dict())
    if result.baseline:
        write_json_atomic(out_dir / "baseline.json", {"mean_shape_baseline": result.baseline})
    return record


def load_records(run_dir: Path | str) -> list[Record]:
    """Every cached Record under run_dir/candidates/*/record.json (sorted by key)."""
    root = Path(run_dir) / "candidates"
    if not root.is_dir():
        return []
    return [read_record(p) for p in sorted(root.glob(f"*/{RECORD_NAME}"))]


def median_ms(fn: Callable[[], Any], repeats: int = 5) -> float:
    """Median wall time of `fn()` in ms (a warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)
