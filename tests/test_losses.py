"""Losses: weighted MSE against a hand-computed case, MSE, Adaptive Wing sanity, bf16 autocast."""

from __future__ import annotations

import pytest
import torch

from lightmark.errors import ConfigError
from lightmark.heatmaps.codecs import get_codec, uniform_points
from lightmark.heatmaps.losses import dilation_mask, get_loss, weight_map


def _spike(value: float = 1.0) -> torch.Tensor:
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = value
    return target


def test_weight_map_is_w_times_dilated_mask_plus_one():
    w = weight_map(_spike(), weight=10.0)
    expected = torch.ones(1, 1, 5, 5)
    expected[0, 0, 1:4, 1:4] = 11.0  # the 3x3 grey dilation of the spike
    assert torch.equal(w, expected)
    assert dilation_mask(_spike(0.19)).sum() == 0  # below the 0.2 threshold: no weight
    assert dilation_mask(_spike(0.2)).sum() == 9


def test_weighted_mse_hand_computed():
    loss = get_loss("weighted_mse", weight=10.0)
    target = _spike()
    pred = torch.full_like(target, 0.1)
    # 3x3 block weight 11: centre (1 - 0.1)^2 = 0.81, 8 neighbours 0.01; 16 outside cells weight 1, 0.01 each
    expected = (11 * 0.81 + 8 * 11 * 0.01 + 16 * 0.01) / 25  # = 0.398
    assert loss([pred], target).item() == pytest.approx(expected, rel=1e-6)
    # summed over stacks
    assert loss([pred, torch.zeros_like(target)], target).item() == pytest.approx(expected + 11 / 25, rel=1e-6)
    # W is configurable
    assert get_loss("weighted_mse", weight=0.0)([pred], target).item() == pytest.approx((0.81 + 24 * 0.01) / 25)


def test_precomputed_mask_gives_the_same_loss():
    codec = get_codec("subpixel", 64)
    target, mask = codec.encode_with_mask(uniform_points(2, 64, n_points=4, seed=0))
    pred = torch.rand_like(target)
    for name in ("weighted_mse", "adaptive_wing", "mse"):
        loss = get_loss(name)
        assert loss([pred], target, mask).item() == pytest.approx(loss([pred], target).item(), rel=1e-6)


def test_mse_sums_the_per_stack_means():
    target = torch.rand(2, 3, 8, 8)
    preds = [torch.rand(2, 3, 8, 8) for _ in range(3)]
    expected = sum(torch.nn.functional.mse_loss(p, target) for p in preds)
    assert get_loss("mse")(preds, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_adaptive_wing_zero_at_perfect_prediction_and_finite_gradients():
    loss = get_loss("adaptive_wing")
    target = get_codec("subpixel", 64).encode(uniform_points(2, 64, n_points=3, seed=1))
    perfect = target.clone().requires_grad_(True)
    value = loss([perfect], target)
    assert value.item() == pytest.approx(0.0, abs=1e-7)
    value.backward()
    assert torch.isfinite(perfect.grad).all()
    pred = torch.rand_like(target).requires_grad_(True)
    value = loss([pred], target)
    value.backward()
    assert value.item() > 0 and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_adaptive_wing_is_continuous_at_theta():
    loss = get_loss("adaptive_wing", weight=0.0)
    target = torch.full((1, 1, 1, 1), 0.3)
    below = loss([target + 0.5 - 1e-5], target).item()
    above = loss([target + 0.5 + 1e-5], target).item()
    assert below == pytest.approx(above, abs=1e-3)


@pytest.mark.parametrize("name", ["mse", "weighted_mse", "adaptive_wing"])
def test_losses_compute_in_float32_under_bf16_autocast(name):
    loss = get_loss(name)
    target = get_codec("plain", 64).encode(uniform_points(2, 64, n_points=4, seed=2))
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    x = torch.rand(2, 4, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = conv(x)
        assert pred.dtype == torch.bfloat16
        value = loss([pred, pred], target)
    assert value.dtype == torch.float32
    reference = loss([pred.float(), pred.float()], target)
    assert value.item() == pytest.approx(reference.item(), rel=1e-6)
    value.backward()
    assert torch.isfinite(conv.weight.grad).all()


def test_shape_mismatch_and_unknown_name():
    with pytest.raises(ValueError, match="shape"):
        get_loss("mse")([torch.zeros(1, 2, 4, 4)], torch.zeros(1, 2, 8, 8))
    with pytest.raises(ConfigError, match="loss"):
        get_loss("l1")


def test_weighted_mse_matches_its_definition():
    """The fused sqrt-weight form equals mean(w * (p - t)^2) per stack, summed, and so do its gradients."""
    import torch

    from lightmark.heatmaps.codecs import get_codec
    from lightmark.heatmaps.losses import get_loss, weight_map

    codec = get_codec("subpixel", 64)
    target, mask = codec.encode_with_mask(torch.rand(2, 68, 2) * 60 + 2)
    preds = [torch.rand_like(target, requires_grad=True) for _ in range(2)]
    w = weight_map(target, 10.0)
    expected = sum((w * (p - target) ** 2).mean() for p in preds)
    got = get_loss("weighted_mse", 10.0)(preds, target, mask)
    assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    g_got = torch.autograd.grad(got, preds)
    g_exp = torch.autograd.grad(expected, preds)
    for a, b in zip(g_got, g_exp):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-9)
