"""Replay searches on a tabular benchmark: real Optuna studies whose objective is a table lookup.

Each replay is one Optuna study built by the search's own `make_sampler` / `make_pruner` (so it tests
the defaults `lightmark search` uses). A trial's architecture comes from `SearchSpace.suggest`; an
over-budget one is answered as the search answers it (constraint violated, value inf, no cost); a
feasible one reports the table's per-epoch validation NME to the pruner and costs the epochs it
"trained"; an architecture sampled again costs nothing but still uses a trial (the search's runner
cache does the same). Regret = best final NME found among feasible, complete trials minus the best
feasible NME in the table (percentage points of the table's metric).

Every spec is replayed with its seed-0 row (the one every architecture has); the seed noise of the
table is measured separately (`seed_noise`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError
from lightmark.intervals import mean_ci
from lightmark.models.spec import ModelSpec
from lightmark.models.specs import parse_spec
from lightmark.paper import final_design, spec_text, table_rows
from lightmark.search.config import SearchConfig
from lightmark.search.family_space import AnySpace, complete_part
from lightmark.search.pareto_pruner import ParetoPruner, hypervolume_2d
from lightmark.search.prescreen import best_by_score, draw_candidates
from lightmark.search.samplers import PRUNERS, default_startup_trials, make_pruner, make_sampler
from lightmark.search.space import SearchSpace
from lightmark.tabular.table import CURVE_METRICS, Table, curve_column
from lightmark.training.protocol import Protocol, get_protocol

REPLAY_SAMPLERS = ("tpe", "random", "nsga2")  # the search's samplers that propose (grid enumerates)
DEFAULT_REPORT_TRIALS = (5, 10, 20, 40, 80, 160)
TOP_FRACTION = 0.05
REGRET_TARGETS = (0.1, 0.05)  # pp: "epochs to reach" a mean regret, to compare pruners at equal regret


@dataclass(frozen=True)
class Entry:
    spec: str
    size_mb: float
    curve: tuple[float, ...]  # validation metric after epochs 1..E (NaN where not evaluated)
    final: float


@dataclass(frozen=True)
class Landscape:
    """The table as the replay needs it: one entry per spec, the space, the budget's optimum."""

    entries: dict[str, Entry]
    space: AnySpace
    epochs: int
    budget_mb: float | None
    metric: str
    protocol: Protocol
    left_out: tuple[str, ...] = ()  # architectures of the table outside the complete grid replayed

    def feasible(self, entry: Entry) -> bool:
        return self.budget_mb is None or entry.size_mb <= self.budget_mb

    @property
    def feasible_finals(self) -> np.ndarray:
        return np.sort([e.final for e in self.entries.values() if self.feasible(e) and math.isfinite(e.final)])

    @property
    def best(self) -> float:
        finals = self.feasible_finals
        if not len(finals):
            raise ConfigError(f"no architecture of the table fits --budget-mb {self.budget_mb}")
        return float(finals[0])

    @property
    def top_threshold(self) -> float:
        """The final value of the worst architecture still in the top 5 % of the feasible ones."""
        finals = self.feasible_finals
        return float(finals[max(1, math.ceil(TOP_FRACTION * len(finals))) - 1])


def landscape(table: Table, *, budget_mb: float | None = None, metric: str = "nme_image_pct",
              space: AnySpace | None = None) -> Landscape:
    """The table's base fidelity as a replay's world. A table whose whole grid is not complete (a
    cross-family table with an extra head width for some backbones) replays its largest complete part,
    naming what it leaves out; `space`: only that space's architectures instead."""
    if metric not in CURVE_METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(CURVE_METRICS)}, got {metric!r}")
    table = table.base()  # a multi-fidelity table replays at its base fidelity, the complete grid
    frame = table.frame
    first_seed = frame["seed"] == frame.groupby("spec")["seed"].transform("min")
    rows = frame[(frame["status"] == Status.COMPLETE) & first_seed]
    if rows.empty:
        raise ConfigError(f"table {table.name}: no complete rows")
    epochs = table.epochs
    entries: dict[str, Entry] = {}
    for row in rows.itertuples(index=False):
        data = row._asdict()
        curve = tuple(float(data.get(curve_column(metric, e), math.nan)) for e in range(1, epochs + 1))
        entries[str(data["spec"])] = Entry(spec=str(data["spec"]), size_mb=float(data["size_mb"]), curve=curve,
                                           final=float(data[metric]))
    left_out: tuple[str, ...] = ()
    if space is not None:
        wanted = {str(s) for s in space.specs()}
        entries = {spec: entry for spec, entry in entries.items() if spec in wanted}
    else:  # the largest part whose grid is complete (all of a table trained as one grid)
        space, dropped = complete_part(parse_spec(s) for s in entries)
        left_out = tuple(str(s) for s in dropped)
        entries = {spec: entry for spec, entry in entries.items() if spec not in left_out}
    missing = [str(s) for s in space.specs() if str(s) not in entries]
    if missing:
        raise ConfigError(f"table {table.name}: the grid of --space is not complete in it (no row for "
                          f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})")
    proto_dict = table.meta.get("protocol")
    protocol = Protocol.from_dict(proto_dict) if proto_dict else get_protocol("smoke")
    protocol = replace(protocol, epochs=epochs)
    return Landscape(entries=entries, space=space, epochs=epochs, budget_mb=budget_mb, metric=metric,
                     protocol=protocol, left_out=left_out)


@dataclass(frozen=True)
class Run:
    """One replayed study: after each trial, the incumbent's regret and the epochs spent so far."""

    sampler: str
    pruner: str
    seed: int
    regret: tuple[float, ...]
    epochs: tuple[int, ...]
    repeats: int
    infeasible: int
    pruned: int
    best_spec: str | None


@dataclass(frozen=True)
class Trace:
    """What one replayed study did, trial by trial."""

    outcomes: tuple[tuple[str, float | None], ...]  # (spec, final value; None: infeasible or pruned)
    epochs: tuple[int, ...]  # epochs spent after each trial
    repeats: int
    infeasible: int
    pruned: int


def _replay_study(land: Landscape, config: SearchConfig, stop_epoch: Callable[[Any, Entry], int],
                  enqueue: tuple[str, ...] = ()) -> Trace:
    """The loop every replay shares. Over-budget architectures are answered as the search answers them
    (constraint violated, NME inf, no cost); a repeat gets its first outcome again at no cost; a new
    feasible one "trains": `stop_epoch(trial, entry)` says at which epoch a pruner stopped it (0: it
    finished), and its cost is the epochs it ran."""
    two = len(config.objectives) > 1
    directions = ["minimize"] * len(config.objectives)
    # a fixed name: Hyperband assigns brackets by a hash of the study name (random when unnamed)
    study = optuna.create_study(directions=directions, sampler=make_sampler(config),
                                pruner=None if two else make_pruner(config),
                                study_name=f"replay-{config.sampler}-{config.pruner}-{config.seed}")
    for spec in enqueue:  # a prescreen's choices, tried first as the search tries them
        study.enqueue_trial(land.space.params_of(parse_spec(spec)))
    seen: dict[str, float | None] = {}
    outcomes, epochs = [], []
    spent = repeats = infeasible = pruned = 0
    for _ in range(config.n_trials or 0):
        trial = study.ask()
        spec = str(land.space.suggest(trial))
        entry = land.entries[spec]
        over = 0.0 if land.budget_mb is None else entry.size_mb - land.budget_mb
        trial.set_constraint("size_mb", over)
        value: float | None = None
        if over > 0:
            infeasible += 1
            study.tell(trial, (math.inf, entry.size_mb) if two else math.inf)
        elif spec in seen:
            repeats += 1
            value = seen[spec]
            if value is None:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, (value, entry.size_mb) if two else value)
        else:
            stopped = stop_epoch(trial, entry)
            if stopped:
                spent += stopped
                pruned += 1
                study.tell(trial, state=TrialState.PRUNED)
            else:
                spent += land.epochs
                value = entry.final
                study.tell(trial, (value, entry.size_mb) if two else value)
            seen[spec] = value
        outcomes.append((spec, value))
        epochs.append(spent)
    return Trace(outcomes=tuple(outcomes), epochs=tuple(epochs), repeats=repeats, infeasible=infeasible,
                 pruned=pruned)


def _config(land: Landscape, sampler: str, pruner: str, seed: int, n_trials: int,
            startup_trials: int | None = None, objectives: tuple[str, ...] = ("nme",)) -> SearchConfig:
    """The search's own configuration, so make_sampler/make_pruner build exactly what it would."""
    return SearchConfig(protocol=land.protocol, run_dir=Path("."), storage=None, study_name="replay",
                        space=land.space, sampler=sampler, pruner=pruner, seed=seed, n_trials=n_trials,
                        startup_trials=startup_trials, objectives=objectives)


def prescreened(land: Landscape, scores: dict[str, float], k: int, seed: int, keep: int) -> tuple[str, ...]:
    """What `search --prescreen PROXY:K` would enqueue on this table: the `keep` best by the proxy of K
    random feasible architectures (the same draw and choice as the search's)."""
    specs = [parse_spec(name) for name in land.entries]
    candidates = draw_candidates(specs, lambda s: land.feasible(land.entries[str(s)]), k, seed)
    return tuple(best_by_score(scores, candidates, keep))


def replay_one(land: Landscape, sampler: str, pruner: str, seed: int, n_trials: int,
               startup_trials: int | None = None, prescreen: tuple[dict[str, float], int] | None = None) -> Run:
    """One single-objective study: the pruner sees the per-epoch curve through trial.report.
    `prescreen` = (proxy scores of the table's specs, K): the search's `--prescreen` before the study."""
    def stop_epoch(trial: Any, entry: Entry) -> int:
        for epoch, value in enumerate(entry.curve, 1):
            if math.isfinite(value):
                trial.report(value, epoch)
                if epoch < land.epochs and trial.should_prune():
                    return epoch
        return 0

    config = _config(land, sampler, pruner, seed, n_trials, startup_trials)
    enqueue = () if prescreen is None else prescreened(
        land, prescreen[0], prescreen[1], seed, startup_trials or default_startup_trials(n_trials))
    trace = _replay_study(land, config, stop_epoch, enqueue)
    best, worst = land.best, float(land.feasible_finals[-1])
    incumbent, incumbent_spec, regret = math.inf, None, []
    for spec, value in trace.outcomes:
        if value is not None and value < incumbent:
            incumbent, incumbent_spec = value, spec
        regret.append((incumbent if math.isfinite(incumbent) else worst) - best)
    label = sampler if prescreen is None else f"{sampler}+prescreen:{prescreen[1]}"
    return Run(sampler=label, pruner=pruner, seed=seed, regret=tuple(regret), epochs=trace.epochs,
               repeats=trace.repeats, infeasible=trace.infeasible, pruned=trace.pruned, best_spec=incumbent_spec)


def _job(args: tuple) -> Any:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    fn, *rest = args
    return fn(*rest)


def run_jobs(fn: Callable[..., Any], jobs: list[tuple], workers: int | None) -> list[Any]:
    """Replays are independent: spread them over the cores (one process per core by default)."""
    tasks = [(fn, *job) for job in jobs]
    workers = workers or len(os.sched_getaffinity(0))
    if workers <= 1 or len(tasks) < 8:
        return [_job(task) for task in tasks]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_job, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


def replay_many(land: Landscape, samplers: list[str], pruners: list[str], *, n_trials: int, seeds: list[int],
                startup_trials: int | None = None, workers: int | None = None,
                prescreen: tuple[dict[str, float], int] | None = None) -> list[Run]:
    for s in samplers:
        if s not in REPLAY_SAMPLERS:
            raise ConfigError(f"--samplers: {s!r} is not one of {', '.join(REPLAY_SAMPLERS)}")
    for p in pruners:
        if p not in PRUNERS or p == "pareto":
            raise ConfigError(f"--pruners: {p!r} is not one of none, median, hyperband (pareto: --objectives nme,size)")
    if n_trials < 1 or not seeds:
        raise ConfigError("--n-trials must be >= 1 and --seeds must name at least one seed")
    jobs = [(land, s, p, seed, n_trials, startup_trials, prescreen) for s in samplers for p in pruners
            for seed in seeds]
    return run_jobs(replay_one, jobs, workers)


# -- summaries ----------------------------------------------------------------------------------
@dataclass
class ArmSummary:
    sampler: str
    pruner: str
    seeds: int
    at_trials: dict[int, dict[str, float]] = field(default_factory=dict)
    at_epochs: dict[int, dict[str, float]] = field(default_factory=dict)
    p_top1: float = 0.0
    p_top5pct: float = 0.0
    repeats_mean: float = 0.0
    infeasible_mean: float = 0.0
    pruned_mean: float = 0.0
    epochs_mean: float = 0.0
    epochs_to_regret: dict[float, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler, "pruner": self.pruner, "seeds": self.seeds,
            "regret_at_trials": {str(k): v for k, v in self.at_trials.items()},
            "regret_at_epochs": {str(k): v for k, v in self.at_epochs.items()},
            "p_top1": self.p_top1, "p_top5pct": self.p_top5pct, "epochs_spent_mean": self.epochs_mean,
            "repeats_mean": self.repeats_mean, "infeasible_mean": self.infeasible_mean,
            "pruned_mean": self.pruned_mean,
            "epochs_to_mean_regret": {f"{k:g}": v for k, v in self.epochs_to_regret.items()},
        }


def regret_at_epochs(run: Run, budget: int, worst_regret: float) -> float:
    """The incumbent's regret when `budget` epochs had been spent (trials that fit in it)."""
    value = worst_regret
    for r, e in zip(run.regret, run.epochs):
        if e > budget:
            break
        value = r
    return value


def epochs_to_mean_regret(group: list[Run], target: float, worst_regret: float) -> float | None:
    """The fewest epochs after which the mean regret over the seeds is at most `target` (None: never
    within the runs' trials). Pruners are compared at equal regret by this, not at equal trials."""
    for budget in sorted({e for run in group for e in run.epochs if e > 0}):
        if np.mean([regret_at_epochs(run, budget, worst_regret) for run in group]) <= target + 1e-12:
            return float(budget)
    return None


def summarise(land: Landscape, runs: list[Run], report_trials: tuple[int, ...],
              epoch_budgets: tuple[int, ...]) -> list[ArmSummary]:
    worst_regret = float(land.feasible_finals[-1]) - land.best
    top5 = land.top_threshold - land.best
    arms: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        arms.setdefault((run.sampler, run.pruner), []).append(run)
    out = []
    for (sampler, pruner), group in arms.items():
        n_trials = len(group[0].regret)
        summary = ArmSummary(sampler=sampler, pruner=pruner, seeds=len(group))
        for t in (t for t in report_trials if t <= n_trials):
            mean, lo, hi = mean_ci(np.array([r.regret[t - 1] for r in group]))
            summary.at_trials[t] = {"mean": mean, "ci_low": lo, "ci_high": hi,
                                    "epochs_mean": float(np.mean([r.epochs[t - 1] for r in group]))}
        for budget in epoch_budgets:
            mean, lo, hi = mean_ci(np.array([regret_at_epochs(r, budget, worst_regret) for r in group]))
            summary.at_epochs[budget] = {"mean": mean, "ci_low": lo, "ci_high": hi}
        finals = np.array([r.regret[-1] for r in group])
        summary.p_top1 = float(np.mean(finals <= 1e-12))
        summary.p_top5pct = float(np.mean(finals <= top5 + 1e-12))
        summary.repeats_mean = float(np.mean([r.repeats for r in group]))
        summary.infeasible_mean = float(np.mean([r.infeasible for r in group]))
        summary.pruned_mean = float(np.mean([r.pruned for r in group]))
        summary.epochs_mean = float(np.mean([r.epochs[-1] for r in group]))
        summary.epochs_to_regret = {t: epochs_to_mean_regret(group, t, worst_regret) for t in REGRET_TARGETS}
        out.append(summary)
    return out


# -- search vs hand design ----------------------------------------------------------------------
PAPER_FINAL = spec_text(final_design())  # the write-up's final design
# Its hand exploration: Table 1's six structures (no attention, no CoordConv); then, at the best of
# them, Table 2's variants of attention and CoordConv (its rows after the baseline, as spec suffixes).
PAPER_STRUCTURES = tuple(spec_text(row) for row in table_rows(1))
_TABLE2_BASE, *_TABLE2_VARIANTS = (spec_text(row) for row in table_rows(2))
PAPER_VARIANTS = tuple(text.removeprefix(f"{_TABLE2_BASE}-") for text in _TABLE2_VARIANTS)


def hourglass_space(space: AnySpace) -> SearchSpace | None:
    """The hourglass part of a table's space (None when it has no hourglass)."""
    if isinstance(space, SearchSpace):
        return space
    return next((sub for sub in space.families if isinstance(sub, SearchSpace)), None)


def nearest_feasible(land: Landscape, text: str) -> str | None:
    """The space's stand-in for an architecture outside it: each integer field clipped into the space's
    range (so the paper's 128-256 channels become the widest the space has), then channels, depth and
    stacks stepped down, in that order, until it fits the budget."""
    spec = ModelSpec.parse(text)
    space = hourglass_space(land.space)
    if space is None:
        return None

    def clip(value: int, allowed: tuple[int, ...]) -> list[int]:
        below = [v for v in allowed if v <= value] or [allowed[0]]
        return sorted(below, reverse=True)

    attention = spec.attention if spec.attention in space.attention else space.attention[0]
    coordconv = spec.coordconv if spec.coordconv in space.coordconv else space.coordconv[0]
    for stacks in clip(spec.n_stacks, space.n_stacks):
        for depth in clip(spec.depth, space.depth):
            for channels in clip(spec.channels, space.channels):
                candidate = str(ModelSpec(n_stacks=stacks, depth=depth, channels=channels, attention=attention,
                                          coordconv=coordconv))
                entry = land.entries.get(candidate)
                if entry is not None and land.feasible(entry):
                    return candidate
    return None


def hand_design(land: Landscape) -> dict[str, Any]:
    """The paper's design rule (one training) and its hand procedure (about a dozen trainings), replayed
    with stand-ins in this table's space: the regret each reaches and the epochs it costs."""
    def outcome(specs: list[str | None]) -> dict[str, Any]:
        distinct = list(dict.fromkeys(s for s in specs if s is not None))
        if not distinct:
            return {"specs": [], "best_spec": None, "regret": None, "epochs": 0, "trainings": 0}
        finals = {s: land.entries[s].final for s in distinct}
        best = min(finals, key=finals.get)
        return {"specs": distinct, "best_spec": best, "regret": finals[best] - land.best,
                "epochs": len(distinct) * land.epochs, "trainings": len(distinct)}

    stage1 = [nearest_feasible(land, s) for s in PAPER_STRUCTURES]
    found = outcome(stage1)
    stage2 = []
    if found["best_spec"] is not None:
        base = ModelSpec.parse(found["best_spec"])
        stage2 = [nearest_feasible(land, f"s{base.n_stacks}-d{base.depth}-c{base.channels}-{v}")
                  for v in PAPER_VARIANTS]
    return {
        "design_rule": {"paper": PAPER_FINAL, **outcome([nearest_feasible(land, PAPER_FINAL)])},
        "hand_grid": {"paper": [*PAPER_STRUCTURES, *(f"best structure + {v}" for v in PAPER_VARIANTS)],
                      **outcome(stage1 + stage2)},
    }


# -- two objectives: NME and size, with the Pareto pruner ------------------------------------------
@dataclass(frozen=True)
class ParetoRun:
    sampler: str
    pruner: str
    seed: int
    epochs: int
    hypervolume: float
    points: tuple[tuple[float, float], ...]  # (size_mb, final NME) of the complete feasible trials
    pruned: int
    repeats: int


def reference_point(land: Landscape) -> tuple[float, float]:
    """(size, NME) bounding the hypervolume: the largest feasible size and the worst feasible NME,
    each 1 % beyond, so every feasible architecture adds area."""
    feasible = [e for e in land.entries.values() if land.feasible(e) and math.isfinite(e.final)]
    return (1.01 * max(e.size_mb for e in feasible), 1.01 * max(e.final for e in feasible))


def true_front_hypervolume(land: Landscape) -> float:
    points = [(e.size_mb, e.final) for e in land.entries.values() if land.feasible(e) and math.isfinite(e.final)]
    return hypervolume_2d(points, reference_point(land))


def replay_pareto(land: Landscape, sampler: str, pruner: str, seed: int, n_trials: int,
                  rule: ParetoPruner | None = None, startup_trials: int | None = None) -> ParetoRun:
    """A two-objective (NME, size) study replayed on the table; `pruner` is "none" or "pareto"."""
    if pruner not in ("none", "pareto"):
        raise ConfigError(f"--pruners with two objectives: none or pareto, got {pruner!r}")
    rule = rule or ParetoPruner.for_epochs(land.epochs)
    finished: list[tuple[float, dict[int, float]]] = []

    def stop_epoch(trial: Any, entry: Entry) -> int:
        if pruner == "pareto":
            for epoch, value in enumerate(entry.curve[:-1], 1):
                if math.isfinite(value) and rule.should_prune(epoch, value, entry.size_mb, finished):
                    return epoch
        finished.append((entry.size_mb, {e: v for e, v in enumerate(entry.curve, 1) if math.isfinite(v)}))
        return 0

    config = _config(land, sampler, pruner, seed, n_trials, startup_trials, objectives=("nme", "size"))
    trace = _replay_study(land, config, stop_epoch)
    complete = sorted({(land.entries[spec].size_mb, value) for spec, value in trace.outcomes if value is not None})
    return ParetoRun(sampler=sampler, pruner=pruner, seed=seed, epochs=trace.epochs[-1] if trace.epochs else 0,
                     hypervolume=hypervolume_2d(complete, reference_point(land)),
                     points=tuple(complete), pruned=trace.pruned, repeats=trace.repeats)


def replay_pareto_many(land: Landscape, samplers: list[str], pruners: list[str], *, n_trials: int,
                       seeds: list[int], rule: ParetoPruner | None = None, startup_trials: int | None = None,
                       workers: int | None = None) -> list[ParetoRun]:
    jobs = [(land, s, p, seed, n_trials, rule, startup_trials) for s in samplers for p in pruners for seed in seeds]
    return run_jobs(replay_pareto, jobs, workers)


def summarise_pareto(land: Landscape, runs: list[ParetoRun]) -> list[dict[str, Any]]:
    """Per sampler x pruner: epochs spent, hypervolume (and its share of the table's true front), and
    against the same sampler's unpruned replays with the same seeds: epochs saved and hypervolume kept."""
    true_hv = true_front_hypervolume(land)
    by_arm: dict[tuple[str, str], dict[int, ParetoRun]] = {}
    for run in runs:
        by_arm.setdefault((run.sampler, run.pruner), {})[run.seed] = run
    out = []
    for (sampler, pruner), group in by_arm.items():
        seeds = sorted(group)
        hv = np.array([group[s].hypervolume for s in seeds])
        epochs = np.array([group[s].epochs for s in seeds], dtype=float)
        mean, lo, hi = mean_ci(hv / true_hv)
        row: dict[str, Any] = {
            "sampler": sampler, "pruner": pruner, "seeds": len(seeds), "epochs_mean": float(epochs.mean()),
            "hypervolume_of_true_front": {"mean": mean, "ci_low": lo, "ci_high": hi},
            "pruned_mean": float(np.mean([group[s].pruned for s in seeds])),
        }
        base = by_arm.get((sampler, "none"))
        if base is not None and pruner != "none":
            common = [s for s in seeds if s in base]
            saved = np.array([1 - group[s].epochs / max(base[s].epochs, 1) for s in common])
            kept = np.array([group[s].hypervolume / base[s].hypervolume for s in common if base[s].hypervolume > 0])
            row["epochs_saved_vs_none"] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(saved)))
            row["hypervolume_ratio_vs_none"] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(kept)))
        out.append(row)
    return out
