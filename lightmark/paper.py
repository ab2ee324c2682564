"""The write-up's table numbers, read from the packaged `paper_tables.csv` and never retyped.

Shared by the model presets (`models.registry`) and the ablation suites (`benchmarks.suites`), so it
sits at the package root like `errors` and `atomic`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

# The write-up's own model, by its place in the tables: Table 2's last row (CA + CoordConv).
FINAL_DESIGN = (2, 6)
# Table 3's rows without a loss are the codecs' round trip on ground truth (no model trained).
CODEC_TABLE = 3


@dataclass(frozen=True)
class PaperRow:
    """One line of the packaged paper_tables.csv (sizes in the paper's MB, NME in % of image side)."""

    table: int
    row: int
    config: dict[str, str]
    model_size_mb: float | None
    test_nme: float | None
    what: str


@lru_cache(maxsize=1)
def _paper_rows_cached() -> tuple[PaperRow, ...]:
    text = resources.files("lightmark").joinpath("paper_tables.csv").read_text()
    rows = []
    for raw in csv.DictReader(text.splitlines()):
        rows.append(
            PaperRow(
                table=int(raw["table"]),
                row=int(raw["row"]),
                config={k: raw[k] for k in ("n_stacks", "depth", "channels", "attention", "coordconv",
                                            "loss", "offset_kernel", "erasing")},
                model_size_mb=float(raw["model_size_mb"]) if raw["model_size_mb"] else None,
                test_nme=float(raw["test_nme"]) if raw["test_nme"] else None,
                what=raw["what"],
            )
        )
    return tuple(rows)


def paper_rows() -> list[PaperRow]:
    """Every row of the paper's five tables, as packaged with lightmark."""
    return list(_paper_rows_cached())


def table_rows(table: int) -> list[PaperRow]:
    """The rows of one of the paper's tables, in order."""
    rows = [item for item in _paper_rows_cached() if item.table == table]
    if not rows:
        raise KeyError(f"the paper has no table {table}")
    return rows


def paper_row(table: int, row: int) -> PaperRow:
    for item in _paper_rows_cached():
        if item.table == table and item.row == row:
            return item
    raise KeyError(f"paper table {table} has no row {row}")


def spec_text(row: PaperRow) -> str:
    """The ModelSpec string of a row with an architecture, e.g. `s2-d4-c128-ca-cc`."""
    c = row.config
    text = f"s{c['n_stacks']}-d{c['depth']}-c{c['channels']}"
    if c["attention"] not in ("", "none"):
        text += f"-{c['attention']}"
    return text + ("-cc" if c["coordconv"] == "true" else "")


def final_design() -> PaperRow:
    """The row of the write-up's own model (FINAL_DESIGN)."""
    return paper_row(*FINAL_DESIGN)


def codec_round_trip_nme() -> dict[str, float]:
    """The paper's ground-truth round trip of its two heatmap codecs, NME % of image side, by codec name:
    `plain` (no offset kernel) and `offset` (the Gaussian with offset)."""
    return {("offset" if row.config["offset_kernel"] == "true" else "plain"): row.test_nme
            for row in table_rows(CODEC_TABLE) if not row.config["loss"] and row.test_nme is not None}
