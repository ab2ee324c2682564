"""Helpers shared by the commands: JSON output, the rich console, spec/protocol arguments."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from lightmark.atomic import json_safe
from lightmark.device import precision_warning, resolve_device
from lightmark.errors import ConfigError
from lightmark.training.protocol import PROTOCOLS, Protocol, get_protocol


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


def parse_seeds(text: str) -> list[int]:
    """"100" -> seeds 0..99; "0,1,2" -> those seeds."""
    try:
        if "," not in text:
            count = int(text)
            if count < 1:
                raise ConfigError(f"--seeds must be >= 1, got {count}")
            return list(range(count))
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected a count like 100 or a list like 0,1,2") from None


def parse_floats(text: str, flag: str) -> list[float]:
    """"0,0.25,0.5" -> [0.0, 0.25, 0.5]; the error names the flag."""
    try:
        return [float(s) for s in comma_list(text)]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected numbers separated by commas, like 0,0.25,0.5") from None


def comma_list(text: str) -> list[str]:
    """"tpe, random" -> ["tpe", "random"]."""
    return [s.strip() for s in text.split(",") if s.strip()]


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


THREADS_PER_WORKER_HELP = ("torch CPU threads per worker (default 0: torch's choice with one worker; "
                           "cores / workers with several)")


def add_device_args(parser: argparse.ArgumentParser, *, threads_help: str = "") -> None:
    """--device, --precision and --threads: how a run executes (never part of a candidate's key)."""
    parser.add_argument("--device", default="auto", help="auto (CUDA if available) | cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="auto: bf16/fp16 autocast on CUDA, fp32 on the CPU; bf16 also runs on the CPU "
                             "(faster where the CPU has bf16 units) (default: %(default)s)")
    parser.add_argument("--threads", type=_non_negative_int, default=0,
                        help=threads_help or "torch CPU threads (default 0: torch's choice; 1 is often faster "
                                             "on a loaded shared machine)")


def add_protocol_args(parser: argparse.ArgumentParser, default: str = "quick") -> None:
    """--protocol NAME, --protocol-file TOML, --set key=value (repeatable), --data DIR."""
    parser.add_argument("--protocol", default=default,
                        help=f"a preset: {' | '.join(PROTOCOLS)} (`lightmark protocols` prints them) "
                             "(default: %(default)s)")
    parser.add_argument("--protocol-file", type=Path, help="TOML file overriding protocol fields")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one protocol field, e.g. --set epochs=3 --set augment.erase=true",
    )
    parser.add_argument("--data", help="a dataset: a challenge-layout folder or annot.pkl, a .pts folder, a WFLW "
                                       "list (.txt), a COFW .mat or a Face Synthetics folder (format detected; "
                                       "docs/data.md); default: synthetic faces")
    parser.add_argument("--image-root", help="where a WFLW list's image paths start (default: the list's folder)")
    parser.add_argument("--layout", help="read the data as this landmark layout, e.g. ibug68 on Face Synthetics "
                                         "drops the pupils (default: the data's own)")


def protocol_from_args(args: argparse.Namespace) -> Protocol:
    """Build the Protocol named by add_protocol_args' flags."""
    protocol = get_protocol(args.protocol)
    if getattr(args, "protocol_file", None):
        protocol = protocol.override_from_toml(args.protocol_file)
    if getattr(args, "overrides", None):
        protocol = protocol.override_from_strings(args.overrides)
    if getattr(args, "data", None):
        protocol = protocol.override({"data": str(Path(args.data).resolve())})
    if getattr(args, "image_root", None):
        protocol = protocol.override({"image_root": str(Path(args.image_root).resolve())})
    if getattr(args, "layout", None):
        protocol = protocol.override({"layout": args.layout})
    return protocol


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's preemption, `kill`) and SIGINT stop a long run like Ctrl-C: the running
    trial is recorded as interrupted and queued again instead of being left RUNNING. SIGINT is set
    explicitly because a process started in the background (`nohup ... &`) inherits it ignored."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler if sig == signal.SIGTERM else signal.default_int_handler)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def note_precision(args: argparse.Namespace, console: Console) -> None:
    """Warn (once, on stderr) when --precision asks for a known slow path on this machine."""
    warning = precision_warning(getattr(args, "precision", "auto"), resolve_device(getattr(args, "device", "auto")))
    if warning:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
