"""`lightmark bench transfer`: does the ranking at one fidelity hold at another (rank correlations with
intervals, top-5 overlap, the regret of trusting the cheaper one)?"""

from __future__ import annotations

import argparse
from typing import Any

from lightmark.cli._common import print_json, stdout_console
from lightmark.tabular.table import load_table
from lightmark.tabular.transfer import METRICS, transfer


def register_bench(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transfer", help="rank transfer between two fidelities of a multi-fidelity table",
        description="Over the architectures measured at both fidelities: Spearman and Kendall with 95 % "
                    "bootstrap intervals, the top-5 overlap, and the regret of trusting --from (the --to "
                    "NME of its best architecture under the budget minus the best there), with an interval "
                    "from the seed noise. A fidelity is a protocol name (tabular, quick, synth2real), "
                    "F@realdev (the models trained under F, on the real-photo dev set), or realdev (the "
                    "dev-set NME of the dearest fidelity measured; the output names it).")
    parser.add_argument("--table", required=True, help="a packaged table name (`lightmark bench tables`) or a CSV")
    parser.add_argument("--from", dest="source", required=True, metavar="F1", help="the fidelity trusted")
    parser.add_argument("--to", dest="target", required=True, metavar="F2", help="the fidelity that counts")
    parser.add_argument("--budget-mb", type=float,
                        help="the size budget of the pick and the top-5 (default: the table's suggested budget)")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="use each architecture's first N seeds (default: all; 1: no regret interval)")
    parser.add_argument("--metric", choices=tuple(METRICS),
                        help="the NME normalisation of both sides (default: image side for the synthetic "
                             "fidelities, inter-ocular on the dev set)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    budget = args.budget_mb if args.budget_mb is not None else table.meta.get("suggested_budget_mb")
    result = transfer(table, args.source, args.target, budget_mb=budget, seeds=args.seeds,
                      metric=METRICS[args.metric] if args.metric else None)
    if args.json:
        print_json(result)
    else:
        _print(result)
    return 0


def _interval(values: list[float] | None) -> str:
    return "(no interval)" if values is None else f"[{values[0]:.2f}, {values[1]:.2f}]"


def _print(r: dict[str, Any]) -> None:
    budget = "no budget" if r["budget_mb"] is None else f"budget {r['budget_mb']:g} MiB"
    lines = [
        f"{r['table']}: {r['from_resolved']} ({r['metric_from']}) -> {r['to_resolved']} ({r['metric_to']}), "
        f"{r['n']} architectures measured at both, {r['feasible']} under the {budget}",
        f"  Spearman {r['spearman']:.2f} {_interval(r['spearman_ci'])}   Kendall {r['kendall']:.2f} "
        f"{_interval(r['kendall_ci'])}   (95 % bootstrap over architectures)",
        f"  top-5 overlap {r['top5_overlap']} of {r['top5_of']}",
        f"  regret {r['regret_pp']:.2f} pp {_interval(r['regret_ci'])}: {r['from_resolved']}'s pick {r['pick']} "
        f"makes {r['pick_value_to']:.2f} at {r['to_resolved']}, the best there {r['best_to']} "
        f"{r['best_value_to']:.2f} (interval: {r['regret_ci_method']})",
        *_worst_lines(r),
        f"  verdict: {r['verdict']}",
    ]
    stdout_console().print("\n".join(lines), highlight=False, soft_wrap=True)


def _worst_lines(r: dict[str, Any]) -> list[str]:
    """Beside the means, each pick's worst dev-set face (where the `to` side is on the dev set)."""
    lines = []
    for label, spec, worst in (("pick", r["pick"], r.get("pick_worst_face_to")),
                               ("best", r["best_to"], r.get("best_worst_face_to"))):
        if worst is not None:
            lines.append(f"  worst face at {r['to_resolved']}: {label} {spec} {worst['nme_inter_ocular_pct']:.2f} % "
                         f"inter-ocular ({worst['face']}; mean over {worst['seeds']} seed(s))")
    return lines
