"""A tiny multi-fidelity table with a known rank structure, written as `bench tabulate` would write three
runs and merged with `bench merge`'s code, for the tests of fidelities, transfer and the two-fidelity
search (no training).

Twelve architectures (1-3 stacks x none/CA x CoordConv or not; depth 2, 16 channels), index i in
`SPECS` order:
- tabular (all 12, 10 s each): image NME 5 + i; a second seed (+0.2) for i < 6.
- quick (all 12, 100 s each): 10 + PERM[i], PERM swaps neighbours (1, 0, 3, 2, ...): against tabular,
  Spearman 1 - 6 * 12 / (12 * 143) = 0.958042, Kendall (60 - 6) / 66 = 0.818182, top-5 overlap 4,
  regret of tabular's pick (i = 0: 11 against i = 1: 10) 1.0 pp.
- synth2real (i in 0, 3, 6, 9; 300 s each): 11, 10, 9, 8 (the reverse of tabular).
- the dev set (inter-ocular): 30 - i for the tabular models, 20 + PERM[i] for the quick ones with
  i < 8, 15, 16, 17, 18 for the synth2real ones; the median face 1 pp under that, the worst face 10 pp
  over it (11 for seed 1), named face-((i + seed) mod 3).png.
Sizes 0.2 MiB, but 0.9 MiB for i = 1 (quick's best), so a 0.5 MiB budget leaves tabular's pick best.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd

from lightmark.models.spec import ModelSpec
from lightmark.tabular.merge import merge_tables
from lightmark.tabular.table import FIDELITY, curve_column, realdev_column
from lightmark.training.protocol import get_protocol

SPECS = [str(ModelSpec(n_stacks=s, depth=2, channels=16, attention=a, coordconv=cc))
         for s, a, cc in itertools.product((1, 2, 3), ("none", "ca"), (False, True))]
PERM = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]
S2R = {0: 11.0, 3: 10.0, 6: 9.0, 9: 8.0}
S2R_DEV = {0: 15.0, 3: 16.0, 6: 17.0, 9: 18.0}
SECONDS = {"tabular": 10.0, "quick": 100.0, "synth2real": 300.0}
EPOCHS = 2
PROTOCOLS = {"tabular": get_protocol("tabular").override({"epochs": EPOCHS}),
             "quick": get_protocol("quick").override({"epochs": EPOCHS}),
             "synth2real": get_protocol("quick").override({"name": "synth2real", "epochs": EPOCHS})}


def _row(i: int, fidelity: str, seed: int, value: float, dev: float | None) -> dict:
    spec = ModelSpec.parse(SPECS[i])
    row = {"spec": SPECS[i], FIDELITY: fidelity, "n_stacks": spec.n_stacks, "depth": spec.depth,
           "channels": spec.channels, "attention": spec.attention, "coordconv": spec.coordconv, "seed": seed,
           "status": "complete", "params": 1000 + i, "size_mb": 0.9 if i == 1 else 0.2, "macs": 10_000,
           "latency_ms": 1.0, "train_seconds": SECONDS[fidelity], "epochs_done": EPOCHS,
           "nme_image_pct": value, "nme_inter_ocular_pct": 3 * value,
           realdev_column("nme_image_pct"): None if dev is None else dev / 3,
           realdev_column("nme_inter_ocular_pct"): dev,
           realdev_column("median_nme_inter_ocular_pct"): None if dev is None else dev - 1,
           realdev_column("worst_nme_inter_ocular_pct"): None if dev is None else dev + 10 + seed,
           realdev_column("worst_face"): None if dev is None else f"face-{(i + seed) % 3}.png"}
    for e in range(1, EPOCHS + 1):
        row[curve_column("nme_image_pct", e)] = value + (EPOCHS - e) * 2.0
        row[curve_column("nme_inter_ocular_pct", e)] = 3 * (value + (EPOCHS - e) * 2.0)
        row[f"train_seconds_e{e}"] = SECONDS[fidelity] * e / EPOCHS
    return row


def fidelity_rows() -> dict[str, list[dict]]:
    tabular = [_row(i, "tabular", 0, 5.0 + i, 30.0 - i) for i in range(12)]
    tabular += [_row(i, "tabular", 1, 5.2 + i, 30.0 - i) for i in range(6)]
    quick = [_row(i, "quick", 0, 10.0 + PERM[i], 20.0 + PERM[i] if i < 8 else None) for i in range(12)]
    s2r = [_row(i, "synth2real", 0, v, S2R_DEV[i]) for i, v in S2R.items()]
    return {"tabular": tabular, "quick": quick, "synth2real": s2r}


def _sidecar(name: str, fidelity: str, rows: list[dict]) -> dict:
    protocol = PROTOCOLS[fidelity]
    seeds = 1
    second = sum(r["seed"] == 1 for r in rows)
    meta = {"name": name, "protocol": protocol.to_dict(), "protocol_name": protocol.name,
            "data_version": "synth-v2", "seeds": seeds, "second_seed": second, "epochs": EPOCHS,
            "architectures": len({r["spec"] for r in rows}), "rows": len(rows), "complete_rows": len(rows),
            "command": f"lightmark bench tabulate --protocol {fidelity}", "hosts": ["test"],
            "train_seconds_total": sum(r["train_seconds"] for r in rows), "base_fidelity": fidelity,
            "space": {"n_stacks": [1, 2, 3], "depth": [2], "channels": [16], "attention": ["none", "ca"],
                      "coordconv": [False, True]}}
    if fidelity == "tabular":
        meta["suggested_budget_mb"] = 0.5
    meta["per_fidelity"] = {"realdev": {"data": "runs/realdev", "fingerprint": "feedface"}}
    return meta


def write_runs(directory: Path) -> list[Path]:
    """The three single-fidelity tables, as three `bench tabulate --test-data` runs write them."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for fidelity, rows in fidelity_rows().items():
        path = directory / f"toy-{fidelity}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        path.with_suffix(".json").write_text(json.dumps(_sidecar(f"toy-{fidelity}", fidelity, rows)))
        paths.append(path)
    return paths


def write_multi_fidelity(directory: Path, name: str = "toy") -> Path:
    """The merged table `<directory>/<name>.csv` (and its sidecar)."""
    csv_path, _ = merge_tables([str(p) for p in write_runs(directory / "runs")], name, directory)
    return csv_path
