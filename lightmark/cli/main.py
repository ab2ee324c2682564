"""Entry point `lightmark`. Each module in this package with a `register(subparsers)` adds commands.

Discovery keeps commands in their own files (one per command group) without a central list to edit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations otherwise calls the network
os.environ.setdefault("MPLBACKEND", "Agg")

from lightmark import __version__  # noqa: E402
from lightmark.errors import LightmarkError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightmark",
        description="Search and benchmark light-weight facial-landmark models.",
    )
    parser.add_argument("--version", action="version", version=f"lightmark {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    package = importlib.import_module("lightmark.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"lightmark.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = ["lightmark", *(sys.argv[1:] if argv is None else argv)]  # for manifests: how to re-run
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except LightmarkError as exc:
        print(f"lightmark {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code  # 2: fix the command or its input; 3: resumable (storage unreachable, disk full)
    except KeyboardInterrupt:
        print(f"lightmark {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lightmark ... --json | head`: the reader left; no traceback
        # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by the broken pipe
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
