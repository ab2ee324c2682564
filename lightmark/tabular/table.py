"""Tabular benchmarks: every architecture of a space trained once, with its learning curve.

A table is one CSV row per (spec, fidelity, seed) with the spec's fields, params, size (MiB), MACs,
latency, train seconds, the validation NME (image side and inter-ocular, percent) after every epoch and
the trained model's NME on the real-photo dev set (`realdev_*`, empty where not measured), plus a JSON
sidecar with what made it: the protocol, the version of the faces, the space, the seeds, the machine,
the command and the wall time. A fidelity is the protocol the row was trained under (`tabular`,
`quick`, `synth2real`); the base fidelity has every architecture of the space, the dearer ones a subset
(`lightmark.tabular.fidelity`). A table without a `fidelity` column (the v1 table) is all at its
sidecar's protocol. Any search strategy can then be replayed on the table
(`lightmark.tabular.replay`) for hundreds of seeds in seconds, as NAS-Bench-201 and HPOBench do.

Training goes through `run_fixed_candidates` (the same runner, cache, workers and resume as the search
and the ablation), so an interrupted `bench tabulate` continues where it stopped. Candidate keys carry
the data version, so a new synthetic generator makes new candidates and a new table, never a mix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightmark import __version__
from lightmark.atomic import write_json_atomic, write_text_atomic
from lightmark.benchmarks.evaluation import FACE_SPREAD_KEYS, WORST_FACE
from lightmark.benchmarks.proxies import rank_correlation
from lightmark.benchmarks.record import Record, Status
from lightmark.benchmarks.runner import candidate_dir
from lightmark.data.synth import GENERATOR_VERSION
from lightmark.errors import ConfigError, DataError
from lightmark.models.spec import ModelSpec
from lightmark.search.family_space import AnySpace
from lightmark.search.fixed import run_fixed_candidates
from lightmark.search.space import DIMS
from lightmark.tabular.devset import Evaluate, evaluate_test_set
from lightmark.training.dataset import data_version
from lightmark.training.protocol import Protocol
from lightmark.training.trainer import LOG_NAME

TABLES_DIR = Path(__file__).parent / "tables"  # the packaged tables: <name>.csv + <name>.json
CURVE_METRICS = ("nme_image_pct", "nme_inter_ocular_pct")
MIN_ARCHITECTURES = 1
FIDELITY = "fidelity"  # the column naming the protocol a row was trained under
REALDEV = "realdev"  # the fidelity name of the dev-set NME (`F@realdev`: models trained under F)
DEFAULT_FIDELITY = "tabular"  # a table that names no protocol was built by `bench tabulate`'s default


def realdev_column(metric: str) -> str:
    """The column of a row's NME on the real-photo dev set, e.g. realdev_nme_inter_ocular_pct."""
    return f"{REALDEV}_{metric}"


REALDEV_COLUMNS = tuple(realdev_column(m) for m in CURVE_METRICS)
# each model's median and worst face on the dev set (inter-ocular NME %) and that face's name: the mean over
# 18 photos can hide one a model gets badly wrong
REALDEV_FACE_COLUMNS = (*(realdev_column(k) for k in FACE_SPREAD_KEYS), realdev_column(WORST_FACE))


def curve_column(metric: str, epoch: int) -> str:
    return f"{metric}_e{epoch}"


@dataclass(frozen=True)
class TablePlan:
    """What a tabulation trains: every spec of the space for `seeds` seeds, and a second seed for an
    evenly spread subset of `second_seed` specs (to measure the seed noise)."""

    specs: tuple[ModelSpec, ...]
    seeds: int
    second_seed: int

    def candidates(self, protocol: Protocol) -> list[tuple[str, ModelSpec, Protocol]]:
        out = []
        for seed in range(self.seeds):
            out += [(f"{spec}@seed{seed}", spec, replace(protocol, seed=seed)) for spec in self.specs]
        for spec in self.noise_specs():
            out.append((f"{spec}@seed{self.seeds}", spec, replace(protocol, seed=self.seeds)))
        return out

    def noise_specs(self) -> tuple[ModelSpec, ...]:
        n = min(self.second_seed, len(self.specs)) if self.seeds == 1 else 0
        if n <= 0:
            return ()
        step = len(self.specs) / n
        return tuple(self.specs[int(i * step)] for i in range(n))


def plan_table(space: AnySpace, protocol: Protocol, seeds: int, second_seed: int,
               subset: Sequence[ModelSpec] | None = None) -> TablePlan:
    """Every architecture of the space (its depths bounded by the input size), or `subset` of them
    (`--specs` / `--subset`: a dearer fidelity trains a spread of the space, not all of it)."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if second_seed < 0:
        raise ConfigError(f"--second-seed must be >= 0, got {second_seed}")
    specs = tuple(space.bounded(protocol.input_size).specs())
    if subset is not None:
        known = {str(s) for s in specs}
        outside = [str(s) for s in subset if str(s) not in known]
        if outside:
            raise ConfigError(f"--specs/--subset: {', '.join(outside[:3])} not in the space at "
                              f"{protocol.input_size} px (--space)")
        specs = tuple(dict.fromkeys(subset))
    if len(specs) < MIN_ARCHITECTURES:
        raise ConfigError("the search space has no architecture for this protocol's input size")
    return TablePlan(specs=specs, seeds=seeds, second_seed=second_seed)


def read_curve(path: Path) -> list[dict[str, Any]]:
    """The evaluated epochs of a candidate's log.jsonl, in order (the last entry of an epoch wins)."""
    by_epoch: dict[int, dict[str, Any]] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"{path}: unreadable training log ({exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise DataError(f"{path}:{number}: not a JSON line") from None
        if "nme_image_pct" in entry:
            by_epoch[int(entry["epoch"])] = entry
    return [by_epoch[e] for e in sorted(by_epoch)]


def table_row(record: Record, curve: list[dict[str, Any]], epochs: int, fidelity: str = DEFAULT_FIDELITY,
              realdev: dict[str, Any] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "spec": record.spec, "family": record.family, FIDELITY: fidelity, "n_stacks": record.n_stacks,
        "depth": record.depth, "channels": record.channels,
        "attention": record.attention, "coordconv": record.coordconv, "seed": record.seed,
        "status": record.status, "params": record.params, "size_mb": record.size_mb, "macs": record.macs,
        "latency_ms": record.latency_ms, "train_seconds": record.train_seconds,
        "epochs_done": record.epochs_done,
        "nme_image_pct": record.nme_image_pct, "nme_inter_ocular_pct": record.nme_inter_ocular_pct,
        **{realdev_column(m): (realdev or {}).get(m) for m in (*CURVE_METRICS, *FACE_SPREAD_KEYS, WORST_FACE)},
    }
    by_epoch = {int(entry["epoch"]): entry for entry in curve}
    for epoch in range(1, epochs + 1):
        entry = by_epoch.get(epoch, {})
        for metric in CURVE_METRICS:
            row[curve_column(metric, epoch)] = entry.get(metric)
        row[f"train_seconds_e{epoch}"] = entry.get("train_seconds")
    return row


def collect_table(records: list[Record], plan_rows: list[tuple[str, ModelSpec, Protocol]], run_dir: Path,
                  epochs: int, fidelity: str = DEFAULT_FIDELITY,
                  realdev: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per candidate; `realdev`: the dev-set NME by candidate key (where measured)."""
    rows = []
    for record, (_label, spec, protocol) in zip(records, plan_rows):
        log = candidate_dir(spec, protocol, run_dir) / LOG_NAME
        curve = read_curve(log) if log.exists() else []
        rows.append(table_row(record, curve, epochs, fidelity, (realdev or {}).get(record.key)))
    return pd.DataFrame(rows)


def tabulate(space: AnySpace, protocol: Protocol, *, seeds: int, second_seed: int, out: Path | str,
             name: str, workers: int = 1, device: str = "auto", precision: str = "auto",
             threads: int | None = None, progress: bool = True, command: str = "",
             storage: str | None = None, fidelity: str | None = None,
             subset: Sequence[ModelSpec] | None = None, test_data: Path | str | None = None,
             evaluate: Evaluate | None = None, runner: Callable[..., Record] | str | None = None) -> tuple[Path, Path]:
    """Train (or reuse) every candidate of the plan and write `<out>/<name>.csv` and `<name>.json`.

    `fidelity`: the name of its rows' fidelity (default the protocol's name); `subset`: train only these
    architectures of the space; `test_data`: also evaluate every trained candidate on this test set
    (the dev set; resumable, `devset.py`) into the `realdev_*` columns. `runner`: the candidate runner
    (a test's synthetic one; default the real one)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fidelity = fidelity or protocol.name
    plan = plan_table(space, protocol, seeds, second_seed, subset)
    candidates = plan.candidates(protocol)
    meta_path = out / f"{name}.json"
    old = _read_json(meta_path) if meta_path.exists() else {}
    records = run_fixed_candidates(candidates, run_dir=out, study_name=f"tabulate-{name}", storage=storage,
                                   workers=workers, device=device, precision=precision, threads=threads,
                                   progress=progress, runner=runner)
    dev = evaluate_test_set(records, out, test_data, evaluate=evaluate) if test_data is not None else None
    frame = collect_table(records, candidates, out, protocol.epochs, fidelity, dev.by_key if dev else None)
    csv_path = out / f"{name}.csv"
    write_text_atomic(csv_path, frame.to_csv(index=False, float_format="%.6g"))
    meta = {
        "name": name, "protocol": protocol.to_dict(), "protocol_name": protocol.name,
        "data_version": data_version(protocol), "space": space.to_dict(), "seeds": seeds,
        "second_seed": len(plan.noise_specs()), "architectures": len(plan.specs),
        "rows": len(frame), "complete_rows": int((frame["status"] == Status.COMPLETE).sum()),
        "epochs": protocol.epochs,
        "hosts": sorted({r.host for r in records if r.host}),
        "devices": sorted({r.device for r in records if r.device}),
        "precisions": sorted({r.precision for r in records if r.precision}),
        "command": command, "started": old.get("started") or _now(), "written": _now(),
        "sittings": [*old.get("sittings", []), _now()],
        "train_seconds_total": float(frame["train_seconds"].sum()),
        "lightmark_version": __version__,
        **({"subset": [str(s) for s in plan.specs]} if subset is not None else {}),
    }
    meta |= fidelity_meta(frame, meta, fidelity, dev.describe() if dev else None)
    write_json_atomic(meta_path, meta)
    return csv_path, meta_path


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fidelity_counts(frame: pd.DataFrame, base: str) -> dict[str, int]:
    """Architectures with a complete row at each fidelity (the base first, then by name), and under
    `realdev` those with a dev-set NME at any fidelity: the sidecar's and `bench tables`' `fidelities`."""
    done = frame[frame["status"] == Status.COMPLETE]
    if FIDELITY not in done:
        done = done.assign(**{FIDELITY: base})
    names = sorted(set(done[FIDELITY]), key=lambda f: (f != base, f))
    counts = {f: int(done.loc[done[FIDELITY] == f, "spec"].nunique()) for f in names}
    measured = done[done[list(REALDEV_COLUMNS)].notna().any(axis=1)] if set(REALDEV_COLUMNS) <= set(done) else done[:0]
    if len(measured):
        counts[REALDEV] = int(measured["spec"].nunique())
    return counts


def fidelity_meta(frame: pd.DataFrame, meta: dict[str, Any], fidelity: str,
                  test_data: dict[str, Any] | None) -> dict[str, Any]:
    """The sidecar's fidelity keys for a one-run table: its `fidelities` counts and, per fidelity,
    what made it (protocol, data version, train seconds and hours: the CPU time it cost)."""
    done = frame[frame["status"] == Status.COMPLETE]
    seconds = float(frame["train_seconds"].sum())
    details: dict[str, Any] = {fidelity: {
        "protocol": meta["protocol"], "protocol_name": meta["protocol_name"],
        "data_version": meta["data_version"], "epochs": meta["epochs"],
        "architectures": int(done["spec"].nunique()), "rows": int(len(frame)), "seeds": meta["seeds"],
        "second_seed": meta["second_seed"], "train_seconds_total": seconds, "train_hours": seconds / 3600,
        "command": meta["command"], "hosts": meta["hosts"],
    }}
    counts = fidelity_counts(frame, fidelity)
    if test_data is not None:
        details[REALDEV] = {**test_data, "architectures": counts.get(REALDEV, 0),
                            "by_fidelity": {fidelity: counts.get(REALDEV, 0)}}
    return {"base_fidelity": fidelity, "fidelities": counts, "per_fidelity": details}


# -- reading tables ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    """A loaded tabular benchmark: the rows (every fidelity, a `fidelity` column always present) and
    what made them. The replays, the seed noise and the summary read the base fidelity (`base()`:
    every architecture of the space); `at(f)` is one fidelity as a table of its own."""

    name: str
    frame: pd.DataFrame
    meta: dict[str, Any]

    @property
    def base_fidelity(self) -> str:
        return str(self.meta.get("base_fidelity") or self.meta.get("protocol_name") or DEFAULT_FIDELITY)

    @property
    def fidelity_names(self) -> list[str]:
        """The training fidelities, the base first, then the others by name."""
        names = set(self.frame[FIDELITY]) if FIDELITY in self.frame else set()
        return sorted(names | {self.base_fidelity}, key=lambda f: (f != self.base_fidelity, f))

    def fidelities(self) -> dict[str, int]:
        return fidelity_counts(self.frame, self.base_fidelity)

    def at(self, fidelity: str) -> Table:
        """The rows of one fidelity, with that fidelity's protocol, epochs and data version as its meta."""
        if fidelity not in self.fidelity_names:
            raise ConfigError(f"table {self.name}: no fidelity {fidelity!r} (it has {', '.join(self.fidelity_names)})")
        if fidelity == self.base_fidelity and len(self.fidelity_names) == 1:
            return self
        frame = self.frame[self.frame[FIDELITY] == fidelity].reset_index(drop=True)
        own = {k: v for k, v in (self.meta.get("per_fidelity") or {}).get(fidelity, {}).items()
               if k in ("protocol", "protocol_name", "data_version", "epochs", "seeds", "second_seed")}
        meta = {**self.meta, **own, "base_fidelity": fidelity, "per_fidelity": {}}
        if "epochs" not in own:
            meta["epochs"] = _epochs_in(frame)
        return Table(name=self.name, frame=frame, meta=meta)

    def base(self) -> Table:
        return self.at(self.base_fidelity)

    @property
    def epochs(self) -> int:
        return int(self.meta.get("epochs") or _epochs_in(self.frame))

    def seed_noise(self, metric: str = "nme_image_pct") -> dict[str, Any]:
        """How much of the table is signal: over the architectures trained with two seeds, the
        Spearman rank correlation of the two seeds' final NME and the spread of their difference; and
        the share of architecture pairs (seed 0) whose NME differs by more than that noise (|diff| >
        1.96 x the sd of a seed-to-seed difference). At the base fidelity."""
        frame = self.base().frame
        done = frame[frame["status"] == Status.COMPLETE]
        wide = done.pivot_table(index="spec", columns="seed", values=metric, aggfunc="first")
        if wide.shape[1] < 2:
            return {"architectures": 0}
        pair = wide.iloc[:, :2].dropna()
        if len(pair) < 3:
            return {"architectures": int(len(pair))}
        diff = (pair.iloc[:, 0] - pair.iloc[:, 1]).to_numpy()
        sd = float(diff.std(ddof=1))
        values = wide.iloc[:, 0].dropna().to_numpy()
        gaps = np.abs(values[:, None] - values[None, :])[np.triu_indices(len(values), 1)]
        agreement = rank_correlation(pair.iloc[:, 0].to_numpy(), pair.iloc[:, 1].to_numpy())
        return {
            "metric": metric, "architectures": int(len(pair)),
            "spearman": agreement["spearman_rho"],
            "spearman_ci": [agreement["spearman_rho_ci_low"], agreement["spearman_rho_ci_high"]],
            "kendall": agreement["kendall_tau"],
            "mean_abs_diff_pp": float(np.abs(diff).mean()), "sd_diff_pp": sd,
            "spread_pp": float(values.max() - values.min()),
            "pairs_beyond_noise": float((gaps > 1.96 * sd).mean()) if len(gaps) else math.nan,
        }

    def summary(self) -> dict[str, Any]:
        """What `bench tables` prints: the base fidelity's shape, and `fidelities` (architectures
        measured at each fidelity, `realdev` those with a dev-set NME)."""
        base = self.base()
        done = base.frame[base.frame["status"] == Status.COMPLETE]
        seeds_per_spec = done.groupby("spec")["seed"].nunique()
        return {
            "name": self.name, "protocol": self.meta.get("protocol_name", ""),
            "data_version": self.meta.get("data_version", ""),
            # a table on faces today's generator no longer makes: its numbers cannot be re-run
            "reproducible": self.meta.get("data_version", "") in ("", "disk", f"synth-v{GENERATOR_VERSION}"),
            "architectures": int(done["spec"].nunique()), "rows": int(len(done)),
            "base_fidelity": self.base_fidelity, "fidelities": self.fidelities(),
            "families": sorted(done["family"].unique().tolist()),
            "seeds": int(seeds_per_spec.max()) if len(seeds_per_spec) else 0,
            "architectures_with_two_seeds": int((seeds_per_spec >= 2).sum()),
            "epochs": base.epochs,
            "size_mb_min": float(done["size_mb"].min()) if len(done) else math.nan,
            "size_mb_max": float(done["size_mb"].max()) if len(done) else math.nan,
            "size_range_mb": [float(done["size_mb"].min()), float(done["size_mb"].max())] if len(done) else [],
            "suggested_budget_mb": self.meta.get("suggested_budget_mb"),
            "nme_image_pct_best": float(done["nme_image_pct"].min()) if len(done) else math.nan,
            **{f"seed_{k}": v for k, v in self.seed_noise().items() if k in ("spearman", "spearman_ci")},
        }


def _epochs_in(frame: pd.DataFrame) -> int:
    """The last epoch with a value in this frame (a merged table has the columns of its longest fidelity)."""
    prefix = f"{CURVE_METRICS[0]}_e"
    return max((int(c[len(prefix):]) for c in frame.columns
                if c.startswith(prefix) and c[len(prefix):].isdigit() and frame[c].notna().any()), default=0)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable table metadata ({exc})") from None


REQUIRED_COLUMNS = ("spec", *DIMS, "seed", "status", "size_mb", "nme_image_pct")


def load_table(name_or_path: str | Path) -> Table:
    """A packaged table by name, or a CSV file (its JSON sidecar beside it, if any)."""
    text = str(name_or_path)
    path = Path(text)
    if not path.suffix and not path.exists():
        path = TABLES_DIR / f"{text}.csv"
        if not path.exists():
            known = ", ".join(t["name"] for t in list_tables()) or "none"
            raise ConfigError(f"--table: no packaged table {text!r} (packaged: {known}) and no such file")
    if not path.exists():
        raise ConfigError(f"--table: {path}: no such file")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable table ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: not a lightmark table (missing column(s) {', '.join(missing)})")
    sidecar = path.with_suffix(".json")
    meta = _read_json(sidecar) if sidecar.exists() else {}
    return Table(name=meta.get("name", path.stem), frame=with_fidelity(frame, meta), meta=meta)


def with_fidelity(frame: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """The frame with a `fidelity` column (a single-fidelity table's rows are all at its protocol) and
    the dev-set columns (empty where not measured), so every reader sees one format."""
    base = str(meta.get("base_fidelity") or meta.get("protocol_name") or DEFAULT_FIDELITY)
    frame = frame.copy()
    frame[FIDELITY] = frame[FIDELITY].fillna(base).astype(str) if FIDELITY in frame else base
    frame["family"] = frame["family"].fillna("hourglass").astype(str) if "family" in frame else "hourglass"
    for column in (*REALDEV_COLUMNS, *REALDEV_FACE_COLUMNS):
        if column not in frame:
            frame[column] = np.nan
    return frame


def list_tables(directory: Path = TABLES_DIR) -> list[dict[str, Any]]:
    """Summaries of the packaged tables (name, protocol, architectures, seeds, size range, ...)."""
    if not directory.is_dir():
        return []
    return [load_table(p).summary() for p in sorted(directory.glob("*.csv"))]
