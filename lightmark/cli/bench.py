"""`lightmark bench ...`: benchmarks that print tables. Each `bench_*.py` module in this package
adds one subcommand through `register_bench(subparsers)`, so benchmarks live beside their stage."""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks: data path, training loop, search samplers")
    bench_sub = parser.add_subparsers(dest="bench_command", metavar="BENCH")
    package = importlib.import_module("lightmark.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"lightmark.cli.{info.name}")
            module.register_bench(bench_sub)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
