"""A synthetic candidate runner and size function with the real ones' contracts, for tests.

`synthetic_runner` behaves like `lightmark.benchmarks.runner.run_candidate` (per-epoch callback,
Record cached at `<run_dir>/candidates/<key>/record.json`, a per-epoch checkpoint so an
interrupted candidate resumes, a "pruned" Record when the callback raises) but "trains" in
microseconds on a known NME landscape. It counts real trainings in `trainings.log` so tests can
prove that nothing is trained twice. Select it (and `synthetic_size_mb`) in a `lightmark search`
process with LIGHTMARK_SEARCH_RUNNER / LIGHTMARK_SEARCH_SIZER=module:function.

Environment knobs: LIGHTMARK_FAKE_EPOCH_S (seconds per epoch, default 0), LIGHTMARK_FAKE_FAIL
(a spec string whose training raises NonFiniteLossError).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import optuna

from lightmark.atomic import append_line, write_json_atomic
from lightmark.benchmarks.record import Record, Status, candidate_key
from lightmark.errors import NonFiniteLossError
from lightmark.models.backbone_spec import BackboneSpec
from lightmark.models.specs import AnySpec
from lightmark.training.protocol import Protocol


def synthetic_params(spec: AnySpec) -> int:
    if isinstance(spec, BackboneSpec):  # monotone in width, output stride and head, like the real size
        return int(spec.width * 40_000 * spec.out_stride / 8 + 30 * spec.head_channels**2)
    per_block = 3.4 * spec.channels**2
    blocks = spec.n_stacks * (4 + 4 * spec.depth)
    extra = {"none": 0.0, "se": 0.5, "ca": 0.7}[spec.attention] * spec.channels**2 * spec.depth
    return int(blocks * per_block + extra * spec.n_stacks + (2 * 49 * 8 if spec.coordconv else 0))


def synthetic_size_mb(spec: AnySpec) -> float:
    """Monotone in stacks, depth and channels, like the real size."""
    return synthetic_params(spec) * 4 / 2**20 + 0.01


def synthetic_nme(spec: AnySpec, protocol: Protocol) -> float:
    """A smooth landscape with a known optimum inside the space, plus per-candidate noise."""
    noise = int(hashlib.sha1(candidate_key(spec, protocol).encode()).hexdigest()[:6], 16) / 16**6
    if isinstance(spec, BackboneSpec):
        return round(4.0 + 1.0 / spec.width + 8.0 / spec.head_channels**0.5 + 0.2 * noise, 4)
    base = 3.0 + 24.0 / spec.channels**0.5 + 0.6 / spec.n_stacks + 0.3 * abs(spec.depth - 3)
    base -= {"none": 0.0, "se": 0.15, "ca": 0.3}[spec.attention] + (0.2 if spec.coordconv else 0.0)
    return round(base + 0.2 * noise, 4)


def synthetic_runner(spec, protocol, run_dir, *, device="auto", callback=None, progress=True,
                     precision="auto", threads=None) -> Record:
    key = candidate_key(spec, protocol)
    folder = Path(run_dir) / "candidates" / key
    record_path = folder / "record.json"
    if record_path.exists():
        return Record.from_dict(json.loads(record_path.read_text()))
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"epoch": 0, "seconds": 0.0}
    append_line(folder / "trainings.log",  # like the trainer's log.jsonl: a full disk is a DiskFullError
                f"{os.getpid()} threads {threads} precision {precision} start at epoch {state['epoch']}")
    final = synthetic_nme(spec, protocol)
    epoch_s = float(os.environ.get("LIGHTMARK_FAKE_EPOCH_S", "0"))
    status = Status.COMPLETE
    nme = final
    try:
        for epoch in range(state["epoch"] + 1, protocol.epochs + 1):
            t0 = time.perf_counter()
            time.sleep(epoch_s)
            if os.environ.get("LIGHTMARK_FAKE_FAIL") == str(spec):
                raise NonFiniteLossError(f"loss became nan at epoch {epoch} ({spec})")
            nme = final * (1 + 0.5 * (protocol.epochs - epoch) / protocol.epochs)
            state = {"epoch": epoch, "seconds": state["seconds"] + time.perf_counter() - t0 + 1e-3}
            write_json_atomic(state_path, state)  # the "checkpoint"
            if callback is not None:
                callback(epoch, {"nme_image_pct": nme, "epoch": epoch})
    except BaseException as exc:
        if isinstance(exc, optuna.TrialPruned):
            status = Status.PRUNED
        else:
            raise
    record = Record.from_spec(
        spec, protocol, status=status, params=synthetic_params(spec), size_mb=synthetic_size_mb(spec),
        macs=synthetic_params(spec) * 50, latency_ms=synthetic_params(spec) / 1e5, nme_image_pct=nme,
        nme_inter_ocular_pct=nme * 2.9, nme_inter_pupil_pct=nme * 3.6, nme_bbox_pct=nme * 2.1,
        failure_rate_8_pct=0.0, failure_rate_10_pct=0.0, epochs_done=state["epoch"],
        train_seconds=state["seconds"], device="cpu",
    )
    write_json_atomic(record_path, record.to_dict())
    if status == Status.PRUNED:
        raise optuna.TrialPruned(f"pruned at epoch {state['epoch']}")
    return record


def trainings(run_dir: Path) -> dict[str, int]:
    """Candidate key -> how many times training started (from `trainings.log`)."""
    counts = {}
    for log in Path(run_dir).glob("candidates/*/trainings.log"):
        counts[log.parent.name] = len(log.read_text().splitlines())
    return counts
