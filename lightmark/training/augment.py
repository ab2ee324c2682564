"""The paper's six augmentations, built with albumentations 2.0.8 from an `AugmentConfig`.

Horizontal flip (with the layout's left/right re-indexing), rotation, colour jitter, padding (pad
then resize back), Gaussian blur, and erasing inside the face box. Each is switchable from the
protocol, so an ablation such as the paper's Table 5 (erasing) is one flag: `augment.erase`.

Keypoints are never dropped (`remove_invisible=False`): a point rotated out of the frame keeps
its coordinates. albumentations' HorizontalFlip maps x -> W-1-x but keeps the labels, so when it
fired (seen through `save_applied_params`) the points are re-indexed with the layout's flip
permutation (`lightmark.layouts`; iBUG 68 by default), the one flip implementation.

Determinism: every call takes a `np.random.Generator` (or an int seed) that drives all random
choices, so a sample's augmentation depends only on that generator, not on worker count or order.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import replace

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations otherwise calls the network

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from lightmark.data.sample import FaceSample  # noqa: E402
from lightmark.layouts import DEFAULT_LAYOUT, Layout  # noqa: E402
from lightmark.training.protocol import AugmentConfig  # noqa: E402

ERASE_MIN_FRACTION = 0.1  # smallest erased rectangle side, as a fraction of the face-box side


def flip_index(layout: Layout, n_points: int) -> np.ndarray:
    """The layout's flip permutation as an index array; a sample with another point count is an
    error (re-indexing it with the wrong permutation would silently scramble or drop points)."""
    if n_points != layout.n_points:
        raise ValueError(f"cannot flip {n_points} points with layout {layout.name} ({layout.n_points} points)")
    return np.asarray(layout.flip_permutation, dtype=np.intp)


def flip_sample(sample: FaceSample, layout: Layout = DEFAULT_LAYOUT) -> FaceSample:
    """Deterministic horizontal flip with re-indexing (x -> W-1-x, point i takes point perm[i])."""
    w = sample.image.shape[1]
    perm = flip_index(layout, len(sample.points))
    points = sample.points[perm].copy()
    points[:, 0] = (w - 1) - points[:, 0]
    occluded = None if sample.occluded is None else sample.occluded[perm].copy()
    return replace(sample, image=np.ascontiguousarray(sample.image[:, ::-1]), points=points,
                   occluded=occluded)


class Augment:
    """`aug(sample, rng) -> FaceSample`: one random draw of the configured augmentations."""

    def __init__(self, cfg: AugmentConfig, input_size: int, layout: Layout = DEFAULT_LAYOUT) -> None:
        self.cfg = cfg
        self.input_size = int(input_size)
        self.layout = layout
        transforms: list = []
        if cfg.flip:
            transforms.append(A.HorizontalFlip(p=cfg.flip_p))
        if cfg.rotate:
            transforms.append(A.Rotate(limit=(-cfg.rotate_limit_deg, cfg.rotate_limit_deg),
                                       interpolation=cv2.INTER_LINEAR,
                                       border_mode=cv2.BORDER_CONSTANT, fill=0, p=cfg.rotate_p))
        if cfg.pad:
            transforms.append(A.CropAndPad(percent=(0.0, cfg.pad_max_fraction), keep_size=True,
                                           sample_independently=True, interpolation=cv2.INTER_LINEAR,
                                           border_mode=cv2.BORDER_CONSTANT, fill=0, p=cfg.pad_p))
        if cfg.color_jitter:
            transforms.append(A.ColorJitter(brightness=cfg.brightness, contrast=cfg.contrast,
                                            saturation=cfg.saturation, hue=cfg.hue,
                                            p=cfg.color_jitter_p))
        if cfg.blur:
            lo = min(0.3, cfg.blur_sigma_max)
            transforms.append(A.GaussianBlur(blur_limit=0, sigma_limit=(lo, cfg.blur_sigma_max),
                                             p=cfg.blur_p))
        self.compose: A.Compose | None = None
        if transforms:
            with warnings.catch_warnings():  # colour-only chains: "no transform to process" keypoints
                warnings.filterwarnings("ignore", message="Got processor for keypoints")
                self.compose = A.Compose(
                    transforms, strict=True, save_applied_params=True, seed=0,
                    keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
                )

    def __call__(self, sample: FaceSample, rng: np.random.Generator | int) -> FaceSample:
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        image, points, occluded = sample.image, sample.points, sample.occluded
        if self.compose is not None:
            self.compose.set_random_state(rng, random.Random(int(rng.integers(1 << 62))))
            out = self.compose(image=image, keypoints=points)
            image = out["image"]
            points = np.asarray(out["keypoints"], dtype=np.float32)[:, :2]
            flipped = False
            for name, params in out["applied_transforms"]:
                if name == "HorizontalFlip":
                    flipped = True
                elif name == "CropAndPad":
                    points = points + _pad_resize_offset(params)
            if flipped:
                perm = flip_index(self.layout, len(points))
                points = points[perm]
                if occluded is not None:
                    occluded = occluded[perm]
        if self.cfg.erase and rng.random() < self.cfg.erase_p:
            image = erase_in_box(image, points, rng, self.cfg.erase_max_fraction)
        if image.shape[:2] != (self.input_size, self.input_size):
            scale = np.array([self.input_size / image.shape[1], self.input_size / image.shape[0]])
            image = cv2.resize(image, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
            points = (points + 0.5) * scale - 0.5
        return replace(sample, image=np.ascontiguousarray(image, dtype=np.uint8),
                       points=np.ascontiguousarray(points, dtype=np.float32), occluded=occluded)


def _pad_resize_offset(params: dict) -> np.ndarray:
    """CropAndPad(keep_size=True) scales points by x * s; pixel centres need (x + 0.5) * s - 0.5.

    Pad is the last geometric transform in the chain, so the correction applies to final points.
    """
    rows, cols = params["shape"][:2]
    result_rows, result_cols = params["result_shape"][:2]
    scale = np.array([cols / result_cols, rows / result_rows], dtype=np.float32)
    return 0.5 * (scale - 1.0)


def erase_in_box(image: np.ndarray, points: np.ndarray, rng: np.random.Generator,
                 max_fraction: float) -> np.ndarray:
    """Fill one random rectangle inside the points' bounding box with a random colour.

    Each side is uniform in [ERASE_MIN_FRACTION, max_fraction] of the box side; the rectangle lies
    inside the box (clipped to the image). Points keep their coordinates: they are now occluded.
    """
    h, w = image.shape[:2]
    lo = np.clip(np.floor(points.min(axis=0)), 0, [w - 1, h - 1]).astype(int)
    hi = np.clip(np.ceil(points.max(axis=0)), 0, [w - 1, h - 1]).astype(int)
    box = np.maximum(hi - lo + 1, 1)
    fractions = rng.uniform(min(ERASE_MIN_FRACTION, max_fraction), max_fraction, size=2)
    size = np.maximum((fractions * box).round().astype(int), 1)
    start = lo + (rng.random(2) * (box - size + 1)).astype(int)
    colour = rng.integers(0, 256, size=3, dtype=np.uint8)
    out = image.copy()
    out[start[1]:start[1] + size[1], start[0]:start[0] + size[0]] = colour
    return out


def build_augment(cfg: AugmentConfig, input_size: int, layout: Layout = DEFAULT_LAYOUT) -> Augment:
    """The training augmentation of a protocol: `build_augment(protocol.augment, protocol.input_size,
    layout)`, the layout of the data it augments (its flip permutation)."""
    return Augment(cfg, input_size, layout)
