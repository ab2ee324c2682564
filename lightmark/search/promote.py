"""A two-fidelity search: the cheap study runs as always, then its best K feasible architectures are
retrained under a dearer protocol and the pick is made there.

The dear trainings are a study of their own (`<study>-<dear>`, fixed candidates) in their own run
directory (`<out>/promoted-<dear>/`), linked to the cheap study by candidate key: re-running the
command resumes both, and a candidate already trained at either fidelity is never trained again.
Every number says its fidelity: the cheap study's records carry its protocol, the promoted ones the
dear protocol, and `promotion.json` holds both NMEs of each promoted architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lightmark.atomic import write_json_atomic
from lightmark.benchmarks.record import Record, Status
from lightmark.benchmarks.runner import candidate_dir_of
from lightmark.errors import ConfigError
from lightmark.models.specs import parse_spec
from lightmark.search.config import SearchConfig
from lightmark.search.fixed import run_fixed_candidates
from lightmark.search.records import OBJECTIVE_KEYS
from lightmark.training.protocol import Protocol, get_protocol
from lightmark.training.trainer import BEST_NAME

PROMOTION_JSON = "promotion.json"


@dataclass(frozen=True)
class Promotion:
    """What to promote: the dear protocol, how many architectures, and the workers that train them."""

    dear: Protocol
    k: int
    workers: int = 1

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"--promote must be >= 1, got {self.k}")


def parse_fidelity(text: str) -> Protocol:
    """`quick` (a protocol preset) or `quick:configs/synth2real.toml` (a preset with a protocol file)."""
    name, _, path = text.strip().partition(":")
    protocol = get_protocol(name)
    return protocol.override_from_toml(Path(path)) if path else protocol


def ranked_candidates(config: SearchConfig, k: int) -> list[tuple[str, float]]:
    """The cheap study's best `k` distinct architectures that completed under the budget, by the first
    objective's measure (NME), as (spec, value)."""
    if not config.records_csv.exists():
        return []
    frame = pd.read_csv(config.records_csv)
    column = OBJECTIVE_KEYS[config.objectives[0]]
    done = frame[(frame["status"] == Status.COMPLETE) & (frame["protocol"] == config.protocol.name)
                 & frame[column].notna()]
    best = done.sort_values([column, "spec"]).drop_duplicates("spec")
    return [(str(row.spec), float(getattr(row, column))) for row in best.head(k).itertuples(index=False)]


def run_promotion(config: SearchConfig, promotion: Promotion, *, progress: bool = True) -> dict[str, Any]:
    """Train the cheap study's best K at the dear fidelity (resumably) and pick there."""
    ranked = ranked_candidates(config, promotion.k)
    run_dir = Path(config.run_dir) / f"promoted-{promotion.dear.name}"
    same_data = {k: getattr(config.protocol, k) for k in ("data", "image_root", "layout")
                 if getattr(config.protocol, k) is not None}
    dear = promotion.dear.override(same_data) if same_data else promotion.dear
    records = run_fixed_candidates(
        [(f"promoted #{rank}", parse_spec(spec), dear) for rank, (spec, _) in enumerate(ranked, 1)],
        run_dir=run_dir, study_name=f"{config.study_name}-{dear.name}", workers=promotion.workers,
        device=config.device, precision=config.precision, threads=config.threads, progress=progress,
        runner=config.runner)
    rows = [_row(spec, cheap, record, run_dir) for (spec, cheap), record in zip(ranked, records)]
    done = [r for r in rows if r["status"] == Status.COMPLETE and r["nme_dear"] is not None]
    pick = min(done, key=lambda r: (r["nme_dear"], r["spec"])) if done else None
    result = {
        "fidelities": [config.protocol.name, dear.name], "promote": promotion.k, "promoted": rows,
        "pick": pick, "pick_is_cheap_best": bool(pick and rows and pick["spec"] == rows[0]["spec"]),
        "run_dir": str(run_dir), "train_seconds_dear": sum(r["train_seconds_dear"] for r in rows),
        "metric": "nme_image_pct (% of image side) at each fidelity's own validation faces",
    }
    write_json_atomic(Path(config.run_dir) / PROMOTION_JSON, result)
    return result


def _row(spec: str, cheap: float, record: Record, run_dir: Path) -> dict[str, Any]:
    checkpoint = candidate_dir_of(run_dir, record.key) / BEST_NAME
    dear = record.nme_image_pct
    return {"spec": spec, "nme_cheap": cheap, "nme_dear": None if dear is None or math.isnan(dear) else dear,
            "status": record.status, "size_mb": record.size_mb, "train_seconds_dear": record.train_seconds,
            "checkpoint": str(checkpoint.resolve()) if checkpoint.is_file() else None}
