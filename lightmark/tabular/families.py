"""Which model family wins at a given size: a cross-family table read band by band.

Per size band, each family's best architecture (mean NME over its seeds) and a parametric bootstrap
of the seed noise: every architecture's NME is redrawn around its mean with the seed-to-seed sd of
its family (measured on the architectures trained twice; one pooled sd where a family has too few),
divided by sqrt(its seeds), and each family's best in the band is taken again.

The best of many noisy architectures looks better than it is (the winner's curse), and the more
architectures a family has near its top, the more: the redrawn bests sit below the observed ones by
that family's `selection_bias_pp`. The intervals are therefore pivotal (basic) bootstrap intervals:
each round's best of family f is corrected to 2 x observed_f - redrawn_f, so a family is not
favoured for having many near-ties. (The plain percentile interval was not: on the dev set it put
the hourglass's 1.4 pp margin in [2.5, 14.6].) The margin's 95 % interval and each family's share of
wins (over the corrected rounds) say whether the winner is noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError
from lightmark.tabular.table import Table

DEFAULT_BANDS = (0.0, 0.25, 0.5, 0.75, 1.2)  # MiB; the hourglass table spans 0.13-1.1
MIN_PAIRS = 4  # architectures with two seeds before a family's own sd is used
ROUNDS = 2000


@dataclass(frozen=True)
class Architecture:
    spec: str
    family: str
    size_mb: float
    nme: float  # mean over seeds, % of image side
    seeds: int


def architectures(table: Table, metric: str = "nme_image_pct") -> list[Architecture]:
    """The base fidelity's completed architectures, NME averaged over seeds."""
    frame = table.base().frame
    done = frame[(frame["status"] == Status.COMPLETE) & frame[metric].notna()]
    if done.empty:
        raise ConfigError(f"table {table.name}: no completed rows with {metric}")
    grouped = done.groupby("spec").agg(family=("family", "first"), size_mb=("size_mb", "first"),
                                       nme=(metric, "mean"), seeds=(metric, "size"))
    return [Architecture(str(spec), str(row.family), float(row.size_mb), float(row.nme), int(row.seeds))
            for spec, row in grouped.iterrows()]


def seed_sd(table: Table, metric: str = "nme_image_pct") -> dict[str, Any]:
    """The sd of one seed's NME, per family (sd of the two seeds' difference / sqrt 2), pooled where a
    family has fewer than MIN_PAIRS architectures trained twice."""
    frame = table.base().frame
    done = frame[(frame["status"] == Status.COMPLETE) & frame[metric].notna()]
    wide = done.pivot_table(index=["family", "spec"], columns="seed", values=metric, aggfunc="first")
    pairs = wide.iloc[:, :2].dropna() if wide.shape[1] >= 2 else wide.iloc[:0]
    diffs = (pairs.iloc[:, 0] - pairs.iloc[:, 1]) if len(pairs) else pd.Series(dtype=float)
    if len(diffs) < 2:
        raise ConfigError(f"table {table.name}: fewer than 2 architectures trained with two seeds; the seed "
                          "noise cannot be measured (tabulate with --second-seed)")
    pooled = float(diffs.std(ddof=1) / math.sqrt(2))
    families = sorted({a.family for a in architectures(table, metric)})
    per_family, pairs_per_family = {}, {}
    for family in families:
        own = diffs[diffs.index.get_level_values("family") == family]
        pairs_per_family[family] = int(len(own))
        per_family[family] = float(own.std(ddof=1) / math.sqrt(2)) if len(own) >= MIN_PAIRS else pooled
    return {"pooled": pooled, "per_family": per_family, "pairs": pairs_per_family}


def band_winners(table: Table, bands: tuple[float, ...] = DEFAULT_BANDS, *, rounds: int = ROUNDS, seed: int = 0,
                 metric: str = "nme_image_pct") -> dict[str, Any]:
    """Each band's best architecture per family, the winner, its margin with a 95 % interval and the
    share of bootstrap rounds each family wins."""
    if len(bands) < 2 or any(b >= a for a, b in zip(bands[1:], bands)):
        raise ConfigError(f"--bands must be at least two increasing sizes in MiB, got {list(bands)}")
    archs = architectures(table, metric)
    noise = seed_sd(table, metric)
    rng = np.random.default_rng(seed)
    rows = []
    for low, high in zip(bands, bands[1:]):
        inside = [a for a in archs if low <= a.size_mb < high]
        families = sorted({a.family for a in inside})
        best = {f: min((a for a in inside if a.family == f), key=lambda a: a.nme) for f in families}
        row: dict[str, Any] = {"band_mb": [low, high], "architectures": len(inside),
                               "families": {f: {"spec": b.spec, "size_mb": b.size_mb, "nme": b.nme,
                                                "architectures": sum(a.family == f for a in inside)}
                                            for f, b in best.items()}}
        if len(families) >= 2:
            row.update(_bootstrap(inside, families, noise["per_family"], rng, rounds))
        elif families:
            row.update(winner=families[0], contested=False)
        rows.append(row)
    return {"table": table.name, "metric": metric, "bands": rows, "seed_sd_pp": noise, "rounds": rounds,
            "families": sorted({a.family for a in archs})}


def _bootstrap(inside: list[Architecture], families: list[str], sd: dict[str, float],
               rng: np.random.Generator, rounds: int) -> dict[str, Any]:
    means = np.array([a.nme for a in inside])
    scale = np.array([sd[a.family] / math.sqrt(a.seeds) for a in inside])
    family_index = np.array([families.index(a.family) for a in inside])
    draws = means + rng.standard_normal((rounds, len(inside))) * scale
    best = np.full((rounds, len(families)), np.inf)
    for f in range(len(families)):
        best[:, f] = draws[:, family_index == f].min(axis=1)
    observed = np.array([means[family_index == f].min() for f in range(len(families))])
    order = np.argsort(observed)
    winner, runner_up = order[0], order[1]
    corrected = 2 * observed - best  # pivotal: each round's best with its selection bias taken out
    margin = corrected[:, runner_up] - corrected[:, winner]  # > 0: the winner still wins
    wins = np.bincount(corrected.argmin(axis=1), minlength=len(families)) / rounds
    low, high = np.percentile(margin, [2.5, 97.5])
    bias = observed - best.mean(axis=0)
    return {
        "winner": families[winner], "runner_up": families[runner_up],
        "margin_pp": float(observed[runner_up] - observed[winner]), "margin_corrected_pp": float(margin.mean()),
        "margin_ci_pp": [float(low), float(high)],
        "win_share": {f: float(w) for f, w in zip(families, wins)},
        "selection_bias_pp": {f: float(b) for f, b in zip(families, bias)},
        "contested": bool(low <= 0.0),
    }
