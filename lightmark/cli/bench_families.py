"""`lightmark bench families`: which model family wins in each size band of a cross-family table,
with intervals from the seed noise, and the frontier coloured by family."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lightmark.cli._common import parse_floats, print_json, stdout_console
from lightmark.reports.family_plot import plot_family_frontier
from lightmark.tabular.families import DEFAULT_BANDS, ROUNDS, architectures, band_winners
from lightmark.tabular.table import load_table

YLABELS = {"nme_image_pct": "NME, % of image side (lower is better)",
           "nme_inter_ocular_pct": "NME, % of inter-ocular distance (lower is better)",
           "realdev_nme_inter_ocular_pct": "real-photo dev set NME, % inter-ocular (lower is better)",
           "realdev_nme_image_pct": "real-photo dev set NME, % of image side (lower is better)"}
METRICS = tuple(YLABELS)


def register_bench(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "families", help="which model family wins in each size band of a cross-family table",
        description="Per size band: each family's best architecture (mean NME over seeds), the winner, its "
                    "margin over the runner-up as measured and corrected for selection (the best of many noisy "
                    "architectures flatters a family with many near-ties) with a 95 % interval, and each "
                    "family's share of wins, from a pivotal parametric bootstrap of the seed noise (each "
                    "family's seed-to-seed sd, measured on its architectures trained twice). A band is "
                    "contested when the interval reaches 0.")
    parser.add_argument("--table", required=True, help="a packaged table name (`lightmark bench tables`) or a CSV")
    parser.add_argument("--bands", default=",".join(f"{b:g}" for b in DEFAULT_BANDS),
                        help="band edges in MiB, increasing (default: %(default)s)")
    parser.add_argument("--metric", choices=METRICS, default=METRICS[0],
                        help="which NME: on the protocol's held-out synthetic faces (image side or inter-ocular) "
                             "or the same models on the real-photo dev set (realdev_*, where the table has it) "
                             "(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="bootstrap rounds (default: %(default)s)")
    parser.add_argument("--plot", type=Path, help="write the frontier coloured by family to this PNG")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    bands = tuple(parse_floats(args.bands, "--bands"))
    result = band_winners(table, bands, rounds=args.rounds, metric=args.metric)
    if args.plot:
        result["plot"] = str(plot_family_frontier(architectures(table, args.metric), args.plot, bands=bands,
                                                  title=f"{table.name}: NME against size, by family",
                                                  ylabel=YLABELS[args.metric]))
    if args.json:
        print_json(result)
    else:
        stdout_console().print("\n".join(_lines(result)), highlight=False, soft_wrap=True)
    return 0


def _lines(r: dict[str, Any]) -> list[str]:
    sd = ", ".join(f"{f} {v:.2f}" for f, v in r["seed_sd_pp"]["per_family"].items())
    lines = [f"{r['table']}: best NME per family in each size band ({r['metric']}, mean over seeds); "
             f"seed sd (pp): {sd}"]
    for band in r["bands"]:
        low, high = band["band_mb"]
        head = f"  {low:g}-{high:g} MiB, {band['architectures']} architectures:"
        if not band["families"]:
            lines.append(head + " none")
            continue
        best = "; ".join(f"{f} {b['spec']} {b['nme']:.2f}" for f, b in sorted(
            band["families"].items(), key=lambda item: item[1]["nme"]))
        lines.append(f"{head} {best}")
        if "margin_pp" in band:
            verdict = "contested (the interval reaches 0)" if band["contested"] else "wins beyond the seed noise"
            share = ", ".join(f"{f} {s:.0%}" for f, s in band["win_share"].items())
            lines.append(f"    {band['winner']} by {band['margin_pp']:.2f} pp over {band['runner_up']} as measured, "
                         f"{band['margin_corrected_pp']:.2f} pp [{band['margin_ci_pp'][0]:.2f}, "
                         f"{band['margin_ci_pp'][1]:.2f}] corrected for selection: {verdict}; wins {share}")
    if "plot" in r:
        lines.append(f"frontier: {r['plot']}")
    return lines
