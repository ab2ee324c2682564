"""Seed statistics for the tables: mean, std, a t-interval (`lightmark.intervals`), and whether a
difference is noise.

The paper's tables have one run per row, so a 0.01 NME difference there may be seed noise. Ours
run each row with K seeds and say which differences to the baseline row are larger than that
noise (Welch's t-interval on the difference of means). With one seed nothing can be decided, and
the table says so instead of guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _stats

from lightmark.intervals import CONFIDENCE, Summary
from lightmark.intervals import summarise as summarise  # the tables' seed statistics, one copy

# Values of the noise flag column.
BASELINE = "baseline"
WITHIN = "within noise"
BEYOND = "beyond noise"
UNDECIDED = "n/a (1 seed)"
NO_DATA = "n/a (no result)"
EXACT = "exact (no model)"


@dataclass(frozen=True)
class Difference:
    delta: float  # mean(row) - mean(baseline)
    ci_half: float  # Welch t half-width of the difference; NaN when undecidable
    flag: str  # WITHIN | BEYOND | UNDECIDED | NO_DATA


def welch_difference(row: Summary, base: Summary, confidence: float = CONFIDENCE) -> Difference:
    """Is `row - base` distinguishable from seed noise? Welch's interval on the difference.

    Within noise when |delta| <= the interval's half-width (the interval contains 0).
    """
    if row.n == 0 or base.n == 0:
        return Difference(math.nan, math.nan, NO_DATA)
    delta = row.mean - base.mean
    if row.n < 2 or base.n < 2:
        return Difference(delta, math.nan, UNDECIDED)
    var_r, var_b = row.std**2 / row.n, base.std**2 / base.n
    se2 = var_r + var_b
    if se2 == 0.0:  # deterministic rows: any difference is real
        return Difference(delta, 0.0, WITHIN if delta == 0.0 else BEYOND)
    dof = se2**2 / (var_r**2 / (row.n - 1) + var_b**2 / (base.n - 1))
    half = float(_stats.t.ppf(0.5 + confidence / 2, dof) * math.sqrt(se2))
    return Difference(delta, half, WITHIN if abs(delta) <= half else BEYOND)
