"""An ablation run's plan and manifest: what `lightmark ablate` trains, written before any training.

1. plan every train row x seed, deduplicated by candidate key;
2. measure Table 3's codec round trips (no model; cached in the manifest);
3. write `ablation.json` (the manifest: tables, protocol, seeds, round trips, command) BEFORE any
   training, so `lightmark report` can rebuild the tables of a run that is interrupted.

The training itself goes through the search's `run_fixed_candidates` (see `lightmark.reports.ablate`)
and the tables are drawn by `lightmark.reports`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightmark.atomic import write_json_atomic
from lightmark.benchmarks.suites import Candidate, Suite, plan_candidates, roundtrip_nme
from lightmark.models.spec import DEFAULT_N_LANDMARKS
from lightmark.training.dataset import data_layout
from lightmark.training.protocol import Protocol

MANIFEST = "ablation.json"


def _roundtrips(suites: Sequence[Suite], protocol: Protocol, old: dict[str, Any] | None) -> dict[str, Any]:
    """{suite: {row label: nme dict}} for the suites with round-trip rows (reused from `old`)."""
    out: dict[str, Any] = {}
    cache: dict[str, dict[str, float]] | None = None
    for suite in suites:
        rows = [r for r in suite.rows if r.kind == "roundtrip"]
        if not rows:
            continue
        if old and old.get(suite.name) and all(r.label in old[suite.name] for r in rows):
            out[suite.name] = old[suite.name]
            continue
        if cache is None:
            cache = roundtrip_nme(protocol, tuple(dict.fromkeys(r.codec for r in rows)))
        out[suite.name] = {r.label: cache[r.codec] for r in rows}
    return out


def prepare_ablation(suites: Sequence[Suite], protocol: Protocol, *, seeds: int, out: Path | str,
                     study_name: str, command: str = "") -> tuple[list[Candidate], dict[str, Any]]:
    """Plan the candidates of `suites` and write the manifest into `out` (keeping the tables, round
    trips and start time of earlier calls under the same protocol); returns (plan, manifest)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_landmarks = data_layout(protocol).n_points
    plan = plan_candidates(list(suites), protocol, seeds, n_landmarks)
    manifest_path = out / MANIFEST
    old: dict[str, Any] = {}
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except ValueError:
            old = {}  # rewritten below from this call's plan
    same_protocol = old.get("protocol") == json.loads(protocol.canonical_json())
    roundtrip = _roundtrips(suites, protocol, old.get("roundtrip") if same_protocol else None)
    names = [s.name for s in suites]
    if same_protocol and old.get("seeds") == seeds:  # keep tables of earlier calls in the report
        names = list(dict.fromkeys([*old.get("tables", []), *names]))
        roundtrip = {**old.get("roundtrip", {}), **roundtrip}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    resumed = same_protocol and bool(old.get("started"))  # keep when the run first started
    manifest = {
        "tables": names, "protocol": json.loads(protocol.canonical_json()), "seeds": seeds,
        "roundtrip": roundtrip, "command": command, "study_name": study_name,
        "candidates": {c.key: c.label for c in plan},
        **({"n_landmarks": n_landmarks} if n_landmarks != DEFAULT_N_LANDMARKS else {}),
        "started": old["started"] if resumed else now,
        **({"resumed": [*old.get("resumed", []), now]} if resumed else {}),
    }
    write_json_atomic(manifest_path, manifest)
    return plan, manifest
