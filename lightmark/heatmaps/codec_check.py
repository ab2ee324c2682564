"""The codecs checked on ground truth, beside the paper: each codec's round trip on uniform points
(the paper's Table 3, left half) and its encode/decode time per batch on the CPU.

`lightmark codec-check` prints what `codec_check` returns; the paper's numbers come from
`lightmark.paper`, never retyped.
"""

from __future__ import annotations

from typing import Any

import torch

from lightmark.errors import ConfigError
from lightmark.heatmaps.codecs import CODEC_NAMES, codec_speed, get_codec, round_trip_errors, uniform_points
from lightmark.paper import codec_round_trip_nme

TIMING_BATCH = 8  # the paper's batch
TIMING_HEATMAP = 96  # px: the paper's 384-px input at stride 4
TIMING_THREADS = 2  # elapsed time on this many threads; CPU time on one


def round_trips(input_size: int, n_images: int, n_points: int, seed: int) -> tuple[dict[str, float], list[dict]]:
    """NME % (image side) of every codec's round trip, and the same with |dx| + |dy| (the L1 error,
    which is what the paper's number for `plain` matches)."""
    points = uniform_points(n_images, input_size, n_points, seed)
    nme_pct: dict[str, float] = {}
    l1_pct: list[dict] = []
    for name in CODEC_NAMES:
        diff = round_trip_errors(name, points, input_size)
        nme_pct[name] = float(diff.norm(dim=-1).mean() / input_size * 100)
        l1_pct.append({"codec": name, "nme_l1_pct": float(diff.abs().sum(-1).mean() / input_size * 100)})
    return nme_pct, l1_pct


def timings(n_points: int, repeats: int) -> list[dict]:
    """Median ms per batch of every codec: elapsed on TIMING_THREADS threads and CPU time on one."""
    rows = []
    for name in CODEC_NAMES:
        kwargs = dict(batch=TIMING_BATCH, size=TIMING_HEATMAP, repeats=repeats, n_points=n_points)
        speed = codec_speed(name, threads=TIMING_THREADS, **kwargs)
        cpu = codec_speed(name, threads=1, clock="cpu", **kwargs)
        rows.append({"codec": name, "batch": TIMING_BATCH, "heatmap_size": TIMING_HEATMAP,
                     "threads": TIMING_THREADS, **speed,
                     "encode_cpu_ms_1_thread": cpu["encode_ms"], "decode_cpu_ms_1_thread": cpu["decode_ms"]})
    return rows


def codec_check(input_size: int, n_images: int, n_points: int, seed: int = 0, repeats: int = 20,
                timing: bool = True) -> dict[str, Any]:
    """The round trips, the paper's numbers beside them and (with `timing`) the codecs' speed."""
    if n_images < 1 or n_points < 1:
        raise ConfigError("--n-images/--n-points: must be at least 1")
    heatmap_size = get_codec("plain", input_size).heatmap_size  # validates input_size
    nme_pct, l1_pct = round_trips(input_size, n_images, n_points, seed)
    return {
        "input_size": input_size,
        "heatmap_size": heatmap_size,
        "unit": "NME % of image side",
        "n_images": n_images,
        "n_points": n_points,
        "seed": seed,
        "codecs": nme_pct,
        "paper": [{"codec": name, "nme_pct": value} for name, value in codec_round_trip_nme().items()],
        "l1_error": l1_pct,
        "timing": timings(n_points, repeats) if timing else [],
        "torch_threads_for_timing": TIMING_THREADS,
        "torch_version": torch.__version__,
    }
