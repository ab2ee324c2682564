"""The live view of a study on stderr: counts, the best under budget, what is training now.

It reads everything from the storage (trial states and user attributes: the epoch the trainer
reached, the last validation NME), so it looks the same with one in-process worker or N
spawned ones, and logs one line per finished trial (useful when stderr is a file).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from lightmark.benchmarks.record import RECORD_STATUSES, Status
from lightmark.search.config import Hooks
from lightmark.search.progress import progress_counts
from lightmark.search.records import summarise_trials, trial_status
from lightmark.search.storage import open_storage
from lightmark.search.storage_retry import single_attempt


class LiveView:
    """Context manager; call `poll()` (or use `hooks()`) to refresh."""

    def __init__(self, config: Any, title: str = "", console: Console | None = None,
                 min_interval_s: float = 0.5) -> None:
        self.config = config
        self.title = title or f"study {config.study_name}"
        self.console = console or Console(stderr=True)
        self.min_interval_s = min_interval_s
        self._storage = None
        self._study_id: int | None = None
        self._live: Live | None = None
        self._seen: set[int] = set()
        self._last = 0.0

    # -- context ----------------------------------------------------------------------------
    def __enter__(self) -> LiveView:
        self._live = Live(Text(""), console=self.console, auto_refresh=False, transient=False)
        self._live.__enter__()
        self.poll(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.poll(force=True)
        finally:
            if self._live is not None:
                self._live.__exit__(*exc)
                self._live = None
                if not self.console.is_terminal:
                    self.console.file.write("\n")  # the last render ends without one

    def hooks(self) -> Hooks:
        return Hooks(
            trial_started=lambda number, spec: self.poll(force=True),
            epoch=lambda number, epoch, metrics: self.poll(),
            trial_finished=lambda trial: self.poll(force=True),
        )

    # -- reading the study ------------------------------------------------------------------
    def _trials(self) -> list:
        try:
            with single_attempt():  # a database that is away: no update now rather than a wait
                return self._read()
        except Exception:  # the view must never stop a search
            return []

    def _read(self) -> list:
        if self._storage is None:
            self._storage = open_storage(self.config.storage)
        if self._study_id is None:
            self._study_id = self._storage.get_study_id_from_name(self.config.study_name)
        return self._storage.get_all_trials(self._study_id, deepcopy=False)

    def poll(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval_s:
            return
        self._last = now
        trials = self._trials()
        for trial in sorted(trials, key=lambda t: t.number):
            if trial.number in self._seen or trial.state.name in ("RUNNING", "WAITING"):
                continue
            self._seen.add(trial.number)
            self.console.print(describe_trial(trial), highlight=False)
        if self._live is not None:
            self._live.update(self.render(trials), refresh=True)

    def render(self, trials: list) -> Group:
        summary = summarise_trials(trials, self.config.objectives)
        counts = summary["counts"]
        target = self.config.n_trials
        done, running, waiting = progress_counts(trials)
        total = f"/{target}" if target and not self.config.fixed else ""
        head = Text.assemble(
            (self.title, "bold"), "  ",
            f"done {done}{total} | running {running} | queued {waiting} | "
            + "".join(f"{status} {counts[status]} | " for status in RECORD_STATUSES)
            + f"reused {summary['reused']} | repeats {summary.get('repeats', 0)}",
        )
        parts: list[Any] = [head]
        best = summary["best"]
        if best:
            parts.append(Text(
                f"best under budget: {best['spec']} (trial {best['trial']}): "
                f"NME {best['nme_image_pct']:.3f} % of image side, {best['size_mb']:.2f} MiB",
                style="green",
            ))
        active = [t for t in trials if t.state.name == "RUNNING"]
        if active:
            table = Table(box=None, padding=(0, 1), show_header=True, header_style="dim")
            for column in ("trial", "spec", "size MiB", "epoch", "val NME %", "worker"):
                table.add_column(column)
            for trial in sorted(active, key=lambda t: t.number):
                a = trial.user_attrs
                epoch = f"{a['epoch']}/{a.get('epochs', '?')}" if "epoch" in a else "-"
                nme = f"{a['last_val_nme_pct']:.3f}" if "last_val_nme_pct" in a else "-"
                size = f"{a['size_mb']:.2f}" if isinstance(a.get("size_mb"), (int, float)) else "-"
                table.add_row(str(trial.number), str(a.get("spec", a.get("fixed_spec", "?"))), size,
                              epoch, nme, str(a.get("worker", "")))
            parts.append(table)
        return Group(*parts)


def describe_trial(trial: Any) -> str:
    """One line per finished trial."""
    a = trial.user_attrs
    status = trial_status(trial)
    spec = a.get("spec", a.get("fixed_spec", "?"))
    label = f" [{a['label']}]" if a.get("label") else ""
    size = f", {a['size_mb']:.2f} MiB" if isinstance(a.get("size_mb"), (int, float)) else ""
    if status == Status.COMPLETE:
        nme = a.get("nme_image_pct")
        tail = f"NME {nme:.3f} %" if isinstance(nme, (int, float)) else "done"
        secs = a.get("train_seconds") or 0
        tail += " (cached, not retrained)" if a.get("reused") else f", trained {secs:.1f} s"
    elif status == Status.INFEASIBLE:
        tail = "over budget, not trained"
    elif status == Status.PRUNED:
        tail = f"pruned at epoch {a.get('epoch', '?')}"
    else:
        tail = f"failed: {a.get('reason', '?')}"
    return f"trial {trial.number}{label} {spec}{size}: {status}, {tail}"
