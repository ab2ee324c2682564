"""`lightmark protocols [NAME] [--json]`: the protocol presets (smoke, quick, paper) with every field."""

from __future__ import annotations

import argparse

from rich.table import Table

from lightmark.cli._common import print_json, stdout_console
from lightmark.training.protocol import PROTOCOLS, get_protocol


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("protocols", help="print the protocol presets",
                                   description="Print the protocol presets; override any field with "
                                               "--set key=value or --protocol-file on other commands.")
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these presets")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(func=run)


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def run(args: argparse.Namespace) -> int:
    names = args.names or list(PROTOCOLS)
    protocols = {name: get_protocol(name).to_dict() for name in names}
    if args.json:
        print_json(protocols)
        return 0
    flat = {name: _flat(d) for name, d in protocols.items()}
    table = Table(title="protocol presets (override: --set key=value, --protocol-file F.toml)")
    table.add_column("field")
    for name in names:
        table.add_column(name, justify="right")
    for key in flat[names[0]]:
        table.add_row(key, *[str(flat[n].get(key)) for n in names])
    stdout_console().print(table)
    return 0
