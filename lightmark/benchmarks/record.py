"""`Record`: one candidate's measured numbers, a flat JSON-serialisable row of every table.

A candidate is (ModelSpec, Protocol); `candidate_key` hashes both canonically and names it
everywhere: dedup in the search, the cache directory, file names and table joins.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import torch

from lightmark import __version__
from lightmark.models.spec import ModelSpec
from lightmark.models.specs import AnySpec, family_of
from lightmark.training.dataset import data_version
from lightmark.training.protocol import Protocol


class Status(StrEnum):
    """What became of a candidate (a Record's status) or of a trial. Members are the strings that
    records.csv, record.json and the study's attributes hold, so files written before stay readable."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    INFEASIBLE = "infeasible"  # over the budget: measured, not trained
    FAILED = "failed"
    RUNNING = "running"  # a trial's only: still going
    WAITING = "waiting"  # a trial's only: queued


RECORD_STATUSES = (Status.COMPLETE, Status.PRUNED, Status.INFEASIBLE, Status.FAILED)


# Keys made before the data version joined them were all made with synthetic generator v1; leaving
# that one version out of the hash keeps those keys (and their cached candidates) valid.
_UNVERSIONED_DATA = ("synth-v1", "disk")


def candidate_key(spec: AnySpec, protocol: Protocol) -> str:
    """sha1 of the canonical spec + protocol + the version of the faces (a new synthetic generator
    makes new keys, so cached candidates of two generators never mix)."""
    payload: dict[str, Any] = {"spec": spec.to_dict(), "protocol": protocol.to_dict()}
    version = data_version(protocol)
    if version not in _UNVERSIONED_DATA:
        payload["data_version"] = version
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def architecture_fields(spec: AnySpec) -> dict[str, Any]:
    """A Record's architecture columns: the spec text, its family and the hourglass's dimensions."""
    hourglass = isinstance(spec, ModelSpec)
    return dict(spec=str(spec), family=family_of(spec), **{
        name: getattr(spec, name) if hourglass else None
        for name in ("n_stacks", "depth", "channels", "attention", "coordconv")})


@dataclass(frozen=True)
class Record:
    """Units are in the names: MiB, MACs (multiply-accumulates), ms, seconds, NME in percent."""

    key: str
    spec: str
    # the stacked hourglass's dimensions; None for the other families (their fields are in `spec`)
    n_stacks: int | None
    depth: int | None
    channels: int | None
    attention: str | None
    coordconv: bool | None
    protocol: str
    input_size: int
    seed: int
    status: str  # one of RECORD_STATUSES
    params: int
    size_mb: float  # MiB (2**20 bytes) of the saved fp32 state_dict
    family: str = "hourglass"  # models.specs.FAMILIES; records written before families have none
    macs: int | None = None  # fvcore, at input_size, batch 1
    latency_ms: float | None = None  # batch 1, on `device`
    # what ships (with the export extra; `benchmarks/deployed.py`): MiB of each exported ONNX file, and
    # batch-1 CPU ms of ONNX Runtime (fp32, int8 files) and of PyTorch eager fp32 timed in the same rounds
    onnx_fp32_mb: float | None = None
    onnx_fp16_mb: float | None = None
    onnx_int8_mb: float | None = None
    ort_fp32_ms: float | None = None
    ort_int8_ms: float | None = None
    eager_cpu_ms: float | None = None
    nme_image_pct: float | None = None  # mean point error / image side * 100 (the challenge)
    nme_inter_ocular_pct: float | None = None  # / distance of outer eye corners 36-45 (300W)
    nme_inter_pupil_pct: float | None = None
    nme_bbox_pct: float | None = None  # / sqrt(w * h) of the points' bounding box
    failure_rate_8_pct: float | None = None  # share of images with inter-ocular NME > 8 %
    failure_rate_10_pct: float | None = None
    epochs_done: int = 0
    train_seconds: float = 0.0
    device: str = ""
    precision: str = ""  # fp32 | bf16 | fp16: how it was trained (an execution detail, not in the key)
    threads: int = 0  # torch CPU threads during training (0: not recorded)
    host: str = ""  # the machine (CPU model and cores, or GPU name): timings only compare on one host
    codec: str = ""
    loss: str = ""
    erasing: bool = False
    error: str = ""  # why a failed candidate failed
    torch_version: str = ""
    lightmark_version: str = ""
    created: str = ""  # ISO time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_spec(cls, spec: AnySpec, protocol: Protocol, *, status: str, params: int, size_mb: float,
                  **measured: Any) -> Record:
        """The Record of candidate (spec, protocol): its key, the architecture's fields, the protocol's
        name, input size, seed, codec, loss and erasing, the versions and the creation time filled in
        from them; `measured` gives the rest (any Record field; it may override the versions and time)."""
        return cls(
            key=candidate_key(spec, protocol), **architecture_fields(spec), protocol=protocol.name,
            input_size=protocol.input_size, seed=protocol.seed, status=status,
            params=int(params), size_mb=float(size_mb), codec=protocol.codec, loss=protocol.loss,
            erasing=bool(protocol.augment.erase),
            **{"torch_version": torch.__version__, "lightmark_version": __version__,
               "created": datetime.now(UTC).isoformat(timespec="seconds"), **measured},
        )
