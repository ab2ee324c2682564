"""Trials <-> Records, and the run directory's `records.csv` and `pareto.json`.

Every trial carries its full Record as flat user attributes (the Record's own field names), so
the study alone is enough to rebuild every table; the two files are convenience views of the
study, rewritten atomically whenever a trial finishes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from lightmark.atomic import json_safe, write_json_atomic, write_text_atomic
from lightmark.benchmarks.record import Record, Status

RECORD_FIELDS = tuple(f.name for f in fields(Record))
EXTRA_COLUMNS = ("trial", "state", "label", "reused", "reason", "worker")
OBJECTIVE_KEYS = {"nme": "nme_image_pct", "size": "size_mb", "macs": "macs", "latency": "latency_ms"}


def record_attrs(record: Record) -> dict[str, Any]:
    """The Record as flat user attributes (JSON-safe: NaN/inf become None)."""
    return {k: json_safe(v) for k, v in record.to_dict().items()}


def trial_record(trial: Any) -> Record | None:
    """Rebuild a trial's Record from its user attributes; None if it never got that far."""
    attrs = trial.user_attrs
    if "key" not in attrs or "spec" not in attrs or "size_mb" not in attrs:
        return None
    data = {k: attrs[k] for k in RECORD_FIELDS if k in attrs}
    data.setdefault("status", _status_of(trial))
    data.setdefault("params", 0)
    try:
        return Record.from_dict(data)
    except TypeError:
        return None


def trial_status(trial: Any) -> str:
    """complete | pruned | infeasible | failed | running | waiting (from attrs and state)."""
    return _status_of(trial)


def _status_of(trial: Any) -> str:
    state = trial.state.name
    if state in ("RUNNING", "WAITING"):
        return Status(state.lower())
    if state == "PRUNED":
        return Status.PRUNED
    if state == "FAIL":
        return Status.FAILED
    status = trial.user_attrs.get("status")
    return status if status in (Status.COMPLETE, Status.INFEASIBLE) else Status.COMPLETE


def is_feasible(trial: Any) -> bool:
    return all(v <= 0 for v in trial.constraints.values()) and (
        trial.user_attrs.get("status") != Status.INFEASIBLE
    )


def write_records_csv(path: Path, trials: Sequence[Any]) -> None:
    """One row per trial: number, state, label, cache reuse, failure reason, then the Record."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*EXTRA_COLUMNS, *RECORD_FIELDS], extrasaction="ignore")
    writer.writeheader()
    for trial in sorted(trials, key=lambda t: t.number):
        attrs = trial.user_attrs
        row = {k: attrs.get(k) for k in RECORD_FIELDS}
        row.update(
            trial=trial.number, state=trial.state.name, label=attrs.get("label", ""),
            reused=attrs.get("reused", False), reason=attrs.get("reason", ""),
            worker=attrs.get("worker", ""),
        )
        row["status"] = attrs.get("status") or _status_of(trial)
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())


def pareto_front(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows not dominated on `keys` (all minimised), sorted by the first key."""
    usable = [r for r in rows if all(_finite(r.get(k)) for k in keys)]
    front = []
    for row in usable:
        dominated = any(
            all(o[k] <= row[k] for k in keys) and any(o[k] < row[k] for k in keys)
            for o in usable
            if o is not row
        )
        if not dominated:
            front.append(row)
    unique: dict[tuple, dict] = {}
    for row in sorted(front, key=lambda r: tuple(r[k] for k in keys)):
        unique.setdefault(tuple(row[k] for k in keys), row)
    return list(unique.values())


def summarise_trials(trials: Sequence[Any], objectives: Sequence[str]) -> dict[str, Any]:
    """Counts, the best feasible trial (first objective) and the Pareto front under budget."""
    counts = {s: 0 for s in Status}
    feasible_rows: list[dict[str, Any]] = []
    trained = reused = repeats = 0
    check_ms: list[float] = []
    proposed: set[str] = set()
    for trial in sorted(trials, key=lambda t: t.number):
        status = _status_of(trial)
        spec = trial.user_attrs.get("spec")
        if spec is not None:
            repeats += spec in proposed  # proposed again: answered from the cache, trains nothing
            proposed.add(spec)
        counts[status] = counts.get(status, 0) + 1
        if trial.user_attrs.get("reused"):
            reused += 1
        if (status in (Status.COMPLETE, Status.PRUNED) and not trial.user_attrs.get("reused")
                and float(trial.user_attrs.get("train_seconds") or 0) > 0):
            trained += 1
        if isinstance(trial.user_attrs.get("budget_check_ms"), (int, float)):
            check_ms.append(float(trial.user_attrs["budget_check_ms"]))
        if status == Status.COMPLETE and is_feasible(trial):
            row = {k: trial.user_attrs.get(k) for k in RECORD_FIELDS}
            row["trial"] = trial.number
            if trial.user_attrs.get("label"):
                row["label"] = trial.user_attrs["label"]
            feasible_rows.append(row)
    first = OBJECTIVE_KEYS[objectives[0]]
    ranked = sorted((r for r in feasible_rows if _finite(r.get(first))), key=lambda r: r[first])
    keys = [OBJECTIVE_KEYS[o] for o in objectives]
    if len(keys) == 1:
        keys = [first, "size_mb"]  # single objective: still show the size/NME trade-off
    return {
        "counts": counts,
        "trials": len(trials),
        "trained": trained,
        "reused": reused,
        "repeats": repeats,
        "skipped_over_budget": counts[Status.INFEASIBLE],
        "best": ranked[0] if ranked else None,
        "pareto": pareto_front(ranked, keys),
        "pareto_keys": keys,
        "budget_check_ms": {
            "n": len(check_ms),
            "median": sorted(check_ms)[len(check_ms) // 2] if check_ms else None,
            "max": max(check_ms) if check_ms else None,
        },
    }


def write_pareto_json(path: Path, summary: dict[str, Any], extra: dict[str, Any]) -> None:
    write_json_atomic(path, json_safe({**extra, **summary}))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


