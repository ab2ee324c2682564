"""Model families beside the hourglass: spec grammar, registry, size from the spec, the space across
families and a smoke search that trains two families."""

from __future__ import annotations

import io
import json
from pathlib import Path

import optuna
import pytest
import torch

from lightmark.benchmarks.record import Record, architecture_fields
from lightmark.benchmarks.size import MIB, size_mb
from lightmark.errors import ConfigError, SpecError
from lightmark.models import registry
from lightmark.models.backbone_spec import BackboneSpec
from lightmark.models.spec import ModelSpec
from lightmark.models.specs import FAMILIES, build_network, family_of, parse_spec, spec_from_dict
from lightmark.search.family_space import BackboneSpace, MixedSpace, load_space, space_from_dict
from lightmark.search.space import SearchSpace

MIXED = """
family = ["hourglass", "mobilenetv3", "shufflenetv2"]
[hourglass]
n_stacks = [1, 2]
depth = [2]
channels = [16, 32]
attention = ["none", "ca"]
coordconv = [false]
[mobilenetv3]
variant = ["small", "large"]
width = [0.35, 0.5, 1.0]
out_stride = [8, 16]
head_channels = [16, 32]
[shufflenetv2]
width = [0.5, 1.0]
out_stride = [16]
head_channels = [16]
"""


@pytest.mark.parametrize("text", ["mnv3s-w0.5-o16-h32", "mnv3l-w1.0-o32-h64-k98", "snv2-w1.5-o8-h16-i1",
                                  "mnv2-w0.35-o16-h24"])
def test_backbone_spec_round_trips(text: str) -> None:
    spec = parse_spec(text)
    assert isinstance(spec, BackboneSpec)
    assert str(spec) == text
    assert spec_from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["family"] == family_of(spec)


def test_widths_have_one_name() -> None:
    assert str(parse_spec("mnv3s-w1-o16-h32")) == "mnv3s-w1.0-o16-h32"
    assert str(parse_spec("mnv3s-w0.50-o16-h32")) == "mnv3s-w0.5-o16-h32"


def test_hourglass_names_and_dicts_are_unchanged() -> None:
    spec = parse_spec("s2-d4-c128-ca-cc")
    assert spec == ModelSpec.parse("s2-d4-c128-ca-cc") and family_of(spec) == "hourglass"
    assert spec_from_dict(spec.to_dict()) == spec
    assert "family" not in spec.to_dict()  # candidate keys of every earlier record stay valid


@pytest.mark.parametrize(("text", "field"), [
    ("snv2-w0.75-o16-h32", "width"), ("mnv3s-w0.5-o4-h32", "out_stride"), ("mnv3s-w0.5-o16-h12", "head_channels"),
    ("mnv3s-w0-o16-h32", "width"), ("xyz-w1.0-o16-h32", "cannot parse"), ("mnv3s-16", "cannot parse"),
])
def test_bad_backbone_specs_name_the_field(text: str, field: str) -> None:
    with pytest.raises(SpecError, match=field):
        parse_spec(text)


def test_spec_from_dict_rejects_an_unknown_family() -> None:
    with pytest.raises(SpecError, match="unknown family 'vit'"):
        spec_from_dict({"family": "vit", "width": 1.0})


def test_registry_lists_families_and_resolves_backbone_strings() -> None:
    families = {preset.family for preset in registry.PRESETS.values()}
    assert {"hourglass", "mobilenetv3", "shufflenetv2", "mobilenetv2"} <= families <= set(FAMILIES)
    spec, size = registry.resolve("mnv3s-w0.5-o16-h32")
    assert isinstance(spec, BackboneSpec) and size == registry.DEFAULT_INPUT_SIZE
    assert registry.resolve("snv2-tiny")[1] == 64
    with pytest.raises(SpecError, match="mnv3s-w0.5-o16-h32"):
        registry.resolve("mobilenet")


@pytest.mark.parametrize("name", [p.name for p in registry.PRESETS.values() if p.family != "hourglass"])
def test_size_from_the_spec_matches_the_saved_state_dict(name: str) -> None:
    """The budget's size (meta device, no weights) is the bytes torch.save writes, within 0.01 MiB."""
    spec = registry.PRESETS[name].spec
    buffer = io.BytesIO()
    torch.save(build_network(spec).state_dict(), buffer)
    assert abs(size_mb(spec) - buffer.getbuffer().nbytes / MIB) < 0.01


@pytest.mark.parametrize("name", ["mnv3s-tiny", "snv2-tiny", "mnv2-tiny"])
def test_backbone_networks_emit_stride_4_heatmaps(name: str) -> None:
    preset = registry.PRESETS[name]
    out = build_network(preset.spec).eval()(torch.zeros(2, 3, 64, 64))
    assert isinstance(out, list) and len(out) == 1
    assert out[0].shape == (2, preset.spec.n_landmarks, 16, 16)


def test_records_carry_the_family_and_no_hourglass_dimensions() -> None:
    fields = architecture_fields(parse_spec("snv2-w0.5-o16-h32"))
    assert fields["family"] == "shufflenetv2" and fields["n_stacks"] is None and fields["coordconv"] is None
    old = Record.from_dict({"key": "k", "spec": "s1-d2-c16", "n_stacks": 1, "depth": 2, "channels": 16,
                            "attention": "none", "coordconv": False, "protocol": "smoke", "input_size": 64,
                            "seed": 0, "status": "complete", "params": 1, "size_mb": 0.1})
    assert old.family == "hourglass"  # records written before families


# -- the space across families -------------------------------------------------------------------

@pytest.fixture()
def mixed(tmp_path: Path) -> MixedSpace:
    path = tmp_path / "mixed.toml"
    path.write_text(MIXED)
    space = load_space(path)
    assert isinstance(space, MixedSpace)
    return space


def test_mixed_space_enumerates_every_family(mixed: MixedSpace) -> None:
    assert mixed.names == ("hourglass", "mobilenetv3", "shufflenetv2")
    specs = list(mixed.specs())
    assert len(specs) == len(mixed) == 8 + 2 * 3 * 2 * 2 + 2
    assert {family_of(s) for s in specs} == {"hourglass", "mobilenetv3", "shufflenetv2"}
    assert all(mixed.contains(s) for s in specs)
    assert not mixed.contains(parse_spec("mnv2-w0.35-o16-h16"))
    assert space_from_dict(mixed.to_dict()) == mixed  # the study's stored space reads back


def test_a_file_without_family_is_a_hourglass_space(tmp_path: Path) -> None:
    path = tmp_path / "hg.toml"
    path.write_text("n_stacks = [1, 2]\n")
    assert isinstance(load_space(path), SearchSpace)


def test_trials_ask_only_their_family_dimensions(mixed: MixedSpace) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        spec = mixed.suggest(trial)
        family = family_of(spec)
        seen.add(family)
        names = set(trial.params) - {"family"}
        if family == "hourglass":
            assert names <= {"n_stacks", "channels", "attention"}
        else:
            assert all(name.startswith(f"{family}.") for name in names)
        assert mixed.spec_from_params(trial.params) == spec
        assert mixed.params_of(spec) == trial.params
        study.tell(trial, 1.0)
    assert seen == {"hourglass", "mobilenetv3", "shufflenetv2"}


def test_budget_trims_each_family_and_drops_those_that_cannot_fit(mixed: MixedSpace) -> None:
    def fits(spec) -> bool:
        return size_mb(spec) <= 0.5

    trimmed = mixed.trimmed(fits)
    for sub in mixed.families:  # a value stays exactly when some architecture using it fits
        feasible = [spec for spec in sub.specs() if fits(spec)]
        kept = trimmed.subspace(family_of(sub.smallest()))
        for dim in ("variant", "width", "out_stride", "head_channels") if isinstance(sub, BackboneSpace) else (
                "n_stacks", "channels", "attention"):
            assert set(getattr(kept, dim)) == {getattr(spec, dim) for spec in feasible}, dim
    strict = mixed.trimmed(lambda spec: size_mb(spec) <= 0.2)
    assert strict.names == ("hourglass", "mobilenetv3")  # no ShuffleNetV2 is that small
    with pytest.raises(ConfigError, match="fits the budget"):
        mixed.trimmed(lambda spec: False)


def test_bounded_drops_strides_the_input_cannot_hold(mixed: MixedSpace) -> None:
    sub = mixed.bounded(8).subspace("mobilenetv3")
    assert isinstance(sub, BackboneSpace) and sub.out_stride == (8,)
    with pytest.raises(ConfigError, match="12 px"):
        MixedSpace(families=(BackboneSpace(family="shufflenetv2", width=(0.5,), out_stride=(16,)),)).bounded(12)


@pytest.mark.parametrize(("text", "message"), [
    ('family = ["hourglass", "vit"]', "unknown family 'vit'"),
    ('family = ["mobilenetv3"]\n[mobilenetv3]\nvariant = ["tiny"]', "variant 'tiny'"),
    ('family = ["shufflenetv2"]\n[shufflenetv2]\nwidth = [0.75]', "width"),
    ('family = ["mobilenetv3"]\n[mobilenetv3]\ndepth = [2]', "unknown key 'depth'"),
    ('family = ["mobilenetv3"]\n[hourglass]\nn_stacks = 1', "neither `family` nor a table"),
    ('family = []', "at least one|distinct"),
])
def test_bad_mixed_spaces_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_space(path)


def test_grid_sampling_refuses_a_mixed_space(mixed: MixedSpace) -> None:
    with pytest.raises(ConfigError, match="tpe or random"):
        mixed.grid()


@pytest.mark.slow
def test_smoke_search_trains_two_families(tmp_path: Path) -> None:
    from lightmark.cli.main import main

    space = tmp_path / "space.toml"
    space.write_text('family = ["hourglass", "shufflenetv2"]\n[hourglass]\nn_stacks = 1\ndepth = 2\n'
                     'channels = 16\nattention = "none"\ncoordconv = false\n'
                     '[shufflenetv2]\nwidth = 0.5\nout_stride = 16\nhead_channels = 16\n')
    out = tmp_path / "run"
    code = main(["search", "--protocol", "smoke", "--space", str(space), "--n-trials", "4", "--sampler", "random",
                 "--seed", "1", "--out", str(out), "--json"])
    assert code == 0
    import pandas as pd

    records = pd.read_csv(out / "records.csv")
    done = records[records["status"] == "complete"]
    assert set(done["family"]) == {"hourglass", "shufflenetv2"}
    assert done["nme_image_pct"].notna().all()
    stored = json.loads(optuna.load_study(study_name="lightmark-smoke",
                                          storage=f"sqlite:///{out / 'study.db'}").user_attrs["space"])
    assert stored["family"] == ["hourglass", "shufflenetv2"]


def test_the_challenge_suite_puts_every_family_in_one_table(tmp_path: Path) -> None:
    """`lightmark ablate challenge`: the write-up's hourglass beside each challenge family, one protocol."""
    import pandas as pd

    from lightmark.benchmarks import suites
    from lightmark.reports.ablate import ablate
    from lightmark.training.protocol import get_protocol

    suite = suites.get_suite("challenge")
    assert [family_of(row.spec) for row in suite.rows] == ["hourglass", "mobilenetv3", "mobilenetv3",
                                                          "shufflenetv2", "mobilenetv2"]
    assert suite.rows[0].baseline and suite.rows[0].paper_nme_pct == pytest.approx(2.0219)
    assert "challenge" not in [s.name for s in suites.resolve_tables("all")]  # `all` is the paper's five
    result = ablate([suite], get_protocol("smoke"), seeds=1, out=tmp_path, study_name="challenge", progress=False,
                    runner="lightmark.search.testing:synthetic_runner", report=False)
    frame = pd.read_csv(tmp_path / "challenge.csv")
    assert len(frame) == 5 and frame["Family"].tolist()[1] == "MobileNetV3-small"
    assert frame["Entry's own numbers"].tolist()[0] == "12.2 MB, 2.02 %"
    assert result.frames[0].attrs["name"] == "challenge"


def test_prescreen_is_refused_across_families(tmp_path: Path, capsys) -> None:
    from lightmark.cli.main import main

    space = tmp_path / "space.toml"
    space.write_text(MIXED)
    code = main(["search", "--protocol", "smoke", "--space", str(space), "--n-trials", "2", "--prescreen", "naswot:8",
                 "--out", str(tmp_path / "run")])
    assert code == 2 and "hourglasses only" in capsys.readouterr().err
