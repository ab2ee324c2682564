"""`build_report(run_dir)`: any search or ablation run directory -> `report.md` plus its files.

The report reads what the run left behind, whatever state it is in: the Optuna storage
(`study.db`, or a journal file) with every trial's Record in its user attributes, the runner's
cached `candidates/*/record.json`, the search's `records.csv`, and an ablation's `ablation.json`
manifest. A run that is still going or was interrupted gives a report of what is finished so far
(running and failed trials are counted and listed, missing table rows say so). Tables are written
as CSV/Markdown/LaTeX and plots as PNG beside `report.md`, which embeds them.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.storages.journal import JournalFileBackend, JournalStorage

from lightmark.atomic import write_text_atomic
from lightmark.benchmarks.ablation import MANIFEST
from lightmark.benchmarks.evaluation import DatasetNme, best_checkpoints, dataset_nme, evaluate_best, prediction_sample
from lightmark.benchmarks.latency import SHEET_NAME, LatencySheet, read_sheet
from lightmark.benchmarks.record import Record, Status, candidate_key
from lightmark.benchmarks.suites import get_suite, row_spec
from lightmark.errors import DataError
from lightmark.metrics import ced_curve
from lightmark.models.spec import DEFAULT_N_LANDMARKS
from lightmark.reports import plots, tables
from lightmark.search.records import trial_record, trial_status
from lightmark.search.storage import JOURNAL_SUFFIXES
from lightmark.training.protocol import Protocol

REPORT = "report.md"
STATUS_RANK = {Status.COMPLETE: 0, Status.PRUNED: 1, Status.FAILED: 2, Status.INFEASIBLE: 3, Status.RUNNING: 4,
               Status.WAITING: 5}


@dataclass
class StudyView:
    name: str
    storage: str  # what a person would pass to optuna / optuna-dashboard
    trials: list[Any]
    directions: list[str]
    user_attrs: dict[str, Any]


@dataclass
class RunData:
    run_dir: Path
    records: list[Record] = field(default_factory=list)  # one per candidate key, best status first
    studies: list[StudyView] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    pareto: dict[str, Any] | None = None
    latency: LatencySheet | None = None  # latency.json: when present, every record's latency comes from it
    notes: list[str] = field(default_factory=list)


# -- reading a run --------------------------------------------------------------------------------

def _storages(run_dir: Path) -> list[tuple[str, Any]]:
    """(description, optuna storage) for each study file in the run directory."""
    found: list[tuple[str, Any]] = []
    for path in sorted(run_dir.glob("*.db")) + sorted(run_dir.glob("*.sqlite*")):
        url = f"sqlite:///{path.resolve()}"
        found.append((url, url))
    for path in sorted(p for p in run_dir.iterdir() if p.is_file() and p.suffix in JOURNAL_SUFFIXES):
        found.append((f"journal:{path.resolve()}",
                      lambda p=path: JournalStorage(JournalFileBackend(str(p)))))
    return found


def _load_studies(run_dir: Path, notes: list[str]) -> list[StudyView]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    views = []
    for desc, storage in _storages(run_dir):
        try:
            storage = storage() if callable(storage) else storage
            for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
                study = optuna.load_study(study_name=summary.study_name, storage=storage)
                views.append(StudyView(summary.study_name, desc, list(study.trials),
                                       [d.name.lower() for d in study.directions], dict(study.user_attrs)))
        except Exception as exc:  # noqa: BLE001 - a damaged store must not stop the report
            notes.append(f"could not read the study storage {desc}: {type(exc).__name__}: {exc}")
    return views


def _warn(notes: list[str], message: str) -> None:
    """Tell the user now (stderr) and in the report's notes."""
    print(f"lightmark report: warning: {message}", file=sys.stderr)
    notes.append(message)


def _trial_record(trial: Any) -> Record | None:
    record = trial_record(trial)
    if record is None:
        return None
    status = trial_status(trial)
    if status in (Status.RUNNING, Status.WAITING, Status.FAILED, Status.PRUNED) and record.status != status:
        error = record.error or str(trial.user_attrs.get("error") or trial.user_attrs.get("reason") or "")
        record = replace(record, status=status, error=error)
    return record


# How each Record field is read from records.csv (from the dataclass' annotations)
_FIELD_KINDS = {f.name: str(f.type).split(" | ")[0] for f in fields(Record)}
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _csv_records(path: Path, notes: list[str]) -> list[Record]:
    """The Records of the search's records.csv; a row with a cell that is not of its field's type
    is skipped with a warning naming the file, the row and the column."""
    try:
        frame = pd.read_csv(path, dtype="string", keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        _warn(notes, f"{path}: unreadable ({type(exc).__name__}: {exc}); its rows are not used")
        return []
    columns = [c for c in frame.columns if c in _FIELD_KINDS]
    typed: dict[str, pd.Series] = {}
    invalid = pd.DataFrame(False, index=frame.index, columns=columns)
    for column in columns:
        kind = _FIELD_KINDS[column]
        text = frame[column].str.strip()
        if kind == "str":
            typed[column] = text
            continue
        empty = text.eq("")
        if kind == "bool":
            values = text.str.lower().map(_BOOLS)
        else:
            values = pd.to_numeric(text.mask(empty), errors="coerce")
            if kind == "int":
                invalid[column] |= values.notna() & (values % 1 != 0)
        invalid[column] |= values.isna() & ~empty
        typed[column] = values
    out = []
    for index in frame.index:
        where = f"{path}, row {index + 2}"  # the header is line 1
        bad = [c for c in columns if invalid.at[index, c]]
        if bad:
            cells = ", ".join(f"{c}={frame.at[index, c]!r}" for c in bad)
            _warn(notes, f"{where}: not a {'/'.join(_FIELD_KINDS[c] for c in bad)} ({cells}); row skipped")
            continue
        data: dict[str, Any] = {}
        for column in columns:
            value = typed[column].at[index]
            kind = _FIELD_KINDS[column]
            if pd.isna(value):
                data[column] = "" if kind == "str" else None
            else:
                data[column] = {"int": int, "float": float, "bool": bool, "str": str}[kind](value)
        if not data.get("key") or not data.get("spec"):
            _warn(notes, f"{where}: no key or spec; row skipped")
            continue
        data.setdefault("params", 0)
        data.setdefault("size_mb", math.nan)
        out.append(Record.from_dict(data))
    return out


def load_run(run_dir: Path | str) -> RunData:
    """Everything a report needs from a run directory, tolerant of a run in progress."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    data = RunData(run_dir=run_dir)
    manifest = run_dir / MANIFEST
    if manifest.exists():
        try:
            data.manifest = json.loads(manifest.read_text())
        except ValueError as exc:
            data.notes.append(f"{manifest}: unreadable ({exc}); ablation tables skipped")
    pareto = run_dir / "pareto.json"
    if pareto.exists():
        try:
            data.pareto = json.loads(pareto.read_text())
        except (OSError, ValueError) as exc:
            _warn(data.notes, f"{pareto}: unreadable ({exc}); its budget lines are not drawn")
    data.studies = _load_studies(run_dir, data.notes)

    found: list[tuple[int, Record]] = []  # (source priority, record): cached record.json first
    for path in sorted(run_dir.glob("candidates/*/record.json")):
        try:
            found.append((0, Record.from_dict(json.loads(path.read_text()))))
        except (OSError, ValueError, TypeError) as exc:
            data.notes.append(f"{path}: unreadable record ({exc})")
    for view in data.studies:
        for trial in view.trials:
            record = _trial_record(trial)
            if record is not None:
                found.append((1, record))
    if (run_dir / "records.csv").exists():
        found.extend((2, r) for r in _csv_records(run_dir / "records.csv", data.notes))
    best: dict[str, tuple[tuple[int, int], Record]] = {}
    for source, record in found:
        rank = (STATUS_RANK.get(record.status, 9), source)
        if record.key not in best or rank < best[record.key][0]:
            best[record.key] = (rank, record)
    data.records = [record for _, record in best.values()]
    data.latency = read_sheet(run_dir / SHEET_NAME)
    if data.latency is not None:
        data.records = _with_sheet_latency(data.records, data.latency, data.notes)
    if not data.records and not data.studies:
        data.notes.append("no study storage and no records found: nothing has finished yet")
    return data


def _with_sheet_latency(records: list[Record], sheet: LatencySheet, notes: list[str]) -> list[Record]:
    """Every record's latency from the one-sitting sheet; a candidate it lacks gets none, since its
    own start-of-training number would not compare with the others."""
    out, missing = [], []
    for record in records:
        value = sheet.lookup(record.spec, record.input_size)
        if value is None and record.status in (Status.COMPLETE, Status.PRUNED):
            missing.append(record.spec)
        out.append(replace(record, latency_ms=value))
    if missing:
        notes.append(f"{len(missing)} trained candidate(s) finished after {SHEET_NAME} was measured and have no "
                     f"latency ({', '.join(sorted(set(missing))[:5])}); measure again with "
                     "`lightmark report RUN_DIR --measure-latency`.")
    return out


# -- ablation tables ------------------------------------------------------------------------------

def ablation_frames(manifest: dict[str, Any], records: list[Record], latency_note: str | None = None,
                    test: DatasetNme | None = None) -> list[Any]:
    """Rebuild every ablation table the manifest names from whichever Records exist.

    `latency_note`: how the records' latencies were measured, when not the runner's own numbers.
    `test`: the candidates' NME on a test set (`--test-data`), a column beside the held-out NME."""
    base = Protocol.from_dict(manifest["protocol"])
    seeds = int(manifest.get("seeds", 1))
    n_landmarks = int(manifest.get("n_landmarks", DEFAULT_N_LANDMARKS))  # the data's points
    by_key = {r.key: r for r in records}
    frames = []
    for name in manifest.get("tables", []):
        suite = get_suite(name)
        per_row: dict[str, list[Record]] = {}
        for row in suite.train_rows:
            if row.skip_reason(base):
                continue
            keys = [candidate_key(row_spec(row, n_landmarks), row.protocol(base, seed)) for seed in range(seeds)]
            per_row[row.label] = [by_key[k] for k in keys if k in by_key]
        roundtrip = manifest.get("roundtrip", {}).get(name, {})
        frames.append(tables.suite_table(suite, per_row, protocol=base, seeds=seeds, roundtrip=roundtrip,
                                         latency_note=latency_note, test=test))
    return frames


def architecture_points(frames: list[Any]) -> list[plots.ArchitecturePoint]:
    """The architecture rows of Tables 1-2 (one point per spec, the shared baseline once)."""
    seen: dict[str, plots.ArchitecturePoint] = {}
    for frame in frames:
        if frame.attrs.get("name") not in ("table1", "table2"):
            continue
        for row in frame.to_dict(orient="records"):
            if row["Row"] in seen or str(row.get(tables.STATUS, "")).startswith("skipped"):
                continue
            seen[row["Row"]] = plots.ArchitecturePoint(
                label=row["Row"], size_mb=float(row[tables.SIZE]), nme=float(row[tables.NME]),
                nme_std=float(row[tables.NME_STD]), paper_size_mb=float(row[tables.PAPER_SIZE]),
                paper_nme=float(row[tables.PAPER_NME]))
    return list(seen.values())


# -- budgets --------------------------------------------------------------------------------------

def _budgets(data: RunData) -> dict[str, float]:
    """Budget lines per plot axis (MiB, GMACs, ms): the search stores its Budget.to_dict()
    ({"size_mb", "macs", "latency_ms"}) as the study's user attr "budget" (JSON) and in pareto.json."""
    sources: list[Any] = [v.user_attrs.get("budget") for v in data.studies]
    if data.pareto:
        sources.append(data.pareto.get("budget"))
    out: dict[str, float] = {}
    for source in sources:
        if isinstance(source, str):
            try:
                source = json.loads(source)
            except ValueError:
                continue
        if not isinstance(source, dict):
            continue
        for axis, key, scale in (("size", "size_mb", 1.0), ("macs", "macs", 1e-9),
                                 ("latency", "latency_ms", 1.0)):
            if axis == "size" and source.get("size_metric", "state_dict") != "state_dict":
                continue  # the limit is on an exported file's size, not the state_dict the plots show
            value = source.get(key)
            if axis not in out and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value) and value > 0:
                out[axis] = float(value) * scale
    return out


# -- the report -----------------------------------------------------------------------------------

def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def evaluate_test_data(run_dir: Path | str, test_data: Path | str, records: list[Record] | None = None) -> DatasetNme:
    """Every complete candidate of the run evaluated on `test_data` (CPU), or DataError if it does not exist."""
    if not Path(test_data).exists():
        raise DataError(f"--test-data {test_data}: no such file or directory")
    records = load_run(run_dir).records if records is None else records
    return dataset_nme(records, Path(run_dir), test_data, device="cpu")


def build_report(run_dir: Path | str, *, evaluate_best: int = 3, progress: bool = False,
                 test_data: Path | str | None = None, test: DatasetNme | None = None) -> Path:
    """Write `run_dir/report.md` with tables, plots and notes; returns its path.

    `evaluate_best`: CED curves and a prediction grid for this many of the best completed
    candidates that still have a checkpoint (0 skips; the evaluation runs on the CPU/GPU here).
    `test_data`: a dataset (e.g. the real-photo dev set of `lightmark data realdev`) on which every
    complete candidate with a checkpoint is evaluated; its NME goes beside the held-out NME in the tables
    and into `test_data_nme.csv`. `test`: those numbers when the caller already has them.
    """
    data = load_run(run_dir)
    out = data.run_dir
    if test is None and test_data is not None:
        test = evaluate_test_data(out, test_data, data.records)
    lines: list[str] = [f"# lightmark report: `{out.name}`", ""]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    lines.append(f"Generated {now} from `{out}`.")
    counts = _counts(data)
    if counts:
        running = counts.get(Status.RUNNING, 0) + counts.get(Status.WAITING, 0)
        lines.append("Trials: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
                     + (" (the run is still going or was interrupted: this reports what has finished)"
                        if running else "") + ".")
    for view in data.studies:
        lines.append(f"Study `{view.name}` ({', '.join(view.directions)}): `{view.storage}`; watch it live "
                     f"with `optuna-dashboard {view.storage.replace('journal:', '')}`.")
    latency_note = data.latency.describe() if data.latency else None
    if latency_note:
        lines.append(f"{latency_note} ([{SHEET_NAME}]({SHEET_NAME}))")
    elif any(r.latency_ms is not None for r in data.records):
        lines.append("Latency: each candidate's own batch-1 measurement, taken as it started training and "
                     "beside whatever else ran; for latencies that compare across rows, run "
                     f"`lightmark report {out} --measure-latency` on a quiet machine.")
    lines.append("")
    files: list[Path] = [out / SHEET_NAME] if data.latency else []

    if data.manifest:
        lines += ["## Ablation tables", "",
                  "These are not the paper's data: the absolute NME differs. Compare orderings and effects "
                  "(the delta and whether it is beyond the seed noise), not raw numbers.", ""]
        if data.manifest.get("command"):
            lines += [f"Command: `{data.manifest['command']}`", ""]
        frames = ablation_frames(data.manifest, data.records, latency_note=latency_note, test=test)
        for frame in frames:
            paths = tables.write_table(frame, out, frame.attrs["name"])
            files += paths.values()
            lines += [tables.to_markdown(frame),
                      f"Files: [{paths['csv'].name}]({paths['csv'].name}), "
                      f"[{paths['tex'].name}]({paths['tex'].name})", ""]
        points = architecture_points(frames)
        if points:
            ours = (f"{str(frames[0].attrs.get('data', 'this run')).split(':')[0]}, "
                    f"{frames[0].attrs.get('protocol', '?')} protocol")
            path = plots.plot_architecture_frontier(points, out / "frontier_architectures.png", ours=ours)
            files.append(path)
            lines += ["### Architecture frontier (Tables 1-2)", "",
                      f"![size vs NME per architecture, ours and the paper's]({path.name})", ""]

    budgets = _budgets(data)
    if data.records:
        lines += ["## Frontiers", ""]
        label = {"size": "model size", "macs": "MACs", "latency": "latency"}
        for axis in ("size", "macs", "latency"):
            path = plots.plot_frontier(data.records, out / f"frontier_{axis}.png", axis=axis,
                                       budget=budgets.get(axis), title=f"NME vs {label[axis]}")
            files.append(path)
            lines += [f"![NME vs {label[axis]}]({path.name})", ""]
        board = tables.leaderboard(data.records, latency_note=latency_note, test=test)
        if len(board):
            paths = tables.write_table(board, out, "leaderboard")
            files += paths.values()
            lines += [tables.to_markdown(board).replace("### ", "## ", 1)]
        every = tables.records_frame(data.records)
        write_text_atomic(out / "all_records.csv", every.to_csv(index=False))
        files.append(out / "all_records.csv")
        lines += ["Every candidate (one row per candidate key): [all_records.csv](all_records.csv).", ""]

    for view in data.studies:
        if not view.trials:
            continue
        slug = view.name.replace("/", "_")
        lines += [f"## Study `{view.name}`", ""]
        path = plots.plot_history(view.trials, out / f"history_{slug}.png",
                                  title=f"Optimisation history: {view.name}")
        files.append(path)
        lines += [f"![history]({path.name})", ""]

        class _S:  # param_importances needs .trials only
            trials = view.trials

        if not any(t.params for t in view.trials):  # fixed candidates (an ablation): nothing to rank
            importances, why = None, ""
        else:
            importances, why = plots.param_importances(_S)
        if importances:
            path = plots.plot_importances(importances, out / f"importances_{slug}.png")
            files.append(path)
            lines += [f"![parameter importances]({path.name})", ""]
        elif why:
            lines += [f"Parameter importances: not computed ({why}).", ""]
        problems = [t for t in view.trials if trial_status(t) in (Status.FAILED, Status.RUNNING)]
        if problems:
            lines += ["| Trial | State | Spec | Reason |", "|---|---|---|---|"]
            for t in problems:
                reason = str(t.user_attrs.get("reason") or t.user_attrs.get("error") or "")[:200]
                lines.append(f"| {t.number} | {trial_status(t)} | {t.user_attrs.get('spec', '?')} | "
                             f"{reason.replace('|', '/')} |")
            lines.append("")

    if test is not None:
        lines += _test_data_section(data, out, test, files)
    if evaluate_best > 0 and data.records:
        lines += _evaluation_section(data, out, evaluate_best, files)

    if data.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in data.notes), ""]
    lines += ["## Files", "", *(f"- [{_rel(p, out)}]({_rel(p, out)})" for p in dict.fromkeys(files)), ""]
    report = out / REPORT
    write_text_atomic(report, "\n".join(lines))
    return report


def _counts(data: RunData) -> dict[str, int]:
    counts: dict[str, int] = {}
    if data.studies:
        for view in data.studies:
            for t in view.trials:
                status = trial_status(t)
                counts[status] = counts.get(status, 0) + 1
    else:
        for r in data.records:
            counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def curve_label(record: Record, taken: list[str]) -> str:
    """A legend entry that tells the best candidates apart (one curve each, never one over another)."""
    name = (f"{record.spec} seed {record.seed} ({record.codec}, {record.loss}"
            f"{', erasing' if record.erasing else ''})")
    return f"{name} [{record.key[:6]}]" if name in taken else name


TEST_DATA_CSV = "test_data_nme.csv"


def _test_data_section(data: RunData, out: Path, test: DatasetNme, files: list[Path]) -> list[str]:
    """Held-out NME beside the NME on --test-data, one row per evaluated candidate, best held-out first."""
    rows = [r for r in data.records if r.key in test.by_key]
    rows.sort(key=lambda r: (r.nme_image_pct is None, r.nme_image_pct or 0.0))
    frame = pd.DataFrame([{
        "Spec": r.spec, "Seed": r.seed, "Protocol": r.protocol, tables.NME: r.nme_image_pct,
        tables.NME_IO: r.nme_inter_ocular_pct, tables.TEST_NME: test.by_key[r.key]["nme_image_pct"],
        tables.TEST_NME_IO: test.by_key[r.key]["nme_inter_ocular_pct"],
        tables.TEST_WORST_IO: test.by_key[r.key].get("worst_nme_inter_ocular_pct"),
        tables.TEST_WORST_FACE: test.by_key[r.key].get("worst_face"), "Key": r.key,
    } for r in rows], columns=["Spec", "Seed", "Protocol", tables.NME, tables.NME_IO, tables.TEST_NME,
                               tables.TEST_NME_IO, tables.TEST_WORST_IO, tables.TEST_WORST_FACE, "Key"])
    write_text_atomic(out / TEST_DATA_CSV, frame.to_csv(index=False))
    files.append(out / TEST_DATA_CSV)
    lines = ["## NME on the test data", "",
             f"Held-out NME (each candidate's own validation data) beside the NME on {test.describe()}. "
             f"[{TEST_DATA_CSV}]({TEST_DATA_CSV})", ""]
    if test.without_checkpoint:
        lines += [f"{test.without_checkpoint} complete candidate(s) have no checkpoint here and are not listed.", ""]
    if len(frame):
        frame.attrs.update(title="")
        lines += [tables.to_markdown(frame)]
    return lines


def _evaluation_section(data: RunData, out: Path, n_best: int, files: list[Path]) -> list[str]:
    """CED curves and a prediction grid of the best completed candidates with checkpoints."""
    best = best_checkpoints(data.records, out, n_best)
    if not best.chosen:
        return []
    lines = ["## Best models on the held-out data", ""]
    if best.passed_over:
        lines += [f"The {len(best.chosen)} best candidates that still have a checkpoint here; {best.passed_over} "
                  "better one(s) have no checkpoint in this run directory, so they are not drawn.", ""]
    try:
        evaluated = evaluate_best(best.chosen, device="cpu")
        errors: list[tuple[str, np.ndarray]] = []
        for item in evaluated:
            errors.append((curve_label(item.record, [name for name, _ in errors]),
                           item.result.per_image["inter_ocular"]))
        # the usual CED range is 0-10 %; a weak model (e.g. a smoke run) would be a flat line there
        max_error = 10.0
        if np.mean(errors[0][1] <= max_error) < 0.5:
            max_error = float(np.ceil(np.percentile(np.concatenate([e for _, e in errors]), 95)))
        curves = {name: ced_curve(per_image, max_error, 101) for name, per_image in errors}
        path = plots.plot_ced(curves, out / "ced_best.png", unit="NME (% of inter-ocular distance)",
                              title="Cumulative error distribution of the best models (held-out faces)")
        files.append(path)
        lines += [f"![CED]({path.name})", ""]
        lines += _prediction_grid(evaluated[0], out, files)
    except Exception as exc:  # noqa: BLE001 - evaluation is an extra; the report must still come out
        lines += [f"Evaluation of the best checkpoints failed: {type(exc).__name__}: {exc}", ""]
    return lines


def _prediction_grid(item: Any, out: Path, files: list[Path]) -> list[str]:
    images, rows = prediction_sample(item)
    if not rows:
        return []
    result = item.result
    per = result.per_image["image"]
    titles = [f"face {int(result.indices[r])}: NME {per[r]:.2f}% of side" for r in rows]
    path = plots.plot_predictions(images, result.pred[rows], result.gt[rows],
                                  out / "predictions_best.png", titles=titles,
                                  title=f"{item.record.spec}: predicted (red x) vs true (green o)")
    files.append(path)
    return [f"![sample predictions]({path.name})", ""]
