"""Zero-cost proxies: scores of an untrained network that claim to predict its trained accuracy.

Each is computed at initialisation on one batch of training faces, without any training step:

- `synflow` (Tanaka et al. 2020; Abdelfattah et al. 2021 as a NAS proxy): parameters replaced by
  their absolute values, an all-ones input in float64, BatchNorm in eval mode (an identity at
  initialisation); score = sum |theta * d(sum of outputs)/d theta|.
- `naswot` (Mellor et al. 2021, the first version: Jacobian covariance): per-image Jacobians of the
  last stack's summed heatmaps with respect to the input; score = -sum(log(s + k) + 1 / (s + k))
  over the eigenvalues s of their correlation matrix, k = 1e-5.
- `grad_norm`: the L2 norm of the training loss's gradient (all parameters).
- `snip` (Lee et al. 2019): sum |theta * dL/d theta| over conv and linear weights.
- `params`, `macs`: the trivial baselines every proxy must beat.

Higher means "predicted better" for every proxy here (params and MACs: bigger). These proxies are
known to fail on dense regression tasks; `rank_agreement` measures them against a trained table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau, spearmanr
from torch import nn

from lightmark.atomic import write_text_atomic
from lightmark.benchmarks.size import count_params
from lightmark.heatmaps.codecs import get_codec
from lightmark.heatmaps.losses import get_loss
from lightmark.models.specs import AnySpec, build_network, parse_spec
from lightmark.training.dataset import build_sources
from lightmark.training.evaluate import prepare_images
from lightmark.training.protocol import Protocol

PROXIES = ("synflow", "naswot", "grad_norm", "snip", "params", "macs")
NASWOT_K = 1e-5


@dataclass(frozen=True)
class ProxyBatch:
    """One batch of training faces (normalised input) and their target heatmaps + mask."""

    x: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor


def proxy_batch(protocol: Protocol, batch_size: int = 32) -> ProxyBatch:
    train, _ = build_sources(protocol)
    n = min(batch_size, len(train))
    samples = [train[i] for i in range(n)]
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).contiguous()
    points = torch.from_numpy(np.stack([s.points for s in samples])).float()
    x = prepare_images(images, torch.device("cpu"))
    target, mask = get_codec(protocol.codec, protocol.input_size).encode_with_mask(points)
    return ProxyBatch(x=x, target=target, mask=mask)


def _fresh(spec: AnySpec, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_network(spec)


def synflow(spec: AnySpec, batch: ProxyBatch, seed: int = 0) -> float:
    model = _fresh(spec, seed).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, *batch.x.shape[1:]), dtype=torch.float64)
    total = sum(o.sum() for o in model(ones))
    total.backward()
    with torch.no_grad():
        score = sum(float((p * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None)
    return math.log(score) if score > 0 else -math.inf  # the raw score spans hundreds of decades


def naswot(spec: AnySpec, batch: ProxyBatch, seed: int = 0) -> float:
    model = _fresh(spec, seed).train()
    x = batch.x.clone().requires_grad_(True)
    model(x)[-1].sum().backward()
    jacobians = x.grad.reshape(len(x), -1).double().numpy()
    corr = np.nan_to_num(np.corrcoef(jacobians))
    eigenvalues = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(np.abs(eigenvalues) + NASWOT_K) + 1.0 / (np.abs(eigenvalues) + NASWOT_K)))


def _loss_grads(spec: AnySpec, batch: ProxyBatch, protocol: Protocol, seed: int) -> nn.Module:
    model = _fresh(spec, seed).train()
    loss = get_loss(protocol.loss, weight=protocol.loss_weight)(list(model(batch.x)), batch.target, batch.mask)
    loss.backward()
    return model


@torch.no_grad()
def _grad_norm(model: nn.Module) -> float:
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters() if p.grad is not None)))


@torch.no_grad()
def _snip(model: nn.Module) -> float:
    return float(sum((m.weight * m.weight.grad).abs().sum() for m in model.modules()
                     if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None))


def all_proxies(spec: AnySpec, batch: ProxyBatch, protocol: Protocol, seed: int = 0) -> dict[str, float]:
    """The four trainable-free proxies and the parameter count (MACs come from the table's rows)."""
    model = _loss_grads(spec, batch, protocol, seed)  # one backward serves grad_norm and SNIP
    return {
        "synflow": synflow(spec, batch, seed), "naswot": naswot(spec, batch, seed),
        "grad_norm": _grad_norm(model), "snip": _snip(model), "params": float(count_params(spec)),
    }


CACHE_EVERY = 10  # architectures scored between two writes of the cache


def proxy_scores(specs: Sequence[str], protocol: Protocol, *, batch_size: int, seed: int, cache: Path,
                 on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """`all_proxies` of every spec (one row each: spec, then the scores), cached in the CSV `cache`: a
    re-run only scores what is missing. `on_progress(scored, total)` after each write of the cache."""
    specs = sorted(set(specs))
    done = pd.read_csv(cache) if cache.exists() else pd.DataFrame(columns=["spec", *PROXIES[:-1]])
    have = set(done["spec"])
    missing = [s for s in specs if s not in have]
    if missing:
        batch = proxy_batch(protocol, batch_size)
        rows = done.to_dict(orient="records")
        for i, spec in enumerate(missing, 1):
            rows.append({"spec": spec, **all_proxies(parse_spec(spec), batch, protocol, seed)})
            if i % CACHE_EVERY == 0 or i == len(missing):
                write_text_atomic(cache, pd.DataFrame(rows).to_csv(index=False))
                if on_progress is not None:
                    on_progress(len(rows), len(specs))
        done = pd.DataFrame(rows)
    return done[done["spec"].isin(specs)]


# -- agreement with a trained table ---------------------------------------------------------------
def _kendall(a: np.ndarray, b: np.ndarray) -> float:
    return float(kendalltau(a, b).statistic)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def rank_correlation(a: np.ndarray, b: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Kendall tau and Spearman rho of two rankings with 95 % percentile-bootstrap intervals over the
    items (pairs with a non-finite value are dropped)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {"n": int(len(a))}
    for name, fn in (("kendall_tau", _kendall), ("spearman_rho", _spearman)):
        boot = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(a), len(a))
            value = fn(a[idx], b[idx])
            if math.isfinite(value):
                boot.append(value)
        out[name] = fn(a, b)
        out[f"{name}_ci_low"] = float(np.percentile(boot, 2.5)) if boot else math.nan
        out[f"{name}_ci_high"] = float(np.percentile(boot, 97.5)) if boot else math.nan
    return out


def rank_agreement(scores: np.ndarray, nme: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Kendall tau and Spearman rho of a proxy against -NME (positive: the proxy ranks the better
    architectures higher), with 95 % percentile-bootstrap intervals over architectures."""
    return rank_correlation(scores, -np.asarray(nme, float), n_boot=n_boot, seed=seed)


def paired_difference(scores: np.ndarray, baseline: np.ndarray, nme: np.ndarray, *, n_boot: int = 2000,
                      seed: int = 0) -> dict[str, float]:
    """Kendall tau of `scores` minus that of `baseline` against -NME, with a 95 % paired bootstrap
    interval (the same resampled architectures for both): does a proxy rank better than, say, MACs?"""
    a, b, target = (np.asarray(v, float) for v in (scores, baseline, -np.asarray(nme, float)))
    keep = np.isfinite(a) & np.isfinite(b) & np.isfinite(target)
    a, b, target = a[keep], b[keep], target[keep]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(a), len(a))
        d = _kendall(a[idx], target[idx]) - _kendall(b[idx], target[idx])
        if math.isfinite(d):
            diffs.append(d)
    return {"difference": _kendall(a, target) - _kendall(b, target),
            "ci_low": float(np.percentile(diffs, 2.5)) if diffs else math.nan,
            "ci_high": float(np.percentile(diffs, 97.5)) if diffs else math.nan}
