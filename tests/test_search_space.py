from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from lightmark.errors import ConfigError
from lightmark.models.spec import ModelSpec
from lightmark.search.budget import Budget
from lightmark.search.space import SearchSpace
from lightmark.search.testing import synthetic_size_mb

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_default_space_matches_the_issue():
    space = SearchSpace()
    assert space.n_stacks == (1, 2, 3, 4)
    assert space.depth == (2, 3, 4, 5)
    assert space.channels[0] == 32 and space.channels[-1] == 256
    assert space.attention == ("none", "se", "ca")
    assert space.coordconv == (False, True)
    assert len(space) == 4 * 4 * len(space.channels) * 3 * 2


def test_toml_forms_and_fixed_dimensions(tmp_path):
    path = _write(tmp_path, 'n_stacks = 2\ndepth = [4, 3]\nchannels = {min = 16, max = 48, step = 16}\n'
                            'attention = "ca"\ncoordconv = [true, false]\n')
    space = SearchSpace.from_toml(path)
    assert space.n_stacks == (2,)
    assert space.depth == (3, 4)
    assert space.channels == (16, 32, 48)
    assert space.attention == ("ca",)
    assert space.coordconv == (False, True)
    assert space.free_dims() == ("depth", "channels", "coordconv")
    assert len(space) == 2 * 3 * 2


@pytest.mark.parametrize(
    "text, words",
    [
        ("stacks = [1, 2]\n", ["'stacks'", "unknown key"]),
        ("depth = []\n", ["depth", "empty"]),
        ("channels = [64, 'wide']\n", ["channels", "integers"]),
        ("n_stacks = {min = 1, max = 99}\n", ["n_stacks", "out of range"]),
        ("channels = [60]\n", ["channels", "60"]),
        ("attention = ['cbam']\n", ["attention", "cbam"]),
        ("coordconv = ['yes']\n", ["coordconv", "true or false"]),
        ("depth = {min = 2, maxx = 4}\n", ["depth", "maxx"]),
        ("depth = {min = 4, max = 2}\n", ["depth.max"]),
        ("depth = [2, \n", ["not valid TOML"]),
    ],
)
def test_malformed_file_names_the_file_and_the_key(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_toml(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such search-space file"):
        SearchSpace.from_toml(tmp_path / "nope.toml")


def test_depth_is_bounded_by_the_heatmap():
    space = SearchSpace()
    assert space.bounded(64).depth == (2, 3, 4)  # 16 px heatmap: 16 -> 1 after four halvings
    assert space.bounded(128).depth == (2, 3, 4, 5)
    assert space.bounded(384).depth == (2, 3, 4, 5)  # 96 = 3 * 2**5
    with pytest.raises(ConfigError, match="depth"):
        SearchSpace(depth=(5,)).bounded(32)  # 8 px heatmap allows depth <= 3
    for spec in SearchSpace(n_stacks=(1,), channels=(32,), attention=("none",), coordconv=(False,)).bounded(64).specs():
        spec.check_input_size(64)  # every remaining depth builds


def test_trimming_by_budget_keeps_exactly_the_values_that_can_fit():
    space = SearchSpace().bounded(64)
    budget = Budget(size_mb=1.0, sizer="lightmark.search.testing:synthetic_size_mb")
    trimmed = space.trimmed(budget.fits)
    fitting = [s for s in space.specs() if synthetic_size_mb(s) <= 1.0]
    assert fitting
    assert all(trimmed.contains(s) for s in fitting)  # nothing feasible lost
    for dim in ("n_stacks", "depth", "channels"):
        assert set(getattr(trimmed, dim)) == {getattr(s, dim) for s in fitting}
    assert len(trimmed) < len(space)


def test_smallest_and_impossible_budget():
    space = SearchSpace(channels=(64, 128))
    assert space.smallest() == ModelSpec(n_stacks=1, depth=2, channels=64)
    budget = Budget(size_mb=0.01, sizer="lightmark.search.testing:synthetic_size_mb")
    assert space.smallest(budget.fits) is None
    with pytest.raises(ConfigError, match="no architecture"):
        space.trimmed(budget.fits)


def test_suggest_round_trips_through_enqueued_params():
    space = SearchSpace(n_stacks=(1, 2), depth=(2, 3, 4), channels=(16, 32, 64), coordconv=(True,))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    wanted = ModelSpec(n_stacks=2, depth=3, channels=64, attention="ca", coordconv=True)
    study.enqueue_trial(space.params_of(wanted))
    trial = study.ask()
    assert space.suggest(trial) == wanted
    assert "coordconv" not in trial.params  # fixed dimensions are not asked
    # evenly spaced ints are ordered ranges (TPE sees their order), others categorical
    assert isinstance(trial.distributions["depth"], optuna.distributions.IntDistribution)
    assert isinstance(trial.distributions["channels"], optuna.distributions.CategoricalDistribution)


def test_quick_space_file_is_small_and_valid():
    space = SearchSpace.from_toml(ROOT / "configs" / "quick-space.toml").bounded(128)
    assert max(space.channels) <= 64 and max(space.n_stacks) <= 2 and max(space.depth) <= 4
    assert space.grid()  # grid sampler can enumerate it
