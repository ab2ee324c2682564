"""The paper's tables as suites: rows, configurations, the paper's numbers and candidate dedup."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lightmark import paper
from lightmark.benchmarks import suites
from lightmark.benchmarks.record import candidate_key
from lightmark.errors import ConfigError
from lightmark.models.spec import ModelSpec
from lightmark.training.protocol import get_protocol

# the digest of shared/reference/paper_tables.csv
REFERENCE_SHA256 = "14f1ffb0028bb2d023bea918ec835fd4555d02714da690073e94dd928c1860b7"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper_tables.csv"


def test_packaged_paper_tables_hold_every_row():
    rows = paper.paper_rows()
    assert len(rows) == 20
    assert paper.paper_row(2, 6).test_nme == 2.1242
    assert paper.paper_row(3, 2).test_nme == 0.0076
    assert paper.paper_row(1, 2).model_size_mb == 6.12
    # The packaged copy is the reference table byte for byte: its digest is pinned here, so the check
    # runs in a clone that has no shared/ beside it too; where shared/ is there, it must agree.
    packaged = (Path(paper.__file__).parent / "paper_tables.csv").read_bytes()
    assert hashlib.sha256(packaged).hexdigest() == REFERENCE_SHA256
    if SHARED.exists():
        assert hashlib.sha256(SHARED.read_bytes()).hexdigest() == REFERENCE_SHA256


def test_suite_rows_and_paper_numbers():
    by_name = {s.name: s for s in suites.all_suites()}
    assert list(by_name) == list(suites.TABLE_NAMES)
    assert [len(by_name[n].rows) for n in suites.TABLE_NAMES] == [6, 6, 6, 3, 2]
    t1 = by_name["table1"]
    assert [str(r.spec) for r in t1.rows] == [
        "s1-d2-c256", "s1-d4-c128", "s2-d4-c128", "s2-d5-c128", "s3-d3-c128", "s4-d2-c128"]
    assert [r.paper_nme_pct for r in t1.rows] == [2.7770, 2.4217, 2.2929, 2.3211, 2.6709, 2.7012]
    assert t1.baseline_of(t1.rows[0]).label == "s2-d4-c128"
    t2 = by_name["table2"]
    assert [str(r.spec) for r in t2.rows] == [
        "s2-d4-c128", "s2-d4-c128-se", "s2-d4-c128-ca", "s2-d4-c128-cc", "s2-d4-c128-se-cc",
        "s2-d4-c128-ca-cc"]
    assert t2.rows[-1].paper_nme_pct == 2.1242 and t2.rows[-1].paper_size_mb == 12.2
    t3 = by_name["table3"]
    assert [r.kind for r in t3.rows] == ["roundtrip"] * 3 + ["train"] * 3
    assert [r.codec for r in t3.rows] == ["plain", "offset", "subpixel"] * 2
    assert [r.paper_nme_pct for r in t3.rows] == [0.5127, 0.0076, None, 2.3382, 2.2929, None]
    assert [r.extra for r in t3.rows] == [False, False, True, False, False, True]
    t4 = by_name["table4"]
    assert [dict(r.overrides)["loss"] for r in t4.rows] == ["mse", "weighted_mse", "awing"]
    t5 = by_name["table5"]
    assert all(r.spec == ModelSpec.parse("s2-d4-c128-ca-cc") for r in t5.rows)
    assert [dict(r.overrides)["augment.erase"] for r in t5.rows] == [False, True]
    assert "does not state" in t5.caption


def test_paper_ablation_setting_is_mse_and_offset_without_erasing():
    base = get_protocol("smoke")
    for name in ("table1", "table2"):
        for row in suites.get_suite(name).rows:
            proto = row.protocol(base)
            assert (proto.codec, proto.loss, proto.augment.erase) == ("offset", "mse", False)
    plain = suites.get_suite("table3").rows[3].protocol(base)
    assert (plain.codec, plain.loss) == ("plain", "mse")


def test_shared_baseline_is_one_candidate_and_seeds_multiply():
    base = get_protocol("quick")
    plan = suites.plan_candidates(suites.all_suites(), base, seeds=1)
    keys = [c.key for c in plan]
    assert len(keys) == len(set(keys))
    # 18 train rows in the five tables; the s2-d4-c128 mse/offset baseline appears in Tables 1-4.
    assert len(plan) == 17
    shared = next(c for c in plan if len(c.uses) > 1)
    assert {u[0] for u in shared.uses} == {"table1", "table2", "table3", "table4"}
    assert shared.key == candidate_key(ModelSpec.parse("s2-d4-c128"), shared.protocol)
    three = suites.plan_candidates(suites.all_suites(), base, seeds=3)
    assert len(three) == 51
    assert {c.protocol.seed for c in three} == {0, 1, 2}
    # seed by seed: an interrupted run has every row at seed 0 before any row at seed 1
    assert [c.protocol.seed for c in three] == [0] * 17 + [1] * 17 + [2] * 17
    assert [str(c.spec) for c in three[:17]] == [str(c.spec) for c in three[17:34]]
    with pytest.raises(ConfigError):
        suites.plan_candidates(suites.all_suites(), base, seeds=0)


def test_rows_too_deep_for_the_input_are_skipped_with_a_reason():
    smoke = get_protocol("smoke")  # 64 px -> 16 px heatmaps: depth 5 does not fit
    row = suites.get_suite("table1").rows[3]
    assert "depth 5" in row.skip_reason(smoke)
    assert row.skip_reason(get_protocol("quick")) is None
    plan = suites.plan_candidates([suites.get_suite("table1")], smoke, seeds=1)
    assert "s2-d5-c128" not in {str(c.spec) for c in plan} and len(plan) == 5


def test_unknown_table_names_the_choices():
    with pytest.raises(ConfigError, match="table1"):
        suites.get_suite("table9")
    assert len(suites.resolve_tables("all")) == 5
