"""How many trials a search should get for its space: the rule the tabular replay supports.

Replayed on hourglass108-tabular (docs/search.md and `scripts/trials-needed` have the numbers; TPE
with the median pruner, 100 seeds per point), the trials after which 90 % of searches had found a
top-5 % architecture fall as the budget admits more of the table, and with only a dozen feasible
architectures not even 80 trials got there. So: a small feasible set is cheaper to train whole (a grid); from
about 30 feasible architectures 30 trials suffice up to the table's 108, and past what the table
measured the rule grows slowly (10 more trials per doubling), an extrapolation the docs call one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from lightmark.models.specs import AnySpec
from lightmark.search.family_space import AnySpace

GRID_UP_TO = 30  # feasible architectures: train them all
MEASURED_UP_TO = 108  # the largest feasible set the replay measured
TRIALS_MEASURED = 30  # enough from GRID_UP_TO to MEASURED_UP_TO feasible architectures
TRIALS_PER_DOUBLING = 10  # beyond MEASURED_UP_TO: extrapolated
EXACT_COUNT_UP_TO = 256  # larger spaces: the feasible share is estimated from a sample
SAMPLE = 64


@dataclass(frozen=True)
class TrialSuggestion:
    n_trials: int
    feasible: int
    exact: bool  # counted (True) or estimated from a sample of the space (False)
    grid: bool  # small enough to train every feasible architecture

    def describe(self) -> str:
        count = f"{self.feasible}" if self.exact else f"about {self.feasible}"
        if self.grid:
            return (f"--n-trials {self.n_trials}: the space has {count} architectures within the budget, few enough "
                    "to train them all (`--sampler grid` does it without repeats)")
        basis = ("measured" if self.feasible <= MEASURED_UP_TO else
                 f"extrapolated beyond the {MEASURED_UP_TO} architectures measured")
        return (f"--n-trials {self.n_trials}, suggested for {count} architectures within the budget: replayed "
                f"on the tabular benchmark, 9 in 10 TPE searches of that length found a top-5 % architecture "
                f"({basis}; docs/search.md)")


def suggested_trials(n_feasible: int) -> int:
    if n_feasible <= GRID_UP_TO:
        return max(1, n_feasible)
    if n_feasible <= MEASURED_UP_TO:
        return TRIALS_MEASURED
    return TRIALS_MEASURED + math.ceil(TRIALS_PER_DOUBLING * math.log2(n_feasible / MEASURED_UP_TO))


def count_feasible(space: AnySpace, fits: Callable[[AnySpec], bool], seed: int = 0) -> tuple[int, bool]:
    """Feasible architectures of the space: counted when it is small, else estimated from a sample
    (sizing one architecture builds it on the meta device: thousands would take minutes)."""
    n = len(space)
    if n <= EXACT_COUNT_UP_TO:
        return sum(1 for spec in space.specs() if fits(spec)), True
    sample = random.Random(seed).sample(list(space.specs()), SAMPLE)
    return max(1, round(n * sum(1 for spec in sample if fits(spec)) / SAMPLE)), False


def suggest(space: AnySpace, fits: Callable[[AnySpec], bool], seed: int = 0) -> TrialSuggestion:
    feasible, exact = count_feasible(space, fits, seed)
    n_trials = suggested_trials(feasible)
    return TrialSuggestion(n_trials=n_trials, feasible=feasible, exact=exact, grid=feasible <= GRID_UP_TO)
