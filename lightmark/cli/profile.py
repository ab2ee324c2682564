"""`lightmark profile SPEC_OR_PRESET`: parameters, size, MACs (fvcore and thop), latency, peak memory."""

from __future__ import annotations

import argparse

from rich.table import Table

from lightmark.benchmarks.profile import profile
from lightmark.cli._common import print_json, stderr_console, stdout_console
from lightmark.deploy.export import require_export_extra
from lightmark.errors import ConfigError
from lightmark.models.registry import resolve


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--batch-sizes: expected comma-separated integers like 1,8, got {text!r}") from None
    if not sizes or any(size < 1 for size in sizes):
        raise ConfigError(f"--batch-sizes: each batch size must be >= 1, got {text!r}")
    return sizes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="size, params, MACs, latency and memory of one architecture",
        description=(
            "Profile a preset (see `lightmark models`) or a spec string such as s2-d4-c128-ca-cc. "
            "size_mb is MiB (2^20 bytes) of the saved fp32 state_dict; MACs are multiply-accumulates "
            "(FLOPs = 2 x MACs) of one image."
        ),
    )
    parser.add_argument("model", metavar="SPEC_OR_PRESET")
    parser.add_argument("--input-size", type=int, help="input side in pixels (default: the preset's, or 384)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default: %(default)s)")
    parser.add_argument("--batch-sizes", default="1,8", help="latency batch sizes (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="CPU threads for latency (default: torch's current)")
    parser.add_argument("--no-latency", action="store_true", help="skip latency and memory measurement")
    parser.add_argument("--deployed", action="store_true",
                        help="also measure what ships (needs the export extra): export the untrained network to "
                             "every format and dtype for the file sizes, and time ONNX Runtime on the CPU at "
                             "batch 1 beside PyTorch eager, same threads (seconds to a minute at 384 px)")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec, default_size = resolve(args.model)
    input_size = args.input_size if args.input_size is not None else default_size
    batch_sizes = _batch_sizes(args.batch_sizes)
    if args.deployed:
        require_export_extra("profile --deployed")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    with stderr_console().status(f"profiling {spec} at {input_size} px"):
        result = profile(
            spec, input_size, device=args.device, latency=not args.no_latency,
            batch_sizes=batch_sizes, threads=args.threads, memory=not args.no_latency,
            deployed=args.deployed,
        )
    result = {"model": args.model, **result}
    if args.json:
        print_json(result)
        return 0
    _print_table(result)
    return 0


def _print_table(result: dict) -> None:
    table = Table(title=f"{result['model']} ({result['spec']}) at {result['input_size']} px")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("parameters", f"{result['params']:,}")
    table.add_row("size (fp32 state_dict)", f"{result['size_mb']:.3f} MiB ({result['size_bytes']:,} bytes)")
    table.add_row("MACs, fvcore", f"{result['macs_fvcore'] / 1e9:.3f} G")
    table.add_row("MACs, thop", f"{result['macs_thop'] / 1e9:.3f} G")
    flag = "  [red]> 2 %[/red]" if result["macs_flagged"] else ""
    table.add_row("fvcore vs thop", f"{100 * result['macs_rel_diff']:.2f} %{flag}")
    skipped = ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in result["fvcore_skipped_ops"].items())
    table.add_row("ops fvcore skips", f"{skipped or 'none'} ({result['fvcore_skipped_pct']:.2f} % of its MACs)")
    for batch, ms in result.get("latency_ms_by_batch", {}).items():
        table.add_row(f"latency, batch {batch}", f"{ms:.2f} ms")
    if result.get("latency_ms_by_batch"):
        table.add_row("device / threads", f"{result['device']} / {result['threads']}")
    if "peak_memory_mb" in result:
        table.add_row(f"peak memory, batch {result['peak_memory_batch_size']}", f"{result['peak_memory_mb']:.1f} MiB")
        table.add_row("memory measure", result["peak_memory_kind"])
    deployed = result.get("deployed")
    if deployed:
        for key, size in deployed["size_bytes"].items():
            fmt, dtype = key.split("_")
            table.add_row(f"file, {fmt} {dtype}", f"{size / 2**20:.3f} MiB ({size:,} bytes, "
                                                  f"{deployed['size_vs_state_dict'][key]:.2f} x state_dict)")
        if "latency_ms" in deployed:
            eager = deployed["latency_ms"]["torch_eager_fp32"]
            table.add_row("CPU latency, batch 1, PyTorch eager fp32",
                          f"{eager:.2f} ms ({deployed['latency_threads']} threads)")
            for name, ms in deployed["latency_ms"].items():
                if name != "torch_eager_fp32":
                    label = name.replace("onnxruntime_", "ONNX Runtime ")
                    table.add_row(f"CPU latency, batch 1, {label}",
                                  f"{ms:.2f} ms ({deployed['speedup_vs_eager'][name]:.2f} x eager's speed)")
    stdout_console().print(table)
