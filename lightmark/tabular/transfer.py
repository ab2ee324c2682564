"""Does a ranking at one fidelity survive at another? `lightmark bench transfer --from F1 --to F2`.

A side names a training fidelity (`tabular`, `quick`, `synth2real`: the NME on that protocol's own
held-out synthetic faces), `F@realdev` (the models trained under F, evaluated on the real-photo dev
set) or plain `realdev`: the dev-set NME of the models of the dearest fidelity (most train seconds per
architecture) whose dev-set NME covers at least 3 of the other side's architectures; the result names
which (`to_resolved`).

Over the architectures measured at both sides (each one's value: the mean over its seeds) it reports
Spearman and Kendall with 95 % percentile-bootstrap intervals over architectures
(`benchmarks.proxies.rank_correlation`, 1000 resamples, seed 0), and, among those under the budget:
the top-5 overlap, and the regret of trusting F1 (F2's NME of F1's best architecture minus F2's best,
percentage points). The regret's interval comes from the seed noise, as `tabular/families.py` draws
it: each side's sd of one seed's value is pooled over its architectures trained twice or more, and in
each of 1000 replicates (seed 0) every architecture's value is redrawn around its mean with that sd /
sqrt(its seeds); none where neither side has an architecture with two seeds. A side without one counts
as noiseless there, so the verdict calls a gap "beyond the seed noise" only when the `to` side's noise
is known (`regret_ci_counts`). (Resampling each
architecture's own seeds instead left every architecture trained once fixed: with most of them trained
once, an interval of [0.53, 0.79] pp claimed a gap "beyond the noise" on the dev set, whose seed sd is
about 5 pp.)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import ConstantInputWarning

from lightmark.benchmarks.evaluation import WORST_FACE
from lightmark.benchmarks.proxies import rank_correlation
from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError
from lightmark.tabular.table import FIDELITY, REALDEV, Table, realdev_column

MIN_COMMON = 3
TOP_K = 5
N_BOOT = 1000
BOOT_SEED = 0
METRICS = {"image": "nme_image_pct", "inter_ocular": "nme_inter_ocular_pct"}


@dataclass(frozen=True)
class Side:
    """One side of a comparison: what was asked, what it resolved to, and its values per architecture."""

    asked: str
    fidelity: str  # the training fidelity of the models
    on_realdev: bool  # evaluated on the dev set (else on the protocol's own held-out faces)
    metric: str  # nme_image_pct | nme_inter_ocular_pct
    values: dict[str, np.ndarray]  # spec -> its seeds' values, in seed order

    @property
    def resolved(self) -> str:
        return f"{self.fidelity}@{REALDEV}" if self.on_realdev else self.fidelity

    @property
    def column(self) -> str:
        return realdev_column(self.metric) if self.on_realdev else self.metric


def _rows(table: Table, fidelity: str) -> Any:
    frame = table.frame
    return frame[(frame[FIDELITY] == fidelity) & (frame["status"] == Status.COMPLETE)]


def side_values(table: Table, fidelity: str, on_realdev: bool, metric: str, seeds: int | None) -> dict[str, np.ndarray]:
    """spec -> the finite values of its first `seeds` seeds (all when None), in seed order."""
    column = realdev_column(metric) if on_realdev else metric
    rows = _rows(table, fidelity).sort_values("seed")
    out = {}
    for spec, group in rows.groupby("spec", sort=True):
        values = group[column].to_numpy(float)[:seeds]
        values = values[np.isfinite(values)]
        if len(values):
            out[str(spec)] = values
    return out


def worst_face(table: Table, side: Side, spec: str) -> dict[str, Any] | None:
    """The architecture's worst dev-set face at this side (inter-ocular NME %, mean over its seeds, and
    the face's name, the most frequent over the seeds), or None where the side is not on the dev set or
    the table predates per-face numbers. A pick with a good mean may still fail one face badly."""
    value_column = realdev_column("worst_nme_inter_ocular_pct")
    if not side.on_realdev or value_column not in table.frame:
        return None
    rows = _rows(table, side.fidelity)
    rows = rows[(rows["spec"] == spec) & rows[value_column].notna()]
    if rows.empty:
        return None
    faces = rows[realdev_column(WORST_FACE)].dropna().astype(str)
    return {"nme_inter_ocular_pct": float(rows[value_column].astype(float).mean()),
            "face": str(faces.mode().iloc[0]) if len(faces) else None, "seeds": int(len(rows))}


def dearness(table: Table, fidelity: str) -> float:
    """Train seconds per complete row: how dear a fidelity is (the dearest is `realdev`'s default)."""
    seconds = _rows(table, fidelity)["train_seconds"].to_numpy(float)
    seconds = seconds[np.isfinite(seconds)]
    return float(seconds.mean()) if len(seconds) else 0.0


def _parse(table: Table, text: str, flag: str) -> tuple[str | None, bool]:
    """(training fidelity or None for plain realdev, on the dev set?), or a ConfigError naming the flag."""
    names = table.fidelity_names
    known = ", ".join([*names, REALDEV, *(f"{f}@{REALDEV}" for f in names)])
    fidelity, at, where = text.partition("@")
    if not at and fidelity == REALDEV:
        return None, True
    if fidelity not in names or (at and where != REALDEV):
        raise ConfigError(f"{flag} {text}: table {table.name} has no fidelity {text!r} (it has: {known})")
    return fidelity, bool(at)


def resolve_side(table: Table, text: str, flag: str, metric: str | None, seeds: int | None,
                 other: set[str] | None = None) -> Side:
    """A side's values; plain `realdev` picks its fidelity against `other` (the other side's specs)."""
    fidelity, on_realdev = _parse(table, text, flag)
    metric = metric or (METRICS["inter_ocular"] if on_realdev else METRICS["image"])
    if fidelity is None:
        measured = {f: side_values(table, f, True, metric, seeds) for f in table.fidelity_names}
        measured = {f: v for f, v in measured.items() if v}
        if not measured:
            raise ConfigError(f"{flag} {text}: table {table.name} has no dev-set NME (build it with "
                              "`bench tabulate --test-data DIR`)")
        overlap = {f: len(set(v) & (other if other is not None else set(v))) for f, v in measured.items()}
        fidelity = max(measured, key=lambda f: (overlap[f] >= MIN_COMMON, dearness(table, f), overlap[f]))
    values = side_values(table, fidelity, on_realdev, metric, seeds)
    if not values:
        raise ConfigError(f"{flag} {text}: no {'dev-set ' if on_realdev else ''}NME at fidelity {fidelity} "
                          f"in table {table.name}")
    return Side(text, fidelity, on_realdev, metric, values)


def _pick(values: dict[str, float]) -> str:
    return min(values, key=lambda s: (values[s], s))


def regret(a: dict[str, float], b: dict[str, float]) -> float:
    """b's value of a's best architecture minus b's best (>= 0)."""
    return b[_pick(a)] - min(b.values())


def seed_sd(side: Side) -> tuple[float | None, int]:
    """The pooled sd of one seed's value at this side, and how many architectures it is measured on
    (those with two seeds or more); None without any."""
    repeated = [v for v in side.values.values() if len(v) > 1]
    if not repeated:
        return None, 0
    squares = sum(float(((v - v.mean()) ** 2).sum()) for v in repeated)
    return math.sqrt(squares / sum(len(v) - 1 for v in repeated)), len(repeated)


def regret_interval(src: Side, dst: Side, specs: list[str]) -> tuple[list[float] | None, str]:
    """The regret's 95 % interval over the seed noise (None when it is unknown), and how it was drawn."""
    (sd_src, n_src), (sd_dst, n_dst) = seed_sd(src), seed_sd(dst)
    if sd_src is None and sd_dst is None:
        return None, "none: no architecture at either side has a second seed"
    rng = np.random.default_rng(BOOT_SEED)

    def draws(side: Side, sd: float | None) -> np.ndarray:
        means = np.array([side.values[s].mean() for s in specs])
        scale = np.array([(sd or 0.0) / math.sqrt(len(side.values[s])) for s in specs])
        return means + rng.standard_normal((N_BOOT, len(specs))) * scale

    a, b = draws(src, sd_src), draws(dst, sd_dst)
    picked = b[np.arange(N_BOOT), a.argmin(axis=1)]
    boot = picked - b.min(axis=1)
    sd_text = "; ".join(f"{side.resolved} {sd:.2f} pp from {n} architectures" if sd is not None else
                        f"{side.resolved} unknown (taken as 0)"
                        for side, sd, n in ((src, sd_src, n_src), (dst, sd_dst, n_dst)))
    method = (f"95 % parametric bootstrap of the seed noise ({N_BOOT} replicates, seed {BOOT_SEED}): every "
              f"architecture redrawn around its mean with its side's seed sd / sqrt(its seeds); seed sd: {sd_text}")
    return [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))], method


def sizes_of(table: Table) -> dict[str, float]:
    frame = table.frame
    return frame.groupby("spec")["size_mb"].first().astype(float).to_dict()


def transfer(table: Table, source: str, target: str, *, budget_mb: float | None = None,
             seeds: int | None = None, metric: str | None = None) -> dict[str, Any]:
    """The rank transfer from `source` to `target` (fidelity names; see the module docstring)."""
    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if metric is not None and metric not in METRICS.values():
        raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if source.partition("@")[0] == REALDEV and target.partition("@")[0] == REALDEV:
        raise ConfigError("--from and --to are both plain realdev: name a fidelity on one side")
    plain_src = source == REALDEV
    first = resolve_side(table, target if plain_src else source, "--to" if plain_src else "--from", metric, seeds)
    second = resolve_side(table, source if plain_src else target, "--from" if plain_src else "--to", metric,
                          seeds, other=set(first.values))
    src, dst = (second, first) if plain_src else (first, second)
    if src.resolved == dst.resolved and src.metric == dst.metric:
        raise ConfigError(f"--from {source} --to {target}: both sides are {src.resolved}")
    common = sorted(set(src.values) & set(dst.values))
    if len(common) < MIN_COMMON:
        raise ConfigError(f"--from {source} --to {target}: {len(common)} architecture(s) measured at both "
                          f"(need >= {MIN_COMMON})")
    return _statistics(table, src, dst, common, budget_mb, seeds)


def _statistics(table: Table, src: Side, dst: Side, common: list[str], budget_mb: float | None,
                seeds: int | None) -> dict[str, Any]:
    a = {s: float(src.values[s].mean()) for s in common}
    b = {s: float(dst.values[s].mean()) for s in common}
    sizes = sizes_of(table)
    feasible = [s for s in common if budget_mb is None or sizes.get(s, math.inf) <= budget_mb]
    if not feasible:
        raise ConfigError(f"--budget-mb {budget_mb}: none of the {len(common)} architectures compared fits")
    with warnings.catch_warnings():  # a resample of a few architectures can be constant: dropped, not news
        warnings.simplefilter("ignore", ConstantInputWarning)
        rc = rank_correlation(np.array([a[s] for s in common]), np.array([b[s] for s in common]),
                              n_boot=N_BOOT, seed=BOOT_SEED)
    fa, fb = {s: a[s] for s in feasible}, {s: b[s] for s in feasible}
    pick, best = _pick(fa), _pick(fb)
    k = min(TOP_K, len(feasible))
    top_a, top_b = sorted(fa, key=lambda s: (fa[s], s))[:k], sorted(fb, key=lambda s: (fb[s], s))[:k]
    interval, method = regret_interval(src, dst, feasible)
    counted = [side.resolved for side in (src, dst) if seed_sd(side)[0] is not None] if interval else []
    result = {
        "table": table.name, "from": src.asked, "to": dst.asked, "from_resolved": src.resolved,
        "to_resolved": dst.resolved, "metric_from": src.column, "metric_to": dst.column,
        "budget_mb": budget_mb, "seeds": seeds, "n": len(common), "feasible": len(feasible),
        "spearman": rc["spearman_rho"], "spearman_ci": [rc["spearman_rho_ci_low"], rc["spearman_rho_ci_high"]],
        "kendall": rc["kendall_tau"], "kendall_ci": [rc["kendall_tau_ci_low"], rc["kendall_tau_ci_high"]],
        "top5_overlap": len(set(top_a) & set(top_b)), "top5_of": k,
        "pick": pick, "pick_value_from": fa[pick], "pick_value_to": fb[pick],
        "pick_rank_to": 1 + sum(v < fb[pick] for v in fb.values()), "best_to": best, "best_value_to": fb[best],
        "regret_pp": fb[pick] - fb[best], "regret_ci": interval,
        "regret_ci_method": method, "regret_ci_counts": counted,
        "pick_worst_face_to": worst_face(table, dst, pick), "best_worst_face_to": worst_face(table, dst, best),
        "bootstrap": {"replicates": N_BOOT, "seed": BOOT_SEED},
    }
    return {**result, "verdict": verdict(result)}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def verdict(r: dict[str, Any]) -> str:
    """One plain line: does trusting the `from` fidelity pick well at the `to` one?"""
    src, dst, lo = r["from_resolved"], r["to_resolved"], r["spearman_ci"][0]
    hi = r["spearman_ci"][1]
    rho = f"Spearman {r['spearman']:.2f}"
    ranking = (f"rankings agree ({rho}, interval above 0)" if lo > 0 else
               f"rankings are reversed ({rho}, interval below 0)" if hi < 0 else
               f"rankings agree no better than chance ({rho}, interval includes 0)")
    place = f"its pick {r['pick']} ranks {_ordinal(r['pick_rank_to'])} of {r['feasible']} at {dst}"
    if r["pick_rank_to"] == 1:
        return f"{src} transfers to {dst}: its pick {r['pick']} is also the best there; {ranking}"
    gap = f"{r['regret_pp']:.2f} pp behind {r['best_to']}"
    if r["regret_ci"] is None:
        return f"{src} may mislead: {place}, {gap} (no second seeds: the noise is unknown); {ranking}"
    if r["regret_ci"][0] > 0 and dst not in r.get("regret_ci_counts", [dst]):
        # the interval moved only the pick: the regret's own side may be noisier than the gap
        return (f"{src} may mislead: {place}, {gap}, beyond {src}'s seed noise, but {dst}'s is unknown (no "
                f"second seeds there); {ranking}")
    if r["regret_ci"][0] > 0:
        return f"{src} misleads: {place}, {gap}, beyond the seed noise; {ranking}"
    return f"{src} picks within the seed noise: {place}, {gap} (interval includes 0); {ranking}"
