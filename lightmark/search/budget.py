"""The budget: checked from the spec alone, before any training.

Model size (MiB of the fp32 state_dict) is arithmetic and takes milliseconds; a MACs budget
traces the network once (fvcore) and a latency budget builds it and times it, so those two are
only measured when asked for. A candidate over any budget is never trained: the objective stores
how far over it is as an Optuna constraint (`trial.set_constraint(name, value - limit)`, feasible
when <= 0), which is how the sampler learns where the feasible region lies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lightmark.errors import ConfigError
from lightmark.models.spec import ModelSpec

DEFAULT_BUDGET_MB = 15.0  # the challenge's limit


@dataclass(frozen=True)
class BudgetCheck:
    """What the budget check measured for one spec, and by how much each limit is exceeded."""

    spec: str
    size_mb: float
    params: int | None
    macs: int | None
    latency_ms: float | None
    constraints: dict[str, float]  # name -> value - limit (> 0: violated)
    seconds: float  # time the check took

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
    sizer: str | None = None  # "module:function" spec -> MiB; None = benchmarks.profile.size_mb
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("size_mb", "macs", "latency_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"budget {name} must be > 0, got {value}")

    def to_dict(self) -> dict[str, Any]:
        return {"size_mb": self.size_mb, "macs": self.macs, "latency_ms": self.latency_ms,
                "input_size": self.input_size}

    def describe(self) -> str:
        parts = []
        if self.size_mb is not None:
            parts.append(f"size <= {self.size_mb:g} MiB")
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
        if self.sizer is None:
            _profile()  # import outside the timing: the check itself is what must stay fast
        start = time.perf_counter()
        size, params = self._size_and_params(spec)
        macs = latency = None
        constraints: dict[str, float] = {}
        if self.size_mb is not None:
            constraints["size_mb"] = size - self.size_mb
        if self.macs is not None or self.latency_ms is not None:
            # Only measure the slow quantities when the size limit already holds.
            if all(v <= 0 for v in constraints.values()):
                numbers = _profile().profile(spec, self.input_size, device=self.device,
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
        )
        self._cache[key] = result
        return result

    def fits(self, spec: ModelSpec) -> bool:
        """Size-only feasibility (cheap), used to bound the space before a search starts."""
        return self.size_mb is None or self.size_of(spec) <= self.size_mb

    def size_of(self, spec: ModelSpec) -> float:
        return self._size_and_params(spec)[0]

    def _size_and_params(self, spec: ModelSpec) -> tuple[float, int | None]:
        """One arithmetic pass gives both (the saved state_dict's bytes and its parameters)."""
        key = ("size", str(spec))
        if key not in self._cache:
            if self.sizer is None:
                breakdown = _profile().size_breakdown(spec)
                self._cache[key] = (breakdown.total_bytes / 2**20, int(breakdown.params))
            else:
                self._cache[key] = (float(load_callable(self.sizer, _default_sizer)(spec)), None)
        return self._cache[key]


def _profile():
    from lightmark.benchmarks import profile

    return profile


def _default_sizer():
    return _profile().size_mb


def load_callable(path: str | None, default: Callable[[], Callable]) -> Callable:
    """Resolve "package.module:function" (picklable across spawned workers); None: default()."""
    if not path:
        return default()
    import importlib

    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {path!r}: {exc}") from None




def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
