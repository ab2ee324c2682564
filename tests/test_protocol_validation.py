"""Every protocol field is checked by type and range when a protocol is built: from the CLI's --set,
from a --protocol-file, and from Python. A bad value is a one-line ConfigError naming the field."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from lightmark.cli.main import main
from lightmark.errors import ConfigError
from lightmark.heatmaps.codecs import CODEC_NAMES
from lightmark.heatmaps.losses import ACCEPTED_LOSS_NAMES, get_loss
from lightmark.training import protocol as protocol_module
from lightmark.training.protocol import PROTOCOLS, AugmentConfig, Protocol, get_protocol

SMOKE = get_protocol("smoke")


def test_every_field_has_a_rule():
    assert set(protocol_module._PROTOCOL_RULES) == {f.name for f in fields(Protocol)} - {"augment"}
    assert set(protocol_module._AUGMENT_RULES) == {f.name for f in fields(AugmentConfig)}


def test_presets_pass_their_own_rules():
    for protocol in PROTOCOLS.values():
        assert Protocol.from_dict(protocol.to_dict()) == protocol


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("epochs", "abc", "integer >= 1"),
        ("epochs", 0, "integer >= 1"),
        ("epochs", 2.5, "integer >= 1"),
        ("epochs", True, "integer >= 1"),
        ("batch_size", -1, "integer >= 1"),
        ("input_size", 66, "multiple of 4"),
        ("train_samples", -3, "integer >= 0"),
        ("lr", "fast", "number > 0"),
        ("lr", 0, "number > 0"),
        ("lr", float("nan"), "number > 0"),
        ("weight_decay", -1e-6, ">= 0"),
        ("grad_clip", -1.0, ">= 0"),
        ("warmup", -5, ">= 0"),
        ("val_fraction", 1.5, r"fraction in \(0, 1\)"),
        ("val_fraction", 0.0, r"fraction in \(0, 1\)"),
        ("val_fraction", 1.0, r"fraction in \(0, 1\)"),
        ("codec", "gauss", "plain, offset, subpixel"),
        ("loss", "l1", "mse, weighted_mse"),
        ("schedule_unit", "epochs", "steps, fraction"),
        ("data_format", "jpeg", "synthetic"),
        ("layout", "dlib5", "auto"),
        ("amp", "yes", "true or false"),
        ("seed", -1, "integer >= 0"),
        ("num_workers", -2, "integer >= 0"),
        ("eval_every", 0, "integer >= 1"),
        ("loss_weight", -1.0, ">= 0"),
        ("data", 3, "dataset path"),
        ("milestones", ("a", 1), "list of numbers"),
        ("milestone_lrs", (0.0, 1e-4), "numbers > 0"),
        ("name", "", "non-empty"),
    ],
)
def test_python_construction_refuses_a_bad_value_naming_field_value_and_rule(key, value, allowed):
    with pytest.raises(ConfigError, match=rf"protocol field {key}=.*{allowed}") as info:
        replace(SMOKE, **{key: value})
    assert repr(value) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("flip_p", 2, r"probability in \[0, 1\]"),
        ("rotate_p", -0.1, "probability"),
        ("erase_p", "often", "probability"),
        ("flip", 1, "true or false"),
        ("hue", 0.7, r"\[0, 0.5\]"),
        ("brightness", -0.1, ">= 0"),
        ("rotate_limit_deg", 270.0, r"\[0, 180\]"),
        ("blur_sigma_max", 0.0, "> 0"),
        ("pad_max_fraction", 1.5, "fraction"),
        ("erase_max_fraction", 0.0, "fraction"),
    ],
)
def test_augment_fields_are_checked_with_their_dotted_name(key, value, allowed):
    with pytest.raises(ConfigError, match=rf"protocol field augment\.{key}=.*{allowed}"):
        AugmentConfig(**{key: value})
    with pytest.raises(ConfigError, match=rf"augment\.{key}"):
        SMOKE.override({f"augment.{key}": value})


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="milestones.*milestone_lrs.*same length"):
        replace(SMOKE, milestones=(0.5,))
    with pytest.raises(ConfigError, match="warmup=1.5.*fraction"):
        replace(SMOKE, warmup=1.5)  # smoke counts in fractions of the run
    with pytest.raises(ConfigError, match="milestones.*fraction"):
        replace(SMOKE, milestones=(0.5, 2.0))
    assert replace(get_protocol("paper"), warmup=5000).warmup == 5000  # steps: any count
    with pytest.raises(ConfigError, match="augment=.*table"):
        replace(SMOKE, augment={"flip": True})


def test_lists_become_tuples_and_numbers_keep_their_type():
    protocol = replace(SMOKE, milestones=[0.5, 0.75], milestone_lrs=[1e-4, 1e-5])
    assert protocol.milestones == (0.5, 0.75) and isinstance(protocol.milestone_lrs, tuple)
    paper = get_protocol("paper")
    assert isinstance(paper.warmup, int)  # not made 2000.0: candidate keys hash this JSON
    assert '"warmup": 2000' in paper.canonical_json()


def test_codec_and_loss_names_come_from_their_registries():
    for name in CODEC_NAMES:
        assert replace(SMOKE, codec=name).codec == name
    for name in ACCEPTED_LOSS_NAMES:
        assert replace(SMOKE, loss=name).loss == name
        assert callable(get_loss(name))  # every name the protocol takes, the registry builds
    assert "awing" in ACCEPTED_LOSS_NAMES and "adaptive_wing" in ACCEPTED_LOSS_NAMES


@pytest.mark.parametrize(
    "item, field",
    [("epochs=abc", "epochs"), ("augment.flip_p=2", "augment.flip_p"), ("lr=fast", "lr"),
     ("val_fraction=1.5", "val_fraction"), ("no_such_field=1", "no_such_field"),
     ("augment.no_such=1", "augment.no_such"), ("augment=3", "augment")],
)
def test_set_strings_are_validated(item, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        SMOKE.override_from_strings([item])


def test_protocol_file_values_and_unknown_keys_are_refused(tmp_path):
    bad_value = tmp_path / "bad_value.toml"
    bad_value.write_text("epochs = 3\n[augment]\nflip_p = 1.5\n")
    with pytest.raises(ConfigError, match=r"bad_value.toml.*augment\.flip_p=1.5"):
        SMOKE.override_from_toml(bad_value)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("no_such_field = 1\n")
    with pytest.raises(ConfigError, match="unknown.toml.*no_such_field"):
        SMOKE.override_from_toml(unknown)
    unknown_table = tmp_path / "unknown_table.toml"
    unknown_table.write_text("[augmentation]\nflip = false\n")
    with pytest.raises(ConfigError, match=r"augmentation\.flip"):
        SMOKE.override_from_toml(unknown_table)


def test_from_dict_refuses_unknown_and_bad_keys():
    data = SMOKE.to_dict()
    with pytest.raises(ConfigError, match="no_such_field"):
        Protocol.from_dict({**data, "no_such_field": 1})
    with pytest.raises(ConfigError, match=r"augment\.no_such"):
        Protocol.from_dict({**data, "augment": {**data["augment"], "no_such": 1}})
    with pytest.raises(ConfigError, match="epochs"):
        Protocol.from_dict({**data, "epochs": "3"})


@pytest.mark.parametrize("item", ["epochs=abc", "augment.flip_p=2", "lr=fast", "val_fraction=1.5",
                                  "no_such_field=1"])
def test_cli_exits_2_with_one_line_naming_the_field(item, tmp_path, capsys):
    rc = main(["train", "s1-d2-c16", "--protocol", "smoke", "--set", item, "--out", str(tmp_path / "x"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert item.split("=")[0].split(".")[-1] in err


def test_cli_protocol_file_with_unknown_key_exits_2(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text("epochs = 1\nno_such_field = 1\n")
    rc = main(["train", "s1-d2-c16", "--protocol", "smoke", "--protocol-file", str(path),
               "--out", str(tmp_path / "x"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no_such_field" in err and "p.toml" in err
