"""ModelSpec: string round-trip, dict round-trip, and every invalid spec rejected naming its field."""

from __future__ import annotations

import pytest

from lightmark.errors import SpecError
from lightmark.models import ModelSpec

SPEC_STRINGS = [
    "s1-d2-c32", "s2-d4-c128", "s2-d4-c128-se", "s2-d4-c128-ca", "s2-d4-c128-cc",
    "s2-d4-c128-se-cc", "s2-d4-c128-ca-cc", "s4-d2-c256", "s1-d1-c8-k5", "s3-d3-c64-ca-cc-k98-i1",
]


@pytest.mark.parametrize("text", SPEC_STRINGS)
def test_string_round_trip(text):
    spec = ModelSpec.parse(text)
    assert str(spec) == text
    assert ModelSpec.parse(str(spec)) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_parse_fields():
    spec = ModelSpec.parse("s2-d4-c128-ca-cc")
    assert (spec.n_stacks, spec.depth, spec.channels, spec.attention, spec.coordconv) == (2, 4, 128, "ca", True)
    assert (spec.n_landmarks, spec.in_channels) == (68, 3)
    assert str(ModelSpec()) == "s2-d4-c128"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(n_stacks=0), "n_stacks"),
        (dict(n_stacks=-1), "n_stacks"),
        (dict(depth=0), "depth"),
        (dict(channels=130), "channels"),  # not divisible by 4
        (dict(channels=12), "channels"),  # divisible by 4, but C/4 is odd: the stem HPM cannot split C/2
        (dict(channels=4), "channels"),
        (dict(attention="cbam"), "attention"),
        (dict(coordconv="yes"), "coordconv"),
        (dict(n_landmarks=0), "n_landmarks"),
        (dict(in_channels=0), "in_channels"),
        (dict(depth=2.0), "depth"),
        (dict(n_stacks=True), "n_stacks"),
    ],
)
def test_invalid_specs_name_their_field(kwargs, field):
    with pytest.raises(SpecError, match=field):
        ModelSpec(**kwargs)


@pytest.mark.parametrize("text", ["", "s2-d4", "s2-d4-c128-xx", "2-4-128", "s2-d4-c128-cc-ca", "S2-D4-C128"])
def test_unparseable_strings(text):
    with pytest.raises(SpecError, match="cannot parse spec"):
        ModelSpec.parse(text)


def test_parse_rejects_invalid_values_with_field():
    with pytest.raises(SpecError, match="n_stacks"):
        ModelSpec.parse("s0-d4-c128")
    with pytest.raises(SpecError, match="channels"):
        ModelSpec.parse("s1-d4-c100")


def test_from_dict_rejects_unknown_field():
    with pytest.raises(SpecError, match="width"):
        ModelSpec.from_dict({"n_stacks": 1, "width": 3})


def test_depth_too_deep_for_input():
    spec = ModelSpec.parse("s1-d5-c32")
    spec.check_input_size(128)  # 32x32 heatmap, 2**5 = 32
    with pytest.raises(SpecError, match="depth 5"):
        spec.check_input_size(64)  # 16x16 heatmap
    with pytest.raises(SpecError, match="input size"):
        spec.check_input_size(130)
    assert spec.max_depth(384) == 5  # 96 = 2**5 * 3
    assert spec.max_depth(64) == 4


def test_specs_hashable():
    a, b = ModelSpec.parse("s2-d4-c128-ca-cc"), ModelSpec(2, 4, 128, "ca", True)
    assert a == b and hash(a) == hash(b)
    assert a != ModelSpec.parse("s2-d4-c128-ca")
