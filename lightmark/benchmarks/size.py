"""Model size: parameters and the bytes of the saved fp32 state_dict (the paper's "size").

Size is the paper's definition: the bytes of the fp32 state_dict file `torch.save` writes (parameters,
BatchNorm buffers and the serialisation overhead), in MiB (2^20 bytes). It is computed without real
weights: the model is built on the meta device; its state_dict is pickled exactly as torch.save
would pickle it (with uninitialised, never-touched CPU tensors standing in for the weights) and the
zip container around it is laid out arithmetically (see `zip_archive_bytes`). The search calls it for
every sampled candidate, so it must stay cheap.
"""

from __future__ import annotations

import collections
import functools
import io
import pickle
from dataclasses import dataclass

import torch
from torch import nn

from lightmark.models.specs import AnySpec, build_network, parse_spec

MIB = 2**20
ARCHIVE_NAME = "archive"  # torch.save's zip folder for a buffer or a file named archive.pt

# -- torch.save's zip container (PyTorchFileWriter over miniz), derived from its format -------------
_LOCAL_HEADER = 30  # local file header, before the name
_CENTRAL_HEADER = 46  # central directory entry, before the name
_EXTRA_HEADER = 4  # the "FB" padding extra field's id + length
_DATA_DESCRIPTOR = 16  # crc + 32-bit sizes after each record's data
_END_RECORDS = 56 + 20 + 22  # zip64 end of central directory + zip64 locator + end of central directory
_ALIGNMENT = 64  # every record's data starts 64-byte aligned
# Records the C++ writer adds when it closes the file (after data.pkl, .format_version,
# .storage_alignment, byteorder and data/<key>, which torch.serialization._save writes): (name, bytes)
_TAIL_RECORDS = (("version", 2), (".data/serialization_id", 40))


def zip_archive_bytes(records: list[tuple[str, int]], archive: str = ARCHIVE_NAME) -> int:
    """Bytes of torch.save's zip file holding `records` (name inside archive/, payload bytes) in order.

    Each record: local header + name + padding extra (>= 4 bytes, so the data starts 64-aligned) +
    data + data descriptor; then one central-directory entry per record and the zip64 end records.
    Valid below 4 GiB (no zip64 per-record extras).
    """
    offset = 0
    central = 0
    for name, size in records:
        full = len(archive) + 1 + len(name.encode())
        start = offset + _LOCAL_HEADER + full + _EXTRA_HEADER
        padding = (-start) % _ALIGNMENT
        offset = start + padding + size + _DATA_DESCRIPTOR
        central += _CENTRAL_HEADER + full
    return offset + central + _END_RECORDS


class _RecordingZip:
    """Stands in for torch's zip writer: remembers each record's name and size, writes nothing."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int]] = []

    def write_record(self, name: str, data: object, num_bytes: int) -> None:
        self.records.append((name, int(num_bytes)))

    def write_record_metadata(self, name: str, num_bytes: int) -> None:
        self.records.append((name, int(num_bytes)))


class _CountingSink(io.RawIOBase):
    """A write-only file that counts bytes (fallback path: a real torch.save without a real file)."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        size = memoryview(data).nbytes
        self.count += size
        return size


def saved_bytes(state_dict: dict) -> int:
    """Exact size of `torch.save(state_dict, <buffer>)` without copying or compressing the tensor data.

    Uses torch's own pickling (so key names, shapes and metadata count exactly as in a real save) with
    a recording writer, then lays out the zip container. Falls back to a real torch.save into a
    byte-counting sink if torch's private `_save` ever changes shape.
    """
    recorder = _RecordingZip()
    try:
        torch.serialization._save(state_dict, recorder, pickle, torch.serialization.DEFAULT_PROTOCOL, False)
    except (AttributeError, TypeError):  # pragma: no cover - depends on the torch version
        sink = _CountingSink()
        torch.save(state_dict, sink)
        return sink.count
    return zip_archive_bytes(list(recorder.records) + list(_TAIL_RECORDS))


@dataclass(frozen=True)
class SizeBreakdown:
    """Where the bytes of the saved state_dict go."""

    params: int  # trainable parameters (elements)
    param_bytes: int
    buffer_bytes: int  # BatchNorm running statistics and step counters
    overhead_bytes: int  # pickle (key names, shapes, metadata) + zip container
    total_bytes: int
    n_tensors: int

    @property
    def size_mb(self) -> float:
        return self.total_bytes / MIB


def as_spec(spec: AnySpec | str) -> AnySpec:
    """A spec from a spec or its text."""
    return parse_spec(spec) if isinstance(spec, str) else spec


@functools.lru_cache(maxsize=512)  # pure function of a frozen spec; the search asks again on resume
def size_breakdown(spec: AnySpec | str) -> SizeBreakdown:
    """Size of the spec's saved fp32 state_dict, without allocating or initialising real weights."""
    spec = as_spec(spec)
    with torch.device("meta"):
        model = build_network(spec)
    meta_state = model.state_dict()
    # Uninitialised CPU stand-ins (never read or written) so torch pickles them as a CPU save would.
    state: collections.OrderedDict = collections.OrderedDict(
        (key, torch.empty(value.shape, dtype=value.dtype)) for key, value in meta_state.items()
    )
    state._metadata = meta_state._metadata  # type: ignore[attr-defined]
    total = saved_bytes(state)
    param_names = {name for name, _ in model.named_parameters()}
    param_bytes = sum(v.numel() * v.element_size() for k, v in meta_state.items() if k in param_names)
    buffer_bytes = sum(v.numel() * v.element_size() for k, v in meta_state.items() if k not in param_names)
    params = sum(p.numel() for p in model.parameters())
    return SizeBreakdown(
        params=params,
        param_bytes=param_bytes,
        buffer_bytes=buffer_bytes,
        overhead_bytes=total - param_bytes - buffer_bytes,
        total_bytes=total,
        n_tensors=len(meta_state),
    )


def state_dict_bytes(spec: AnySpec | str) -> int:
    """Bytes of `torch.save(build_network(spec).state_dict(), buffer)` (fp32), computed, not measured."""
    return size_breakdown(spec).total_bytes


def size_mb(spec: AnySpec | str) -> float:
    """The paper's model size: MiB (2^20 bytes) of the saved fp32 state_dict."""
    return size_breakdown(spec).total_bytes / MIB


def count_params(spec_or_model: AnySpec | str | nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not parameters)."""
    if isinstance(spec_or_model, nn.Module):
        return sum(p.numel() for p in spec_or_model.parameters())
    return size_breakdown(spec_or_model).params

