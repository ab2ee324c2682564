"""`lightmark models` and `lightmark profile` through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from lightmark.benchmarks.size import state_dict_bytes
from lightmark.cli.main import main
from lightmark.models.registry import PRESETS


def test_models_json_lists_every_preset(capsys):
    assert main(["models", "--json", "--no-macs"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list(PRESETS)
    by_name = {row["name"]: row for row in rows}
    row = by_name["paper-t2-ca-cc"]
    assert row["spec"] == "s2-d4-c128-ca-cc" and row["input_size"] == 384
    assert row["size_bytes"] == state_dict_bytes("s2-d4-c128-ca-cc")
    assert abs(row["size_mb"] - 12.2) < 0.15 and row["paper_size_mb"] == 12.2
    assert by_name["tiny"]["paper_size_mb"] is None


def test_models_table_with_macs(capsys, monkeypatch):
    # Keep it fast: only the small presets.
    import lightmark.models.registry as registry

    small = {k: v for k, v in registry.PRESETS.items() if k == "tiny"}
    monkeypatch.setattr(registry, "PRESETS", small)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "s1-d2-c32" in out and "paper-t2-ca-cc" not in out
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(row["macs_fvcore"] > 0 and row["macs_thop"] > 0 for row in rows)


def test_profile_json(capsys):
    code = main(["profile", "tiny", "--json", "--batch-sizes", "1,2", "--threads", "1"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "tiny" and result["spec"] == "s1-d2-c32" and result["input_size"] == 64
    assert result["size_bytes"] == state_dict_bytes("s1-d2-c32")
    for key in ("params", "size_mb", "macs_fvcore", "macs_thop", "latency_ms", "peak_memory_bytes"):
        assert result[key] > 0, key
    assert 0 <= result["macs_rel_diff"] < 0.05  # fvcore and thop differ only in BatchNorm
    assert isinstance(result["fvcore_skipped_ops"], dict) and result["device"] == "cpu"
    assert set(result["latency_ms_by_batch"]) == {"1", "2"} and result["threads"] == 1


def test_profile_spec_string_no_latency_and_table(capsys):
    assert main(["profile", "s1-d2-c16-ca-cc", "--input-size", "32", "--no-latency", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["input_size"] == 32 and result["latency_ms"] is None
    assert main(["profile", "s1-d2-c16", "--input-size", "32", "--no-latency"]) == 0
    out = capsys.readouterr().out
    assert "MACs, fvcore" in out and "MiB" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["profile", "s2-d4-c12"], "channels"),
        (["profile", "s2-d4-c128", "--input-size", "100", "--no-latency"], "depth 4"),
        (["profile", "paper-t2-cx"], "paper-t2-cc"),
        (["profile", "tiny", "--batch-sizes", "1,x"], "--batch-sizes"),
        (["profile", "tiny", "--device", "cuda:7", "--no-latency"], "device"),
    ],
)
def test_profile_errors_are_one_line(capsys, argv, needle):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("lightmark profile: error:")
    assert captured.out == ""
