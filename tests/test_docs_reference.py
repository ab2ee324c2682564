"""docs/run-directory.md describes every column of records.csv: each field of the Record and each trial
column the search writes before it. A field added to the Record without a line there fails here."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from lightmark.benchmarks.record import Record
from lightmark.search.records import EXTRA_COLUMNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "run-directory.md"


def _records_csv_section() -> str:
    text = DOC.read_text()
    start = text.index("## `records.csv`")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _described(section: str) -> set[str]:
    """The columns the section's tables describe: the first cell of each row, in backticks."""
    names = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0].startswith("`") and cells[0].endswith("`"):
            names.add(cells[0].strip("`"))
    return names


def test_every_record_field_is_a_documented_column() -> None:
    described = _described(_records_csv_section())
    missing = [f.name for f in fields(Record) if f.name not in described]
    assert not missing, f"docs/run-directory.md, section records.csv, does not describe: {', '.join(missing)}"


def test_every_trial_column_is_documented_and_the_doc_invents_none() -> None:
    described = _described(_records_csv_section())
    assert set(EXTRA_COLUMNS) <= described, f"undocumented: {set(EXTRA_COLUMNS) - described}"
    invented = described - set(EXTRA_COLUMNS) - {f.name for f in fields(Record)}
    assert not invented, f"docs/run-directory.md describes columns records.csv does not have: {invented}"
