"""The preset architectures measured: parameters and size beside the paper's, and MACs at each
preset's input size (what `lightmark models` lists)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightmark.benchmarks.macs import count_macs
from lightmark.benchmarks.size import size_breakdown
from lightmark.models import registry  # registry.PRESETS read at call time (tests narrow it)


def preset_rows(with_macs: bool = True, advance: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """One row per preset; MACs (fvcore and thop) only `with_macs` (they take seconds each)."""
    out = []
    for preset in registry.PRESETS.values():
        sizes = size_breakdown(preset.spec)
        row = {
            "name": preset.name,
            "spec": str(preset.spec),
            "family": preset.family,
            "input_size": preset.input_size,
            "params": sizes.params,
            "size_bytes": sizes.total_bytes,
            "size_mb": sizes.size_mb,
            "paper_size_mb": preset.paper_size_mb,
            "size_diff_mb": None if preset.paper_size_mb is None else sizes.size_mb - preset.paper_size_mb,
            "paper_nme": preset.paper_nme,
            "description": preset.description,
        }
        if with_macs:
            count = count_macs(preset.spec, preset.input_size)
            row.update(macs_fvcore=count.fvcore, macs_thop=count.thop, macs_rel_diff=count.rel_diff)
        out.append(row)
        if advance is not None:
            advance()
    return out
