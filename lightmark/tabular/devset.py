"""Every trained candidate of a table evaluated on a test set (`bench tabulate --test-data DIR`, meant
for the real-photo dev set of `lightmark data realdev`), resumably.

The NME of each candidate's checkpoint on the test set is what `--test-data` gives a report or an
ablation (`benchmarks.evaluation.dataset_nme`, on the CPU). Results are kept in
`<run dir>/test_data_nme.json`, under a fingerprint of the test set, and the file is rewritten after
every candidate: an interrupted or repeated run evaluates only the candidates not yet in it, and a
changed test set (another fingerprint) is evaluated afresh without losing the old numbers. Each entry
holds the mean NME and the median and worst face (`benchmarks.evaluation.FACE_SPREAD_KEYS`, with the
worst face's name); an entry from before the faces were kept is evaluated again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightmark.atomic import write_json_atomic
from lightmark.benchmarks.evaluation import DATASET_NME_KEYS, FACE_SPREAD_KEYS, WORST_FACE, checkpoint_of, dataset_nme
from lightmark.benchmarks.record import Record, Status
from lightmark.errors import DataError

CACHE_NAME = "test_data_nme.json"
SMALL_FILES = ("annot.pkl", "meta.json")  # read whole into the fingerprint: they hold the labels

Evaluate = Callable[[Record, Path, Path], dict[str, Any]]  # (record, run dir, data) -> NME by metric


@dataclass(frozen=True)
class DevSetNme:
    """The test set's NME of every candidate that could be evaluated, by candidate key."""

    data: str
    fingerprint: str
    by_key: dict[str, dict[str, Any]]  # DATASET_NME_KEYS and FACE_SPREAD_KEYS (percent), WORST_FACE (a name)
    evaluated_now: int  # candidates evaluated in this call (the rest came from the cache)
    without_checkpoint: int  # complete candidates whose checkpoint is not in the run directory

    def describe(self) -> dict[str, Any]:
        return {"data": self.data, "fingerprint": self.fingerprint, "candidates": len(self.by_key),
                "without_checkpoint": self.without_checkpoint}


def fingerprint(data: Path) -> str:
    """A short hash of the test set: a file's bytes, or a folder's file names and sizes plus the bytes
    of its label files (annot.pkl, meta.json), so a rewritten dev set with other faces is noticed."""
    digest = hashlib.sha1()
    if data.is_file():
        digest.update(data.read_bytes())
        return digest.hexdigest()[:16]
    if not data.is_dir():
        raise DataError(f"--test-data {data}: no such file or directory")
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(data)}:{path.stat().st_size}\n".encode())
        if path.name in SMALL_FILES:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def evaluate_checkpoint_nme(record: Record, run_dir: Path, data: Path) -> dict[str, Any]:
    """The candidate's checkpoint on the test set, through the code `report --test-data` uses."""
    result = dataset_nme([record], run_dir, data, device="cpu")
    return result.by_key[record.key]


def _complete(entry: dict[str, Any] | None) -> bool:
    """A cached entry with every number (an older one has the means only)."""
    return entry is not None and all(k in entry for k in (*DATASET_NME_KEYS, *FACE_SPREAD_KEYS, WORST_FACE))


def _read_cache(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable test-set cache ({exc}); delete it to evaluate again") from None


def evaluate_test_set(records: Sequence[Record], run_dir: Path | str, data: Path | str, *,
                      evaluate: Evaluate | None = None,
                      on_progress: Callable[[int, int], None] | None = None) -> DevSetNme:
    """Every complete candidate with a checkpoint evaluated on `data`, reusing what the cache holds."""
    run_dir, data = Path(run_dir), Path(data)
    print_id = fingerprint(data)
    cache_path = run_dir / CACHE_NAME
    cache = _read_cache(cache_path)
    entry = cache.setdefault(print_id, {"data": str(data), "by_key": {}})
    by_key: dict[str, dict[str, Any]] = entry["by_key"]
    evaluate = evaluate or evaluate_checkpoint_nme
    todo = [r for r in dict((r.key, r) for r in records if r.status == Status.COMPLETE).values()
            if not _complete(by_key.get(r.key))]
    missing = evaluated = 0
    for n, record in enumerate(todo, 1):
        if checkpoint_of(record, run_dir) is None:
            missing += 1
            continue
        nme = evaluate(record, run_dir, data)
        by_key[record.key] = {**{k: float(nme[k]) for k in (*DATASET_NME_KEYS, *FACE_SPREAD_KEYS)},
                              WORST_FACE: str(nme[WORST_FACE])}
        evaluated += 1
        write_json_atomic(cache_path, cache)  # after every candidate: an interruption loses one at most
        if on_progress is not None:
            on_progress(n, len(todo))
    keys = {r.key for r in records}
    return DevSetNme(str(data), print_id, {k: v for k, v in by_key.items() if k in keys}, evaluated, missing)
