"""The samplers and pruners a search may name, and how a config makes them."""

from __future__ import annotations

import warnings

import optuna

from lightmark.errors import ConfigError
from lightmark.search.config import SearchConfig
from lightmark.search.family_space import MixedSpace
from lightmark.search.pareto_pruner import ParetoPruner

SAMPLERS = ("tpe", "nsga2", "random", "grid")
PRUNERS = ("median", "hyperband", "pareto", "none")  # pareto: two-objective studies (pareto_pruner.py)


def default_startup_trials(n_trials: int | None) -> int:
    """TPE's random start-up trials. Optuna's 10 are most of a 10-40 trial study; replayed on the
    tabular benchmark (docs/search.md, 100 seeds) 3-5 of 40 beat 10 of 40 at 10 trials and matched it
    at 20 and 40, so: n_trials // 8, at least 3, at most 10."""
    return 10 if not n_trials else max(3, min(10, n_trials // 8))


def make_sampler(config: SearchConfig, worker: int = 0) -> optuna.samplers.BaseSampler:
    seed = config.seed + 1000 * worker  # workers must not propose the same sequence
    if config.fixed:
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "tpe":
        startup = config.startup_trials
        if startup is None:
            startup = default_startup_trials(config.n_trials)
        # a space across families asks each family's own dimensions: group=True models each such
        # set of co-occurring dimensions jointly (a hourglass-only space is one group either way)
        with warnings.catch_warnings():  # `group` is marked experimental; chosen knowingly, not news to users
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True,
                group=isinstance(config.space, MixedSpace),
            )
    if config.sampler == "nsga2":
        size = max(4, min(50, (config.n_trials or 40) // 4))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=size)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":
        assert config.space is not None
        return QuietGridSampler(config.space.grid(), seed=seed)
    raise ConfigError(f"--sampler {config.sampler!r}: choose one of {', '.join(SAMPLERS)}")


class QuietGridSampler(optuna.samplers.GridSampler):
    """GridSampler calls study.stop(), which only works inside study.optimize; the worker loop
    asks `is_exhausted` itself instead."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None


def make_pareto_pruner(config: SearchConfig) -> ParetoPruner | None:
    """Two-objective studies prune with the dominated-curve rule whenever pruning is asked for
    (Optuna's own pruners cannot see them); single-objective ones never use it."""
    if config.fixed or len(config.objectives) < 2 or config.pruner == "none":
        return None
    return ParetoPruner.for_epochs(config.protocol.epochs)


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "pareto" and len(config.objectives) < 2 and not config.fixed:
        raise ConfigError("--pruner pareto prunes two-objective searches (--objectives nme,size); "
                          "use median or hyperband for one objective")
    if config.fixed or len(config.objectives) > 1 or config.pruner == "none":
        return optuna.pruners.NopPruner()  # Optuna prunes single-objective studies only
    epochs = config.protocol.epochs
    if config.pruner == "median":
        # Epochs are reported from 1; judge no trial on its first epoch alone.
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(2, epochs // 3))
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                              reduction_factor=3)
    raise ConfigError(f"--pruner {config.pruner!r}: choose one of {', '.join(PRUNERS)}")
