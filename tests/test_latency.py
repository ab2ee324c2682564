"""Latency sheets: every architecture of a run timed in one interleaved sitting, so rows compare."""

from __future__ import annotations

import json
import math

import pytest

from lightmark.benchmarks.latency import LatencySheet, measure_sheet, read_sheet, sheet_key, write_sheet
from lightmark.benchmarks.timing import interleaved_latency
from lightmark.errors import DataError, SpecError
from lightmark.models.spec import ModelSpec

SMALL, LARGER = ModelSpec.parse("s1-d2-c16"), ModelSpec.parse("s1-d2-c32-ca")


def test_measure_sheet_times_each_distinct_architecture_once_per_round():
    calls = []
    sheet = measure_sheet([(SMALL, 64), (LARGER, 64), (SMALL, 64)], threads=1, rounds=2, repeats=1,
                          command="test", progress=lambda done, total: calls.append((done, total)))
    assert set(sheet.median_ms) == {"s1-d2-c16@64", "s1-d2-c32-ca@64"}  # duplicates measured once
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 2 rounds x 2 architectures, interleaved
    for key, value in sheet.median_ms.items():
        low, high = sheet.spread_ms[key]
        assert math.isfinite(value) and 0 < low <= value <= high
    assert (sheet.device, sheet.threads, sheet.rounds, sheet.repeats) == ("cpu", 1, 2, 1)
    assert "CPUs" in sheet.host and sheet.measured and sheet.torch_version
    assert sheet.lookup("s1-d2-c16", 64) == sheet.median_ms["s1-d2-c16@64"]
    assert sheet.lookup(SMALL, 128) is None  # another input size is another measurement
    text = sheet.describe()
    assert sheet.host in text and "1 thread(s)" in text and "2 interleaved rounds" in text and "`test`" in text


def test_measure_sheet_refuses_what_cannot_run():
    with pytest.raises(SpecError, match="input"):
        measure_sheet([(ModelSpec.parse("s1-d5-c16"), 64)], rounds=1, repeats=1)
    with pytest.raises(DataError, match="rounds"):
        measure_sheet([(SMALL, 64)], rounds=0)


def test_sheet_round_trips_and_a_damaged_one_names_its_file(tmp_path):
    sheet = LatencySheet(median_ms={sheet_key(SMALL, 64): 1.5}, spread_ms={sheet_key(SMALL, 64): (1.2, 2.0)},
                         device="cpu", host="Some CPU, 2 CPUs", threads=2, rounds=5, repeats=3,
                         measured="2026-12-03T10:00:00+00:00", torch_version="2.13.0",
                         command="lightmark report r --measure-latency")
    path = write_sheet(sheet, tmp_path / "latency.json")
    assert read_sheet(path) == sheet
    assert read_sheet(tmp_path / "missing.json") is None
    path.write_text(json.dumps({"median_ms": {}}))
    with pytest.raises(DataError, match="latency.json"):
        read_sheet(path)


def test_interleaved_latency_times_each_runner_in_blocks_after_an_untimed_call():
    """One runner's spinning threads must not be timed against the next: each block starts untimed."""
    calls: list[str] = []
    runners = {name: (lambda name=name: calls.append(name)) for name in ("eager", "ort")}
    stats = interleaved_latency(runners, warmup=1, repeats=8, min_repeats=8, budget_s=0.0, block=4,
                                settle_s=0.0)
    assert calls[:2] == ["eager", "ort"]  # warm-up
    assert calls[2:] == (["eager"] * 5 + ["ort"] * 5) * 2  # 2 rounds of 1 untimed + 4 timed calls each
    assert all(s["repeats"] == 8 and 0 <= s["min_ms"] <= s["median_ms"] for s in stats.values())
