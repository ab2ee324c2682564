"""Zero-cost proxies against a tabular benchmark: every architecture scored at initialisation, beside
its trained NME in the table.

`evaluate_proxies` is `lightmark bench proxies`: how well each score ranks the trained NME (Kendall tau,
Spearman rho, bootstrap intervals) and whether it ranks better than the trivial proxies (params, MACs)
beyond a paired bootstrap's interval. `table_proxy_scores` is what `bench search --prescreen` replays
with: the scores packaged beside the table, else computed and cached as `bench proxies` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightmark.benchmarks.proxies import PROXIES, paired_difference, proxy_scores, rank_agreement
from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError
from lightmark.tabular.table import TABLES_DIR, Table
from lightmark.training.protocol import Protocol, get_protocol

SCORED = ("synflow", "naswot", "grad_norm", "snip")  # the proxies that look at the network, not its size
TRIVIAL = ("params", "macs")
METRICS = ("nme_image_pct", "nme_inter_ocular_pct")
DEFAULT_BATCH = 32
PACKAGED_DIR = TABLES_DIR / "proxies"  # <table name>.csv: the packaged tables' scores (seed 0, batch 32)


def table_protocol(table: Table) -> Protocol:
    """The protocol the table was trained under (its metadata), else `tabular`."""
    return Protocol.from_dict(table.meta["protocol"]) if table.meta.get("protocol") else get_protocol("tabular")


def score_table(table: Table, out: Path, *, batch_size: int = DEFAULT_BATCH, seed: int = 0,
                on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The proxies of every complete architecture of the table, cached in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    frame = table.base().frame
    specs = frame.loc[frame["status"] == Status.COMPLETE, "spec"].unique()
    return proxy_scores(specs, table_protocol(table), batch_size=batch_size, seed=seed,
                        cache=out / f"proxies-{table.name}-seed{seed}.csv", on_progress=on_progress)


def table_proxy_scores(table: Table, proxy: str, out: Path,
                       on_progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """spec -> score of one proxy: packaged beside the table, else computed (and cached in `out`)."""
    packaged = PACKAGED_DIR / f"{table.name}.csv"
    frame = pd.read_csv(packaged) if packaged.exists() else score_table(table, out, on_progress=on_progress)
    if proxy not in frame:
        raise ConfigError(f"{packaged}: no {proxy!r} column")
    return dict(zip(frame["spec"].astype(str), frame[proxy].astype(float)))


def _versus_trivial(merged: pd.DataFrame, proxies: dict[str, dict]) -> dict[str, Any]:
    """Does a proxy rank better than the better of the trivial ones? (paired bootstrap of Kendall tau)"""
    trivial = max(TRIVIAL, key=lambda k: proxies["nme_image_pct"].get(k, {}).get("kendall_tau", -np.inf))
    differences = {
        name: paired_difference(merged[name].to_numpy(float), merged[trivial].to_numpy(float),
                                merged["nme_image_pct"].to_numpy(float))
        for name in SCORED if name in merged}
    return {"baseline": trivial, "kendall_tau_difference": differences,
            "better_beyond_noise": [n for n, d in differences.items() if d["ci_low"] > 0]}


def evaluate_proxies(table: Table, out: Path, *, batch_size: int = DEFAULT_BATCH, seed: int = 0,
                     on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Every proxy's rank agreement with the table's trained NME (seed-0 rows), the table's own seed
    noise as the ceiling, and which proxies beat the trivial ones."""
    if batch_size < 2:
        raise ConfigError(f"--batch must be >= 2, got {batch_size}")
    start = time.perf_counter()
    scores = score_table(table, out, batch_size=batch_size, seed=seed, on_progress=on_progress)
    base = table.base().frame
    frame = base[(base["status"] == Status.COMPLETE) & (base["seed"] == 0)]
    merged = frame.merge(scores, on="spec", suffixes=("", "_proxy"))
    merged["params"] = merged["params_proxy"] if "params_proxy" in merged else merged["params"]
    proxies = {
        metric: {name: rank_agreement(merged[name].to_numpy(float), merged[metric].to_numpy(float))
                 for name in PROXIES if name in merged and merged[name].notna().any()}
        for metric in METRICS}
    return {"table": table.name, "architectures": int(len(merged)), "batch": batch_size, "seed": seed,
            "seconds": round(time.perf_counter() - start, 1), "proxies": proxies,
            "seed_to_seed_spearman": table.seed_noise().get("spearman"),
            "versus_trivial": _versus_trivial(merged, proxies)}
