"""Heatmap losses, summed over every stack of a stacked hourglass.

`get_loss(name, weight=10.0)` returns a callable `(predictions: list[Tensor], target: Tensor,
mask: Tensor | None = None) -> Tensor` (`mask`: the optional precomputed bool dilation mask from
`Codec.encode_with_mask`; without it the loss computes it from the target): the sum over stacks of
each stack's loss, each a mean over all elements. Anything that depends only on the target (the
weight map) is computed once per batch, not once per stack.
Losses are computed in float32 even under bf16/fp16 autocast, so small heatmap differences do
not vanish in low precision.

- `mse`: plain mean squared error.
- `weighted_mse`: the paper's: M = 1 where the 3x3 grey-dilated target (3x3 max-pool) >= 0.2,
  per-pixel weight W * M + 1 (W = `weight`, default 10).
- `adaptive_wing`: Adaptive Wing loss (Wang, Bo, Fuxin, ICCV 2019) with its usual constants
  (omega 14, theta 0.5, epsilon 1, alpha 2.1) and its weight map (W * M + 1, M from the 3x3
  grey-dilated target >= 0.2, W = `weight`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from lightmark.errors import ConfigError

LossFn = Callable[..., torch.Tensor]


def dilation_mask(target: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """M: 1.0 where the 3x3 grey dilation (max-pool) of the target reaches `threshold`, else 0.
    (Codecs compute the same mask faster from their 1-D profiles: `Codec.encode_with_mask`.)"""
    shape = target.shape
    t = target.float().reshape(1, -1, shape[-2], shape[-1])  # maps as channels: the fast CPU layout
    dilated = F.max_pool2d(t, kernel_size=3, stride=1, padding=1)
    return (dilated >= threshold).to(torch.float32).view(shape)


def weight_map(target: torch.Tensor, weight: float = 10.0, threshold: float = 0.2) -> torch.Tensor:
    """The paper's per-pixel weight W * M + 1 (float32, same shape as the target)."""
    return dilation_mask(target, threshold) * weight + 1.0


def _weights(target: torch.Tensor, mask: torch.Tensor | None, weight: float, threshold: float) -> torch.Tensor:
    """W * M + 1, from a precomputed mask (e.g. `Codec.encode_with_mask`) or from the target."""
    if mask is None:
        return weight_map(target, weight, threshold)
    if mask.shape != target.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != target shape {tuple(target.shape)}")
    return mask.to(torch.float32) * weight + 1.0


def _as_list(predictions) -> list[torch.Tensor]:
    if isinstance(predictions, torch.Tensor):
        return [predictions]
    preds = list(predictions)
    if not preds:
        raise ValueError("predictions: empty list of stack outputs")
    return preds


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")


class MSELoss:
    """Mean squared error per stack, summed over stacks."""

    name = "mse"

    def __call__(self, predictions, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        del mask  # accepted so that every loss takes the same arguments
        preds = _as_list(predictions)
        with torch.autocast(device_type=target.device.type, enabled=False):
            t = target.float()
            total = t.new_zeros(())
            for p in preds:
                _check(p, t)
                total = total + F.mse_loss(p.float(), t)
        return total


class WeightedMSELoss:
    """The paper's weighted MSE: mean of (W * M + 1) * (p - t)^2 per stack, summed over stacks."""

    name = "weighted_mse"

    def __init__(self, weight: float = 10.0, threshold: float = 0.2):
        self.weight = float(weight)
        self.threshold = float(threshold)

    def __call__(self, predictions, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        preds = _as_list(predictions)
        with torch.autocast(device_type=target.device.type, enabled=False):
            t = target.float()
            # w (p - t)^2 = (sqrt(w) p - sqrt(w) t)^2: one fused mse_loss kernel (and its fused
            # backward) per stack instead of sub, pow, mul and mean; much faster on the CPU
            root_w = _weights(t, mask, self.weight, self.threshold).sqrt_()  # once per batch
            t_w = t * root_w
            total = t.new_zeros(())
            for p in preds:
                _check(p, t)
                total = total + F.mse_loss(p.float() * root_w, t_w)
        return total


class AdaptiveWingLoss:
    """Adaptive Wing loss with its weight map (W * M + 1), per stack mean, summed over stacks."""

    name = "adaptive_wing"

    def __init__(self, weight: float = 10.0, omega: float = 14.0, theta: float = 0.5,
                 epsilon: float = 1.0, alpha: float = 2.1, threshold: float = 0.2):
        self.weight = float(weight)
        self.omega, self.theta, self.epsilon, self.alpha = float(omega), float(theta), float(epsilon), float(alpha)
        self.threshold = float(threshold)

    def _terms(self, t: torch.Tensor):
        """Target-only quantities, computed once per batch: exponent, A and C of the loss."""
        power = self.alpha - t
        ratio = self.theta / self.epsilon
        a = (self.omega * (1.0 / (1.0 + ratio**power)) * power * ratio ** (power - 1.0) / self.epsilon)
        c = self.theta * a - self.omega * torch.log1p(ratio**power)
        return power, a, c

    def __call__(self, predictions, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        preds = _as_list(predictions)
        with torch.autocast(device_type=target.device.type, enabled=False):
            t = target.float()
            w = _weights(t, mask, self.weight, self.threshold)
            power, a, c = self._terms(t)
            total = t.new_zeros(())
            for p in preds:
                _check(p, t)
                diff = (p.float() - t).abs()
                small = self.omega * torch.log1p((diff / self.epsilon).clamp_min(0) ** power)
                large = a * diff - c
                loss = torch.where(diff < self.theta, small, large)
                total = total + (w * loss).mean()
        return total


_LOSSES: dict[str, Callable[[float], LossFn]] = {
    "mse": lambda weight: MSELoss(),
    "weighted_mse": WeightedMSELoss,
    "adaptive_wing": AdaptiveWingLoss,
}
LOSS_ALIASES = {"awing": "adaptive_wing"}  # the protocols' short name
LOSS_NAMES = tuple(_LOSSES)  # the registry's names; `get_loss` also takes the aliases
ACCEPTED_LOSS_NAMES = (*LOSS_NAMES, *LOSS_ALIASES)


def get_loss(name: str, weight: float = 10.0) -> LossFn:
    """The loss called `name` (mse | weighted_mse | adaptive_wing, alias awing); `weight` is W of the
    weight map."""
    try:
        make = _LOSSES[LOSS_ALIASES.get(name, name)]
    except (KeyError, TypeError):
        raise ConfigError(f"loss: unknown name {name!r}; choose one of {', '.join(ACCEPTED_LOSS_NAMES)}") from None
    return make(weight)
