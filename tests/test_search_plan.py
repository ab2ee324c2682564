"""What a search settles before its first trial (search/plan.py), and the summary's best checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lightmark.benchmarks.runner import candidate_dir_of
from lightmark.errors import ConfigError
from lightmark.models.registry import paper_presets
from lightmark.models.spec import ModelSpec
from lightmark.paper import spec_text, table_rows
from lightmark.search import testing
from lightmark.search.budget import Budget
from lightmark.search.config import SearchConfig
from lightmark.search.plan import (
    SearchRequest,
    SpaceFlags,
    build_space,
    paper_candidates,
    parse_values,
    plan_search,
)
from lightmark.search.space import SearchSpace
from lightmark.search.storage import choose_storage
from lightmark.search.study import run_search
from lightmark.training.protocol import get_protocol

SIZER = "lightmark.search.testing:synthetic_size_mb"
SMOKE = get_protocol("smoke")


def _request(tmp_path: Path, **kw) -> SearchRequest:
    flags = SpaceFlags(stacks="1", depth="2", channels="16,24")
    return SearchRequest(protocol=SMOKE, out=tmp_path / "run", space=flags, sizer=SIZER, **kw)


def test_parse_values_reads_ranges_lists_and_booleans():
    assert parse_values("2-5", "int") == [2, 3, 4, 5]
    assert parse_values("32-64:16", "int") == [32, 48, 64]
    assert parse_values("32-48", "int", step=8) == [32, 40, 48]
    assert parse_values("1, 3", "int") == [1, 3]
    assert parse_values("true,off", "bool") == [True, False]
    assert parse_values("none,ca", "str") == ["none", "ca"]
    with pytest.raises(ConfigError, match="MIN-MAX"):
        parse_values("2-x", "int")
    with pytest.raises(ConfigError, match="an integer"):
        parse_values("x", "int")
    with pytest.raises(ConfigError, match="true/false"):
        parse_values("maybe", "bool")


def test_build_space_fixes_the_flagged_dimensions_and_bounds_depth():
    space = build_space(SpaceFlags(stacks="1-2", depth="2,5", attention="ca"), 64)
    assert space.n_stacks == (1, 2) and space.depth == (2,) and space.attention == ("ca",)


def test_plan_suggests_the_trial_count_and_trims_nothing_that_fits(tmp_path):
    plan = plan_search(_request(tmp_path))
    # 1 x 1 x 2 widths x 3 attentions x 2 CoordConv = 12 architectures, all within the default budget
    assert plan.suggestion is not None and plan.suggestion.grid
    assert plan.config.n_trials == plan.suggestion.n_trials == 12
    assert len(plan.config.space) == plan.untrimmed_size == 12
    assert plan.config.run_dir == tmp_path / "run" and plan.config.study_name == "lightmark-smoke"
    given = plan_search(_request(tmp_path, n_trials=3))
    assert given.suggestion is None and given.config.n_trials == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.config = None  # a plan is a value: nothing rewrites it (nor the command line's arguments)


def test_plan_refuses_a_budget_nothing_fits_and_a_bad_trial_count(tmp_path):
    with pytest.raises(ConfigError, match="no architecture of the search space fits"):
        plan_search(_request(tmp_path, budget_mb=0.0001))
    with pytest.raises(ConfigError, match="--n-trials must be >= 1"):
        _request(tmp_path, n_trials=0)


def test_enqueue_paper_takes_table_1_from_the_paper_rows():
    assert [str(p.spec) for p in paper_presets(table=1)] == [spec_text(row) for row in table_rows(1)]
    assert {p.paper[0] for p in paper_presets()} == {1, 2}
    space = SearchSpace(n_stacks=(1, 2), depth=(2, 4), channels=(128, 256), attention=("none",),
                        coordconv=(False,))
    chosen, skipped = paper_candidates(space)
    assert [str(spec) for _, spec in chosen] == ["s1-d2-c256", "s1-d4-c128", "s2-d4-c128"]
    assert [name for name, _ in chosen] == ["paper-t1-s1-d2-c256", "paper-t1-s1-d4-c128", "paper-t1-s2-d4-c128"]
    assert [str(spec) for spec in skipped] == ["s2-d5-c128", "s3-d3-c128", "s4-d2-c128"]


def _runner_with_checkpoints(spec: ModelSpec, protocol, run_dir, **kw):
    """The synthetic runner, plus the best.pt the real runner leaves in each candidate's folder."""
    record = testing.synthetic_runner(spec, protocol, run_dir, **kw)
    (candidate_dir_of(run_dir, record.key) / "best.pt").write_bytes(b"checkpoint")
    return record


def test_the_summary_names_the_best_candidates_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    config = SearchConfig(
        protocol=SMOKE, run_dir=run_dir, storage=choose_storage(None, run_dir), study_name="t",
        space=SearchSpace(n_stacks=(1,), depth=(2,), channels=(16, 24)).bounded(64),
        budget=Budget(size_mb=1.0, input_size=64, sizer=SIZER), n_trials=4,
    )
    summary = run_search(config, runner=_runner_with_checkpoints).to_json()
    path = Path(summary["best_checkpoint"])
    assert path.is_absolute() and path.is_file() and path.name == "best.pt"
    assert path.parent == (candidate_dir_of(run_dir, summary["best"]["key"])).resolve()
    path.unlink()  # e.g. trained on another machine: no path rather than a missing file
    assert run_search(config, runner=_runner_with_checkpoints).to_json()["best_checkpoint"] is None
