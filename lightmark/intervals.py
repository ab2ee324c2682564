"""The mean of a few values and its t-interval: seeds of a table row, replayed studies of a sampler.

One statistic for the stages that summarise repeats: `reports` (seed statistics of the tables) and
`search` (replays on a tabular benchmark), so it sits at the package root, below both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float  # NaN when n == 0
    std: float  # sample std (ddof=1); NaN when n < 2
    ci_half: float  # half-width of the t-interval of the mean; NaN when n < 2

    @property
    def ci_low(self) -> float:
        return self.mean - self.ci_half

    @property
    def ci_high(self) -> float:
        return self.mean + self.ci_half


def summarise(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample std and the t-distribution confidence half-width (None and non-finite values dropped)."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(data.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan)
    mean = float(data.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan)
    std = float(data.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return Summary(n, mean, std, half)


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of the t-interval; one value is its own interval, none gives NaNs."""
    summary = summarise(values, confidence)
    if summary.n < 2:
        return summary.mean, summary.mean, summary.mean
    return summary.mean, summary.ci_low, summary.ci_high
