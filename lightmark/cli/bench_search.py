"""`lightmark bench search`: compare samplers (and pruners), two ways.

- `--table NAME|FILE`: replay real Optuna studies on a tabular benchmark (no training): 100 seeds of
  every sampler x pruner in about a minute, regret with 95 % intervals against trials and epochs, the
  chance of finding the top-1 and a top-5 % architecture, and the paper's hand design beside them.
- `--table NAME --fidelities cheap,dear [--promote K]`: replay a two-fidelity search on a multi-fidelity
  table (TPE at the cheap fidelity, its best K retrained at the dear one) beside TPE at each single
  fidelity at equal compute (`cli/fidelity_replay.py`, `tabular/multifidelity.py`).
- without `--table`: real searches that train (the way to check a replay against reality). Every
  (sampler, seed) run is its own study, but all share one candidate cache: an architecture is trained
  once under the protocol however many runs propose it, so the comparison measures what each sampler
  chooses, not training noise, and costs only the distinct candidates.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lightmark.cli._common import comma_list, parse_seeds, print_json, stderr_console
from lightmark.cli.fidelity_replay import run_fidelity_replay
from lightmark.cli.replay import run_replay
from lightmark.cli.search import RUNNER_ENV, SIZER_ENV
from lightmark.tabular.sampler_bench import bench_space, run_bench
from lightmark.training.protocol import get_protocol


def register_bench(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="samplers and pruners compared: replayed on a tabular benchmark (--table), or trained",
        description="With --table: replay Optuna studies on a tabular benchmark (no training) and print the "
                    "regret of every sampler x pruner with 95 % intervals. Without: train real searches "
                    "(TPE vs random on the smoke protocol) to check a replay against reality.")
    parser.add_argument("--table", help="a packaged table name (`lightmark bench tables`) or a table CSV")
    parser.add_argument("--n-trials", type=int, help="trials per study (default: 40 with --table, else 12)")
    parser.add_argument("--seeds", help="N (seeds 0..N-1) or a list 0,1,2 (default: 100 with --table, "
                                        "else 0,1,2)")
    parser.add_argument("--samplers", help="default: tpe,random,nsga2 with --table, else tpe,random")
    parser.add_argument("--pruners", help="with --table (default: none,median,hyperband; with --objectives "
                                          "nme,size: none,pareto); training runs do not prune")
    parser.add_argument("--objectives", default="nme", choices=("nme", "nme,size"),
                        help="with --table: one objective (regret) or NME and size (hypervolume, the Pareto "
                             "pruner's epochs saved) (default %(default)s)")
    parser.add_argument("--budget-mb", type=float,
                        help="size budget, MiB (default: the table's suggested budget; 1.0 when training)")
    parser.add_argument("--metric", default="nme_image_pct", choices=("nme_image_pct", "nme_inter_ocular_pct"),
                        help="with --table: the value each trial minimises (default %(default)s)")
    parser.add_argument("--startup-trials", type=int, help="TPE random start-up trials (default: the search's)")
    parser.add_argument("--prescreen", metavar="PROXY:K",
                        help="with --table: also replay every sampler x pruner with `search --prescreen PROXY:K` "
                             "(the start-up trials chosen by the proxy among K random feasible architectures)")
    parser.add_argument("--fidelities", metavar="CHEAP,DEAR",
                        help="with --table: replay a two-fidelity search (TPE at CHEAP for --n-trials trials, "
                             "its best --promote trained at DEAR, the pick made there) beside TPE at each "
                             "single fidelity at equal compute (the table's train seconds)")
    parser.add_argument("--promote", type=int, default=5, metavar="K",
                        help="with --fidelities: architectures promoted to the dear fidelity (default %(default)s)")
    parser.add_argument("--plot", type=Path, help="with --table: the anytime plot (default: in --out)")
    parser.add_argument("--workers", type=int, help="with --table: replay processes (default: one per core)")
    parser.add_argument("--protocol", default="smoke")
    parser.add_argument("--space", type=Path, help="search-space TOML (default: the full space; with --table: "
                                                   "replay only its architectures, all of which the table holds)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-search"))
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=cmd_bench_search)


def cmd_bench_search(args: argparse.Namespace) -> int:
    if args.fidelities:
        return run_fidelity_replay(args)
    if args.table:
        return run_replay(args)
    console = stderr_console()
    protocol = get_protocol(args.protocol)
    seeds = parse_seeds(args.seeds or "0,1,2")
    samplers = comma_list(args.samplers or "tpe,random")
    n_trials = args.n_trials or 12
    space, budget = bench_space(protocol, args.space, 1.0 if args.budget_mb is None else args.budget_mb,
                                sizer=os.environ.get(SIZER_ENV) or None)
    console.print(f"bench search: {', '.join(samplers)} x seeds {seeds}, {n_trials} trials "
                  f"each, protocol {protocol.name}, {budget.describe()}; space {space.describe()}",
                  highlight=False)

    def on_row(row: dict) -> None:
        console.print(f"{row['sampler']:>6} seed {row['seed']}: best {row['best_spec']} NME "
                      f"{_fmt(row['best_nme_image_pct'])} %, {row['feasible']} feasible, "
                      f"{row['infeasible']} over budget", highlight=False)

    result = run_bench(n_trials=n_trials, seeds=seeds, samplers=samplers, protocol=protocol, space=space,
                       budget=budget, out=args.out, device=args.device,
                       runner=os.environ.get(RUNNER_ENV) or None, on_row=on_row)
    _print(result, samplers, seeds, console)
    if args.json:
        print_json(result)
    return 0


def _print(result: dict[str, Any], samplers: list[str], seeds: list[int], console: Console) -> None:
    table = Table(title=f"best feasible NME (% of image side), {result['n_trials']} trials, "
                        f"{result['protocol']}, budget {result['budget_mb']:g} MiB")
    table.add_column("seed")
    for sampler in samplers:
        table.add_column(sampler, justify="right")
    for seed in seeds:
        cells = [_fmt(next(r["best_nme_image_pct"] for r in result["rows"]
                           if r["sampler"] == s and r["seed"] == seed)) for s in samplers]
        table.add_row(str(seed), *cells)
    table.add_row("mean", *[_fmt(result["mean_best_nme_image_pct"][s]) for s in samplers])
    console.print(table)
    console.print(f"{result['trainings']} distinct candidates trained (shared cache); slowest "
                  f"budget check {_fmt(result['budget_check_ms_max'])} ms", highlight=False)
    if result["tpe_at_least_as_good"] is not None:
        console.print("TPE at least as good as random on average: "
                      f"{'yes' if result['tpe_at_least_as_good'] else 'NO'}", highlight=False)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"
