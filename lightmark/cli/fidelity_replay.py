"""`lightmark bench search --table T --fidelities cheap,dear`: a two-fidelity search replayed on a
multi-fidelity table, beside TPE at each single fidelity at equal compute (lightmark/tabular/multifidelity.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.table import Table

from lightmark.cli._common import comma_list, parse_seeds, print_json, stderr_console, stdout_console
from lightmark.errors import ConfigError
from lightmark.tabular.multifidelity import replay_multifidelity, two_fidelities
from lightmark.tabular.replay_bench import default_budget
from lightmark.tabular.table import load_table


def run_fidelity_replay(args: argparse.Namespace) -> int:
    if not args.table:
        raise ConfigError("--fidelities replays on a multi-fidelity table: give --table NAME|FILE")
    table = load_table(args.table)
    budget = default_budget(table) if args.budget_mb is None else args.budget_mb
    if budget <= 0:
        raise ConfigError(f"--budget-mb must be > 0, got {budget}")
    two = two_fidelities(table, comma_list(args.fidelities), budget_mb=budget, metric=args.metric)
    start = time.perf_counter()
    result = replay_multifidelity(two, n_trials=args.n_trials or 40, promote=args.promote,
                                  seeds=parse_seeds(args.seeds or "100"), startup_trials=args.startup_trials,
                                  workers=args.workers)
    result = {"table": table.name, **result, "seconds": round(time.perf_counter() - start, 2)}
    if args.json:
        print_json(result)
    else:
        _print(result)
    stderr_console().print(f"{result['seeds']} seeds replayed in {result['seconds']:.1f} s", highlight=False)
    return 0


def _print(r: dict[str, Any]) -> None:
    view = Table(title=f"two-fidelity search on {r['table']}: TPE at {r['cheap']} for {r['n_trials']} trials, its "
                       f"best {r['promote']} trained at {r['dear']}; regret at {r['dear']} (pp of {r['metric']}), "
                       f"mean ± 95 % interval over {r['seeds']} seeds; budget {r['budget_mb']:g} MiB, "
                       f"{r['feasible_architectures']} of the {r['architectures']} architectures measured at both "
                       "feasible")
    for column in ("search", "regret", "train seconds", f"trainings {r['cheap']}", f"trainings {r['dear']}",
                   "P(best)", "multi-fidelity minus arm"):
        view.add_column(column, justify="right")
    for arm in r["arms"]:
        versus = r["versus"].get(arm["arm"])
        view.add_row(arm["label"], _cell(arm["regret_pp"]), f"{arm['seconds_mean']:.0f}",
                     f"{arm['trainings_cheap_mean']:.1f}", f"{arm['trainings_dear_mean']:.1f}",
                     f"{arm['p_best']:.2f}", _cell(versus) if versus else "-")
    console = stdout_console()
    console.width = max(console.width, 150)
    console.print(view)
    console.print(f"over {r['universe']}; equal compute: each single-fidelity study stops before the training "
                  f"that would pass the multi-fidelity search's seconds (same seed)", highlight=False)
    capped = [a["label"] for a in r["arms"] if a["capped"] > 0]
    if capped:
        console.print(f"stopped by the trial cap with compute left in some seeds: {', '.join(capped)}",
                      highlight=False)
    console.print(f"verdict: {r['verdict']}", highlight=False)


def _cell(item: dict[str, float]) -> str:
    return f"{item['mean']:.3f}±{(item['ci_high'] - item['ci_low']) / 2:.3f}"
