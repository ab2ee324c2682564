"""Records -> pandas tables in the paper's format (plus ours), written as CSV, Markdown and LaTeX.

An ablation table keeps the paper's columns (its configuration columns, "Model Size", "Test NME")
and adds what one run per row cannot show: params, MACs, latency, the NME mean / std / 95 %
t-interval over seeds, the delta to the baseline row and whether that delta is beyond the seed
noise. The paper's own size and NME sit beside ours, unchanged. Every table carries what its NME is
normalised by and on which data (columns in the CSV, a caption in Markdown and LaTeX).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from lightmark.atomic import write_text_atomic
from lightmark.benchmarks.evaluation import DatasetNme
from lightmark.benchmarks.record import RECORD_STATUSES, Record, Status
from lightmark.benchmarks.suites import Suite
from lightmark.reports import stats
from lightmark.training.protocol import Protocol

NME_KEY = "nme_image_pct"
NORMALISATION_TEXT = {
    "nme_image_pct": "mean point-to-point error / image side (input px) x 100, the challenge's NME",
    "nme_inter_ocular_pct": "mean point-to-point error / outer-eye-corner distance (points 36-45) x 100, 300W",
    "nme_inter_pupil_pct": "mean point-to-point error / eye-centre distance x 100",
    "nme_bbox_pct": "mean point-to-point error / sqrt(w*h) of the ground-truth box x 100",
}

# Column names (units in the names). The first two of ours mirror the paper's columns.
SIZE = "Model Size (MiB)"
NME = "Test NME (%)"
PAPER_SIZE = "Paper Model Size (MB)"
PAPER_NME = "Paper Test NME (%)"
NME_STD = "NME std (%)"
NME_CI = "NME 95% CI half-width (%)"
SEEDS = "Seeds"
DELTA = "Delta NME vs baseline (%)"
DELTA_CI = "Delta 95% CI half-width (%)"
NOISE = "Noise flag"
PAPER_DELTA = "Paper Delta NME (%)"
AGREES = "Same direction as paper"
NME_IO = "NME inter-ocular (%)"
TEST_NME = "NME on --test-data (%)"  # each candidate's checkpoint on a given test set (e.g. real photos)
TEST_NME_IO = "NME on --test-data, inter-ocular (%)"
TEST_WORST_IO = "Worst face on --test-data, inter-ocular (%)"  # beside the mean: one bad face hides in it
TEST_WORST_FACE = "Worst face"
PARAMS = "Params"
MACS = "MACs"
LATENCY = "Latency (ms)"
TRAIN_S = "Train time (s)"
STATUS = "Status"


def describe_data(protocol: Protocol) -> str:
    """Which data the NME was measured on, in words (goes into every table)."""
    size = f"{protocol.input_size} px"
    if protocol.data is None:
        return (f"synthetic faces: {protocol.val_samples} held-out faces (generator seed 2, not the "
                f"training faces) at {size}; not the paper's data")
    if protocol.val_data:
        cap = f", first {protocol.val_samples}" if protocol.val_samples else ""
        return f"held-out set {protocol.val_data}{cap} at {size}"
    return f"{protocol.data}: held-out split ({protocol.val_fraction:.0%}) at {size}"


def describe_normalisation(key: str = NME_KEY) -> str:
    return f"{key}: {NORMALISATION_TEXT.get(key, key)}"


def _attr(records: Sequence[Record], name: str) -> float:
    values = [getattr(r, name) for r in records if getattr(r, name) is not None]
    return float(values[0]) if values else math.nan


def _fastest_latency(records: Sequence[Record]) -> float:
    """Latency of a row: the lowest of its seeds' batch-1 medians. Each was measured when its
    candidate started, beside whatever else ran; interference only adds time, so the minimum is
    the best estimate of the architecture's own latency."""
    values = [r.latency_ms for r in records if r.latency_ms is not None]
    return float(min(values)) if values else math.nan


def _status(records: Sequence[Record], seeds: int) -> str:
    done = sum(r.status == Status.COMPLETE for r in records)
    text = f"complete {done}/{seeds} seeds"
    failed = [r for r in records if r.status == Status.FAILED]
    if failed:
        text += f"; {len(failed)} failed ({failed[0].error[:80]})"
    pruned = sum(r.status == Status.PRUNED for r in records)
    if pruned:
        text += f"; {pruned} pruned"
    return text


def suite_table(
    suite: Suite,
    records: Mapping[str, Sequence[Record]],
    *,
    protocol: Protocol,
    seeds: int,
    roundtrip: Mapping[str, Mapping[str, float]] | None = None,
    nme_key: str = NME_KEY,
    latency_note: str | None = None,
    test: DatasetNme | None = None,
) -> pd.DataFrame:
    """One ablation table: a row per suite row, in the suite's order.

    `records` maps a train row's label to its Records (one per seed; missing seeds are simply
    absent: an interrupted run still gives a table). `roundtrip` maps a round-trip row's label to
    its measured NME dict ({nme_key: value, ...}) - round trips are exact (no model, no seeds).
    `latency_note` replaces the caption's default latency note when the records' latencies were
    re-measured in one sitting (`lightmark report --measure-latency`). `test`: every candidate's NME on a
    test set (`--test-data`), shown beside the held-out NME (mean over seeds).
    """
    roundtrip = roundtrip or {}
    summaries: dict[str, stats.Summary] = {}
    for row in suite.rows:
        if row.kind == "roundtrip":
            value = roundtrip.get(row.label, {}).get(nme_key)
            summaries[row.label] = stats.summarise([value] if value is not None else [])
        else:
            done = [getattr(r, nme_key) for r in records.get(row.label, ()) if r.status == Status.COMPLETE]
            summaries[row.label] = stats.summarise(done)

    out: list[dict[str, Any]] = []
    for row in suite.rows:
        recs = list(records.get(row.label, ()))
        complete = [r for r in recs if r.status == Status.COMPLETE]
        summary = summaries[row.label]
        base = suite.baseline_of(row)
        base_summary = summaries[base.label]
        line: dict[str, Any] = {"Row": row.label, **dict(row.config)}
        line["Spec"] = str(row.spec) if row.spec else "-"
        proto = row.protocol(protocol)
        line["Codec"] = proto.codec
        line["Loss"] = proto.loss if row.kind == "train" else "-"
        line["Erasing"] = ("yes" if proto.augment.erase else "no") if row.kind == "train" else "-"
        line[SIZE] = _attr(recs, "size_mb") if row.kind == "train" else math.nan
        line[NME] = summary.mean
        line[PAPER_SIZE] = row.paper_size_mb if row.paper_size_mb is not None else math.nan
        line[PAPER_NME] = row.paper_nme_pct if row.paper_nme_pct is not None else math.nan
        line[NME_STD] = summary.std
        line[NME_CI] = summary.ci_half
        line[SEEDS] = summary.n if row.kind == "train" else math.nan  # a round trip has no seeds

        if row is base:  # a baseline without a result has no delta to show either
            delta, delta_ci, flag = (0.0 if summary.n else math.nan), math.nan, stats.BASELINE
        elif row.kind == "roundtrip":
            delta = summary.mean - base_summary.mean
            delta_ci, flag = 0.0, (stats.EXACT if math.isfinite(delta) else stats.NO_DATA)
        else:
            diff = stats.welch_difference(summary, base_summary)
            delta, delta_ci, flag = diff.delta, diff.ci_half, diff.flag
        line[DELTA], line[DELTA_CI], line[NOISE] = delta, delta_ci, flag

        paper_delta = math.nan
        if row.paper_nme_pct is not None and base.paper_nme_pct is not None:
            paper_delta = row.paper_nme_pct - base.paper_nme_pct
        line[PAPER_DELTA] = paper_delta
        line[AGREES] = _agrees(delta, paper_delta, flag, row is base)

        line[NME_IO] = (
            stats.summarise([r.nme_inter_ocular_pct for r in complete]).mean if row.kind == "train"
            else roundtrip.get(row.label, {}).get("nme_inter_ocular_pct", math.nan)
        )
        if test is not None:
            line[TEST_NME], line[TEST_NME_IO] = _test_nme(complete, test)
        line[PARAMS] = _attr(recs, "params") if row.kind == "train" else math.nan
        line[MACS] = _attr(recs, "macs") if row.kind == "train" else math.nan
        line[LATENCY] = _fastest_latency(recs) if row.kind == "train" else math.nan
        line[TRAIN_S] = (
            float(sum(r.train_seconds for r in complete) / len(complete)) if complete else math.nan
        )
        skip = row.skip_reason(protocol)
        if row.kind == "roundtrip":
            line[STATUS] = "exact (no model)" if summary.n else "missing"
        elif skip:
            line[STATUS] = skip
        else:
            line[STATUS] = _status(recs, seeds)
        line["Extra row"] = "ours" if row.extra else ""
        line["Note"] = row.note
        line["nme_normalisation"] = describe_normalisation(nme_key)
        line["data"] = describe_data(protocol)
        line["protocol"] = protocol.name
        out.append(line)

    frame = pd.DataFrame(out)
    frame.attrs.update(
        name=suite.name, title=suite.title, caption=suite.caption,
        nme_normalisation=describe_normalisation(nme_key), data=describe_data(protocol),
        protocol=protocol.name, seeds=seeds, config_columns=list(suite.config_columns),
        notes=_notes(seeds, latency_note) + execution_notes([r for recs in records.values() for r in recs])
        + _test_notes(test),
    )
    return frame


def _test_nme(records: Sequence[Record], test: DatasetNme) -> tuple[float, float]:
    """(image, inter-ocular) NME on the test data, mean over the records that were evaluated on it."""
    found = [test.by_key[r.key] for r in records if r.key in test.by_key]
    if not found:
        return math.nan, math.nan
    return (float(sum(f["nme_image_pct"] for f in found) / len(found)),
            float(sum(f["nme_inter_ocular_pct"] for f in found) / len(found)))


def _test_notes(test: DatasetNme | None) -> list[str]:
    if test is None:
        return []
    note = f"NME on --test-data: {test.describe()}."
    if test.without_checkpoint:
        note += f" {test.without_checkpoint} candidate(s) had no checkpoint here and show none."
    return [note]


def execution_notes(records: Sequence[Record]) -> list[str]:
    """How the complete candidates were trained (device, precision, threads): not part of a
    candidate's key, so a table built from reused runs must say it."""
    done = [r for r in records if r.status == Status.COMPLETE]
    if not done:
        return []
    ways = sorted({(r.device or "?", r.precision or "unrecorded", r.threads, r.host) for r in done})
    text = "; ".join(f"{device}, {precision}" + (f", {threads} torch thread(s)" if threads else "")
                     + (f" on {host}" if host else "") for device, precision, threads, host in ways)
    return [f"Trained on: {text}."]


def _agrees(delta: float, paper_delta: float, flag: str, is_base: bool) -> str:
    if is_base or not (math.isfinite(delta) and math.isfinite(paper_delta)):
        return "-"
    same = (delta > 0) == (paper_delta > 0) if delta != 0 and paper_delta != 0 else delta == paper_delta
    text = "yes" if same else "no"
    return f"{text} (within noise)" if flag == stats.WITHIN else text


def _notes(seeds: int, latency_note: str | None = None) -> list[str]:
    notes = [
        "Paper columns are the paper's own numbers (its data, 384 px, its schedule), unchanged; "
        "compare orderings and effects, not raw values.",
        "Model Size: MiB of the saved fp32 state_dict (the paper writes MB for the same files).",
        latency_note or
        "Latency: batch-1 median on the training device, the lowest over the row's seeds; measured "
        "while other training may have shared the machine, so a rough guide (`lightmark report RUN_DIR "
        "--measure-latency` on a quiet machine measures every row in one sitting).",
    ]
    if seeds < 2:
        notes.append("One seed per row: no confidence interval, and whether a difference is beyond "
                     "the seed noise cannot be decided (n/a (1 seed)).")
    else:
        notes.append(f"{seeds} seeds per row (the Seeds column counts those finished): mean, sample std "
                     "and the 95% t-interval; the noise flag compares each row with its baseline by "
                     "Welch's 95% interval of the difference, one row at a time (no correction for "
                     "the several rows of a table).")
    return notes


# -- generic tables of a search run ---------------------------------------------------------------

def records_frame(records: Sequence[Record]) -> pd.DataFrame:
    """Every Record as a row (all Record fields), sorted by status then NME."""
    if not records:
        return pd.DataFrame(columns=[f for f in Record.__dataclass_fields__])
    frame = pd.DataFrame([r.to_dict() for r in records])
    order = {status: i for i, status in enumerate(RECORD_STATUSES)}
    frame["_o"] = frame["status"].map(order).fillna(4)
    frame = frame.sort_values(["_o", NME_KEY], na_position="last").drop(columns="_o")
    return frame.reset_index(drop=True)


def leaderboard(records: Sequence[Record], top: int = 10, latency_note: str | None = None,
                test: DatasetNme | None = None) -> pd.DataFrame:
    """The best completed candidates by image NME, with their cost columns (for reports); with `test`,
    their NME on that test set beside the held-out NME."""
    done = [r for r in records if r.status == Status.COMPLETE and r.nme_image_pct is not None]
    done.sort(key=lambda r: r.nme_image_pct)
    rows = [{
        "Spec": r.spec, "Protocol": r.protocol, "Seed": r.seed, SIZE: r.size_mb, PARAMS: r.params,
        MACS: r.macs, LATENCY: r.latency_ms, NME: r.nme_image_pct, NME_IO: r.nme_inter_ocular_pct,
        **(dict(zip((TEST_NME, TEST_NME_IO), _test_nme([r], test))) if test is not None else {}),
        TRAIN_S: r.train_seconds, "Codec": r.codec, "Loss": r.loss, "Erasing": r.erasing, "Key": r.key,
    } for r in done[:top]]
    frame = pd.DataFrame(rows)
    frame.attrs.update(title="Best completed candidates", nme_normalisation=describe_normalisation(),
                       caption="Sorted by image-normalised NME on each candidate's held-out data.",
                       notes=([latency_note] if latency_note else []) + _test_notes(test))
    return frame


# -- writers -------------------------------------------------------------------------------------

DISPLAY_EXTRA = (SIZE, PAPER_SIZE, NME, PAPER_NME, TEST_NME, TEST_NME_IO, SEEDS, DELTA, PAPER_DELTA, NOISE, AGREES,
                 PARAMS, MACS, LATENCY)


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns a person reads (Markdown, LaTeX, terminal), formatted as text."""
    if "Row" not in frame.columns:
        return frame.map(_fmt) if len(frame) else frame
    config = frame.attrs.get("config_columns", [])
    cols = ["Row", *config, *[c for c in DISPLAY_EXTRA if c in frame.columns]]
    out = pd.DataFrame(index=frame.index)
    for col in cols:
        if col == NME:
            out[col] = [_fmt_mean_ci(m, h) for m, h in zip(frame[NME], frame[NME_CI])]
        elif col == DELTA:
            out[col] = [_fmt_mean_ci(d, h, signed=True) for d, h in zip(frame[DELTA], frame[DELTA_CI])]
        elif col == MACS:
            out["MACs (M)"] = [_fmt(v / 1e6 if _finite(v) else v, 1) for v in frame[MACS]]
        elif col == PARAMS:
            out["Params (M)"] = [_fmt(v / 1e6 if _finite(v) else v, 3) for v in frame[PARAMS]]
        elif col == PAPER_DELTA:
            out[col] = [_fmt(v, 4, signed=True) for v in frame[col]]
        elif col in (SIZE, PAPER_SIZE, LATENCY):
            out[col] = [_fmt(v, 2) for v in frame[col]]
        elif col == PAPER_NME:
            out[col] = [_fmt(v, 4) for v in frame[col]]
        elif col == SEEDS:  # finished seeds: fewer than asked while a run is going or was cut short
            out[col] = [str(int(v)) if _finite(v) else "-" for v in frame[col]]
        else:
            out[col] = [_fmt(v) for v in frame[col]]
    skipped = [s for s in frame.get(STATUS, []) if isinstance(s, str) and s.startswith(("skipped", "missing"))]
    if skipped:
        out["Status"] = frame[STATUS]
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _fmt(v: Any, digits: int = 4, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 1000 else str(v)
    return str(v)


def _fmt_mean_ci(mean: float, half: float, signed: bool = False) -> str:
    text = _fmt(mean, 4, signed)
    if _finite(half) and _finite(mean) and half > 0:
        text += f" ± {half:.4f}"
    return text


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table with its title, caption, normalisation and data notes."""
    shown = display_frame(frame)
    lines = []
    if frame.attrs.get("title"):
        lines += [f"### {frame.attrs['title']}", ""]
    lines += _caption_lines(frame)
    header = [str(c) for c in shown.columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for _, row in shown.iterrows():
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def _caption_lines(frame: pd.DataFrame) -> list[str]:
    """The caption as Markdown block-quote lines (the same text LaTeX puts in \\caption)."""
    lines = _caption_text(frame)
    return [*(f"> {line}  " for line in lines), ""] if lines else []


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
                  "±": r"$\pm$", "Δ": r"$\Delta$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def to_latex(frame: pd.DataFrame) -> str:
    """A booktabs table (needs \\usepackage{booktabs}) with the caption and notes."""
    shown = display_frame(frame)
    caption = " ".join([frame.attrs.get("title", ""), *_caption_text(frame)]).strip()
    label = frame.attrs.get("name", "table")
    lines = [
        r"\begin{table}[t]", r"\centering", r"\scriptsize",
        r"\begin{tabular}{" + "l" * len(shown.columns) + "}", r"\toprule",
        " & ".join(latex_escape(c) for c in shown.columns) + r" \\", r"\midrule",
    ]
    for _, row in shown.iterrows():
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{latex_escape(caption)}}}",
              rf"\label{{tab:{latex_escape(label)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _caption_text(frame: pd.DataFrame) -> list[str]:
    parts = []
    if frame.attrs.get("caption"):
        parts.append(frame.attrs["caption"])
    if frame.attrs.get("nme_normalisation"):
        parts.append(f"NME normalisation: {frame.attrs['nme_normalisation']}.")
    if frame.attrs.get("data"):
        parts.append(f"Data: {frame.attrs['data']}. Protocol: {frame.attrs.get('protocol', '?')}.")
    parts += frame.attrs.get("notes", [])
    return parts


def write_table(frame: pd.DataFrame, out_dir: Path | str, stem: str) -> dict[str, Path]:
    """`stem.csv` (every column, raw numbers), `stem.md` and `stem.tex` (display columns), atomically."""
    out_dir = Path(out_dir)
    paths = {"csv": out_dir / f"{stem}.csv", "md": out_dir / f"{stem}.md", "tex": out_dir / f"{stem}.tex"}
    write_text_atomic(paths["csv"], frame.to_csv(index=False))
    write_text_atomic(paths["md"], to_markdown(frame))
    write_text_atomic(paths["tex"], to_latex(frame))
    return paths


def print_table(frame: pd.DataFrame, console: Any) -> None:
    """Show the display columns as a rich table with the caption below."""
    shown = display_frame(frame)
    if not console.is_terminal:  # piped or captured: do not squeeze 14 columns into 80 characters
        console = Console(file=console.file, width=max(console.width, 220))
    table = Table(title=frame.attrs.get("title"), caption="\n".join(_caption_text(frame)) or None,
                  caption_justify="left", show_lines=False)
    for col in shown.columns:
        table.add_column(str(col), overflow="fold", no_wrap=col == "Row")
    for _, row in shown.iterrows():
        table.add_row(*(str(v) for v in row))
    console.print(table)
