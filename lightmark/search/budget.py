"""The budget: checked from the spec alone, before any training.

Model size (MiB of the fp32 state_dict) is arithmetic and takes milliseconds. `size_metric` can
budget what ships instead: `onnx_fp16` / `onnx_int8` are the bytes of the file `lightmark export`
writes, measured by exporting an untrained network (a second or two per architecture; weights' values
do not change the size), cached per spec in memory and, with `size_cache`, in a JSON file that
resumed runs and other workers read. The limit (`size_mb`) then applies to that file; Records and
trials keep the state_dict size. A MACs budget
traces the network once (fvcore) and a latency budget builds it and times it, so those two are
only measured when asked for. A candidate over any budget is never trained: the objective stores
how far over it is as an Optuna constraint (`trial.set_constraint(name, value - limit)`, feasible
when <= 0), which is how the sampler learns where the feasible region lies.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightmark.atomic import write_json_atomic
from lightmark.benchmarks.deployed import SIZE_METRICS, metric_size_mb
from lightmark.benchmarks.profile import profile as profile_spec
from lightmark.benchmarks.size import size_breakdown, size_mb
from lightmark.deploy.export import export_versions, require_export_extra
from lightmark.errors import ConfigError
from lightmark.models.spec import ModelSpec

DEFAULT_BUDGET_MB = 15.0  # the challenge's limit


BUDGET_FLAGS = {"size_mb": "--budget-mb", "macs": "--budget-macs", "latency_ms": "--budget-latency-ms"}


@dataclass(frozen=True)
class BudgetCheck:
    """What the budget check measured for one spec, and by how much each limit is exceeded."""

    spec: str
    size_mb: float  # the fp32 state_dict (the Record's size), whatever the budget's size metric
    params: int | None
    macs: int | None
    latency_ms: float | None
    constraints: dict[str, float]  # name -> value - limit (> 0: violated)
    seconds: float  # time the check took
    size_metric: str = "state_dict"
    metric_size_mb: float | None = None  # the budgeted size (= size_mb for state_dict)

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.constraints.values())

    def violations(self) -> dict[str, float]:
        return {k: v for k, v in self.constraints.items() if v > 0}


@dataclass(frozen=True)
class Budget:
    """Limits on a candidate; None = no limit on that quantity."""

    size_mb: float | None = DEFAULT_BUDGET_MB
    macs: int | None = None
    latency_ms: float | None = None
    input_size: int = 384  # MACs and latency depend on it
    device: str = "cpu"  # where latency is measured
    sizer: str | None = None  # "module:function" spec -> MiB; None = benchmarks.size.size_mb
    size_metric: str = "state_dict"  # what size_mb limits: state_dict | onnx_fp16 | onnx_int8
    size_cache: str | None = None  # JSON file remembering exported sizes across runs and workers
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, flag in BUDGET_FLAGS.items():
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{flag} must be > 0, got {value:g}")
        if self.macs is not None:  # MACs come in whole numbers; a budget under one fits nothing
            if self.macs < 1:
                raise ConfigError(f"--budget-macs must be at least 1 MAC, got {self.macs:g}")
            object.__setattr__(self, "macs", int(self.macs))
        if self.size_metric not in SIZE_METRICS:
            raise ConfigError(f"--size-metric: {self.size_metric!r} is not one of {', '.join(SIZE_METRICS)}")
        if self.size_metric != "state_dict":
            require_export_extra(f"--size-metric {self.size_metric}")

    def to_dict(self) -> dict[str, Any]:
        return {"size_mb": self.size_mb, "macs": self.macs, "latency_ms": self.latency_ms,
                "input_size": self.input_size, "size_metric": self.size_metric}

    def describe(self) -> str:
        parts = []
        if self.size_mb is not None:
            what = "size" if self.size_metric == "state_dict" else f"{self.size_metric} file"
            parts.append(f"{what} <= {self.size_mb:g} MiB")
        if self.macs is not None:
            parts.append(f"MACs <= {self.macs:.3g}")
        if self.latency_ms is not None:
            parts.append(f"latency <= {self.latency_ms:g} ms ({self.device}, batch 1)")
        return ", ".join(parts) or "no budget"

    def check(self, spec: ModelSpec) -> BudgetCheck:
        """Measure what the limits need (size always) and compare; cached per spec."""
        key = str(spec)
        if key in self._cache:
            return self._cache[key]
        start = time.perf_counter()
        size, params = self._size_and_params(spec)
        metric_size = self.metric_size_of(spec)
        macs = latency = None
        constraints: dict[str, float] = {}
        if self.size_mb is not None:
            constraints["size_mb"] = metric_size - self.size_mb
        if self.macs is not None or self.latency_ms is not None:
            # Only measure the slow quantities when the size limit already holds.
            if all(v <= 0 for v in constraints.values()):
                numbers = profile_spec(spec, self.input_size, device=self.device,
                                       latency=self.latency_ms is not None)
                macs = _int_or_none(numbers.get("macs_fvcore", numbers.get("macs")))
                latency = numbers.get("latency_ms")
            if self.macs is not None:
                constraints["macs"] = (macs - self.macs) if macs is not None else 0.0
            if self.latency_ms is not None:
                constraints["latency_ms"] = (
                    float(latency) - self.latency_ms if latency is not None else 0.0
                )
            if macs is None and self.macs is not None and constraints.get("size_mb", 0) > 0:
                constraints["macs"] = 0.0  # not measured: only the size is known to be violated
        result = BudgetCheck(
            spec=key, size_mb=size, params=params, macs=macs,
            latency_ms=None if latency is None else float(latency),
            constraints=constraints, seconds=time.perf_counter() - start,
            size_metric=self.size_metric, metric_size_mb=metric_size,
        )
        self._cache[key] = result
        return result

    def fits(self, spec: ModelSpec) -> bool:
        """Size-only feasibility, used to bound the space before a search starts (cheap for the
        state_dict; one export per architecture, cached, for an ONNX size metric)."""
        return self.size_mb is None or self.metric_size_of(spec) <= self.size_mb

    def size_of(self, spec: ModelSpec) -> float:
        """The fp32 state_dict's MiB (what Records carry), whatever the size metric."""
        return self._size_and_params(spec)[0]

    def metric_size_of(self, spec: ModelSpec) -> float:
        """MiB of what the budget limits: the state_dict, or the exported file of `size_metric`."""
        if self.size_metric == "state_dict":
            return self.size_of(spec)
        key = (self.size_metric, str(spec), self.input_size)
        if key not in self._cache:
            stored = self._read_size_cache()
            name = f"{self.size_metric}:{spec}:{self.input_size}:{export_versions()}"
            if name in stored:
                self._cache[key] = float(stored[name])
            else:
                self._cache[key] = float(metric_size_mb(spec, self.size_metric, self.input_size))
                self._write_size_cache(name, self._cache[key])
        return self._cache[key]

    def _read_size_cache(self) -> dict[str, float]:
        if not self.size_cache:
            return {}
        try:
            data = json.loads(Path(self.size_cache).read_text())
        except (OSError, ValueError):
            return {}
        sizes = data.get("sizes_mb") if isinstance(data, dict) else None
        return sizes if isinstance(sizes, dict) else {}

    def _write_size_cache(self, name: str, value: float) -> None:
        """Merge one size into the file (atomic; two workers racing lose an entry, not the file)."""
        if not self.size_cache:
            return
        sizes = {**self._read_size_cache(), name: value}
        try:
            write_json_atomic(self.size_cache, {"unit": "MiB of the exported file (untrained network)",
                                                "sizes_mb": sizes})
        except OSError:
            pass  # a cache: the size is known in memory either way

    def _size_and_params(self, spec: ModelSpec) -> tuple[float, int | None]:
        """One arithmetic pass gives both (the saved state_dict's bytes and its parameters)."""
        key = ("size", str(spec))
        if key not in self._cache:
            if self.sizer is None:
                breakdown = size_breakdown(spec)
                self._cache[key] = (breakdown.total_bytes / 2**20, int(breakdown.params))
            else:
                self._cache[key] = (float(load_callable(self.sizer, _default_sizer)(spec)), None)
        return self._cache[key]


def _default_sizer():
    return size_mb


def load_callable(path: str | None, default: Callable[[], Callable]) -> Callable:
    """Resolve "package.module:function" (picklable across spawned workers); None: default()."""
    if not path:
        return default()
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {path!r}: {exc}") from None




def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
