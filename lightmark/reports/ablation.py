"""Run ablation suites and turn them into tables: the engine behind `lightmark ablate`.

1. plan every train row x seed, deduplicated by candidate key;
2. measure Table 3's codec round trips (no model; cached in the manifest);
3. write `ablation.json` (the manifest: tables, protocol, seeds, round trips, command) BEFORE any
   training, so `lightmark report` can rebuild the tables of a run that is interrupted;
4. train through `lightmark.search.study.run_fixed_candidates` (same runner, storage, workers and
   resume as the search);
5. write each table as CSV/Markdown/LaTeX and, optionally, the full report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightmark.atomic import write_json_atomic
from lightmark.benchmarks.record import Record
from lightmark.benchmarks.suites import Suite, plan_candidates, roundtrip_nme
from lightmark.landmarks.dataset import data_layout
from lightmark.landmarks.protocol import Protocol
from lightmark.models.spec import DEFAULT_N_LANDMARKS
from lightmark.reports import tables
from lightmark.reports.report import MANIFEST, ablation_frames, build_report


@dataclass
class AblationResult:
    study_name: str
    records: list[Record]
    frames: list[Any]  # pandas DataFrames, one per suite
    paths: dict[str, dict[str, Path]] = field(default_factory=dict)  # suite -> {csv, md, tex}
    report: Path | None = None


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


def ablate(
    suites: Sequence[Suite],
    protocol: Protocol,
    *,
    seeds: int,
    out: Path | str,
    study_name: str,
    storage: str | None = None,
    workers: int = 1,
    device: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
    progress: bool = True,
    command: str = "",
    report: bool = True,
    runner: Callable[..., Record] | str | None = None,
) -> AblationResult:
    """Train (or reuse) every candidate of `suites` and write their tables into `out`.

    `runner`: None = the real candidate runner; a callable (one process) or "module:function"
    (also used by worker processes) for tests."""
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
            old = {}
    same_protocol = old.get("protocol") == json.loads(protocol.canonical_json())
    roundtrip = _roundtrips(suites, protocol, old.get("roundtrip") if same_protocol else None)
    names = [s.name for s in suites]
    if same_protocol and old.get("seeds") == seeds:  # keep tables of earlier calls in the report
        names = list(dict.fromkeys([*old.get("tables", []), *names]))
        roundtrip = {**old.get("roundtrip", {}), **roundtrip}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
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

    from lightmark.search.study import run_fixed_candidates

    kwargs: dict[str, Any] = dict(run_dir=out, study_name=study_name, storage=storage, workers=workers,
                                  device=device, precision=precision, threads=threads, progress=progress)
    if runner is not None:
        kwargs["runner"] = runner
    records = run_fixed_candidates([(c.label, c.spec, c.protocol) for c in plan], **kwargs)

    frames = ablation_frames({**manifest, "tables": [s.name for s in suites]}, records)
    result = AblationResult(study_name=study_name, records=records, frames=frames)
    for frame in frames:
        result.paths[frame.attrs["name"]] = tables.write_table(frame, out, frame.attrs["name"])
    if report:
        result.report = build_report(out)
    return result
