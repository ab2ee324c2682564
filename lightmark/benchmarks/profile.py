"""Measuring one architecture: parameters, size (MiB of the saved state_dict), MACs, latency, memory.

What ships (`deployed_profile`, with the export extra): the file size of every export format and dtype,
and batch-1 CPU latency of ONNX Runtime beside PyTorch eager, timed in the same rounds.

Size is the paper's definition: the bytes of the fp32 state_dict file `torch.save` writes (parameters,
BatchNorm buffers and the serialisation overhead), in MiB (2^20 bytes). It is computed without real
weights: the model is built on the meta device; its state_dict is pickled exactly as torch.save
would pickle it (with uninitialised, never-touched CPU tensors standing in for the weights) and the
zip container around it is laid out arithmetically (see `zip_archive_bytes`). The search calls it for
every sampled candidate, so it must stay cheap.

MACs: fvcore's "flops" and thop's counts are both multiply-accumulates. They agree on convolutions
and differ in BatchNorm (fvcore: 1 per element, thop: 2 per element with affine) and in small
elementwise ops; `count_macs` reports both, their relative difference, and the work of the ops
fvcore skips (counted here as output elements, so it cannot hide real work).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import functools
import io
import logging
import math
import pickle
import statistics
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree
from torch.utils._python_dispatch import TorchDispatchMode

from lightmark.errors import ConfigError, SpecError
from lightmark.landmarks import export as deploy
from lightmark.models.spec import ModelSpec

MIB = 2**20
ARCHIVE_NAME = "archive"  # torch.save's zip folder for a buffer or a file named archive.pt
MACS_DISAGREEMENT = 0.02  # flag fvcore vs thop beyond 2 %

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


def _as_spec(spec: ModelSpec | str) -> ModelSpec:
    return ModelSpec.parse(spec) if isinstance(spec, str) else spec


@functools.lru_cache(maxsize=512)  # pure function of a frozen spec; the search asks again on resume
def size_breakdown(spec: ModelSpec | str) -> SizeBreakdown:
    """Size of the spec's saved fp32 state_dict, without allocating or initialising real weights."""
    from lightmark.models.hourglass import build_model  # models never import benchmarks

    spec = _as_spec(spec)
    with torch.device("meta"):
        model = build_model(spec)
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


def state_dict_bytes(spec: ModelSpec | str) -> int:
    """Bytes of `torch.save(build_model(spec).state_dict(), buffer)` (fp32), computed, not measured."""
    return size_breakdown(spec).total_bytes


def size_mb(spec: ModelSpec | str) -> float:
    """The paper's model size: MiB (2^20 bytes) of the saved fp32 state_dict."""
    return size_breakdown(spec).total_bytes / MIB


def count_params(spec_or_model: ModelSpec | str | nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not parameters)."""
    if isinstance(spec_or_model, nn.Module):
        return sum(p.numel() for p in spec_or_model.parameters())
    return size_breakdown(spec_or_model).params


# -- MACs -----------------------------------------------------------------------------------------
# Ops fvcore has no formula for that our networks use. They are elementwise (or pooling / shape) ops,
# i.e. O(output elements) work: we count their output elements separately so the report shows how
# much work fvcore's total leaves out instead of silently dropping it.
_FVCORE_EXTRA_OPS = (
    "aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::sigmoid", "aten::hardswish",
    "aten::relu", "aten::relu_", "aten::max_pool2d", "aten::linspace", "aten::div", "aten::sub",
    "aten::clamp", "aten::hardtanh",
)


@dataclass(frozen=True)
class MacCount:
    """MACs (multiply-accumulates; FLOPs = 2 x MACs) of one forward pass at batch 1."""

    input_size: int
    fvcore: int  # fvcore's own total (ops it skips are not included)
    thop: int
    conv: int  # analytic: sum over convolutions of output elements x (in/groups x k x k)
    rel_diff: float  # |fvcore - thop| / max(fvcore, thop)
    flagged: bool  # rel_diff > 2 %
    fvcore_by_op: dict = field(default_factory=dict)
    fvcore_skipped_ops: dict = field(default_factory=dict)  # op -> calls fvcore has no formula for
    fvcore_skipped_elements: int = 0  # output elements of those ops (their work, ~1 op each)
    fvcore_skipped_pct: float = 0.0  # skipped elements as a percentage of fvcore's MACs

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def _quiet():
    """fvcore and thop warn and print a lot; keep stdout clean for --json."""
    loggers = [logging.getLogger(name) for name in ("fvcore", "fvcore.nn.jit_analysis", "thop")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class _ConvMacs:
    """Our own count of convolution MACs (output elements x in/groups x kh x kw), via forward hooks."""

    def __init__(self, model: nn.Module) -> None:
        self.total = 0
        self._handles = [m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, nn.Conv2d)]

    def _hook(self, module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1]
        self.total += output.numel() * (module.in_channels // module.groups) * k

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def count_macs(model_or_spec: nn.Module | ModelSpec | str, input_size: int) -> MacCount:
    """fvcore and thop MACs for one [1, C, N, N] input, compared honestly (see MacCount)."""
    with _quiet():  # both warn at import time
        from fvcore.nn import FlopCountAnalysis
        import thop

    if isinstance(model_or_spec, nn.Module):
        model = model_or_spec
        in_channels = getattr(getattr(model, "spec", None), "in_channels", 3)
    else:
        from lightmark.models.hourglass import build_model

        spec = _as_spec(model_or_spec)
        spec.check_input_size(input_size)
        model = build_model(spec)
        in_channels = spec.in_channels
    model = copy.deepcopy(model).float().cpu().eval()  # thop adds buffers; never touch the caller's
    example = torch.zeros(1, in_channels, input_size, input_size)

    skipped_calls: collections.Counter = collections.Counter()
    skipped_elements = 0

    def elementwise(inputs, outputs, *, op: str) -> int:
        nonlocal skipped_elements
        skipped_calls[op] += 1
        numel = 1
        for dim in outputs[0].type().sizes() or []:
            numel *= dim
        skipped_elements += numel
        return 0  # kept out of fvcore's total: reported separately

    with _quiet(), torch.no_grad():
        analysis = FlopCountAnalysis(model, example)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        for op in _FVCORE_EXTRA_OPS:
            analysis.set_op_handle(op, functools.partial(elementwise, op=op))
        fvcore_total = int(analysis.total())
        by_op = {k: int(v) for k, v in analysis.by_operator().items() if v}
        still_unsupported = dict(analysis.unsupported_ops())
        thop_model = copy.deepcopy(model)
        conv_counter = _ConvMacs(thop_model)  # shares thop's forward pass
        thop_total, _ = thop.profile(thop_model, inputs=(example,), verbose=False)
        conv_counter.remove()
    thop_total = int(thop_total)
    skipped = dict(sorted(skipped_calls.items()))
    skipped.update(still_unsupported)
    rel = abs(fvcore_total - thop_total) / max(fvcore_total, thop_total, 1)
    return MacCount(
        input_size=input_size,
        fvcore=fvcore_total,
        thop=thop_total,
        conv=conv_counter.total,
        rel_diff=rel,
        flagged=rel > MACS_DISAGREEMENT,
        fvcore_by_op=by_op,
        fvcore_skipped_ops=skipped,
        fvcore_skipped_elements=skipped_elements,
        fvcore_skipped_pct=100.0 * skipped_elements / max(fvcore_total, 1),
    )


# -- latency and memory ---------------------------------------------------------------------------
def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise SpecError(f"device: cannot use {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device: {device!r} requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SpecError(f"device: {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type not in ("cpu", "cuda"):
        raise SpecError(f"device: {device!r} is not supported for profiling (use cpu, cuda, cuda:N or auto)")
    return dev


@contextlib.contextmanager
def _threads(n: int | None):
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def latency_stats(
    model: nn.Module,
    input_size: int,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    *,
    warmup: int = 1,
    repeats: int = 10,
    min_repeats: int = 3,
    budget_s: float = 2.0,
    threads: int | None = None,
    amp: bool | None = None,
) -> dict:
    """Forward-pass latency in ms (eval, no_grad): median and spread over timed repeats.

    CPU: a fixed thread count (default: torch's current), wall clock. CUDA: CUDA events around each
    forward, synchronised, under autocast fp16 (amp=True by default on CUDA). Stops after `repeats`
    or once `budget_s` is spent (but never before `min_repeats`), so big models stay affordable.
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    use_amp = (dev.type == "cuda") if amp is None else amp
    in_channels = getattr(getattr(model, "spec", None), "in_channels", 3)
    model = model.to(dev).eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size, device=dev)
    amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    times: list[float] = []
    with _threads(threads if dev.type == "cpu" else None) as n_threads, torch.no_grad():
        autocast = torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp)
        with autocast:
            for _ in range(warmup):
                model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            started = time.perf_counter()
            while len(times) < repeats:
                if dev.type == "cuda":
                    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    begin.record()
                    model(x)
                    end.record()
                    torch.cuda.synchronize(dev)
                    times.append(begin.elapsed_time(end))
                else:
                    t0 = time.perf_counter()
                    model(x)
                    times.append((time.perf_counter() - t0) * 1e3)
                if len(times) >= min_repeats and time.perf_counter() - started > budget_s:
                    break
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(times),
        "min_ms": ordered[0],
        "p90_ms": ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)],
        "repeats": len(times),
        "batch_size": batch_size,
        "threads": n_threads if dev.type == "cpu" else None,
        "amp": use_amp,
        "device": str(dev),
    }


def measure_latency(
    model: nn.Module, input_size: int, device: str | torch.device = "cpu", batch_size: int = 1, **kwargs
) -> float:
    """Median forward latency in ms (see latency_stats for the method)."""
    return latency_stats(model, input_size, device, batch_size, **kwargs)["median_ms"]


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks bytes of tensor storages created by ops and still alive; remembers the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list] = {}  # data_ptr -> [tensors alive, bytes]

    def _release(self, ptr: int) -> None:
        entry = self._refs.get(ptr)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._refs[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in _pytree.tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            ptr = storage.data_ptr()
            if ptr == 0:
                continue
            entry = self._refs.get(ptr)
            if entry is None:
                self._refs[ptr] = [1, storage.nbytes()]
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
            else:
                entry[0] += 1
            weakref.finalize(tensor, self._release, ptr)
        return out


def peak_memory(model: nn.Module, input_size: int, device: str | torch.device = "cpu", batch_size: int = 1) -> dict:
    """Peak memory of one inference forward (eval, no_grad), in bytes, and how it was obtained.

    CUDA: torch.cuda.max_memory_allocated over the forward (weights and input included).
    CPU: no allocator statistics exist, so we track the storages ops create (a dispatch mode) and take
    the peak of those alive at once, plus the weights and the input. It excludes allocator slack and
    the convolution library's internal scratch space: a lower bound on what the process needs.
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    in_channels = getattr(getattr(model, "spec", None), "in_channels", 3)
    model = model.to(dev).eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size, device=dev)
    static = sum(t.numel() * t.element_size() for t in model.state_dict().values()) + x.numel() * x.element_size()
    with torch.no_grad():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            model(x)
            torch.cuda.synchronize(dev)
            return {
                "peak_memory_bytes": int(torch.cuda.max_memory_allocated(dev)),
                "peak_memory_kind": "cuda max_memory_allocated (weights + input + activations)",
                "batch_size": batch_size,
            }
        tracker = _LiveTensorBytes()
        with tracker:
            out = model(x)
        del out
    return {
        "peak_memory_bytes": int(static + tracker.peak),
        "peak_memory_kind": "cpu estimate: weights + input + peak live activation tensors (lower bound)",
        "batch_size": batch_size,
    }


# -- everything at once ---------------------------------------------------------------------------
def profile(
    spec: ModelSpec | str,
    input_size: int,
    device: str = "cpu",
    latency: bool = True,
    *,
    batch_sizes: tuple[int, ...] = (1, 8),
    threads: int | None = None,
    macs: bool = True,
    memory: bool = True,
    deployed: bool = False,
) -> dict:
    """All numbers for one spec at one input size, as a flat JSON-ready dict.

    `deployed=True` (needs the export extra) adds "deployed": `deployed_profile`'s file sizes and
    ONNX Runtime latency (when `latency`), with the same thread count as the eager numbers."""
    from lightmark.models.hourglass import build_model

    spec = _as_spec(spec)
    if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 4:
        raise SpecError(f"input size must be a positive multiple of 4, got {input_size!r}")
    spec.check_input_size(input_size)
    if any(b < 1 for b in batch_sizes):
        raise SpecError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    dev = resolve_device(device)
    sizes = size_breakdown(spec)
    result: dict = {
        "spec": str(spec),
        "input_size": input_size,
        "heatmap_size": spec.heatmap_size(input_size),
        "params": sizes.params,
        "size_bytes": sizes.total_bytes,
        "size_mb": sizes.total_bytes / MIB,
        "param_bytes": sizes.param_bytes,
        "buffer_bytes": sizes.buffer_bytes,
        "overhead_bytes": sizes.overhead_bytes,
        "n_tensors": sizes.n_tensors,
        "device": str(dev),
        "threads": torch.get_num_threads() if not threads else threads,
        "torch": torch.__version__,
    }
    model = build_model(spec) if (macs or latency or memory) else None
    if macs:
        count = count_macs(model, input_size)
        result.update(
            macs_fvcore=count.fvcore,
            macs_thop=count.thop,
            macs_conv=count.conv,
            macs_rel_diff=count.rel_diff,
            macs_flagged=count.flagged,
            fvcore_skipped_ops=count.fvcore_skipped_ops,
            fvcore_skipped_elements=count.fvcore_skipped_elements,
            fvcore_skipped_pct=count.fvcore_skipped_pct,
            macs_fvcore_by_op=count.fvcore_by_op,
            gflops_fvcore=2 * count.fvcore / 1e9,
        )
    if latency:
        per_batch = {}
        for batch in batch_sizes:
            stats = latency_stats(model, input_size, dev, batch, threads=threads)
            per_batch[str(batch)] = stats
        result["latency"] = per_batch
        result["latency_ms_by_batch"] = {b: s["median_ms"] for b, s in per_batch.items()}
        first = per_batch[str(batch_sizes[0])]
        result["latency_ms"] = per_batch["1"]["median_ms"] if "1" in per_batch else first["median_ms"]
        result["latency_amp"] = first["amp"]
        if dev.type == "cpu":
            result["threads"] = first["threads"]
    else:
        result["latency_ms"] = None
        result["latency_ms_by_batch"] = {}
    if memory:
        mem = peak_memory(model, input_size, dev, batch_sizes[0])
        result["peak_memory_bytes"] = mem["peak_memory_bytes"]
        result["peak_memory_mb"] = mem["peak_memory_bytes"] / MIB
        result["peak_memory_kind"] = mem["peak_memory_kind"]
        result["peak_memory_batch_size"] = mem["batch_size"]
    if deployed:
        result["deployed"] = deployed_profile(spec, input_size, threads=threads, latency=latency)
    return result


# -- what ships ---------------------------------------------------------------------------------------
# (format, dtype) pairs `lightmark export` writes; keys of the deployed sizes are f"{format}_{dtype}"
DEPLOYED = (("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"), ("torchscript", "fp32"), ("torchscript", "fp16"))
SIZE_METRICS = ("state_dict", "onnx_fp16", "onnx_int8")  # what a search budget can limit
DEFAULT_CODEC = "subpixel"  # the protocols' default: only the metadata's few bytes depend on it


@torch.no_grad()
def _trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm distinct statistics, as training does. Freshly built ones are all equal
    (weight 1, bias 0, mean 0, var 1), and the ONNX exporter stores equal tensors once, which made
    an untrained network's file about 1 % smaller than the trained one's."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.weight.copy_(0.5 + torch.rand(n, generator=gen))
            module.bias.copy_(0.1 * torch.randn(n, generator=gen))
            module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    return model


def _export_fresh(spec: ModelSpec, folder: Path, fmt: str, dtype: str, input_size: int) -> Path:
    """Export an untrained network of `spec` (int8 calibrated on random images) into `folder`."""
    from lightmark.models.hourglass import build_model

    model = _trained_like(build_model(spec)).eval()
    path = folder / f"{fmt}_{dtype}{deploy.SUFFIXES[fmt]}"
    calibration = deploy.dummy_calibration(input_size, in_channels=spec.in_channels) if dtype == "int8" else None
    metadata = deploy.model_metadata(spec, input_size=input_size, codec=DEFAULT_CODEC, output="heatmaps",
                                     fmt=fmt, dtype=dtype)
    deploy.export_model(model, path, fmt=fmt, dtype=dtype, input_size=input_size, calibration=calibration,
                        metadata=metadata)
    return path


@functools.lru_cache(maxsize=512)  # the search asks once per sampled architecture; an export takes seconds
def deployed_size_bytes(spec: ModelSpec | str, fmt: str, dtype: str, input_size: int) -> int:
    """Bytes of the file `lightmark export` writes for `spec`, computed without training: an untrained
    network is exported (int8: calibrated on random images). Weights' values do not change the size;
    a trained network differs by a few hundred bytes at most (shared scalar constants, and BatchNorms
    whose scale is not positive stay a multiply-add instead of folding)."""
    spec = _as_spec(spec)
    spec.check_input_size(input_size)
    deploy.require_export_extra(f"the {fmt} {dtype} size")
    with tempfile.TemporaryDirectory(prefix="lightmark-size-") as tmp:
        return _export_fresh(spec, Path(tmp), fmt, dtype, input_size).stat().st_size


def metric_size_mb(spec: ModelSpec | str, metric: str, input_size: int) -> float:
    """A size metric in MiB: `state_dict` (the paper's), `onnx_fp16` or `onnx_int8` (exported files)."""
    if metric == "state_dict":
        return size_mb(spec)
    if metric not in SIZE_METRICS:
        raise ConfigError(f"size metric: {metric!r} is not one of {', '.join(SIZE_METRICS)}")
    fmt, dtype = metric.split("_")
    return deployed_size_bytes(_as_spec(spec), fmt, dtype, int(input_size)) / MIB


def interleaved_latency(runners: dict[str, Callable[[], Any]], *, warmup: int = 2, repeats: int = 20,
                        min_repeats: int = 5, budget_s: float = 4.0) -> dict[str, dict]:
    """Median/min ms of each runner, timed in rounds (each runner once per round), so that a shared
    machine's slow spells fall on all of them alike and their ratios hold."""
    for _ in range(warmup):
        for run in runners.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    started = time.perf_counter()
    rounds = 0
    while rounds < repeats:
        for name, run in runners.items():
            t0 = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - t0) * 1e3)
        rounds += 1
        if rounds >= min_repeats and time.perf_counter() - started > budget_s:
            break
    return {name: {"median_ms": statistics.median(values), "min_ms": min(values), "repeats": len(values)}
            for name, values in times.items()}


def deployed_profile(spec: ModelSpec | str, input_size: int, *, threads: int | None = None,
                     latency: bool = True, repeats: int = 20, budget_s: float = 4.0) -> dict:
    """File size of every export of `spec` (untrained; sizes do not depend on training), and batch-1
    CPU latency of the ONNX files in ONNX Runtime beside PyTorch eager fp32, with the same thread count,
    timed in the same rounds (`interleaved_latency`)."""
    import onnxruntime  # deferred: optional extra (its version goes into the result)

    from lightmark.models.hourglass import build_model

    spec = _as_spec(spec)
    spec.check_input_size(input_size)
    deploy.require_export_extra("profiling what ships")
    result: dict[str, Any] = {"onnxruntime": onnxruntime.__version__,
                              "int8_calibration": "random images (file sizes do not depend on calibration)"}
    with tempfile.TemporaryDirectory(prefix="lightmark-profile-") as tmp:
        paths = {f"{fmt}_{dtype}": _export_fresh(spec, Path(tmp), fmt, dtype, input_size) for fmt, dtype in DEPLOYED}
        sizes = {key: path.stat().st_size for key, path in paths.items()}
        result["size_bytes"] = sizes
        result["size_mb"] = {key: value / MIB for key, value in sizes.items()}
        result["size_vs_state_dict"] = {key: value / state_dict_bytes(spec) for key, value in sizes.items()}
        if not latency:
            return result
        with _threads(threads) as n_threads:
            model = build_model(spec).eval()
            x = torch.rand(1, spec.in_channels, input_size, input_size) * 255
            prepared = (x - 127.5) / 63.75
            sessions = {key.removeprefix("onnx_"): deploy.ort_session(path, n_threads)
                        for key, path in paths.items() if key.startswith("onnx_")}
            feed = {deploy.INPUT_NAME: x.numpy()}

            def eager() -> None:
                with torch.no_grad():
                    model(prepared)

            runners: dict[str, Callable[[], Any]] = {"torch_eager_fp32": eager}
            for dtype, session in sessions.items():
                runners[f"onnxruntime_{dtype}"] = functools.partial(session.run, None, feed)
            stats = interleaved_latency(runners, repeats=repeats, budget_s=budget_s)
    eager_ms = stats["torch_eager_fp32"]["median_ms"]
    result.update(
        latency_batch_size=1, latency_threads=n_threads, latency_device="cpu",
        latency_ms={name: value["median_ms"] for name, value in stats.items()},
        latency_repeats=min(value["repeats"] for value in stats.values()),
        speedup_vs_eager={name: eager_ms / value["median_ms"] for name, value in stats.items()
                          if name != "torch_eager_fp32"},
    )
    return result
