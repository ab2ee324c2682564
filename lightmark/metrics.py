"""Normalised mean error (NME) and what follows from per-image NME: failure rates, CED, AUC.

Every function keeps per-image values, so means, failure rates and CED curves come from the same
numbers. NME is in percent everywhere; the normalisation is always named:

- `image`: mean point-to-point error / image side * 100 (the challenge's metric);
- `inter_ocular`: / distance between the layout's outer eye corners (36 and 45 for iBUG 68, 60 and
  72 for WFLW 98);
- `inter_pupil`: / distance between the layout's eye centres (the means of points 36-41 and 42-47 for
  iBUG 68, the pupils where the layout has them);
- `bbox`: / sqrt(w * h) of the ground-truth points' bounding box.

Points are [B, K, 2] (x, y) pixels; numpy arrays are accepted and tensors are returned. The eye
indices come from a `lightmark.layouts.Layout`; without one, the registered layout with K points.
"""

from __future__ import annotations

import numpy as np
import torch

from lightmark.errors import ConfigError
from lightmark.layouts import Layout, layout_for_points

NORMALISATIONS = ("image", "inter_ocular", "inter_pupil", "bbox")


def _tensor(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.detach().to(torch.float64)


def _check_points(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape or pred.dim() != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must both be [B, K, 2]")


def _layout(gt: torch.Tensor, layout: Layout | None) -> Layout:
    """The layout of [B, K, 2] points: the one given (its K must match) or the registered one."""
    if layout is None:
        return layout_for_points(int(gt.shape[1]))
    if layout.n_points != gt.shape[1]:
        raise ConfigError(f"layout {layout.name} has {layout.n_points} points, the points have {gt.shape[1]}")
    return layout


def normaliser(gt, norm: str, image_size: float | None = None, layout: Layout | None = None) -> torch.Tensor:
    """Per-image normalising distance in pixels: [B] float64."""
    gt = _tensor(gt)
    if norm == "image":
        if image_size is None:
            raise ConfigError("image_size: required for the 'image' normalisation")
        return torch.full(gt.shape[:1], float(image_size), dtype=torch.float64)
    if norm == "inter_ocular":
        a, b = _layout(gt, layout).outer_eye_corners
        return (gt[:, a] - gt[:, b]).norm(dim=-1)
    if norm == "inter_pupil":
        right_eye, left_eye = _layout(gt, layout).eye_centres
        right = gt[:, list(right_eye)].mean(dim=1)
        left = gt[:, list(left_eye)].mean(dim=1)
        return (right - left).norm(dim=-1)
    if norm == "bbox":
        size = gt.amax(dim=1) - gt.amin(dim=1)
        return (size[:, 0] * size[:, 1]).clamp_min(0).sqrt()
    raise ConfigError(f"normalisation: unknown {norm!r}; choose one of {', '.join(NORMALISATIONS)}")


def point_errors(pred, gt) -> torch.Tensor:
    """Euclidean error of every point in pixels: [B, K] float64."""
    pred, gt = _tensor(pred), _tensor(gt)
    _check_points(pred, gt)
    return (pred - gt).norm(dim=-1)


def nme(pred, gt, norm: str = "image", image_size: float | None = None,
        layout: Layout | None = None) -> torch.Tensor:
    """Per-image NME in percent: [B] float64 (mean point error / normalising distance * 100)."""
    return point_errors(pred, gt).mean(dim=1) / normaliser(gt, norm, image_size, layout) * 100.0


def per_landmark_nme(pred, gt, norm: str = "image", image_size: float | None = None,
                     layout: Layout | None = None) -> torch.Tensor:
    """NME of each landmark in percent, averaged over images: [K] float64."""
    errors = point_errors(pred, gt) / normaliser(gt, norm, image_size, layout)[:, None] * 100.0
    return errors.mean(dim=0)


def per_part_nme(pred, gt, norm: str = "image", image_size: float | None = None,
                 layout: Layout | None = None) -> dict[str, float]:
    """NME in percent of each face part of the layout (jaw, eyes, ...): the mean of its landmarks'."""
    per_landmark = per_landmark_nme(pred, gt, norm, image_size, layout)
    layout = _layout(_tensor(gt), layout)
    return {name: float(per_landmark[list(indices)].mean()) for name, indices in layout.parts}


def subset_nme(per_image, masks: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean NME and count of the images in each subset (e.g. WFLW's pose, occlusion, ... flags):
    {name: {"nme_pct", "n_images"}}; an empty subset has NaN NME."""
    values = _tensor(per_image).flatten()
    out: dict[str, dict[str, float]] = {}
    for name, mask in masks.items():
        chosen = values[torch.as_tensor(np.asarray(mask, dtype=bool))]
        out[name] = {"nme_pct": float(chosen.mean()) if chosen.numel() else float("nan"),
                     "n_images": int(chosen.numel())}
    return out


def failure_rate(per_image, threshold_pct: float) -> float:
    """Percentage of images whose NME exceeds `threshold_pct` (percent, same normalisation)."""
    values = _tensor(per_image).flatten()
    if values.numel() == 0:
        return float("nan")
    return float((values > threshold_pct).double().mean() * 100.0)


def ced_curve(per_image, max_error_pct: float = 10.0, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: thresholds in NME % (0..max) and the fraction (0..1) of
    images with NME <= each threshold."""
    values = np.sort(_tensor(per_image).flatten().numpy())
    thresholds = np.linspace(0.0, float(max_error_pct), int(steps))
    if values.size == 0:
        return thresholds, np.full_like(thresholds, np.nan)
    fractions = np.searchsorted(values, thresholds, side="right") / values.size
    return thresholds, fractions


def auc(per_image, max_error_pct: float = 10.0, steps: int = 1001) -> float:
    """Area under the CED curve up to `max_error_pct`, divided by `max_error_pct` (0..1)."""
    thresholds, fractions = ced_curve(per_image, max_error_pct, steps)
    return float(np.trapezoid(fractions, thresholds) / max_error_pct)


def summarise(pred, gt, image_size: float, layout: Layout | None = None) -> dict:
    """Every number an evaluation reports, units in the keys."""
    per_norm = {n: nme(pred, gt, n, image_size, layout) for n in NORMALISATIONS}
    io = per_norm["inter_ocular"]
    return {
        "nme_image_pct": float(per_norm["image"].mean()),
        "nme_inter_ocular_pct": float(io.mean()),
        "nme_inter_pupil_pct": float(per_norm["inter_pupil"].mean()),
        "nme_bbox_pct": float(per_norm["bbox"].mean()),
        "failure_rate_8_pct": failure_rate(io, 8.0),
        "failure_rate_10_pct": failure_rate(io, 10.0),
        "auc_10_inter_ocular": auc(io, 10.0),
        "n_images": int(io.numel()),
    }
