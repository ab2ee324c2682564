"""Landmark layouts: the registry, flip by each layout's permutation, NME with each layout's eyes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightmark import metrics
from lightmark.data import constants as C
from lightmark.data.sample import FaceSample
from lightmark.errors import ConfigError
from lightmark.layouts import (
    AFLW19,
    COFW29,
    FACESYNTHETICS70,
    IBUG68,
    LAYOUTS,
    WFLW98,
    get_layout,
    layout_for_points,
    subset_indices,
)
from lightmark.training.augment import Augment, flip_sample
from lightmark.training.protocol import AugmentConfig

# The 68-point permutation as the project defined it before layouts existed (constants.py).
_OLD_PAIRS = [
    *[(i, 16 - i) for i in range(8)], *[(17 + i, 26 - i) for i in range(5)], (31, 35), (32, 34),
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46), (48, 54), (49, 53), (50, 52), (59, 55),
    (58, 56), (60, 64), (61, 63), (67, 65),
]


def test_ibug68_reproduces_the_old_constants_exactly():
    perm = list(range(68))
    for a, b in _OLD_PAIRS:
        perm[a], perm[b] = b, a
    assert IBUG68.flip_permutation == tuple(perm)
    assert IBUG68.outer_eye_corners == (36, 45)
    assert IBUG68.eye_centres == (tuple(range(36, 42)), tuple(range(42, 48)))

    assert C.FLIP_PERMUTATION == tuple(perm) and C.N_LANDMARKS == 68 and C.OUTER_EYE_CORNERS == (36, 45)
    assert (C.RIGHT_EYE, C.LEFT_EYE, C.JAW, C.INNER_LIPS) == (range(36, 42), range(42, 48), range(0, 17),
                                                             range(60, 68))


def test_registry_counts_and_eye_indices_follow_mmpose():
    assert {name: layout.n_points for name, layout in LAYOUTS.items()} == {
        "ibug68": 68, "wflw98": 98, "cofw29": 29, "aflw19": 19, "facesynthetics70": 70}
    assert WFLW98.outer_eye_corners == (60, 72) and WFLW98.eye_centres == ((96,), (97,))
    assert COFW29.outer_eye_corners == (8, 9) and COFW29.eye_centres == ((16,), (17,))
    assert AFLW19.outer_eye_corners == (6, 11)
    assert FACESYNTHETICS70.eye_centres == ((68,), (69,))
    # a few of mmpose's swap entries, and the points it leaves in place
    wflw = WFLW98.flip_permutation
    assert (wflw[0], wflw[33], wflw[38], wflw[60], wflw[65], wflw[76], wflw[96]) == (32, 46, 50, 72, 75, 82, 97)
    assert wflw[16] == 16 and wflw[51] == 51 and wflw[57] == 57 and wflw[90] == 90
    cofw = COFW29.flip_permutation
    assert (cofw[4], cofw[12], cofw[22]) == (6, 14, 23) and all(cofw[i] == i for i in (20, 21, 24, 25, 26, 27, 28))
    aflw = AFLW19.flip_permutation
    assert (aflw[0], aflw[6], aflw[12], aflw[15]) == (5, 11, 14, 17) and aflw[13] == 13 and aflw[18] == 18
    assert layout_for_points(98) is WFLW98 and get_layout("cofw29") is COFW29
    with pytest.raises(ConfigError, match="no landmark layout has 42 points"):
        layout_for_points(42)
    with pytest.raises(ConfigError, match="unknown 'wflw'"):
        get_layout("wflw")


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_flip_then_flip_again_gives_back_the_points(layout):
    rng = np.random.default_rng(layout.n_points)
    size = 48
    points = rng.uniform(0, size - 1, (layout.n_points, 2)).astype(np.float32)
    occluded = rng.random(layout.n_points) < 0.3
    sample = FaceSample(image=rng.integers(0, 256, (size, size, 3), dtype=np.uint8), points=points,
                        occluded=occluded)
    once = flip_sample(sample, layout)
    perm = np.asarray(layout.flip_permutation)
    np.testing.assert_allclose(once.points[:, 0], size - 1 - points[perm, 0])
    np.testing.assert_array_equal(once.occluded, occluded[perm])
    twice = flip_sample(once, layout)
    np.testing.assert_allclose(twice.points, points, atol=1e-5)
    np.testing.assert_array_equal(twice.image, sample.image)
    np.testing.assert_array_equal(twice.occluded, occluded)


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_a_mirror_symmetric_face_is_its_own_flip(layout):
    """Pairs placed as mirror images and unpaired points on the axis: flipping changes nothing."""
    size = 64
    rng = np.random.default_rng(0)
    points = np.zeros((layout.n_points, 2), np.float32)
    points[:, 0] = (size - 1) / 2
    points[:, 1] = rng.uniform(0, size - 1, layout.n_points)
    for a, b in layout.flip_pairs:
        x = rng.uniform(0, size / 2 - 2)
        points[a] = (x, points[a, 1])
        points[b] = (size - 1 - x, points[a, 1])
    sample = FaceSample(image=np.zeros((size, size, 3), np.uint8), points=points)
    np.testing.assert_allclose(flip_sample(sample, layout).points, points, atol=1e-5)


def test_augmentation_flips_by_its_layout_and_refuses_another_point_count():
    cfg = AugmentConfig(flip=True, flip_p=1.0, rotate=False, color_jitter=False, pad=False, blur=False)
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 47, (98, 2)).astype(np.float32)
    sample = FaceSample(image=np.zeros((48, 48, 3), np.uint8), points=points)
    out = Augment(cfg, 48, WFLW98)(sample, 0)
    np.testing.assert_allclose(out.points, flip_sample(sample, WFLW98).points, atol=1e-4)
    with pytest.raises(ValueError, match="98 points with layout ibug68"):
        Augment(cfg, 48)(sample, 0)  # 98 points never silently come back as 68


def test_nme_normalises_by_the_layouts_eyes():
    gt = np.zeros((1, 98, 2))
    gt[0, :, 0] = np.arange(98)
    gt[0, 60] = (10, 0)
    gt[0, 72] = (50, 0)  # outer corners 40 px apart
    gt[0, 96] = (20, 0)
    gt[0, 97] = (40, 0)  # pupils 20 px apart
    pred = gt + np.array([3.0, 4.0])  # every point 5 px off
    assert float(metrics.nme(pred, gt, "inter_ocular")) == pytest.approx(5 / 40 * 100)
    assert float(metrics.nme(pred, gt, "inter_pupil", layout=WFLW98)) == pytest.approx(5 / 20 * 100)
    with pytest.raises(ConfigError, match="ibug68 has 68 points, the points have 98"):
        metrics.nme(pred, gt, "inter_ocular", layout=IBUG68)
    parts = metrics.per_part_nme(pred, gt, "image", 100, WFLW98)
    assert set(parts) == set(WFLW98.part_names) and all(v == pytest.approx(5.0) for v in parts.values())


def test_ibug68_nme_is_what_it_was():
    rng = np.random.default_rng(3)
    gt = torch.as_tensor(rng.uniform(0, 64, (5, 68, 2)))
    pred = gt + torch.as_tensor(rng.normal(0, 1, (5, 68, 2)))
    err = (pred - gt).norm(dim=-1).mean(1)
    ocular = (gt[:, 36] - gt[:, 45]).norm(dim=-1)
    pupil = (gt[:, 36:42].mean(1) - gt[:, 42:48].mean(1)).norm(dim=-1)
    torch.testing.assert_close(metrics.nme(pred, gt, "inter_ocular"), err / ocular * 100)
    torch.testing.assert_close(metrics.nme(pred, gt, "inter_pupil"), err / pupil * 100)


def test_subsets_and_attribute_breakdown():
    assert subset_indices(FACESYNTHETICS70, IBUG68) == tuple(range(68))
    assert subset_indices(WFLW98, WFLW98) == tuple(range(98))
    with pytest.raises(ConfigError, match=r"wflw98 \(98 points\) cannot be read as ibug68 \(68 points\)"):
        subset_indices(WFLW98, IBUG68)
    out = metrics.subset_nme(np.array([1.0, 2.0, 3.0, 4.0]), {"pose": np.array([1, 0, 1, 0], bool),
                                                              "blur": np.zeros(4, bool)})
    assert out["pose"] == {"nme_pct": 2.0, "n_images": 2}
    assert out["blur"]["n_images"] == 0 and np.isnan(out["blur"]["nme_pct"])
