"""NME normalisations on hand-computed cases, per-landmark NME, failure rate, CED and AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightmark.errors import ConfigError
from lightmark.metrics import (
    NORMALISATIONS,
    auc,
    ced_curve,
    failure_rate,
    nme,
    normaliser,
    per_landmark_nme,
    summarise,
)


def _face() -> torch.Tensor:
    """68 points at (30, 30) except: bbox corners (0, 10) and (90, 50) (w 90, h 40 -> sqrt 60),
    right eye (36-41) at (10, 30) with its inner corner 39 at (22, 30) (centre x 12),
    left eye (42-47) at (50, 30): outer corners 36, 45 are 40 apart, eye centres 38 apart."""
    gt = torch.full((68, 2), 30.0)
    gt[0] = torch.tensor([0.0, 10.0])
    gt[16] = torch.tensor([90.0, 50.0])
    gt[36:42] = torch.tensor([10.0, 30.0])
    gt[39] = torch.tensor([22.0, 30.0])
    gt[42:48] = torch.tensor([50.0, 30.0])
    return gt.unsqueeze(0)


def test_normalising_distances():
    gt = _face()
    assert normaliser(gt, "image", 100).item() == 100
    assert normaliser(gt, "inter_ocular").item() == pytest.approx(40.0)
    assert normaliser(gt, "inter_pupil").item() == pytest.approx(38.0)
    assert normaliser(gt, "bbox").item() == pytest.approx(60.0)


def test_nme_every_normalisation_hand_computed():
    gt = _face()
    pred = gt + torch.tensor([3.0, 4.0])  # every point 5 px off
    assert nme(pred, gt, "image", 100).item() == pytest.approx(5.0)
    assert nme(pred, gt, "inter_ocular").item() == pytest.approx(12.5)
    assert nme(pred, gt, "inter_pupil").item() == pytest.approx(500 / 38)
    assert nme(pred, gt, "bbox").item() == pytest.approx(500 / 60)


def test_nme_is_per_image_and_mean_over_points():
    gt = torch.cat([_face(), _face()])
    pred = gt.clone()
    pred[1, 0] += torch.tensor([68.0, 0.0])  # one point 68 px off in image 1: mean error 1 px
    values = nme(pred, gt, "image", 384)
    assert values.shape == (2,)
    assert values[0].item() == 0 and values[1].item() == pytest.approx(100 / 384)


def test_per_landmark_nme():
    gt = torch.cat([_face(), _face()])
    pred = gt.clone()
    pred[:, 5, 0] += 10.0
    pred[0, 7, 1] += 4.0
    per = per_landmark_nme(pred, gt, "image", 100)
    assert per.shape == (68,)
    assert per[5].item() == pytest.approx(10.0) and per[7].item() == pytest.approx(2.0)
    assert per.sum().item() == pytest.approx(12.0)


def test_failure_rate_on_a_hand_made_array():
    values = np.array([1.0, 9.0, 11.0, 7.0])
    assert failure_rate(values, 8.0) == 50.0
    assert failure_rate(values, 10.0) == 25.0
    assert failure_rate(values, 8.0) == failure_rate(torch.tensor(values), 8.0)


def test_ced_curve_and_auc_on_a_hand_made_array():
    thresholds, fractions = ced_curve([1.0, 2.0, 3.0, 4.0], max_error_pct=4.0, steps=5)
    assert np.allclose(thresholds, [0, 1, 2, 3, 4])
    assert np.allclose(fractions, [0, 0.25, 0.5, 0.75, 1.0])
    assert auc([1.0, 2.0, 3.0, 4.0], 4.0, steps=5) == pytest.approx(0.5)
    assert auc([0.0, 0.0], 10.0) == pytest.approx(1.0)
    assert auc([20.0], 10.0) == 0.0


def test_summarise_keys_units_and_values():
    gt = torch.cat([_face(), _face()])
    pred = gt.clone()
    pred[1] += torch.tensor([0.0, 3.9])  # 9.75 % inter-ocular in image 1
    result = summarise(pred, gt, image_size=100)
    assert set(result) == {
        "nme_image_pct", "nme_inter_ocular_pct", "nme_inter_pupil_pct", "nme_bbox_pct",
        "failure_rate_8_pct", "failure_rate_10_pct", "auc_10_inter_ocular", "n_images",
    }
    assert result["nme_image_pct"] == pytest.approx(1.95)
    assert result["nme_inter_ocular_pct"] == pytest.approx(4.875)
    assert result["failure_rate_8_pct"] == 50.0
    assert result["failure_rate_10_pct"] == 0.0
    assert result["n_images"] == 2
    assert 0 < result["auc_10_inter_ocular"] < 1 and math.isfinite(result["nme_bbox_pct"])
    assert NORMALISATIONS == ("image", "inter_ocular", "inter_pupil", "bbox")


def test_errors():
    with pytest.raises(ConfigError, match="normalisation"):
        nme(_face(), _face(), "eyes")
    with pytest.raises(ConfigError, match="image_size"):
        nme(_face(), _face(), "image")
    with pytest.raises(ValueError):
        nme(_face(), _face()[:, :60], "bbox")
