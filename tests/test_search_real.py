"""The search with the real runner, trainer and size function at the smoke protocol."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from lightmark.benchmarks.size import size_mb
from lightmark.models.spec import ModelSpec
from lightmark.search.budget import Budget
from lightmark.search.config import SearchConfig
from lightmark.search.space import SearchSpace
from lightmark.search.storage import choose_storage, open_storage
from lightmark.search.study import run_search
from lightmark.training.protocol import get_protocol

pytestmark = pytest.mark.slow


def test_real_search_trains_the_feasible_candidate_only_once(tmp_path):
    protocol = get_protocol("smoke")
    small, big = ModelSpec.parse("s1-d2-c16"), ModelSpec.parse("s1-d2-c64")
    limit = (size_mb(small) + size_mb(big)) / 2
    space = SearchSpace(n_stacks=(1,), depth=(2,), channels=(16, 64), attention=("none",),
                        coordconv=(False,))
    config = SearchConfig(
        protocol=protocol, run_dir=tmp_path, storage=choose_storage(None, tmp_path),
        study_name="real", space=space, budget=Budget(size_mb=limit, input_size=64),
        sampler="grid", n_trials=2, device="cpu",
    )
    result = run_search(config)
    study = optuna.load_study(study_name="real", storage=open_storage(config.storage))
    by_spec = {t.user_attrs["spec"]: t for t in study.trials}
    assert set(by_spec) == {str(small), str(big)}
    over, under = by_spec[str(big)], by_spec[str(small)]
    assert over.user_attrs["status"] == "infeasible" and over.user_attrs["train_seconds"] == 0
    assert not over.intermediate_values and over.constraints["size_mb"] > 0
    assert not (tmp_path / "candidates" / over.user_attrs["key"]).exists()  # nothing trained
    assert under.state == TrialState.COMPLETE and under.user_attrs["train_seconds"] > 0
    assert math.isfinite(under.value) and under.value == under.user_attrs["nme_image_pct"]
    assert under.user_attrs["size_mb"] == pytest.approx(size_mb(small), rel=1e-6)
    assert len(under.intermediate_values) == protocol.epochs  # reported every epoch
    assert result.summary["best"]["spec"] == str(small)
    # a re-run with a larger target: the grid is exhausted, nothing is trained again
    again = run_search(SearchConfig(**{**config.__dict__, "n_trials": 5}))
    assert again.summary["trials"] == 2
