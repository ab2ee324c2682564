"""Export a network to what ships, ONNX (fp32, fp16, int8) or TorchScript (fp32, fp16), and verify it.

A deployed landmark model is a file run outside PyTorch, often in fp16 or int8; this module makes that
file from a checkpoint and proves on held-out faces that it still finds the same points.

The exported graph (both formats) takes float32 RGB images with values 0-255, [B, 3, N, N] (any batch,
N fixed at export), does the input normalisation of `evaluate.prepare_images` itself, and returns the
last stack's heatmaps [B, K, N/4, N/4] (float32) or, with `decode`, the codec's points [B, K, 2] in
input pixels (integer = pixel centre). The file's metadata (ONNX `metadata_props["lightmark"]`,
TorchScript extra file `lightmark.json`) says which, with the spec, codec and input size, so
`lightmark predict` can run it like a checkpoint.

Choices, and why (docs/export.md has the measurements behind each):

- Exporter: torch.onnx's TorchScript-based exporter (`dynamo=False`), opset 17: the same numbers as the
  torch.export-based one at a fraction of its export time, and the search's ONNX size budget exports
  every sampled architecture.
- Deploy-time rewrites (every format and dtype): each block's `fuse()` (models/fuse.py); Conv -> BN
  pairs are folded by the exporter itself.
- Compaction (ONNX): short tensor names, no node names or doc strings, no intermediate shape records,
  default attributes dropped, identical scalar constants shared: what remains is what a runtime needs.
- int8: ONNX Runtime's static post-training quantisation (`quantize_static`), calibrated (MinMax) on
  training faces, QOperator format (QLinearConv & co.: the smallest file and a native CPU kernel),
  uint8 activations, int8 weights, one scale per tensor. Chosen over torch.ao because the result is an
  ONNX file any ONNX Runtime runs, and torch.ao's eager/FX quantisation is deprecated in favour of
  torchao. TorchScript has no int8 here. With `decode`, the decode stays float32 (appended after
  quantisation).
- fp16: the network runs in fp16 (weights stored fp16); input normalisation and decode stay float32.

Tolerances (`TOLERANCES`): fp32 must reproduce the checkpoint's points within 0.01 px (largest
difference over all held-out faces and points). A lossy dtype legitimately moves points (single argmax
flips on flat heatmaps), so fp16 and int8 are held to the NME they keep instead: the image side NME may
change by at most 1 % (fp16) or 5 % (int8) of the checkpoint's, in either direction.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import itertools
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightmark import __version__, metrics
from lightmark.atomic import atomic_path
from lightmark.data.sources import FaceSource, SubsetSource
from lightmark.device import intra_op_threads
from lightmark.errors import ConfigError, DataError, ExportError
from lightmark.heatmaps.codecs import Codec, get_codec
from lightmark.models.fuse import fuse_for_deploy
from lightmark.models.spec import ModelSpec
from lightmark.quiet import quiet_libraries
from lightmark.training.checkpoint import load_model
from lightmark.training.dataset import LandmarkDataset, build_sources, make_loader
from lightmark.training.evaluate import IMAGE_MEAN, IMAGE_STD, eval_batch_size, predict_points

FORMATS = ("onnx", "torchscript")
DTYPES = ("fp32", "fp16", "int8")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17
INPUT_NAME = "image"
META_KEY = "lightmark"  # ONNX metadata_props key; TorchScript: extra file META_KEY + ".json"
EXTRA_PACKAGES = ("onnx", "onnxruntime", "onnxscript")  # torch.onnx imports onnxscript
EXTRA_HINT = "pip install -e '.[export]'"
DEFAULT_CALIBRATION_IMAGES = 64


@dataclass(frozen=True)
class Tolerance:
    """What an export may change: the largest point difference (px), the relative NME change (%)."""

    max_point_diff_px: float | None = None
    max_nme_change_pct: float | None = None  # |NME export - NME checkpoint| / NME checkpoint * 100

    def describe(self) -> str:
        parts = []
        if self.max_point_diff_px is not None:
            parts.append(f"points within {self.max_point_diff_px:g} px")
        if self.max_nme_change_pct is not None:
            parts.append(f"NME change within {self.max_nme_change_pct:g} %")
        return " and ".join(parts) or "none"


TOLERANCES = {
    "fp32": Tolerance(max_point_diff_px=0.01),
    "fp16": Tolerance(max_nme_change_pct=1.0),
    "int8": Tolerance(max_nme_change_pct=5.0),
}


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how to check it (a checkpoint's protocol supplies the rest)."""

    format: str = "onnx"
    dtype: str = "fp32"
    input_size: int | None = None  # None: the checkpoint's protocol's
    decode: bool = False
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES  # int8: training faces to calibrate on
    threads: int = 0  # torch and ONNX Runtime CPU threads (0: their defaults)
    tolerance: Tolerance | None = None  # None: TOLERANCES[dtype]

    def __post_init__(self) -> None:
        check_format(self.format, self.dtype)
        if self.calibration_images < 1:
            raise ConfigError(f"--calibration-images must be >= 1, got {self.calibration_images}")
        if self.threads < 0:
            raise ConfigError(f"--threads must be >= 0, got {self.threads}")


@dataclass(frozen=True)
class ExportReport:
    """The written file and how far it is from the checkpoint on the held-out faces."""

    path: str
    format: str
    dtype: str
    output: str  # heatmaps | points
    spec: str
    protocol: str
    codec: str
    input_size: int
    size_bytes: int
    n_faces: int
    data: str
    max_point_diff_px: float
    mean_point_diff_px: float
    nme_checkpoint_pct: float  # image side
    nme_export_pct: float
    nme_change_pct: float  # relative, signed: (export - checkpoint) / checkpoint * 100
    tolerance: dict
    passed: bool
    exporter: str
    calibration: dict | None
    threads: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


# -- the optional extra ------------------------------------------------------------------------------
def export_versions() -> str:
    """The versions an exported file's bytes depend on (keys of cached sizes)."""
    found = []
    for name in ("onnx", "onnxruntime"):
        try:
            found.append(f"{name}{importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name}-")
    return "-".join([f"lightmark{__version__}", f"torch{torch.__version__}", *found])


def require_export_extra(what: str = "ONNX export") -> None:
    missing = [name for name in EXTRA_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"{what} needs the 'export' extra ({', '.join(missing)} not installed): {EXTRA_HINT}")


def check_format(fmt: str, dtype: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    if fmt == "torchscript" and dtype == "int8":
        raise ConfigError("--dtype int8 needs --format onnx (int8 is ONNX Runtime's static quantisation; "
                          "TorchScript exports fp32 or fp16)")


# -- the graph that ships --------------------------------------------------------------------------------
class DeployNet(nn.Module):
    """float32 RGB 0-255 [B,3,N,N] -> last stack's heatmaps (float32), or the codec's points."""

    def __init__(self, net: nn.Module, dtype: torch.dtype = torch.float32, codec: Codec | None = None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, -1, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, -1, 1, 1) * 255.0)
        self.net = net.to(dtype)
        self.dtype = dtype
        self.codec = codec

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = ((image - self.mean) / self.std).to(self.dtype)
        outputs = self.net(x)
        heatmaps = (outputs[-1] if isinstance(outputs, (list, tuple)) else outputs).float()
        return heatmaps if self.codec is None else self.codec.decode(heatmaps)


class _Decode(nn.Module):
    """heatmaps -> points, exported on its own to follow an int8 network in float32."""

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        return self.codec.decode(heatmaps)


def deploy_net(net: nn.Module, dtype: str = "fp32", codec: Codec | None = None) -> DeployNet:
    """A folded copy of `net` wrapped for export (the caller's network is left untouched)."""
    copied = copy.deepcopy(net).float().cpu().eval()
    fuse_for_deploy(copied)
    return DeployNet(copied, torch.float16 if dtype == "fp16" else torch.float32, codec).eval()


# -- helpers -----------------------------------------------------------------------------------------------
def _example(input_size: int, in_channels: int = 3, batch: int = 2) -> torch.Tensor:
    """A fixed example input (batch 2, so no shape is specialised to a batch of one)."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch, in_channels, input_size, input_size, generator=gen) * 255.0


def dummy_calibration(input_size: int, n: int = 8, in_channels: int = 3, seed: int = 0) -> np.ndarray:
    """Random images for int8 size measurements: the file's size does not depend on calibration values
    (scales and zero points are fixed-size scalars), only its accuracy does."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(n, in_channels, input_size, input_size)).astype(np.float32)


def model_metadata(spec: ModelSpec | str, *, input_size: int, codec: str, output: str, fmt: str, dtype: str,
                   protocol: str = "") -> dict[str, Any]:
    """What `predict` needs to run an exported file like a checkpoint (stored inside the file)."""
    return {"lightmark": __version__, "spec": str(spec), "protocol": protocol, "codec": codec,
            "input_size": int(input_size), "output": output, "format": fmt, "dtype": dtype,
            "input": "float32 RGB 0-255 [B,3,N,N]"}


def ort_session(path: Path | str, threads: int = 0) -> Any:
    """An ONNX Runtime CPU session, quiet, with `threads` intra-op threads (0: ONNX Runtime's default)."""
    import onnxruntime as ort  # deferred: optional extra, and slow to import

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# -- ONNX ------------------------------------------------------------------------------------------------
def _torch_onnx(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> None:
    with quiet_libraries(), torch.no_grad():
        torch.onnx.export(
            module, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}}, do_constant_folding=True,
        )


def _quantize(fp32_path: Path, out_path: Path, calibration: np.ndarray, batch: int = 8) -> None:
    """Static int8 quantisation of an ONNX file with ONNX Runtime, calibrated on `calibration` images."""
    # deferred: optional extra
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{INPUT_NAME: calibration[i:i + batch]} for i in range(0, len(calibration), batch)])

        def get_next(self) -> dict | None:
            return next(self._batches, None)

    with tempfile.TemporaryDirectory(prefix="lightmark-quant-") as tmp, quiet_libraries():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QOperator, per_channel=False,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )


def _graphs(graph: Any) -> Iterator[Any]:
    """A graph and every subgraph inside it (If branches, loops), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def _rename(graph: Any, name: Callable[[str], str]) -> None:
    """Apply `name` to every tensor name of the graph and its subgraphs (the top level's inputs and
    outputs are the caller's business: subgraphs read outer names, so one mapping serves all)."""
    for index, sub in enumerate(_graphs(graph)):
        for tensor in sub.initializer:
            tensor.name = name(tensor.name)
        for node in sub.node:
            for i, value in enumerate(node.input):
                node.input[i] = name(value)
            for i, value in enumerate(node.output):
                node.output[i] = name(value)
        for value in sub.value_info:
            value.name = name(value.name)
        if index:
            for value in (*sub.input, *sub.output):
                value.name = name(value.name)


def _append_graph(model: Any, tail: Any) -> None:
    """Feed `model`'s only output into `tail`'s only input; `tail`'s output becomes the model's."""
    graph, other = model.graph, tail.graph
    rename = {other.input[0].name: graph.output[0].name, other.output[0].name: other.output[0].name}
    _rename(other, lambda text: rename.setdefault(text, f"decode/{text}") if text else text)
    graph.initializer.extend(other.initializer)
    graph.node.extend(other.node)
    del graph.output[:]
    graph.output.extend(other.output)
    versions = {op.domain: op.version for op in model.opset_import}
    for op in tail.opset_import:
        if versions.get(op.domain, -1) < op.version:
            versions[op.domain] = op.version
    del model.opset_import[:]
    for domain, version in versions.items():
        model.opset_import.add(domain=domain, version=version)


_GEOMETRY_OPS = ("Conv", "QLinearConv", "ConvInteger", "MaxPool", "AveragePool")


def _default_attribute(node: Any, attribute: Any, schema: Any) -> bool:
    """True when dropping `attribute` leaves the node's meaning unchanged."""
    import onnx  # deferred: optional extra

    value = onnx.helper.get_attribute_value(attribute)
    if node.op_type in _GEOMETRY_OPS:
        if attribute.name in ("dilations", "strides") and set(value) == {1}:
            return True
        if attribute.name == "pads" and set(value) == {0}:
            return True
        if attribute.name == "kernel_shape" and node.op_type in ("Conv", "QLinearConv", "ConvInteger"):
            return True  # inferred from the weights
    if schema is None:
        return False
    declared = schema.attributes.get(attribute.name)
    default = getattr(declared, "default_value", None)
    if default is None or not default.ByteSize():
        return False
    return onnx.helper.get_attribute_value(default) == value


def compact(model: Any, metadata: dict[str, Any]) -> Any:
    """Strip what a runtime does not need (see the module docstring) and store `metadata`."""
    import onnx  # deferred: optional extra
    from onnx import numpy_helper

    graph = model.graph
    keep = {value.name for value in graph.input} | {value.name for value in graph.output}
    alias: dict[str, str] = {}
    first: dict[tuple, str] = {}
    kept = []
    for tensor in graph.initializer:
        if tensor.name not in keep and int(np.prod(tensor.dims)) <= 1:
            key = (tensor.data_type, tuple(tensor.dims), numpy_helper.to_array(tensor).tobytes())
            if key in first:
                alias[tensor.name] = first[key]
                continue
            first[key] = tensor.name
        kept.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    short: dict[str, str] = {}
    fresh = (n for n in (np.base_repr(i, 36).lower() for i in itertools.count()) if n not in keep)

    def name(text: str) -> str:
        text = alias.get(text, text)
        if not text or text in keep:
            return text
        if text not in short:
            short[text] = next(fresh)
        return short[text]

    _rename(graph, name)
    for sub in _graphs(graph):
        for tensor in sub.initializer:
            tensor.ClearField("doc_string")
        for node in sub.node:
            node.ClearField("name")
            node.ClearField("doc_string")
            try:
                schema = onnx.defs.get_schema(node.op_type, OPSET, node.domain)
            except Exception:  # noqa: BLE001 - contrib ops have no schema in onnx: keep their attributes
                schema = None
            for attribute in [a for a in node.attribute if _default_attribute(node, a, schema)]:
                node.attribute.remove(attribute)
        del sub.value_info[:]
        sub.ClearField("doc_string")
    model.ClearField("doc_string")
    used = {node.domain for sub in _graphs(graph) for node in sub.node} | {""}
    imports = [(op.domain, op.version) for op in model.opset_import if op.domain in used]
    del model.opset_import[:]
    for domain, version in imports:
        model.opset_import.add(domain=domain, version=version)
    del model.metadata_props[:]
    model.metadata_props.add(key=META_KEY, value=json.dumps(metadata, separators=(",", ":")))
    return model


def _export_onnx(net: nn.Module, path: Path, *, dtype: str, input_size: int, codec: Codec | None,
                 calibration: np.ndarray | None, metadata: dict[str, Any], in_channels: int) -> None:
    import onnx  # deferred: optional extra

    output = "points" if codec is not None else "heatmaps"
    example = _example(input_size, in_channels)
    with tempfile.TemporaryDirectory(prefix="lightmark-export-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        if dtype != "int8":
            _torch_onnx(deploy_net(net, dtype, codec), example, raw, INPUT_NAME, output)
            model = onnx.load(str(raw))
        else:
            if calibration is None:
                raise ConfigError("int8 export needs calibration images")
            fp32 = Path(tmp) / "fp32.onnx"
            _torch_onnx(deploy_net(net, "fp32"), example, fp32, INPUT_NAME, "heatmaps")
            _quantize(fp32, raw, np.ascontiguousarray(calibration, dtype=np.float32))
            model = onnx.load(str(raw))
            if codec is not None:
                tail = Path(tmp) / "decode.onnx"
                with torch.no_grad():
                    heatmaps = deploy_net(net, "fp32")(example)
                _torch_onnx(_Decode(codec).eval(), heatmaps, tail, "heatmaps", "points")
                _append_graph(model, onnx.load(str(tail)))
        onnx.save(compact(model, metadata), str(path))


# -- TorchScript -----------------------------------------------------------------------------------------
def _export_torchscript(net: nn.Module, path: Path, *, dtype: str, input_size: int, codec: Codec | None,
                        metadata: dict[str, Any], in_channels: int) -> None:
    module = deploy_net(net, dtype, codec)
    with quiet_libraries(), torch.no_grad():
        traced = torch.jit.trace(module, (_example(input_size, in_channels),), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={f"{META_KEY}.json": json.dumps(metadata)})


def export_model(net: nn.Module, path: Path | str, *, fmt: str, dtype: str, input_size: int,
                 codec: Codec | None = None, calibration: np.ndarray | None = None,
                 metadata: dict[str, Any] | None = None) -> int:
    """Write `net` (a StackedHourglass, any state) as `fmt`/`dtype` to `path`; returns the file's bytes.

    `codec` given: the graph returns points (decode inside); int8 needs `calibration` images
    (float32 [n, 3, N, N], 0-255)."""
    check_format(fmt, dtype)
    if fmt == "onnx":
        require_export_extra()
    spec = getattr(net, "spec", None)
    in_channels = int(getattr(spec, "in_channels", 3))
    if metadata is None:
        metadata = model_metadata(spec or "?", input_size=input_size, codec=getattr(codec, "name", ""),
                                  output="points" if codec is not None else "heatmaps", fmt=fmt, dtype=dtype)
    path = Path(path)
    if fmt == "onnx":
        _export_onnx(net, path, dtype=dtype, input_size=input_size, codec=codec, calibration=calibration,
                     metadata=metadata, in_channels=in_channels)
    else:
        _export_torchscript(net, path, dtype=dtype, input_size=input_size, codec=codec, metadata=metadata,
                            in_channels=in_channels)
    return path.stat().st_size


# -- running an exported file ------------------------------------------------------------------------------
class ExportedModel:
    """An exported file as a points function, like a checkpoint: uint8 images [B,3,N,N] -> points
    [B,K,2] in input pixels. `info` is the metadata stored in the file."""

    def __init__(self, path: Path | str, info: dict[str, Any], run: Callable[[np.ndarray], np.ndarray]) -> None:
        self.path = Path(path)
        self.info = info
        try:
            self.input_size = int(info["input_size"])
            self.output = str(info["output"])
            self.codec = get_codec(str(info["codec"]), self.input_size)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise DataError(f"{path}: lightmark metadata is incomplete or wrong ({exc})") from None
        self._run = run

    @property
    def spec(self) -> str:
        return str(self.info.get("spec", "?"))

    def raw(self, images: np.ndarray) -> np.ndarray:
        """The graph's own output for float32 0-255 images."""
        return self._run(np.ascontiguousarray(images, dtype=np.float32))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = torch.from_numpy(np.asarray(self.raw(images.float().cpu().numpy()))).float()
        return out if self.output == "points" else self.codec.decode(out)


def load_onnx(path: Path | str, threads: int = 0) -> ExportedModel:
    """Open an exported .onnx file (needs the export extra); a foreign or broken file is a DataError."""
    require_export_extra("Running an .onnx model")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such ONNX file")
    try:
        session = ort_session(path, threads)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's data problem
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable ONNX model ({first})") from None
    text = session.get_modelmeta().custom_metadata_map.get(META_KEY)
    if not text:
        raise DataError(f"{path}: an ONNX model without lightmark metadata; export it with `lightmark export`")
    try:
        info = json.loads(text)
    except ValueError:
        raise DataError(f"{path}: unreadable lightmark metadata") from None
    input_name = session.get_inputs()[0].name
    return ExportedModel(path, info, lambda images: session.run(None, {input_name: images})[0])


def load_torchscript(path: Path | str) -> ExportedModel:
    """Open an exported TorchScript file written by `export_model`."""
    path = Path(path)
    extra = {f"{META_KEY}.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated; the files still run
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: not a readable TorchScript model ({type(exc).__name__})") from None
    try:
        info = json.loads(extra[f"{META_KEY}.json"] or "{}")
    except ValueError:
        info = {}
    if not info:
        raise DataError(f"{path}: a TorchScript model without lightmark metadata")

    def run(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(images)).numpy()

    return ExportedModel(path, info, run)


# -- a checkpoint to a verified file ---------------------------------------------------------------------
def check_output_path(out: Path) -> None:
    """Fail before any work when `out` cannot be written (a folder, a folder under a file, no rights)."""
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give a file name such as model.onnx")
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"--out {out}: cannot write there, {blocking} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create its folder ({exc.strerror or exc})") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: folder {out.parent} is not writable")


def _faces(source: FaceSource, input_size: int, limit: int | None = None) -> LandmarkDataset:
    if limit is not None and limit < len(source):
        source = SubsetSource(source, range(limit))
    return LandmarkDataset(source, None, input_size=input_size)


def calibration_images(protocol: Any, n: int, input_size: int) -> np.ndarray:
    """The first `n` training faces of the protocol, unaugmented: float32 [n, 3, N, N], 0-255."""
    train, _ = build_sources(protocol)
    faces = _faces(train, input_size, n)
    return np.stack([faces[i]["image"].numpy() for i in range(len(faces))]).astype(np.float32)


def verify(reference: Callable[[torch.Tensor], torch.Tensor], exported: Callable[[torch.Tensor], torch.Tensor],
           loader: Any, image_size: int) -> dict[str, float]:
    """Both models on the same faces: largest and mean point difference (px), NME of each (% image)."""
    refs, outs, gts = [], [], []
    for batch in loader:
        refs.append(reference(batch["image"]).float().cpu())
        outs.append(exported(batch["image"]).float().cpu())
        gts.append(batch["points"].float())
    if not refs:
        raise DataError("no held-out faces to verify the export on")
    ref, out, gt = torch.cat(refs), torch.cat(outs), torch.cat(gts)
    diff = (out.double() - ref.double()).norm(dim=-1)
    nme_ref = float(metrics.nme(ref, gt, "image", image_size).mean())
    nme_out = float(metrics.nme(out, gt, "image", image_size).mean())
    return {
        "n_faces": int(len(gt)),
        "max_point_diff_px": float(diff.max()) if torch.isfinite(diff).all() else float("inf"),
        "mean_point_diff_px": float(diff.mean()),
        "nme_checkpoint_pct": nme_ref,
        "nme_export_pct": nme_out,
        "nme_change_pct": (nme_out - nme_ref) / nme_ref * 100.0 if nme_ref > 0 else 0.0,
    }


def _within(numbers: dict[str, float], tolerance: Tolerance) -> bool:
    if not np.isfinite(numbers["max_point_diff_px"]) or not np.isfinite(numbers["nme_export_pct"]):
        return False
    if tolerance.max_point_diff_px is not None and numbers["max_point_diff_px"] > tolerance.max_point_diff_px:
        return False
    if tolerance.max_nme_change_pct is not None and abs(numbers["nme_change_pct"]) > tolerance.max_nme_change_pct:
        return False
    return True


def export_checkpoint(checkpoint: Path | str, out: Path | str, options: ExportOptions) -> ExportReport:
    """Export a checkpoint, verify the file on the protocol's held-out faces, and only then write `out`.

    An export outside its tolerance raises ExportError and leaves `out` as it was."""
    start = time.perf_counter()
    out = Path(out)
    if options.format == "onnx":
        require_export_extra()
    check_output_path(out)
    model, spec, protocol, _ = load_model(checkpoint, "cpu")
    size = int(options.input_size if options.input_size is not None else protocol.input_size)
    if size < 4:
        raise ConfigError(f"--input-size must be a positive multiple of 4, got {size}")
    spec.check_input_size(size)
    if size != protocol.input_size:
        protocol = protocol.override({"input_size": size})
    codec = get_codec(protocol.codec, size)
    tolerance = options.tolerance or TOLERANCES[options.dtype]
    output = "points" if options.decode else "heatmaps"
    metadata = model_metadata(spec, input_size=size, codec=protocol.codec, output=output, fmt=options.format,
                              dtype=options.dtype, protocol=protocol.name)
    with intra_op_threads(options.threads):
        threads = torch.get_num_threads()
        calibration = None
        if options.dtype == "int8":
            calibration = calibration_images(protocol, options.calibration_images, size)
        val = _faces(build_sources(protocol)[1], size)
        loader = make_loader(val, batch_size=eval_batch_size(protocol), shuffle=False, seed=protocol.seed)
        try:
            with atomic_path(out) as tmp:
                size_bytes = export_model(model, tmp, fmt=options.format, dtype=options.dtype, input_size=size,
                                          codec=codec if options.decode else None, calibration=calibration,
                                          metadata=metadata)
                exported = (load_onnx(tmp, options.threads) if options.format == "onnx"
                            else load_torchscript(tmp))
                device = torch.device("cpu")
                numbers = verify(lambda images: predict_points(model, images, codec, device), exported,
                                 loader, size)
                passed = _within(numbers, tolerance)
                if not passed:
                    raise ExportError(
                        f"{out}: not written: the {options.format} {options.dtype} export is outside its "
                        f"tolerance ({tolerance.describe()}) on {numbers['n_faces']} held-out faces: largest "
                        f"point difference {numbers['max_point_diff_px']:.4g} px, NME (image side) "
                        f"{numbers['nme_checkpoint_pct']:.4f} % -> {numbers['nme_export_pct']:.4f} % "
                        f"({numbers['nme_change_pct']:+.2f} %)"
                    )
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    described = (f"protocol {protocol.name} validation set"
                 + (", held-out synthetic faces" if protocol.data is None else f", {protocol.data}"))
    return ExportReport(
        path=str(out), format=options.format, dtype=options.dtype, output=output, spec=str(spec),
        protocol=protocol.name, codec=protocol.codec, input_size=size, size_bytes=int(size_bytes),
        n_faces=int(numbers["n_faces"]), data=described,
        max_point_diff_px=numbers["max_point_diff_px"], mean_point_diff_px=numbers["mean_point_diff_px"],
        nme_checkpoint_pct=numbers["nme_checkpoint_pct"], nme_export_pct=numbers["nme_export_pct"],
        nme_change_pct=numbers["nme_change_pct"], tolerance=asdict(tolerance), passed=passed,
        exporter=(f"torch.onnx TorchScript-based (dynamo=False), opset {OPSET}" if options.format == "onnx"
                  else "torch.jit.trace"),
        calibration=(None if calibration is None else {
            "images": int(len(calibration)), "source": f"protocol {protocol.name} training faces, unaugmented",
            "method": "onnxruntime quantize_static, MinMax, QOperator, uint8 activations, int8 weights, per tensor",
        }),
        threads=int(threads), seconds=time.perf_counter() - start,
    )
