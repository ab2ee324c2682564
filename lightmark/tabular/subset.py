"""Which architectures a dearer fidelity trains: a subset that spans the space.

A higher fidelity (`quick`, `synth2real`) costs 10-50 times the base one per architecture, so it trains
a subset, and the subset decides what the transfer can show. `spanning_subset` takes, by the base
fidelity's ranking: the best third among those under the budget (where a search's pick comes from),
then the rest spread evenly from the best remaining to the very worst (the middle and the bottom, so
rank correlations see the whole range), and then swaps in the best-ranked architecture of every value
of every dimension still missing (every stack count, attention, CoordConv, depth and width appears).
Or the user names the architectures in a file (`--specs FILE`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError, SpecError
from lightmark.models.spec import ModelSpec
from lightmark.search.space import DIMS
from lightmark.tabular.table import Table, load_table

MIN_SUBSET = 3
TOP_SHARE = 1 / 3  # of the subset: the best under the budget


def ranked_architectures(table: Table, metric: str = "nme_image_pct") -> pd.DataFrame:
    """spec, size_mb and `value` (the mean over seeds of `metric`) of every complete architecture at the
    table's base fidelity, best first (ties by name, so the order is reproducible)."""
    frame = table.base().frame
    done = frame[(frame["status"] == Status.COMPLETE) & frame[metric].notna()]
    if done.empty:
        raise ConfigError(f"--subset-table {table.name}: no complete rows to rank")
    ranked = done.groupby("spec").agg(size_mb=("size_mb", "first"), value=(metric, "mean")).reset_index()
    return ranked.sort_values(["value", "spec"], kind="stable").reset_index(drop=True)


def _values(spec: str) -> set[tuple[str, object]]:
    parsed = ModelSpec.parse(spec)
    return {(dim, getattr(parsed, dim)) for dim in DIMS}


def spanning_subset(ranked: pd.DataFrame, n: int, budget_mb: float | None = None) -> tuple[str, ...]:
    """`n` architectures of `ranked` (best first; columns spec, size_mb): the top third under the budget,
    the rest spread evenly down to the worst, every dimension's values covered. In rank order."""
    if n < MIN_SUBSET:
        raise ConfigError(f"--subset must be >= {MIN_SUBSET}, got {n}")
    order = list(ranked["spec"])
    if n >= len(order):
        return tuple(order)
    feasible = [s for s, size in zip(order, ranked["size_mb"]) if budget_mb is None or size <= budget_mb]
    top = feasible[:math.ceil(n * TOP_SHARE)]
    rest = [s for s in order if s not in top]
    m = n - len(top)
    spread = [rest[round(i * (len(rest) - 1) / (m - 1))] for i in range(m)] if m > 1 else rest[-1:]
    chosen = list(dict.fromkeys(top + spread))
    for extra in (s for s in rest if s not in chosen):  # fill up where rounding picked one twice
        if len(chosen) >= n:
            break
        chosen.append(extra)
    chosen = _cover_every_value(order, chosen, fixed={*top, order[-1]})
    return tuple(sorted(chosen, key=order.index))


def _cover_every_value(order: list[str], chosen: list[str], fixed: set[str]) -> list[str]:
    """Swap in the best-ranked architecture of each missing (dimension, value), replacing the spread
    pick nearest in rank whose values are all carried by another chosen one."""
    every = set().union(*(_values(s) for s in order))
    chosen = list(chosen)
    for missing in sorted(every - set().union(*(_values(s) for s in chosen)), key=str):
        if missing in set().union(*(_values(s) for s in chosen)):
            continue  # an earlier swap brought it in
        incoming = next(s for s in order if missing in _values(s) and s not in chosen)
        counts: dict[tuple[str, object], int] = {}
        for spec in chosen:
            for value in _values(spec):
                counts[value] = counts.get(value, 0) + 1
        removable = [s for s in chosen if s not in fixed and all(counts[v] > 1 for v in _values(s))]
        if removable:
            chosen.remove(min(removable, key=lambda s: abs(order.index(s) - order.index(incoming))))
        chosen.append(incoming)
    return chosen


def read_specs_file(path: Path | str) -> tuple[ModelSpec, ...]:
    """The architectures of a `--specs` file: one spec a line (`s2-d4-c128-ca-cc`), `#` comments."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"--specs {path}: unreadable ({exc})") from None
    specs = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            specs.append(ModelSpec.parse(text))
        except SpecError as exc:
            raise ConfigError(f"--specs {path}:{number}: {exc}") from None
    if not specs:
        raise ConfigError(f"--specs {path}: no architecture in it")
    return tuple(specs)


def choose_subset(specs_file: Path | None, n: int | None, table: str | None,
                  budget_mb: float | None) -> tuple[ModelSpec, ...] | None:
    """What `bench tabulate` trains: `--specs FILE`, or `--subset N` of `--subset-table` (ranked at its
    base fidelity, under `--budget-mb`, default the table's suggested budget), or None: the whole space."""
    if specs_file is not None and n is not None:
        raise ConfigError("--specs and --subset: give one of them")
    if (n is None) != (table is None):
        raise ConfigError("--subset N needs --subset-table TABLE (the table that ranks the space), and "
                          "--subset-table needs --subset")
    if budget_mb is not None and n is None:
        raise ConfigError("--budget-mb picks the top third of --subset N: give --subset")
    if specs_file is not None:
        return read_specs_file(specs_file)
    if n is None or table is None:
        return None
    ranking = load_table(table)
    budget = budget_mb if budget_mb is not None else ranking.meta.get("suggested_budget_mb")
    return tuple(ModelSpec.parse(s) for s in spanning_subset(ranked_architectures(ranking), n, budget))
