"""Several `bench tabulate` runs merged into one table: one run per fidelity (a multi-fidelity table),
or several runs of one fidelity over disjoint architectures (a cross-family table: the hourglasses of
one run beside the backbones of another, trained under the same protocol).

Rows are keyed by (spec, fidelity, seed): a key found in two inputs is an error, never a silent
choice; two runs of one fidelity must share its protocol and no architecture. The base fidelity is
the one with the most architectures (the complete grid the replays need); the sidecar keeps each
fidelity's protocol, data version and train seconds (`per_fidelity`), the counts `bench tables`
prints (`fidelities`) and the CPU time of the whole table. Every fidelity
must be on the same synthetic generator: a table mixes no data versions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from lightmark import __version__
from lightmark.atomic import write_json_atomic, write_text_atomic
from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError
from lightmark.tabular.table import FIDELITY, REALDEV, REALDEV_COLUMNS, Table, fidelity_counts, load_table

KEY = ("spec", FIDELITY, "seed")
RUN_FIELDS = ("protocol", "protocol_name", "data_version", "epochs", "seeds", "second_seed", "command", "hosts")


def _details(table: Table) -> dict[str, dict[str, Any]]:
    """Each fidelity of an input with what made it: the input's own `per_fidelity`, else its top level."""
    own = table.meta.get("per_fidelity") or {}
    out = {}
    for fidelity in table.fidelity_names:
        rows = table.at(fidelity).frame
        seconds = float(rows["train_seconds"].sum())
        base = own.get(fidelity) or {k: table.meta.get(k) for k in RUN_FIELDS}
        out[fidelity] = {**base, "architectures": int(rows.loc[rows["status"] == Status.COMPLETE, "spec"].nunique()),
                         "rows": int(len(rows)), "train_seconds_total": seconds, "train_hours": seconds / 3600,
                         "source": table.name}
    return out


def merge_tables(sources: list[str | Path], name: str, out: Path | str, command: str = "",
                 budget_mb: float | None = None) -> tuple[Path, Path]:
    """Write `<out>/<name>.csv` and `.json`: the rows of every source table, one multi-fidelity table.
    `budget_mb`: its suggested budget (the replays' and `bench transfer`'s default; else the inputs')."""
    if not sources:
        raise ConfigError("bench merge: name at least one table")
    if budget_mb is not None and budget_mb <= 0:
        raise ConfigError(f"--budget-mb must be > 0, got {budget_mb}")
    tables = [load_table(s) for s in sources]
    details: dict[str, dict[str, Any]] = {}
    owner: dict[str, list[Table]] = {}
    for source, table in zip(sources, tables):
        for fidelity, detail in _details(table).items():
            detail = {**detail, "source": str(source)}
            if fidelity in details:
                detail = _same_fidelity(fidelity, details[fidelity], owner[fidelity][0], detail, table)
            owner.setdefault(fidelity, []).append(table)
            details[fidelity] = detail
    versions = {f: d.get("data_version") for f, d in details.items()}
    if len(set(versions.values())) > 1:
        raise ConfigError(f"bench merge: the inputs are on different data versions ({versions}): a table "
                          "mixes no generator versions")
    frame = pd.concat([t.frame for t in tables], ignore_index=True, sort=False)
    twice = frame[frame.duplicated(list(KEY), keep=False)]
    if len(twice):
        row = twice.iloc[0]
        raise ConfigError(f"bench merge: ({row['spec']}, {row[FIDELITY]}, seed {row['seed']}) is in two inputs")
    base = max(details, key=lambda f: (details[f]["architectures"], -list(details).index(f)))
    details |= _realdev_details(frame, tables, base, list(details))
    meta = _meta(name, frame, base, owner[base], details, tables)
    if budget_mb is not None:
        meta["suggested_budget_mb"] = budget_mb
    return _write(frame, {**meta, "command": command}, Path(out), name)


def _same_fidelity(fidelity: str, first: dict[str, Any], first_table: Table, second: dict[str, Any],
                   second_table: Table) -> dict[str, Any]:
    """Two runs of one fidelity: allowed when they share its protocol and no architecture; their counts
    and train seconds add up, and the sidecar names both sources."""
    where = f"bench merge: fidelity {fidelity!r} is in {first['source']} and in {second['source']}"
    if first.get("protocol") != second.get("protocol"):
        raise ConfigError(f"{where} under different protocols: one fidelity is one protocol")
    both = set(first_table.at(fidelity).frame["spec"]) & set(second_table.at(fidelity).frame["spec"])
    if both:
        raise ConfigError(f"{where} with common architectures ({', '.join(sorted(both)[:3])}): merge runs of one "
                          "fidelity only when their architectures differ (e.g. two families)")
    sources = [*first.get("sources", [first["source"]]), second["source"]]
    total = first["train_seconds_total"] + second["train_seconds_total"]
    return {**first, "architectures": first["architectures"] + second["architectures"],
            "rows": first["rows"] + second["rows"], "train_seconds_total": total, "train_hours": total / 3600,
            "second_seed": (first.get("second_seed") or 0) + (second.get("second_seed") or 0),
            "sources": sources, "source": " + ".join(sources)}


def _realdev_details(frame: pd.DataFrame, tables: list[Table], base: str,
                     fidelities: list[str]) -> dict[str, dict[str, Any]]:
    """`per_fidelity.realdev`: which test set, how many architectures have its NME, at each fidelity."""
    counts = fidelity_counts(frame, base)
    if REALDEV not in counts:
        return {}
    sets = {(d.get("data"), d.get("fingerprint")) for t in tables
            if (d := (t.meta.get("per_fidelity") or {}).get(REALDEV))}
    if len({fp for _, fp in sets}) > 1:
        raise ConfigError(f"bench merge: the inputs were evaluated on different test sets ({sorted(sets)}): "
                          "evaluate every run on the same --test-data")
    data, print_id = next(iter(sets), (None, None))
    measured = frame[(frame["status"] == Status.COMPLETE) & frame[list(REALDEV_COLUMNS)].notna().any(axis=1)]
    by_fidelity = {f: int(measured.loc[measured[FIDELITY] == f, "spec"].nunique()) for f in fidelities}
    return {REALDEV: {"data": data, "fingerprint": print_id, "architectures": counts[REALDEV],
                      "by_fidelity": by_fidelity}}


def _combined_space(tables: list[Table]) -> dict[str, Any] | None:
    """The space of the base fidelity: one run's, or the runs' spaces as one space across families, each
    family's dimensions taking every value any run gave them. That covering space's grid need not be
    complete (a run may add one head width for some backbones only); replays check, and `--space`
    replays a complete part."""
    spaces = [t.meta.get("space") for t in tables]
    if len(spaces) == 1 or not all(isinstance(sp, dict) for sp in spaces):
        return spaces[0]
    combined: dict[str, Any] = {"family": []}
    for space in spaces:
        parts = {k: v for k, v in space.items() if k != "family"} if "family" in space else {"hourglass": space}
        for family, dims in parts.items():
            if family not in combined["family"]:
                combined["family"].append(family)
                combined[family] = {dim: list(values) for dim, values in dims.items()}
                continue
            for dim, values in dims.items():
                combined[family][dim] = _union(combined[family].get(dim, []), values)
    return combined


def _union(old: list[Any], new: list[Any]) -> list[Any]:
    """Both lists' values once: numbers sorted, other values (attention names, booleans) in first-seen order."""
    values = list(dict.fromkeys([*old, *new]))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return sorted(values) if numeric else values


def _meta(name: str, frame: pd.DataFrame, base: str, base_tables: list[Table], details: dict[str, dict[str, Any]],
          tables: list[Table]) -> dict[str, Any]:
    done = frame[frame["status"] == Status.COMPLETE]
    seconds = float(frame["train_seconds"].sum())
    suggested = next((t.meta["suggested_budget_mb"] for t in tables if t.meta.get("suggested_budget_mb")), None)
    own = details[base]
    return {
        "name": name, "base_fidelity": base, "protocol": own.get("protocol"),
        "protocol_name": own.get("protocol_name") or base, "data_version": own.get("data_version"),
        "space": _combined_space(base_tables), "seeds": own.get("seeds"), "second_seed": own.get("second_seed"),
        "architectures": own["architectures"], "rows": int(len(frame)), "complete_rows": int(len(done)),
        "epochs": own.get("epochs"), "suggested_budget_mb": suggested,
        "fidelities": fidelity_counts(frame, base), "per_fidelity": details,
        "train_seconds_total": seconds, "train_hours": seconds / 3600,
        "written": datetime.now(UTC).isoformat(timespec="seconds"), "lightmark_version": __version__,
    }


def _write(frame: pd.DataFrame, meta: dict[str, Any], out: Path, name: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    fidelity_order = {f: i for i, f in enumerate(meta["fidelities"])}
    frame = frame.assign(_order=frame[FIDELITY].map(fidelity_order)).sort_values(
        ["_order", "seed"], kind="stable").drop(columns="_order")
    csv_path, meta_path = out / f"{name}.csv", out / f"{name}.json"
    write_text_atomic(csv_path, frame.to_csv(index=False, float_format="%.6g"))
    write_json_atomic(meta_path, meta)
    return csv_path, meta_path
