"""The network: forward shapes, CoordConv, attention blocks, precision/memory formats, the registry."""

from __future__ import annotations

import itertools

import pytest
import torch

from lightmark.errors import SpecError
from lightmark.models import ModelSpec, build_model
from lightmark.models.blocks import CA, HPM, SE, AddCoords, CoordConv
from lightmark.models.registry import PRESETS, Preset, paper_presets, resolve


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize(
    "attention, coordconv, n_stacks",
    list(itertools.product(["none", "se", "ca"], [False, True], [1, 2, 3])),
)
def test_forward_shapes(attention, coordconv, n_stacks):
    spec = ModelSpec(n_stacks=n_stacks, depth=2, channels=8, attention=attention, coordconv=coordconv)
    model = build_model(spec).eval()
    for batch, size in ((1, 32), (3, 16), (2, 48)):
        with torch.no_grad():
            out = model(torch.randn(batch, 3, size, size))
        assert isinstance(out, list) and len(out) == n_stacks
        for heatmaps in out:
            assert heatmaps.shape == (batch, 68, size // 4, size // 4)
            assert torch.isfinite(heatmaps).all()


def test_non_square_input_and_custom_landmarks_channels():
    model = build_model(ModelSpec.parse("s2-d2-c8-ca-cc-k5-i1")).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 32))
    assert [tuple(o.shape) for o in out] == [(2, 5, 16, 8)] * 2


def test_build_model_accepts_string():
    model = build_model("s1-d2-c16-se")
    assert model.spec == ModelSpec.parse("s1-d2-c16-se")
    with pytest.raises(SpecError):
        build_model("s1-d2-c10")


def test_stacks_differ_and_all_receive_gradient():
    model = build_model("s2-d2-c8-ca-cc").train()
    out = model(torch.randn(2, 3, 32, 32))
    sum(o.square().mean() for o in out).backward()
    assert not torch.allclose(out[0], out[1])
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_coordconv_follows_input_size_dtype_device():
    """No cache tied to the first call: size, dtype and batch may change between calls."""
    model = build_model("s1-d2-c16-cc").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64))[0].shape == (2, 68, 16, 16)
        assert model(torch.randn(1, 3, 32, 96))[0].shape == (1, 68, 8, 24)
        model = model.double()
        assert model(torch.randn(3, 3, 48, 48, dtype=torch.float64))[0].dtype == torch.float64


def test_add_coords_values():
    x = torch.zeros(2, 3, 4, 5, dtype=torch.float16)
    out = AddCoords()(x)
    assert out.shape == (2, 5, 4, 5) and out.dtype == torch.float16
    xs, ys = out[:, 3], out[:, 4]
    torch.testing.assert_close(xs[0, 0], torch.linspace(-1, 1, 5, dtype=torch.float16))  # varies along width
    torch.testing.assert_close(ys[1, :, 2], torch.linspace(-1, 1, 4, dtype=torch.float16))  # along height
    assert (xs[:, :, 0] == -1).all() and (ys[:, -1, :] == 1).all()
    conv = CoordConv(3, 8, kernel_size=3, padding=1)
    assert conv.conv.in_channels == 5


def test_hpm_structure_and_residual():
    block = HPM(16, 32)
    assert [block.conv1.out_channels, block.conv2.out_channels, block.conv3.out_channels] == [16, 8, 8]
    assert block.down is not None and block.down[-1].kernel_size == (1, 1)
    same = HPM(32, 32)
    assert same.down is None
    # With all convs zeroed, an equal-width block is the identity (the residual passes through).
    for conv in (same.conv1, same.conv2, same.conv3):
        torch.nn.init.zeros_(conv.weight)
    x = torch.randn(2, 32, 8, 8)
    torch.testing.assert_close(same.eval()(x), x)
    # Parameters: three 3x3 convs without bias + BN(in, out/2, out/4) (+ BN(in) + 1x1 conv).
    n = sum(p.numel() for p in block.parameters())
    expected = 9 * (16 * 16 + 16 * 8 + 8 * 8) + 2 * (16 + 16 + 8) + 2 * 16 + 16 * 32
    assert n == expected


def test_se_gates_channels():
    se = SE(32).eval()
    assert se.fc1.out_channels == 8 and se.fc2.out_channels == 32  # reduction 4
    x = torch.rand(2, 32, 6, 6) + 0.1
    y = se(x)
    ratio = y / x  # one gate in (0, 1) per (image, channel), constant over space
    assert ((ratio > 0) & (ratio < 1)).all()
    torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))


def test_ca_gates_are_separable():
    ca = CA(32).eval()
    assert ca.conv1.out_channels == 8  # max(8, 32 / 4)
    assert CA(128).conv1.out_channels == 32
    x = torch.rand(1, 32, 6, 10) + 0.1
    with torch.no_grad():
        ratio = ca(x) / x  # gate_h[c, h] * gate_w[c, w]: a rank-1 map per channel
    assert ((ratio > 0) & (ratio < 1)).all()
    for c in range(3):
        assert torch.linalg.matrix_rank(ratio[0, c].double(), rtol=1e-5) == 1


def test_attention_sits_in_every_level():
    model = build_model("s2-d3-c16-ca")
    assert sum(isinstance(m, CA) for m in model.modules()) == 2 * 3
    model = build_model("s3-d2-c16-se")
    assert sum(isinstance(m, SE) for m in model.modules()) == 3 * 2
    assert not any(isinstance(m, (SE, CA)) for m in build_model("s2-d3-c16").modules())


def test_channels_last_and_bf16_autocast():
    model = build_model("s2-d2-c16-ca-cc").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)[-1]
        model_cl = model.to(memory_format=torch.channels_last)
        out_cl = model_cl(x.to(memory_format=torch.channels_last))[-1]
        torch.testing.assert_close(out_cl, ref, atol=1e-4, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = model_cl(x.to(memory_format=torch.channels_last))[-1]
    assert out_bf16.dtype == torch.bfloat16 and out_bf16.shape == ref.shape
    assert (out_bf16.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.1


def test_meta_device_build_allocates_nothing():
    with torch.device("meta"):
        model = build_model("s2-d4-c128-ca-cc")
    assert all(p.is_meta for p in model.parameters())


# -- registry ---------------------------------------------------------------------------------------
def test_paper_presets():
    papers = paper_presets()
    assert len(papers) == 12
    assert all(p.input_size == 384 and p.paper_size_mb and p.paper_nme for p in papers)
    assert PRESETS["paper-t2-ca-cc"].spec == ModelSpec.parse("s2-d4-c128-ca-cc")
    assert PRESETS["paper-t2-none"].spec == PRESETS["paper-t1-s2-d4-c128"].spec
    assert PRESETS["paper-t1-s1-d2-c256"].spec == ModelSpec(1, 2, 256)
    assert {"tiny", "cpu-small"} <= set(PRESETS)
    assert PRESETS["tiny"].spec == ModelSpec.parse("s1-d2-c32") and PRESETS["tiny"].input_size == 64
    for preset in PRESETS.values():
        assert isinstance(preset, Preset)
        preset.spec.check_input_size(preset.input_size)


def test_resolve():
    assert resolve("paper-t2-ca-cc") == (ModelSpec.parse("s2-d4-c128-ca-cc"), 384)
    assert resolve("tiny") == (ModelSpec.parse("s1-d2-c32"), 64)
    assert resolve(" s1-d3-c64-se ") == (ModelSpec.parse("s1-d3-c64-se"), 384)
    with pytest.raises(SpecError, match="paper-t2-ca-cc"):
        resolve("paper-t2-ca-c")  # close matches are listed
    with pytest.raises(SpecError, match="unknown model"):
        resolve("resnet50")
    with pytest.raises(SpecError, match="channels"):
        resolve("s2-d4-c100")
