"""Prescreening: seconds of a zero-cost proxy, instead of trainings, choose where a search starts.

On the packaged tabular benchmark NASWOT (Jacobian covariance at initialisation) ranks the
architectures better than MACs or parameter counts, beyond the bootstrap interval (docs/search.md),
and it is the only proxy that does; so it is the only one offered. `--prescreen naswot:K` draws K
distinct feasible architectures of the space at random (seeded by the search's seed), scores each
untrained network on one batch of training faces, and enqueues the best ones as the study's first
trials, where TPE would otherwise start with random architectures. The sampler then runs as usual.
The replay (`bench search --table ... --prescreen naswot:K`) measures what that saves.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lightmark.atomic import write_text_atomic
from lightmark.errors import ConfigError
from lightmark.models.specs import AnySpec, parse_spec
from lightmark.search.family_space import AnySpace

PRESCREEN_PROXIES = ("naswot",)  # only the proxies that out-ranked MACs on the table


@dataclass(frozen=True)
class Prescreen:
    proxy: str
    k: int

    @classmethod
    def parse(cls, text: str) -> Prescreen:
        """'naswot:32' -> Prescreen('naswot', 32)."""
        proxy, _, k_text = text.partition(":")
        proxy = proxy.strip().lower()
        if proxy not in PRESCREEN_PROXIES:
            raise ConfigError(f"--prescreen {text!r}: the proxy must be one of {', '.join(PRESCREEN_PROXIES)} "
                              "(the others rank worse than MACs on the tabular benchmark)")
        try:
            k = int(k_text)
        except ValueError:
            raise ConfigError(f"--prescreen {text!r}: write PROXY:K, K the number of architectures to score") from None
        if k < 1:
            raise ConfigError(f"--prescreen {text!r}: K must be >= 1")
        return cls(proxy=proxy, k=k)

    def __str__(self) -> str:
        return f"{self.proxy}:{self.k}"


def draw_candidates(specs: Iterable[AnySpec], fits: Callable[[AnySpec], bool], k: int,
                    seed: int) -> list[AnySpec]:
    """K distinct feasible architectures, uniformly at random (all of them if fewer fit)."""
    feasible = sorted((s for s in specs if fits(s)), key=str)
    return random.Random(seed).sample(feasible, min(k, len(feasible)))


def best_by_score(scores: dict[str, float], candidates: Iterable[AnySpec | str], keep: int) -> list[str]:
    """The `keep` candidates with the highest proxy score (higher = predicted better), best first."""
    names = [str(c) for c in candidates]
    return sorted(names, key=lambda name: (-scores[name], name))[:keep]


def score_candidates(candidates: list[AnySpec], score: Callable[[AnySpec], float],
                     cache: Path | None = None) -> dict[str, float]:
    """Proxy scores, kept in a CSV so that a resumed search does not score again."""
    scores: dict[str, float] = {}
    if cache is not None and cache.exists():
        frame = pd.read_csv(cache)
        scores = dict(zip(frame["spec"].astype(str), frame["score"].astype(float)))
    missing = [c for c in candidates if str(c) not in scores]
    for spec in missing:
        scores[str(spec)] = float(score(spec))
    if missing and cache is not None:
        write_text_atomic(cache, pd.DataFrame({"spec": list(scores), "score": list(scores.values())})
                          .to_csv(index=False))
    return scores


def prescreen_space(space: AnySpace, fits: Callable[[AnySpec], bool], screen: Prescreen, keep: int,
                    seed: int, score: Callable[[AnySpec], float],
                    cache: Path | None = None) -> list[tuple[str, AnySpec]]:
    """The (label, spec) pairs to enqueue: the best `keep` of K random feasible architectures."""
    candidates = draw_candidates(space.specs(), fits, screen.k, seed)
    scores = score_candidates(candidates, score, cache)
    chosen = best_by_score(scores, candidates, keep)
    return [(f"prescreen {screen} #{rank}", parse_spec(name)) for rank, name in enumerate(chosen, 1)]
