"""Helpers shared by the commands: JSON output, the rich console, spec/protocol arguments."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from lightmark.atomic import json_safe


def stderr_console() -> Console:
    """Progress and tables for people go to stderr when --json owns stdout."""
    return Console(stderr=True)


def stdout_console() -> Console:
    return Console()


def print_json(data: Any) -> None:
    """Strict JSON (NaN/inf become null) on stdout."""
    json.dump(json_safe(data), sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def add_protocol_args(parser: argparse.ArgumentParser, default: str = "quick") -> None:
    """--protocol NAME, --protocol-file TOML, --set key=value (repeatable), --data DIR."""
    parser.add_argument("--protocol", default=default, help="smoke | quick | paper (default: %(default)s)")
    parser.add_argument("--protocol-file", type=Path, help="TOML file overriding protocol fields")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one protocol field, e.g. --set epochs=3 --set augment.erase=true",
    )
    parser.add_argument("--data", help="a dataset directory (challenge layout or .pts); default: synthetic faces")


def protocol_from_args(args: argparse.Namespace):
    """Build the Protocol named by add_protocol_args' flags."""
    from lightmark.landmarks.protocol import get_protocol

    protocol = get_protocol(args.protocol)
    if getattr(args, "protocol_file", None):
        protocol = protocol.override_from_toml(args.protocol_file)
    if getattr(args, "overrides", None):
        protocol = protocol.override_from_strings(args.overrides)
    if getattr(args, "data", None):
        protocol = protocol.override({"data": str(Path(args.data).resolve())})
    return protocol
