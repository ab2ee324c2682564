"""Pruning for two-objective searches (NME and a cost known before training: size, MACs, latency).

Optuna prunes single-objective studies only (`trial.report` is refused in multi-objective ones), so
`--objectives nme,size` trained every trial to the end. But a trial's cost is known before it trains,
and its validation NME after each epoch can be compared with the finished trials at the same epoch:

    at epoch e >= warmup, stop trial i when at least `min_dominators` finished trials j have
    cost_j <= cost_i and nme_j(e) <= nme_i(e) * (1 - margin).

Such a trial is, at this point of training, beaten on both objectives by trials already on record;
learning curves of these networks rarely cross late, so it would most likely end dominated too and
never reach the Pareto front. The rule keeps the comparison epoch-for-epoch (no extrapolation) and
needs no model of the curves. Its effect (epochs saved, hypervolume kept) is measured by replay on
the tabular benchmark (`lightmark bench search --table ... --objectives nme,size`, docs/search.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lightmark.errors import ConfigError


@dataclass(frozen=True)
class ParetoPruner:
    warmup_epochs: int = 2
    min_dominators: int = 1
    margin: float = 0.0  # relative: 0.05 asks the dominators to be 5 % better

    def __post_init__(self) -> None:
        if self.warmup_epochs < 1 or self.min_dominators < 1 or not 0.0 <= self.margin < 1.0:
            raise ConfigError("ParetoPruner: warmup_epochs and min_dominators must be >= 1, margin in [0, 1)")

    @classmethod
    def for_epochs(cls, epochs: int) -> ParetoPruner:
        """The default for a protocol: judge no trial before a quarter of its epochs (at least 1)."""
        return cls(warmup_epochs=max(1, epochs // 4))

    def should_prune(self, epoch: int, value: float, cost: float,
                     finished: Iterable[tuple[float, Mapping[int, float]]]) -> bool:
        """`finished`: (cost, {epoch: validation NME}) of the completed trials."""
        if epoch < self.warmup_epochs:
            return False
        bar = value * (1.0 - self.margin)
        dominators = 0
        for other_cost, curve in finished:
            other = curve.get(epoch)
            if other is not None and other_cost <= cost and other <= bar:
                dominators += 1
                if dominators >= self.min_dominators:
                    return True
        return False


def hypervolume_2d(points: Iterable[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by `points` (both coordinates minimised) and bounded by `reference`: a sweep
    from the left, each point of the front adding the strip up to the next front point's x."""
    inside = sorted((x, y) for x, y in points if x < reference[0] and y < reference[1])
    front: list[tuple[float, float]] = []
    for x, y in inside:
        if not front or y < front[-1][1]:
            front.append((x, y))
    area = 0.0
    for i, (x, y) in enumerate(front):
        right = front[i + 1][0] if i + 1 < len(front) else reference[0]
        area += (right - x) * (reference[1] - y)
    return area
