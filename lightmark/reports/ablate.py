"""The paper's ablation suites end to end: train (or reuse) every row x seed, then write the tables.

Every row x seed goes through the search's machinery (`search.fixed.run_fixed_candidates`: same
runner, same storage, same workers), so a re-run resumes, finished candidates are reused, and
identical candidates across tables (the s2-d4-c128 baseline of Tables 1-4) are trained once. The
plan and manifest come from `benchmarks.ablation`, the tables and the report from this package.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightmark.benchmarks.ablation import prepare_ablation
from lightmark.benchmarks.record import Record, Status
from lightmark.benchmarks.suites import Suite
from lightmark.reports import tables
from lightmark.reports.report import ablation_frames, build_report, evaluate_test_data
from lightmark.search.fixed import run_fixed_candidates
from lightmark.training.protocol import Protocol


@dataclass
class AblationResult:
    study_name: str
    records: list[Record]
    frames: list[Any]  # pandas DataFrames, one per suite
    paths: dict[str, dict[str, Path]] = field(default_factory=dict)  # suite -> {csv, md, tex}
    report: Path | None = None
    out: Path | None = None
    protocol: str = ""
    seeds: int = 0
    candidates: int = 0  # distinct candidates planned (identical rows shared)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.status == Status.FAILED]

    def to_json(self) -> dict[str, Any]:
        """The summary `lightmark ablate --json` prints: where everything is, and every table's rows."""
        return {
            "out": str(self.out), "study": self.study_name, "protocol": self.protocol, "seeds": self.seeds,
            "candidates": self.candidates, "failed": len(self.failed), "seconds": round(self.seconds, 1),
            "report": str(self.report) if self.report else None,
            "tables": {
                frame.attrs["name"]: {
                    **{k: str(v) for k, v in self.paths[frame.attrs["name"]].items()},
                    "rows": frame.to_dict(orient="records"),
                }
                for frame in self.frames
            },
        }


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
    test_data: Path | str | None = None,
) -> AblationResult:
    """Train (or reuse) every candidate of `suites` and write their tables into `out`.

    `runner`: None = the real candidate runner; a callable (one process) or "module:function"
    (also used by worker processes) for tests. `test_data`: a dataset every trained candidate is also
    evaluated on (e.g. the real-photo dev set); its NME is a column beside the held-out NME."""
    start = time.perf_counter()
    out = Path(out)
    plan, manifest = prepare_ablation(suites, protocol, seeds=seeds, out=out, study_name=study_name,
                                      command=command)
    kwargs: dict[str, Any] = dict(run_dir=out, study_name=study_name, storage=storage, workers=workers,
                                  device=device, precision=precision, threads=threads, progress=progress)
    if runner is not None:
        kwargs["runner"] = runner
    records = run_fixed_candidates([(c.label, c.spec, c.protocol) for c in plan], **kwargs)

    test = evaluate_test_data(out, test_data, records) if test_data is not None else None
    frames = ablation_frames({**manifest, "tables": [s.name for s in suites]}, records, test=test)
    result = AblationResult(study_name=study_name, records=records, frames=frames, out=out, protocol=protocol.name,
                            seeds=seeds, candidates=len(plan))
    for frame in frames:
        result.paths[frame.attrs["name"]] = tables.write_table(frame, out, frame.attrs["name"])
    if report:
        result.report = build_report(out, test=test)
    result.seconds = time.perf_counter() - start
    return result
