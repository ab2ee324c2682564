"""`lightmark bench train SPEC --protocol P [--steps N] [--json]`: bare step, trainer step, whole loop."""

from __future__ import annotations

import argparse

from rich.table import Table

from lightmark.benchmarks.trainbench import bench_train
from lightmark.cli._common import (
    add_device_args,
    add_protocol_args,
    print_json,
    protocol_from_args,
    stdout_console,
)
from lightmark.cli.train import resolve_spec
from lightmark.errors import ConfigError


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser(
        "train", help="bare model step vs the trainer's step vs the whole training loop, codec ms",
        description="Measure, in one run, the bare step of the model (plain forward, MSE, backward, RMSprop), "
                    "the trainer's step on a fixed batch, and the whole training loop (loader, augmentation, "
                    "heatmaps, step). Targets: trainer step <= 1.1x the bare step; loop <= 15 % slower than it. "
                    "Also the steps' FLOP rate as a fraction of a large fp32 matmul's on the same threads.")
    parser.add_argument("spec", metavar="SPEC_OR_PRESET")
    add_protocol_args(parser, default="quick")
    parser.add_argument("--steps", type=int, default=20, help="timed steps of the loop (default: %(default)s)")
    add_device_args(parser)
    parser.add_argument("--no-prefetch", action="store_true", help="no background batch thread")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile on the bare step: compile seconds, compiled ms, break-even steps")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    spec = resolve_spec(args.spec)
    protocol = protocol_from_args(args)
    spec.check_input_size(protocol.input_size)
    r = bench_train(spec, protocol, steps=args.steps, device=args.device, precision=args.precision,
                    prefetch=not args.no_prefetch, threads=args.threads, compile=args.compile)
    if args.json:
        print_json(r)
    else:
        _print(r)
    return 0


def _print(r: dict) -> None:
    table = Table(title=f"bench train {r['spec']} [{r['protocol']}, {r['input_size']} px, batch {r['batch_size']}, "
                        f"{r['device']} {r['precision']}, {r['threads']} threads]")
    table.add_column("measurement")
    table.add_column("ms / batch", justify="right")
    table.add_column("images/s", justify="right")
    bs = r["batch_size"]
    for label, key in (("bare step (forward, MSE, backward, RMSprop; a copy of the model)", "bare_step_ms"),
                       ("trainer step (weighted loss, clip, scaler, schedule; fixed batch)", "trainer_step_ms"),
                       ("whole loop (loader, augmentation, heatmaps, trainer step)", "loop_ms")):
        table.add_row(label, f"{r[key]:.1f}", f"{1000.0 * bs / r[key]:.1f}")
    if r.get("codec_encode_ms") is not None:
        table.add_row(f"codec {r['codec']} encode (heatmaps + weight map)", f"{r['codec_encode_ms']:.2f}", "")
        table.add_row("codec decode", f"{r['codec_decode_ms']:.2f}", "")
    if "compiled_step_ms" in r:
        table.add_row(f"bare step, torch.compile (compiling took {r['compile_seconds']:.1f} s)",
                      f"{r['compiled_step_ms']:.1f}", f"{1000.0 * bs / r['compiled_step_ms']:.1f}")
    console = stdout_console()
    console.print(table)
    console.print(f"FLOP rate (6 x {r['forward_macs']:,} forward MACs per image): bare step "
                  f"{r['bare_step_gflops']:.1f}, trainer step {r['trainer_step_gflops']:.1f}, loop "
                  f"{r['loop_gflops']:.1f} GFLOP/s against {r['peak_gflops']:.0f} GFLOP/s for a "
                  f"{r['peak_matmul_n']}x{r['peak_matmul_n']} fp32 matmul on the same threads: the trainer "
                  f"step reaches {100 * r['peak_fraction']:.1f} % of that peak", highlight=False)
    verdict = "[green]meets[/]" if r["trainer_meets_target"] else "[red]misses[/]"
    console.print(f"trainer step / bare step = {r['trainer_over_bare']:.3f} (target <= "
                  f"{r['target_trainer_over_bare']:.1f}): {verdict}")
    if "compiled_step_ms" in r:
        even = r["compile_break_even_steps"]
        console.print("torch.compile: " + (f"earns its compile time back after {even} steps" if even else
                                           "never earns its compile time back (no faster per step)"))
    verdict = "[green]meets[/]" if r["meets_target"] else "[red]misses[/]"
    console.print(f"loop / step = {r['loop_over_step_ratio']:.3f} (slowdown {r['slowdown_pct']:.1f} %, target "
                  f"<= {r['target_slowdown_pct']:.0f} %): {verdict}")
