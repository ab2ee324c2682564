"""Ablation tables: shape, columns, the paper's numbers unchanged, seed statistics, noise flag."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lightmark.benchmarks import suites
from lightmark.benchmarks.record import Record, candidate_key
from lightmark.reports import stats, tables
from lightmark.training.protocol import get_protocol


def make_record(spec, protocol, nme, *, status="complete", size_mb=11.5, seed=0, **extra) -> Record:
    return Record(
        key=candidate_key(spec, protocol), spec=str(spec), n_stacks=spec.n_stacks, depth=spec.depth,
        channels=spec.channels, attention=spec.attention, coordconv=spec.coordconv,
        protocol=protocol.name, input_size=protocol.input_size, seed=seed, status=status,
        params=3_000_000, size_mb=size_mb, macs=1_500_000_000, latency_ms=12.5,
        nme_image_pct=nme, nme_inter_ocular_pct=None if nme is None else nme * 3,
        train_seconds=10.0 if status == "complete" else 0.0, codec=protocol.codec, loss=protocol.loss,
        **extra,
    )


def fake_results(suite, protocol, nmes_by_row):
    """{row label: [Record per seed]} from {row label: [nme per seed]}."""
    out = {}
    for row in suite.train_rows:
        values = nmes_by_row.get(row.label, [])
        out[row.label] = [make_record(row.spec, row.protocol(protocol, s), v, seed=s)
                          for s, v in enumerate(values)]
    return out


# -- stats ---------------------------------------------------------------------------------------

def test_t_interval_matches_hand_computation():
    s = stats.summarise([1.0, 2.0, 3.0])
    assert s.n == 3 and s.mean == 2.0 and s.std == pytest.approx(1.0)
    assert s.ci_half == pytest.approx(4.302652729911275 / math.sqrt(3))  # t(0.975, 2)
    one = stats.summarise([2.5])
    assert one.n == 1 and one.mean == 2.5 and math.isnan(one.ci_half)


def test_noise_flag_fires_when_difference_is_within_seed_noise():
    base = stats.summarise([2.30, 2.10, 2.20])  # std 0.1
    row = stats.summarise([2.25, 2.05, 2.15])  # 0.05 better: well inside the noise
    diff = stats.welch_difference(row, base)
    assert diff.delta == pytest.approx(-0.05)
    assert diff.flag == stats.WITHIN and diff.ci_half > 0.05


def test_noise_flag_does_not_fire_for_a_clear_difference():
    base = stats.summarise([2.30, 2.31, 2.29])
    row = stats.summarise([2.10, 2.11, 2.09])
    diff = stats.welch_difference(row, base)
    assert diff.flag == stats.BEYOND and abs(diff.delta) > diff.ci_half


def test_noise_flag_with_one_seed_is_undecided():
    diff = stats.welch_difference(stats.summarise([2.0]), stats.summarise([2.3]))
    assert diff.flag == stats.UNDECIDED and diff.delta == pytest.approx(-0.3)
    assert stats.welch_difference(stats.summarise([]), stats.summarise([2.3])).flag == stats.NO_DATA


# -- suite tables --------------------------------------------------------------------------------

def table2_frame(nmes, seeds):
    suite = suites.get_suite("table2")
    protocol = get_protocol("quick")
    return tables.suite_table(suite, fake_results(suite, protocol, nmes), protocol=protocol, seeds=seeds)


def test_table2_shape_columns_and_paper_numbers_unchanged():
    nmes = {row.label: [3.0 + i * 0.1] for i, row in enumerate(suites.get_suite("table2").rows)}
    frame = table2_frame(nmes, seeds=1)
    assert frame.shape[0] == 6
    for col in ("Row", "Attention", "CoordConv", tables.SIZE, tables.NME, tables.PAPER_SIZE,
                tables.PAPER_NME, tables.NME_STD, tables.NME_CI, tables.DELTA, tables.NOISE,
                tables.PARAMS, tables.MACS, tables.LATENCY, "nme_normalisation", "data"):
        assert col in frame.columns, col
    assert list(frame[tables.PAPER_NME]) == [2.2929, 2.2347, 2.3044, 2.2121, 2.2211, 2.1242]
    assert list(frame[tables.PAPER_SIZE]) == [11.8, 12.1, 12.2, 11.8, 12.1, 12.2]
    assert list(frame[tables.NME]) == pytest.approx([3.0, 3.1, 3.2, 3.3, 3.4, 3.5])
    assert list(frame[tables.NOISE]) == [stats.BASELINE] + [stats.UNDECIDED] * 5
    assert frame[tables.NME_CI].isna().all()  # one seed: no interval
    assert frame[tables.PAPER_DELTA].iloc[5] == pytest.approx(2.1242 - 2.2929)
    assert frame[tables.AGREES].iloc[5] == "no"  # ours got worse, the paper's got better
    assert "image side" in frame["nme_normalisation"].iloc[0]
    assert "synthetic" in frame["data"].iloc[0]


def test_table_with_three_seeds_flags_noise_per_row():
    labels = [row.label for row in suites.get_suite("table2").rows]
    nmes = {labels[0]: [2.30, 2.10, 2.20], labels[1]: [2.25, 2.05, 2.15],  # within noise
            labels[2]: [3.30, 3.31, 3.29], labels[3]: [2.20], labels[4]: [], labels[5]: [1.0, 1.01, 0.99]}
    frame = table2_frame(nmes, seeds=3).set_index("Row")
    assert frame.loc[labels[0], tables.NOISE] == stats.BASELINE
    assert frame.loc[labels[1], tables.NOISE] == stats.WITHIN
    assert frame.loc[labels[2], tables.NOISE] == stats.BEYOND
    assert frame.loc[labels[3], tables.NOISE] == stats.UNDECIDED
    assert frame.loc[labels[4], tables.NOISE] == stats.NO_DATA
    assert frame.loc[labels[5], tables.NOISE] == stats.BEYOND
    assert frame.loc[labels[1], tables.NME_STD] == pytest.approx(0.1)
    assert frame.loc[labels[4], tables.STATUS].startswith("complete 0/3")
    assert frame.loc[labels[5], tables.AGREES] == "yes"
    assert frame.loc[labels[1], tables.AGREES] == "yes (within noise)"
    # a person reading the Markdown sees how many seeds each row really has
    shown = tables.display_frame(frame.reset_index()).set_index("Row")[tables.SEEDS]
    assert shown[[labels[0], labels[3], labels[4]]].tolist() == ["3", "1", "0"]


def test_table3_roundtrip_rows_are_exact_and_skipped_rows_say_why():
    suite = suites.get_suite("table3")
    protocol = get_protocol("smoke")
    results = fake_results(suite, protocol, {"s2-d4-c128, plain": [4.0], "s2-d4-c128, offset": [3.5]})
    rt = {"round trip, plain": {"nme_image_pct": 3.0}, "round trip, offset": {"nme_image_pct": 0.05},
          "round trip, subpixel": {"nme_image_pct": 0.001}}
    frame = tables.suite_table(suite, results, protocol=protocol, seeds=1, roundtrip=rt)
    assert frame.shape[0] == 6
    assert list(frame[tables.NOISE][:3]) == [stats.BASELINE, stats.EXACT, stats.EXACT]
    assert frame[tables.DELTA].iloc[1] == pytest.approx(-2.95)
    assert frame[tables.PAPER_NME].iloc[0] == 0.5127 and math.isnan(frame[tables.PAPER_NME].iloc[2])
    assert frame[tables.DELTA].iloc[4] == pytest.approx(-0.5)  # prediction half vs its own baseline
    assert frame["Extra row"].tolist() == ["", "", "ours", "", "", "ours"]
    assert tables.display_frame(frame)[tables.SEEDS].tolist() == ["-", "-", "-", "1", "1", "0"]

    t1 = suites.get_suite("table1")
    frame1 = tables.suite_table(t1, fake_results(t1, protocol, {}), protocol=protocol, seeds=1)
    assert frame1.set_index("Row").loc["s2-d5-c128", tables.STATUS].startswith("skipped")
    # a baseline that has not finished yet shows no delta (not +0.0)
    assert frame1.set_index("Row").loc["s2-d4-c128", tables.NOISE] == stats.BASELINE
    assert math.isnan(frame1.set_index("Row").loc["s2-d4-c128", tables.DELTA])
    assert frame[tables.DELTA].iloc[3] == 0.0  # a finished baseline does


def test_written_files_round_trip_and_carry_the_caption(tmp_path):
    labels = [row.label for row in suites.get_suite("table2").rows]
    frame = table2_frame({label: [2.0, 2.1, 2.2] for label in labels}, seeds=3)
    paths = tables.write_table(frame, tmp_path, "table2")
    back = pd.read_csv(paths["csv"])
    assert back.shape == frame.shape
    assert 2.1242 in back[tables.PAPER_NME].tolist()
    md = paths["md"].read_text()
    assert "NME normalisation" in md and "synthetic" in md and "2.1242" in md and "±" in md
    assert md.count("\n| s2-d4-c128") == 6
    tex = paths["tex"].read_text()
    assert r"\begin{tabular}" in tex and r"\%" in tex and "2.1242" in tex and r"$\pm$" in tex



def test_caption_says_how_the_rows_were_trained():
    suite = suites.get_suite("table5")
    protocol = get_protocol("quick")
    results = {row.label: [make_record(row.spec, row.protocol(protocol, 0), 3.0, device="cpu",
                                       precision="bf16", threads=1)]
               for row in suite.train_rows}
    frame = tables.suite_table(suite, results, protocol=protocol, seeds=1)
    assert "Trained on: cpu, bf16, 1 torch thread(s)." in tables.to_markdown(frame)
    assert tables.execution_notes([]) == []
    old = make_record(suite.rows[0].spec, protocol, 3.0)  # a Record from before precision was kept
    assert tables.execution_notes([old]) == ["Trained on: ?, unrecorded."]


def test_row_latency_is_the_fastest_seed_measurement():
    suite = suites.get_suite("table5")
    protocol = get_protocol("quick")
    row = suite.train_rows[0]
    recs = [make_record(row.spec, row.protocol(protocol, s), 3.0, seed=s) for s in range(3)]
    recs = [Record.from_dict({**r.to_dict(), "latency_ms": ms}) for r, ms in zip(recs, (80.0, 36.0, 41.0))]
    frame = tables.suite_table(suite, {row.label: recs}, protocol=protocol, seeds=3)
    assert frame[tables.LATENCY].iloc[0] == 36.0  # interference only adds time
    assert math.isnan(frame[tables.LATENCY].iloc[1])  # no result, no latency
