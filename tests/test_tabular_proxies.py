"""`lightmark bench proxies` on a tiny table written by the test: scores cached, agreement reported."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest

from lightmark.benchmarks import proxies
from lightmark.cli.main import main
from lightmark.models.spec import ModelSpec
from lightmark.tabular.proxies import table_proxy_scores
from lightmark.tabular.table import load_table


def _table(tmp_path):
    rows = []
    for c, a in itertools.product((16, 24), ("none", "se", "ca")):
        spec = ModelSpec(n_stacks=1, depth=2, channels=c, attention=a, coordconv=False)
        rows.append({"spec": str(spec), "n_stacks": 1, "depth": 2, "channels": c, "attention": a, "coordconv": False,
                     "seed": 0, "status": "complete", "params": 100 * c, "macs": 1000 * c, "size_mb": 0.01 * c,
                     "nme_image_pct": 10 - c / 8, "nme_inter_ocular_pct": 30 - c / 3})
    path = tmp_path / "toy.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    (tmp_path / "toy.json").write_text(json.dumps({"name": "toy", "epochs": 2}))
    return path


def test_proxy_scores_are_cached_and_only_the_missing_ones_computed(tmp_path, monkeypatch):
    scored = []

    def fake(spec, batch, protocol, seed):
        scored.append(str(spec))
        return {"synflow": float(spec.channels), "naswot": 1.0, "grad_norm": 2.0, "snip": 3.0, "params": 4.0}

    monkeypatch.setattr(proxies, "all_proxies", fake)
    monkeypatch.setattr(proxies, "proxy_batch", lambda protocol, batch_size: None)
    cache, progress = tmp_path / "scores.csv", []
    first = proxies.proxy_scores(["s1-d2-c24", "s1-d2-c16"], None, batch_size=4, seed=0, cache=cache,
                                 on_progress=lambda done, total: progress.append((done, total)))
    assert list(first["spec"]) == ["s1-d2-c16", "s1-d2-c24"] and progress == [(2, 2)]
    again = proxies.proxy_scores(["s1-d2-c16", "s1-d2-c32"], None, batch_size=4, seed=0, cache=cache)
    assert scored == ["s1-d2-c16", "s1-d2-c24", "s1-d2-c32"]  # c16 came from the cache
    assert sorted(again["spec"]) == ["s1-d2-c16", "s1-d2-c32"] and len(pd.read_csv(cache)) == 3


@pytest.mark.slow
def test_bench_proxies_scores_every_architecture_once_and_reports_agreement(tmp_path, capsys, monkeypatch):
    path, out = _table(tmp_path), tmp_path / "out"
    argv = ["bench", "proxies", "--table", str(path), "--batch", "4", "--out", str(out), "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["table"] == "toy" and data["architectures"] == 6 and data["batch"] == 4
    assert set(data["proxies"]) == {"nme_image_pct", "nme_inter_ocular_pct"}
    assert {"synflow", "naswot", "grad_norm", "snip", "params", "macs"} <= set(data["proxies"]["nme_image_pct"])
    assert data["versus_trivial"]["baseline"] in ("params", "macs")
    cache = out / "proxies-toy-seed0.csv"
    assert len(pd.read_csv(cache)) == 6

    def fail(*args, **kwargs):
        raise AssertionError("a cached architecture was scored again")

    monkeypatch.setattr(proxies, "all_proxies", fail)
    assert main(argv) == 0  # everything cached: nothing is scored again
    scores = table_proxy_scores(load_table(path), "naswot", out)
    assert sorted(scores) == sorted(pd.read_csv(path)["spec"])


def test_bench_proxies_refuses_a_batch_of_one(tmp_path, capsys):
    assert main(["bench", "proxies", "--table", str(_table(tmp_path)), "--batch", "1", "--out", str(tmp_path)]) == 2
    assert "--batch must be >= 2" in capsys.readouterr().err
