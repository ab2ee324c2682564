"""A two-fidelity search replayed on a multi-fidelity table: `bench search --table T --fidelities cheap,dear`.

The multi-fidelity search: TPE at the cheap fidelity for `n_trials` trials (the search's own sampler,
as in `replay.py`), then its best `promote` distinct feasible architectures (by their cheap NME)
trained at the dear fidelity, and the pick is the best of those at the dear fidelity. It is compared
with TPE at each single fidelity given the same compute, seed by seed: each single-fidelity study
(same sampler seed) runs until its next training would pass the seconds the multi-fidelity search of
that seed spent; its pick is its best at its own fidelity. One more arm shows what promotion adds: the
cheap study alone, its best trusted as it is. Every pick is scored at the dear fidelity.

Compute is the table's measured train seconds (each architecture's first seed, as the replays use).
Only the architectures measured at both fidelities take part: a proposal outside them is answered as an
over-budget one (infeasible, no cost, a trial used). Regret = the dear NME of the pick minus the best
dear NME among the feasible architectures measured at both (percentage points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError
from lightmark.intervals import mean_ci
from lightmark.models.specs import parse_spec
from lightmark.search.config import SearchConfig
from lightmark.search.family_space import AnySpace, space_covering
from lightmark.search.samplers import default_startup_trials, make_sampler
from lightmark.tabular.replay import run_jobs
from lightmark.tabular.table import CURVE_METRICS, FIDELITY, Table
from lightmark.training.protocol import Protocol, get_protocol

MIN_COMMON = 3
MULTI, CHEAP_ALONE = "multi_fidelity", "cheap_alone"  # the arms' ids in the JSON
CHEAP_EQUAL, DEAR_EQUAL = "cheap_equal_compute", "dear_equal_compute"
# A single-fidelity study stops after TRIALS_CAP x n_trials trials even with budget left (proposals outside
# the architectures measured at both cost nothing but use trials); the summary counts how often (`capped`).
TRIALS_CAP = 20


@dataclass(frozen=True)
class Arch:
    """One architecture measured at both fidelities: (NME, train seconds) at each, and its size."""

    size_mb: float
    value: tuple[float, float]  # (cheap, dear)
    seconds: tuple[float, float]


@dataclass(frozen=True)
class TwoFidelities:
    names: tuple[str, str]  # (cheap, dear)
    archs: dict[str, Arch]
    space: AnySpace
    budget_mb: float | None
    metric: str
    protocol: Protocol

    def feasible(self, spec: str) -> bool:
        arch = self.archs.get(spec)
        return arch is not None and (self.budget_mb is None or arch.size_mb <= self.budget_mb)

    @property
    def feasible_specs(self) -> list[str]:
        return sorted(s for s in self.archs if self.feasible(s))

    @property
    def best_dear(self) -> float:
        return min(self.archs[s].value[1] for s in self.feasible_specs)

    @property
    def worst_dear(self) -> float:
        return max(self.archs[s].value[1] for s in self.feasible_specs)

    def regret(self, spec: str | None) -> float:
        return (self.worst_dear if spec is None else self.archs[spec].value[1]) - self.best_dear


def _first_seed(table: Table, fidelity: str, metric: str) -> Any:
    frame = table.frame
    rows = frame[(frame[FIDELITY] == fidelity) & (frame["status"] == Status.COMPLETE)
                 & frame[metric].notna() & frame["train_seconds"].notna()]
    return rows.sort_values("seed").groupby("spec", sort=True).first()


def two_fidelities(table: Table, fidelities: list[str], *, budget_mb: float | None,
                   metric: str = "nme_image_pct") -> TwoFidelities:
    """The table's architectures measured at both fidelities (`--fidelities cheap,dear`)."""
    if metric not in CURVE_METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(CURVE_METRICS)}, got {metric!r}")
    if len(fidelities) != 2 or fidelities[0] == fidelities[1]:
        raise ConfigError(f"--fidelities: two different names, cheap then dear, e.g. tabular,quick; got "
                          f"{','.join(fidelities)}")
    for name in fidelities:
        if name not in table.fidelity_names:
            raise ConfigError(f"--fidelities: table {table.name} has no fidelity {name!r} "
                              f"(it has {', '.join(table.fidelity_names)})")
    cheap, dear = (_first_seed(table, f, metric) for f in fidelities)
    common = sorted(set(cheap.index) & set(dear.index))
    if len(common) < MIN_COMMON:
        raise ConfigError(f"--fidelities {','.join(fidelities)}: {len(common)} architecture(s) measured at "
                          f"both (need >= {MIN_COMMON})")
    archs = {str(s): Arch(size_mb=float(cheap.at[s, "size_mb"]),
                          value=(float(cheap.at[s, metric]), float(dear.at[s, metric])),
                          seconds=(float(cheap.at[s, "train_seconds"]), float(dear.at[s, "train_seconds"])))
             for s in common}
    proto = table.at(fidelities[0]).meta.get("protocol")
    space = space_covering(parse_spec(s) for s in cheap.index)
    two = TwoFidelities(names=(fidelities[0], fidelities[1]), archs=archs, space=space,
                        budget_mb=budget_mb, metric=metric,
                        protocol=Protocol.from_dict(proto) if proto else get_protocol("smoke"))
    if not two.feasible_specs:
        raise ConfigError(f"--budget-mb {budget_mb}: none of the {len(archs)} architectures measured at both "
                          "fidelities fits")
    return two


@dataclass(frozen=True)
class Outcome:
    """One replayed arm for one seed: its pick, the pick's regret at the dear fidelity, what it spent."""

    arm: str
    seed: int
    pick: str | None
    regret: float
    seconds: float
    trainings: tuple[int, int]  # (cheap, dear)
    capped: bool = False  # stopped by the trial cap with budget left and feasible architectures untrained


def _study(two: TwoFidelities, level: int, seed: int, n_trials: int, startup: int | None,
           budget_s: float | None = None) -> tuple[dict[str, float], float, bool]:
    """TPE at one fidelity (0 cheap, 1 dear): the trained architectures' values in order, the seconds
    spent, and whether the trial cap stopped it. Without `budget_s`, `n_trials` trials; with it, until
    the next training would pass it, everything feasible is trained, or the cap."""
    config = SearchConfig(protocol=two.protocol, run_dir=Path("."), storage=None, study_name="replay",
                          space=two.space, sampler="tpe", pruner="none", seed=seed, n_trials=n_trials,
                          startup_trials=startup)
    study = optuna.create_study(direction="minimize", sampler=make_sampler(config),
                                study_name=f"replay-fidelity{level}-{seed}")
    seen: dict[str, float] = {}
    spent = 0.0
    feasible = set(two.feasible_specs)
    for _ in range(n_trials if budget_s is None else TRIALS_CAP * n_trials):
        if budget_s is not None and feasible <= set(seen):
            return seen, spent, False  # everything trained: more trials cannot change the pick
        trial = study.ask()
        spec = str(two.space.suggest(trial))
        arch = two.archs.get(spec)
        trial.set_constraint("size_mb", 0.0 if arch is None or two.feasible(spec) else arch.size_mb - two.budget_mb)
        trial.set_constraint("measured", 0.0 if arch is not None else 1.0)
        if not two.feasible(spec):
            study.tell(trial, math.inf)
            continue
        if spec not in seen:
            if budget_s is not None and spent + arch.seconds[level] > budget_s:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return seen, spent, False
            spent += arch.seconds[level]
            seen[spec] = arch.value[level]
        study.tell(trial, seen[spec])
    return seen, spent, budget_s is not None and not feasible <= set(seen)


def _best(values: dict[str, float]) -> str | None:
    return min(values, key=lambda s: (values[s], s)) if values else None


def replay_seed(two: TwoFidelities, seed: int, n_trials: int, promote: int,
                startup: int | None = None) -> list[Outcome]:
    """The four arms for one seed: the two-fidelity search, its cheap study alone, and TPE at each single
    fidelity given the two-fidelity search's seconds."""
    cheap, cheap_s, _ = _study(two, 0, seed, n_trials, startup)
    promoted = sorted(cheap, key=lambda s: (cheap[s], s))[:promote]
    dear = {s: two.archs[s].value[1] for s in promoted}
    spent = cheap_s + sum(two.archs[s].seconds[1] for s in promoted)
    pick = _best(dear)
    out = [Outcome(MULTI, seed, pick, two.regret(pick), spent, (len(cheap), len(promoted))),
           Outcome(CHEAP_ALONE, seed, _best(cheap), two.regret(_best(cheap)), cheap_s, (len(cheap), 0))]
    for level, arm in ((0, CHEAP_EQUAL), (1, DEAR_EQUAL)):
        found, used, capped = _study(two, level, seed, n_trials, startup, budget_s=spent)
        trainings = (len(found), 0) if level == 0 else (0, len(found))
        out.append(Outcome(arm, seed, _best(found), two.regret(_best(found)), used, trainings, capped))
    return out


def replay_multifidelity(two: TwoFidelities, *, n_trials: int, promote: int, seeds: list[int],
                         startup_trials: int | None = None, workers: int | None = None) -> dict[str, Any]:
    """Every seed's four arms, summarised: regret (mean and 95 % interval over seeds), seconds, the
    chance of the dear fidelity's best, and the multi-fidelity search against each single fidelity."""
    if n_trials < 1 or promote < 1 or not seeds:
        raise ConfigError("--n-trials and --promote must be >= 1 and --seeds must name at least one seed")
    jobs = [(two, seed, n_trials, promote, startup_trials) for seed in seeds]
    outcomes = [o for group in run_jobs(replay_seed, jobs, workers) for o in group]
    arms: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        arms.setdefault(outcome.arm, []).append(outcome)
    summary = [{**_arm_summary(name, group), "label": arm_label(name, two.names, promote)}
               for name, group in arms.items()]
    return {
        "cheap": two.names[0], "dear": two.names[1], "metric": two.metric, "budget_mb": two.budget_mb,
        "n_trials": n_trials, "promote": promote, "seeds": len(seeds),
        "startup_trials": startup_trials or default_startup_trials(n_trials),
        "architectures": len(two.archs), "feasible_architectures": len(two.feasible_specs),
        "best_dear": two.best_dear,
        "universe": "the architectures measured at both fidelities; a proposal outside them is answered as "
                    "over budget (no cost)",
        "arms": summary, "versus": _versus(arms), "verdict": _verdict(summary, _versus(arms), two.names, promote),
    }


def _arm_summary(name: str, group: list[Outcome]) -> dict[str, Any]:
    regret = np.array([o.regret for o in group])
    mean, lo, hi = mean_ci(regret)
    return {"arm": name, "seeds": len(group), "regret_pp": {"mean": mean, "ci_low": lo, "ci_high": hi},
            "seconds_mean": float(np.mean([o.seconds for o in group])),
            "trainings_cheap_mean": float(np.mean([o.trainings[0] for o in group])),
            "trainings_dear_mean": float(np.mean([o.trainings[1] for o in group])),
            "p_best": float(np.mean(regret <= 1e-12)), "capped": float(np.mean([o.capped for o in group]))}


def _versus(arms: dict[str, list[Outcome]]) -> dict[str, dict[str, float]]:
    """Multi-fidelity minus each other arm, paired by seed (negative: the multi-fidelity search is better)."""
    mine = {o.seed: o.regret for o in arms[MULTI]}
    out = {}
    for name, group in arms.items():
        if name != MULTI:
            diff = np.array([mine[o.seed] - o.regret for o in group])
            out[name] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(diff)))
    return out


def arm_label(arm: str, names: tuple[str, str], promote: int) -> str:
    cheap, dear = names
    return {MULTI: f"TPE at {cheap}, best {promote} promoted to {dear}",
            CHEAP_ALONE: f"TPE at {cheap} alone, no promotion", CHEAP_EQUAL: f"TPE at {cheap} only, equal compute",
            DEAR_EQUAL: f"TPE at {dear} only, equal compute"}[arm]


def _verdict(summary: list[dict[str, Any]], versus: dict[str, dict[str, float]], names: tuple[str, str],
             promote: int) -> str:
    equal = (CHEAP_EQUAL, DEAR_EQUAL)
    better = [a for a in equal if versus[a]["ci_high"] < 0]
    worse = [a for a in equal if versus[a]["ci_low"] > 0]
    mf = next(a for a in summary if a["arm"] == MULTI)
    head = (f"the two-fidelity search ({names[0]} then {names[1]}): regret {mf['regret_pp']['mean']:.3f} pp "
            f"at {mf['seconds_mean']:.0f} s")
    if len(better) == len(equal):
        return f"{head}; it pays: better than either single fidelity at equal compute, beyond the intervals"
    if worse:
        return (f"{head}; it does not pay: worse than {' and '.join(arm_label(a, names, promote) for a in worse)}, "
                "beyond the intervals")
    return (f"{head}; not distinguishable from "
            f"{' and '.join(arm_label(a, names, promote) for a in equal if a not in better)}")
