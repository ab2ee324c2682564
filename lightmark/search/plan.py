"""What a search settles before its first trial: the space, the budget, the trial count and the
study's configuration, from what `lightmark search` was asked; and the architectures it tries first.

The space is a TOML file (or the full default space) narrowed by the flags, bounded by the input
size and trimmed by the budget (widths and depths that cannot fit are dropped). Without a trial
count the search takes the one the tabular replay supports (`trials.suggest`). Everything is a
frozen value: the command line's arguments are read, never rewritten.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from lightmark.benchmarks.proxies import naswot, proxy_batch
from lightmark.errors import ConfigError
from lightmark.models.registry import paper_presets
from lightmark.models.spec import ModelSpec
from lightmark.search.budget import DEFAULT_BUDGET_MB, Budget
from lightmark.search.config import SearchConfig, default_study_name
from lightmark.search.family_space import AnySpace, MixedSpace, load_space
from lightmark.search.prescreen import Prescreen, prescreen_space
from lightmark.search.samplers import default_startup_trials
from lightmark.search.space import SearchSpace
from lightmark.search.storage import choose_storage
from lightmark.search.trials import TrialSuggestion
from lightmark.search.trials import suggest as suggest_trials
from lightmark.training.dataset import data_layout
from lightmark.training.protocol import Protocol

SIZE_CACHE = "deployed_sizes.json"  # exported sizes of --size-metric onnx_*, per architecture
PAPER_TABLE = 1  # --enqueue-paper: the structures of the paper's Table 1


@dataclass(frozen=True)
class SpaceFlags:
    """The space as asked: a TOML file and the flags that fix or narrow its dimensions (text as typed,
    e.g. stacks "1-2", channels "32-256:8", attention "none,ca", coordconv "true,false")."""

    space: Path | None = None
    stacks: str | None = None
    depth: str | None = None
    channels: str | None = None
    attention: str | None = None
    coordconv: str | None = None


def parse_values(text: str, kind: str, step: int = 1) -> list[Any]:
    """'2-5' / '32-256:8' / '1,2' / 'ca' / 'true,false' -> a list of values of `kind` (int, bool, str)."""
    items: list[Any] = []
    for part in text.strip().split(","):
        part = part.strip()
        if kind == "int":
            body, _, step_text = part.partition(":")
            try:
                if "-" in body:
                    low, _, high = body.partition("-")
                    items.extend(range(int(low), int(high) + 1, int(step_text or step)))
                else:
                    items.append(int(body))
            except ValueError:
                form = "MIN-MAX[:STEP]" if "-" in body else "an integer"
                raise ConfigError(f"cannot read {part!r} as {form}") from None
        elif kind == "bool":
            if part.lower() not in ("true", "false", "on", "off", "1", "0"):
                raise ConfigError(f"cannot read {part!r} as true/false")
            items.append(part.lower() in ("true", "on", "1"))
        else:
            items.append(part)
    return items


def build_space(flags: SpaceFlags, input_size: int) -> AnySpace:
    """The TOML file's space (else the default one) with the flags' values fixed, bounded by the input size."""
    space = load_space(flags.space) if flags.space else SearchSpace()
    fixed = {
        "n_stacks": flags.stacks and parse_values(flags.stacks, "int"),
        "depth": flags.depth and parse_values(flags.depth, "int"),
        "channels": flags.channels and parse_values(flags.channels, "int", step=8),
        "attention": flags.attention and parse_values(flags.attention, "str"),
        "coordconv": flags.coordconv and parse_values(flags.coordconv, "bool"),
    }
    return space.with_fixed(**fixed).bounded(input_size)


@dataclass(frozen=True)
class SearchRequest:
    """What `lightmark search` was asked for, as values. `runner` / `sizer`: "module:function" replacing
    the candidate runner / the size function (tests and plug-ins)."""

    protocol: Protocol
    out: Path
    space: SpaceFlags = field(default_factory=SpaceFlags)
    objectives: tuple[str, ...] = ("nme",)
    budget_mb: float = DEFAULT_BUDGET_MB
    size_metric: str = "state_dict"
    budget_macs: float | None = None
    budget_latency_ms: float | None = None
    n_trials: int | None = None  # None: suggested from the space and the budget
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None  # None: in `out`
    study: str | None = None  # None: lightmark-<protocol>
    workers: int = 1
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    runner: str | None = None
    sizer: str | None = None

    def __post_init__(self) -> None:
        if self.n_trials is not None and self.n_trials < 1:
            raise ConfigError(f"--n-trials must be >= 1, got {self.n_trials}")


@dataclass(frozen=True)
class SearchPlan:
    """The study to run: its configuration (the trimmed space, the budget, the trial count), how many
    architectures the space had before the budget trimmed it, and the suggestion when the trial count
    was not given."""

    config: SearchConfig
    workers: int
    untrimmed_size: int
    suggestion: TrialSuggestion | None = None


def latency_device(device: str) -> str:
    """Where the budget times latency: the search's device, `auto` resolved."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def make_budget(request: SearchRequest) -> Budget:
    return Budget(
        size_mb=request.budget_mb, macs=request.budget_macs,
        latency_ms=request.budget_latency_ms, input_size=request.protocol.input_size,
        device=latency_device(request.device), sizer=request.sizer, size_metric=request.size_metric,
        size_cache=str(request.out / SIZE_CACHE),
    )


def check_fits(space: AnySpace, budget: Budget) -> None:
    """ConfigError (naming the smallest architecture and its size) when nothing of the space fits."""
    smallest = space.smallest(budget.fits)
    if smallest is None:
        tiny = space.smallest()
        raise ConfigError(
            f"no architecture of the search space fits {budget.describe()}: the smallest, {tiny}, "
            f"is {budget.metric_size_of(tiny):.3f} MiB. Raise --budget-mb or allow fewer stacks, "
            "shallower or narrower networks"
        )
    if budget.macs is not None or budget.latency_ms is not None:
        check = budget.check(smallest)
        if not check.feasible:
            raise ConfigError(
                f"no architecture of the search space fits {budget.describe()}: the smallest, "
                f"{smallest}, is over ({', '.join(f'{k} +{v:.4g}' for k, v in check.violations().items())})"
            )


def plan_search(request: SearchRequest) -> SearchPlan:
    """The space, budget, trial count and storage of the study `request` asks for."""
    protocol = request.protocol
    space = replace(build_space(request.space, protocol.input_size), n_landmarks=data_layout(protocol).n_points)
    budget = make_budget(request)
    check_fits(space, budget)
    trimmed = space.trimmed(budget.fits)
    suggestion = None
    if request.n_trials is None:
        # an ONNX size metric would export every architecture to count them: count the whole space instead
        fits = budget.fits if request.size_metric == "state_dict" else (lambda spec: True)
        suggestion = suggest_trials(trimmed, fits, seed=request.seed)
    config = SearchConfig(
        protocol=protocol, run_dir=request.out, storage=choose_storage(request.storage, request.out, request.workers),
        study_name=request.study or default_study_name(protocol), space=trimmed, budget=budget,
        objectives=request.objectives, sampler=request.sampler, pruner=request.pruner, seed=request.seed,
        n_trials=suggestion.n_trials if suggestion else request.n_trials, timeout=request.timeout,
        device=request.device, precision=request.precision, threads=request.threads, runner=request.runner,
    )
    return SearchPlan(config=config, workers=request.workers, untrimmed_size=len(space), suggestion=suggestion)


def paper_candidates(space: AnySpace) -> tuple[list[tuple[str, ModelSpec]], list[ModelSpec]]:
    """`--enqueue-paper`: the paper's Table 1 architectures inside the space as (name, spec), and the
    specs of those outside it."""
    presets = paper_presets(table=PAPER_TABLE)
    return ([(p.name, p.spec) for p in presets if space.contains(p.spec)],
            [p.spec for p in presets if not space.contains(p.spec)])


def prescreen_candidates(screen: Prescreen, config: SearchConfig) -> tuple[list[tuple[str, ModelSpec]], float]:
    """`--prescreen PROXY:K`: the start-up trials chosen by the proxy among K random feasible
    architectures (scores cached in the run directory), and the seconds it took."""
    if config.space is None or config.budget is None:
        raise ConfigError("--prescreen needs a search space and a budget")
    if isinstance(config.space, MixedSpace):
        raise ConfigError("--prescreen: the proxies were measured against trained NME on hourglasses only "
                          "(docs/search.md); across families they are unmeasured, so not offered")
    start = time.perf_counter()
    batch = proxy_batch(config.protocol)
    chosen = prescreen_space(config.space, config.budget.fits, screen, default_startup_trials(config.n_trials),
                             config.seed, score=lambda spec: naswot(spec, batch, seed=config.seed),
                             cache=Path(config.run_dir) / f"prescreen-{screen.proxy}.csv")
    return chosen, time.perf_counter() - start

