"""`lightmark bench proxies --table NAME`: zero-cost proxies of every architecture of a tabular benchmark
against its trained NME (Kendall tau, Spearman rho, bootstrap intervals), beside params and MACs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table

from lightmark.atomic import write_text_atomic
from lightmark.benchmarks.proxies import PROXIES, all_proxies, paired_difference, proxy_batch, rank_agreement
from lightmark.benchmarks.record import Status
from lightmark.cli._common import print_json, stderr_console, stdout_console
from lightmark.device import intra_op_threads
from lightmark.errors import ConfigError
from lightmark.models.spec import ModelSpec
from lightmark.search.tabular import load_table
from lightmark.training.protocol import Protocol, get_protocol


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser(
        "proxies", help="zero-cost proxies (synflow, NASWOT, grad_norm, SNIP) against a table's trained NME",
        description="Score every architecture of a tabular benchmark at initialisation, without training, "
                    "and measure how well each score ranks the trained NME (Kendall tau, Spearman rho, 95 % "
                    "bootstrap intervals), beside the trivial proxies params and MACs. Scores are cached in "
                    "--out, so a re-run only computes what is missing.")
    parser.add_argument("--table", required=True, help="a packaged table name or a table CSV")
    parser.add_argument("--batch", type=int, default=32, help="training faces per proxy batch (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-proxies"))
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def proxy_scores(table, protocol: Protocol, *, batch_size: int, seed: int, cache: Path) -> pd.DataFrame:
    specs = sorted(table.frame.loc[table.frame["status"] == Status.COMPLETE, "spec"].unique())
    done = pd.read_csv(cache) if cache.exists() else pd.DataFrame(columns=["spec", *PROXIES[:-1]])
    have = set(done["spec"])
    missing = [s for s in specs if s not in have]
    if missing:
        batch = proxy_batch(protocol, batch_size)
        rows = done.to_dict(orient="records")
        console = stderr_console()
        for i, spec in enumerate(missing, 1):
            rows.append({"spec": spec, **all_proxies(ModelSpec.parse(spec), batch, protocol, seed)})
            if i % 10 == 0 or i == len(missing):
                write_text_atomic(cache, pd.DataFrame(rows).to_csv(index=False))
                console.print(f"proxies: {len(rows)} of {len(specs)} architectures", highlight=False)
        done = pd.DataFrame(rows)
    return done[done["spec"].isin(specs)]


def run(args: argparse.Namespace) -> int:
    if args.batch < 2:
        raise ConfigError(f"--batch must be >= 2, got {args.batch}")
    with intra_op_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    protocol = Protocol.from_dict(table.meta["protocol"]) if table.meta.get("protocol") else get_protocol("tabular")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scores = proxy_scores(table, protocol, batch_size=args.batch, seed=args.seed,
                          cache=args.out / f"proxies-{table.name}-seed{args.seed}.csv")
    frame = table.frame[(table.frame["status"] == Status.COMPLETE) & (table.frame["seed"] == 0)]
    merged = frame.merge(scores, on="spec", suffixes=("", "_proxy"))
    merged["params"] = merged["params_proxy"] if "params_proxy" in merged else merged["params"]
    result = {"table": table.name, "architectures": int(len(merged)), "batch": args.batch, "seed": args.seed,
              "seconds": round(time.perf_counter() - start, 1), "proxies": {}}
    noise = table.seed_noise()
    for metric in ("nme_image_pct", "nme_inter_ocular_pct"):
        result["proxies"][metric] = {
            name: rank_agreement(merged[name].to_numpy(float), merged[metric].to_numpy(float))
            for name in PROXIES if name in merged and merged[name].notna().any()}
    result["seed_to_seed_spearman"] = noise.get("spearman")
    # the verdict: does a proxy rank better than the better of the trivial ones (paired bootstrap)?
    trivial = max(("params", "macs"), key=lambda k: result["proxies"]["nme_image_pct"].get(k, {}).get(
        "kendall_tau", -np.inf))
    result["versus_trivial"] = {"baseline": trivial, "kendall_tau_difference": {
        name: paired_difference(merged[name].to_numpy(float), merged[trivial].to_numpy(float),
                                merged["nme_image_pct"].to_numpy(float))
        for name in ("synflow", "naswot", "grad_norm", "snip") if name in merged}}
    better = [n for n, d in result["versus_trivial"]["kendall_tau_difference"].items() if d["ci_low"] > 0]
    result["versus_trivial"]["better_beyond_noise"] = better
    if args.json:
        print_json(result)
        return 0

    for metric, rows in result["proxies"].items():
        view = Table(title=f"zero-cost proxies vs trained {metric} on {table.name} ({result['architectures']} "
                           f"architectures; positive = ranks better architectures higher; 95 % bootstrap)")
        for column in ("proxy", "Kendall tau", "Spearman rho"):
            view.add_column(column)
        for name, agreement in rows.items():
            view.add_row(name, _ci(agreement, "kendall_tau"), _ci(agreement, "spearman_rho"))
        stdout_console().print(view)
    versus = result["versus_trivial"]
    for name, d in versus["kendall_tau_difference"].items():
        stdout_console().print(f"{name} - {versus['baseline']}: Kendall tau {d['difference']:+.3f} "
                               f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] (paired bootstrap)", highlight=False)
    stdout_console().print("ranks better than the trivial proxies beyond the interval: "
                           + (", ".join(versus["better_beyond_noise"]) or "none"), highlight=False)
    if result["seed_to_seed_spearman"] is not None:
        stdout_console().print(f"ceiling: the table's own seed-to-seed Spearman rho is "
                               f"{result['seed_to_seed_spearman']:.3f}", highlight=False)
    return 0


def _ci(agreement: dict, key: str) -> str:
    value = agreement[key]
    if not np.isfinite(value):
        return "-"
    return f"{value:+.3f} [{agreement[key + '_ci_low']:+.3f}, {agreement[key + '_ci_high']:+.3f}]"
