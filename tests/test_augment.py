"""Augmentation: the flip permutation, point/image consistency of every transform, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lightmark.data.constants import FLIP_PERMUTATION, N_LANDMARKS
from lightmark.data.sample import FaceSample
from lightmark.data.synth import SynthFaces
from lightmark.training.augment import build_augment, erase_in_box, flip_sample
from lightmark.training.protocol import AugmentConfig

S = 96
ALL_OFF = dict(flip=False, rotate=False, pad=False, color_jitter=False, blur=False, erase=False)


def frontal_points(size: int) -> np.ndarray:
    """A mirror-symmetric frontal face in iBUG order (subject's right eye on the image's left)."""
    c = (size - 1) / 2.0
    pts = np.zeros((N_LANDMARKS, 2))
    t = np.linspace(np.pi, 0, 17)  # jaw: image left -> chin -> image right
    pts[0:17] = np.c_[c + 0.38 * size * np.cos(t), 0.45 * size + 0.40 * size * np.sin(t)]
    brow = np.linspace(0.08, 0.28, 5) * size
    pts[17:22] = np.c_[c - brow[::-1], np.full(5, 0.32 * size)]
    pts[22:27] = np.c_[c + brow, np.full(5, 0.32 * size)]
    pts[27:31] = np.c_[np.full(4, c), np.linspace(0.40, 0.55, 4) * size]
    pts[31:36] = np.c_[c + np.linspace(-0.07, 0.07, 5) * size, np.full(5, 0.60 * size)]
    eye = np.array([[-0.06, 0], [-0.02, -0.02], [0.02, -0.02], [0.06, 0], [0.02, 0.02], [-0.02, 0.02]])
    right_centre = np.array([c - 0.15 * size, 0.43 * size])
    left_centre = np.array([c + 0.15 * size, 0.43 * size])
    pts[36:42] = right_centre + eye * size  # 36 outer (image left), 39 inner
    mirrored = eye[[3, 2, 1, 0, 5, 4]] * [-1, 1]  # 42 inner, 43/44 top, 45 outer, 46/47 bottom
    pts[42:48] = left_centre + mirrored * size
    mouth_c = np.array([c, 0.74 * size])
    top = np.linspace(np.pi, 0, 7)
    pts[48:55] = mouth_c + np.c_[0.12 * np.cos(top), -0.04 * np.sin(top)] * size
    bottom = np.linspace(0, np.pi, 7)[1:-1]
    pts[55:60] = mouth_c + np.c_[0.12 * np.cos(bottom), 0.05 * np.sin(bottom)] * size
    inner_top = np.linspace(np.pi, 0, 5)
    pts[60:65] = mouth_c + np.c_[0.08 * np.cos(inner_top), -0.015 * np.sin(inner_top)] * size
    inner_bottom = np.linspace(0, np.pi, 5)[1:-1]
    pts[65:68] = mouth_c + np.c_[0.08 * np.cos(inner_bottom), 0.015 * np.sin(inner_bottom)] * size
    return pts.astype(np.float32)


def blob_image(points: dict[int, np.ndarray], size: int, sigma: float = 1.5) -> np.ndarray:
    """One Gaussian blob per colour channel (channel c at points[c]) on black."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.zeros((size, size, 3), np.float64)
    for channel, (x, y) in points.items():
        image[..., channel] = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return (image * 255).round().astype(np.uint8)


def centroid(channel: np.ndarray, floor: int = 40) -> np.ndarray:
    weights = np.where(channel >= floor, channel.astype(np.float64), 0.0)
    yy, xx = np.mgrid[0:channel.shape[0], 0:channel.shape[1]]
    return np.array([(weights * xx).sum(), (weights * yy).sum()]) / weights.sum()


def only(name: str, **extra) -> AugmentConfig:
    return AugmentConfig(**{**ALL_OFF, name: True, f"{name}_p": 1.0, **extra})


# -- flip ---------------------------------------------------------------------------------------------
def test_flip_permutation_is_an_involution():
    perm = np.asarray(FLIP_PERMUTATION)
    assert sorted(perm) == list(range(N_LANDMARKS))
    assert (perm[perm] == np.arange(N_LANDMARKS)).all()


def test_flip_of_a_symmetric_face_is_the_same_face_and_twice_is_identity():
    points = frontal_points(S)
    sample = FaceSample(image=np.zeros((S, S, 3), np.uint8), points=points)
    once = flip_sample(sample)
    np.testing.assert_allclose(once.points, points, atol=1e-4)  # every pair re-indexed correctly
    moved = replace(sample, points=points + np.float32([7.3, -2.1]))
    np.testing.assert_allclose(flip_sample(flip_sample(moved)).points, moved.points, atol=1e-5)


def test_albumentations_flip_reindexes_and_point_36_is_the_left_outer_corner():
    # An asymmetric face (shifted right) so that mirroring moves points; red blob on point 36.
    points = frontal_points(S) + np.float32([9.0, 0.0])
    sample = FaceSample(image=blob_image({0: points[36], 1: points[45]}, S), points=points,
                        occluded=np.arange(N_LANDMARKS) == 36)
    out = build_augment(only("flip"), S)(sample, np.random.default_rng(0))
    # point 36 (right eye outer corner) is the outer corner of the eye now on the image's left
    assert out.points[36, 0] < out.points[45, 0]
    assert out.points[36, 0] < out.points[39, 0]
    np.testing.assert_allclose(out.points[36, 0], S - 1 - points[45, 0], atol=1e-4)
    # the old point 45's blob (green) now sits at the new point 36, the red one at 45
    np.testing.assert_allclose(centroid(out.image[..., 1]), out.points[36], atol=0.15)
    np.testing.assert_allclose(centroid(out.image[..., 0]), out.points[45], atol=0.15)
    assert out.occluded[45] and out.occluded.sum() == 1  # per-point flags follow the re-indexing
    twice = build_augment(only("flip"), S)(out, np.random.default_rng(0))
    np.testing.assert_allclose(twice.points, points, atol=1e-4)
    np.testing.assert_array_equal(twice.image, sample.image)


# -- geometry stays consistent with the image --------------------------------------------------------
@pytest.mark.parametrize("name", ["rotate", "pad"])
def test_geometric_augmentations_move_points_with_the_image(name):
    points = frontal_points(S)
    ids = {0: 36, 1: 45, 2: 57}
    image = blob_image({c: points[k] for c, k in ids.items()}, S)
    aug = build_augment(only(name), S)
    moved = []
    for seed in range(8):
        out = aug(FaceSample(image=image, points=points), np.random.default_rng(seed))
        assert out.image.shape == (S, S, 3) and out.points.shape == (N_LANDMARKS, 2)
        for channel, k in ids.items():
            np.testing.assert_allclose(centroid(out.image[..., channel]), out.points[k], atol=0.25)
        moved.append(np.abs(out.points - points).max())
    assert max(moved) > 2.0  # the transform really changed the geometry


def test_rotation_never_drops_keypoints_outside_the_frame():
    points = frontal_points(S)
    points[0] = [1.0, 1.0]  # a corner point rotates out of the image
    aug = build_augment(only("rotate"), S)
    outside = 0
    for seed in range(10):
        out = aug(FaceSample(image=np.zeros((S, S, 3), np.uint8), points=points), seed)
        assert out.points.shape == (N_LANDMARKS, 2) and np.isfinite(out.points).all()
        outside += int(out.points[0].min() < -0.5)
    assert outside > 0


@pytest.mark.parametrize("name", ["color_jitter", "blur"])
def test_photometric_augmentations_keep_points_and_change_pixels(name):
    points = frontal_points(S)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    out = build_augment(only(name), S)(FaceSample(image=image, points=points), 1)
    np.testing.assert_array_equal(out.points, points)
    assert np.abs(out.image.astype(int) - image).mean() > 1.0


def test_erase_fills_a_rectangle_inside_the_face_box_only():
    points = frontal_points(S)
    image = np.full((S, S, 3), 128, np.uint8)
    aug = build_augment(only("erase", erase_max_fraction=0.3), S)
    lo, hi = np.floor(points.min(0)).astype(int), np.ceil(points.max(0)).astype(int)
    for seed in range(10):
        out = aug(FaceSample(image=image, points=points), seed)
        changed = np.argwhere((out.image != image).any(axis=2))
        np.testing.assert_array_equal(out.points, points)
        if len(changed) == 0:  # the random colour may equal the background (1 in 2^24)
            continue
        ys, xs = changed[:, 0], changed[:, 1]
        assert xs.min() >= lo[0] and xs.max() <= hi[0] and ys.min() >= lo[1] and ys.max() <= hi[1]
        box = hi - lo + 1
        assert (xs.max() - xs.min() + 1) <= 0.3 * box[0] + 1 and (ys.max() - ys.min() + 1) <= 0.3 * box[1] + 1
        assert len(changed) == (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)  # a full rectangle


def test_erase_is_the_only_difference_of_the_erase_flag():
    points = frontal_points(S)
    image = np.full((S, S, 3), 200, np.uint8)
    off = build_augment(AugmentConfig(**ALL_OFF), S)(FaceSample(image=image, points=points), 0)
    np.testing.assert_array_equal(off.image, image)
    on = build_augment(AugmentConfig(**{**ALL_OFF, "erase": True, "erase_p": 1.0}), S)
    assert (on(FaceSample(image=image, points=points), 0).image != image).any()


def test_erase_helper_clips_to_the_image():
    points = np.array([[-20.0, -20.0], [10.0, 10.0]] * 34, dtype=np.float32)
    out = erase_in_box(np.zeros((16, 16, 3), np.uint8), points, np.random.default_rng(0), 0.9)
    assert out.shape == (16, 16, 3)


# -- determinism --------------------------------------------------------------------------------------
def test_same_generator_state_same_bytes_and_different_seeds_differ():
    points = frontal_points(S)
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    cfg = replace(AugmentConfig(), erase=True, flip_p=0.5, rotate_p=1.0)
    sample = FaceSample(image=image, points=points)
    a = build_augment(cfg, S)(sample, np.random.default_rng([1, 2, 3]))
    b = build_augment(cfg, S)(sample, np.random.default_rng([1, 2, 3]))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.points, b.points)
    aug = build_augment(cfg, S)
    outs = [aug(sample, seed) for seed in range(6)]
    assert len({o.points.tobytes() for o in outs}) == 6
    np.testing.assert_array_equal(image, sample.image)  # the input is never modified in place
    assert all(o.image.flags["C_CONTIGUOUS"] and o.image.dtype == np.uint8 for o in outs)


def test_real_synthetic_faces_flip_back_exactly_with_their_occlusion_flags():
    sample = SynthFaces(size=64, seed=3).render(0)
    aug = build_augment(only("flip"), 64)
    once = aug(sample, 0)
    twice = aug(once, 0)
    np.testing.assert_allclose(twice.points, sample.points, atol=1e-4)
    np.testing.assert_array_equal(twice.image, sample.image)
    if sample.occluded is not None:
        np.testing.assert_array_equal(once.occluded, sample.occluded[list(FLIP_PERMUTATION)])
        np.testing.assert_array_equal(twice.occluded, sample.occluded)
    assert once.meta == sample.meta
