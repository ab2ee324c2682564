"""`lightmark codec-check`: the JSON contract the acceptance check walks, and the table."""

from __future__ import annotations

import json

from lightmark.cli import main as cli_main


def _walk(x, key="", out=None):
    out = {} if out is None else out
    if isinstance(x, dict):
        for k, v in x.items():
            _walk(v, f"{key}.{k}" if key else k, out)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        out[key] = float(x)
    return out


def test_codec_check_json(capsys):
    rc = cli_main.main(["codec-check", "--json", "--n-images", "30", "--repeats", "1"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_size"] == 384 and data["heatmap_size"] == 96
    assert data["unit"] == "NME % of image side"
    codecs = data["codecs"]
    assert 0.35 <= codecs["plain"] <= 0.7
    assert 0.002 <= codecs["offset"] <= 0.015
    assert codecs["subpixel"] <= 0.001
    assert {row["codec"]: row["nme_pct"] for row in data["paper"]} == {"plain": 0.5127, "offset": 0.0076}
    assert {row["codec"] for row in data["timing"]} == {"plain", "offset", "subpixel"}
    assert all(row["encode_ms"] > 0 and row["decode_ms"] > 0 and "encode_cpu_ms_1_thread" in row
               for row in data["timing"])
    # like the acceptance check: the minimum numeric leaf under each codec's name is its round trip
    flat = _walk(data)
    for name in ("plain", "offset", "subpixel"):
        assert min(v for k, v in flat.items() if name in k.lower()) == codecs[name]
    # the paper's plain number is the L1 (|dx| + |dy|) error of the same round trip
    l1 = {row["codec"]: row["nme_l1_pct"] for row in data["l1_error"]}
    assert abs(l1["plain"] - 0.5127) < 0.03


def test_codec_check_table_and_bad_size(capsys):
    assert cli_main.main(["codec-check", "--no-timing", "--n-images", "5", "--input-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "subpixel" in out and "0.5127" in out
    assert cli_main.main(["codec-check", "--input-size", "30", "--no-timing"]) == 2
    assert "input_size" in capsys.readouterr().err
