from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lightmark.errors import ConfigError
from lightmark.training.protocol import PROTOCOLS, AugmentConfig, Protocol, get_protocol


def test_presets_are_frozen_and_round_trip_through_dict():
    for name, protocol in PROTOCOLS.items():
        assert protocol.name == name
        again = Protocol.from_dict(json.loads(json.dumps(protocol.to_dict())))
        assert again == protocol
        assert again.canonical_json() == protocol.canonical_json()
        with pytest.raises(dataclasses.FrozenInstanceError):
            protocol.epochs = 99  # type: ignore[misc]


def test_protocol_sizes_follow_design():
    assert get_protocol("smoke").input_size == 64
    assert get_protocol("quick").input_size == 128
    paper = get_protocol("paper")
    assert paper.input_size == 384 and paper.batch_size == 8 and paper.epochs == 20
    assert paper.schedule_unit == "steps" and paper.milestones == (80_000, 120_000)
    assert paper.lr == pytest.approx(1e-4) and paper.weight_decay == pytest.approx(1e-6)
    assert paper.grad_clip == 5.0


def test_override_from_strings_parses_toml_literals_and_nested_keys():
    protocol = get_protocol("smoke").override_from_strings(
        ["epochs=3", "augment.erase=true", "codec=plain", "lr=0.5e-3"]
    )
    assert protocol.epochs == 3 and protocol.augment.erase is True
    assert protocol.codec == "plain" and protocol.lr == pytest.approx(5e-4)
    assert isinstance(protocol.augment, AugmentConfig)


@pytest.mark.parametrize(
    "item, field",
    [("epoch=3", "epoch"), ("augment.erasing=true", "augment.erasing"), ("codec=gauss", "codec"),
     ("nokeyvalue", "key=value")],
)
def test_bad_overrides_name_the_key(item, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        get_protocol("smoke").override_from_strings([item])


def test_toml_file_overrides_and_errors_name_the_file(tmp_path):
    good = tmp_path / "p.toml"
    good.write_text('epochs = 4\nloss = "mse"\n[augment]\nerase = true\n')
    protocol = get_protocol("quick").override_from_toml(good)
    assert (protocol.epochs, protocol.loss, protocol.augment.erase) == (4, "mse", True)
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = 4\nbatchsize = 3\n")
    with pytest.raises(ConfigError, match="bad.toml.*batchsize"):
        get_protocol("quick").override_from_toml(bad)
    with pytest.raises(ConfigError, match="missing.toml"):
        get_protocol("quick").override_from_toml(tmp_path / "missing.toml")


def test_unknown_protocol_lists_choices():
    with pytest.raises(ConfigError, match="smoke, quick, tabular, paper"):
        get_protocol("fast")


def test_the_synthetic_to_real_recipe_file_is_a_valid_protocol():
    """configs/synth2real.toml (docs/data.md): quick, 3.2 times longer, heavy photometric augmentation."""
    path = Path(__file__).resolve().parents[1] / "configs" / "synth2real.toml"
    quick = get_protocol("quick")
    recipe = quick.override_from_toml(path)
    assert recipe.name == "synth2real" and recipe.input_size == quick.input_size == 128
    assert recipe.epochs * recipe.train_samples == 8 * 3200
    assert recipe.augment.erase and recipe.augment.saturation == 1.0 and recipe.augment.color_jitter_p == 0.8
    assert recipe.augment.flip == quick.augment.flip and recipe.lr == quick.lr  # the rest stays quick's
