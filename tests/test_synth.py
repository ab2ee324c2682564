"""The synthetic face generator: determinism, points on the drawn features, pose/expression/occlusion
variety and the flags that report them."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from lightmark.data import constants as C
from lightmark.data import synth_face3d as f3d
from lightmark.data.synth import _LUMA, _SKIN, OCCLUDERS, SynthFaces, _expose, _soft_shadows
from lightmark.data.synth_preview import contact_sheet, draw_points
from lightmark.errors import LightmarkError


@pytest.fixture(scope="module")
def faces96():
    """80 faces at 96 px with their feature masks (rendered once for the module)."""
    gen = SynthFaces(size=96, seed=3)
    return [gen.render_with_masks(i) for i in range(80)]


@pytest.fixture(scope="module")
def poses():
    """Pose, expression and occlusion of 400 small faces."""
    gen = SynthFaces(size=32, seed=0)
    return [gen.render(i) for i in range(400)]


def test_same_seed_and_index_give_same_bytes_in_any_order():
    a = SynthFaces(size=64, seed=5)
    b = SynthFaces(size=64, seed=5)
    first = [a.render(i) for i in (0, 1, 2, 3)]
    later = [b.render(i) for i in (3, 2, 1, 0)][::-1]
    for x, y in zip(first, later):
        assert x.image.tobytes() == y.image.tobytes()
        assert x.points.tobytes() == y.points.tobytes()
        assert np.array_equal(x.occluded, y.occluded)
        assert x.meta == y.meta
    assert a.render(2).image.tobytes() == first[2].image.tobytes()  # repeat calls too


def test_different_index_or_seed_gives_a_different_face():
    gen = SynthFaces(size=64, seed=0)
    a, b = gen.render(0), gen.render(1)
    c = SynthFaces(size=64, seed=1).render(0)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 10
    assert np.abs(a.points - b.points).mean() > 1.0
    assert np.abs(a.image.astype(int) - c.image.astype(int)).mean() > 10


@pytest.mark.parametrize("size", [17, 64, 100, 384])
def test_any_size_and_sample_layout(size):
    s = SynthFaces(size=size, seed=0).render(7)
    assert s.image.shape == (size, size, 3) and s.image.dtype == np.uint8
    assert s.points.shape == (C.N_LANDMARKS, 2) and s.points.dtype == np.float32
    assert s.occluded.shape == (C.N_LANDMARKS,) and s.occluded.dtype == bool
    assert set(s.meta) >= {"yaw", "pitch", "roll", "expression", "occluder"}
    assert s.meta["occluder"] in OCCLUDERS
    assert s.name == "synth-0-0000007"


def test_points_scale_with_the_image_size():
    """The same face at two sizes: points map by the pixel-centre convention (x+0.5)*k-0.5."""
    small, big = SynthFaces(size=64, seed=2).render(4), SynthFaces(size=256, seed=2).render(4)
    np.testing.assert_allclose((small.points + 0.5) * 4 - 0.5, big.points, atol=1e-3)


def test_too_small_size_is_a_user_error():
    with pytest.raises(LightmarkError, match="size"):
        SynthFaces(size=8)


def _dilate(mask: np.ndarray, k: int = 3) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


def _hits(mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
    xy = np.round(pts).astype(int)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < mask.shape[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < mask.shape[0])
    out = np.zeros(len(pts), bool)
    out[ok] = mask[xy[ok, 1], xy[ok, 0]]
    return out


def _near_frontal(sample) -> bool:
    return abs(sample.meta["yaw"]) < 30 and abs(sample.meta["pitch"]) < 25


def test_eye_points_lie_on_the_drawn_eyes(faces96):
    checked = 0
    for sample, masks in faces96:
        if not _near_frontal(sample):
            continue
        for key, idx in (("eye_r", C.RIGHT_EYE), ("eye_l", C.LEFT_EYE)):
            assert key in masks, f"{sample.name}: a near-frontal face must draw both eyes"
            hit = _hits(_dilate(masks[key]), sample.points[list(idx)])
            assert hit.all(), f"{sample.name}: eye points {np.array(list(idx))[~hit]} off the {key} mask"
            # ... and not on the other eye.
            other = masks["eye_l" if key == "eye_r" else "eye_r"]
            assert not _hits(other, sample.points[list(idx)]).any()
        checked += 1
    assert checked >= 15


def test_mouth_and_brow_points_lie_on_the_lips_and_brows(faces96):
    checked = 0
    for sample, masks in faces96:
        if not _near_frontal(sample):
            continue
        lips = _dilate(masks["lips"])
        for i in (*C.OUTER_LIPS, *C.INNER_LIPS):
            assert _hits(lips, sample.points[[i]])[0], f"{sample.name}: point {i} off the lips"
        brows = _dilate(masks["brows"])
        assert _hits(brows, sample.points[C.RIGHT_BROW.start: C.LEFT_BROW.stop]).all(), sample.name
        # The eye corners are NOT on the lips, the mouth corners not in the eyes.
        assert not _hits(masks["lips"], sample.points[list(C.OUTER_EYE_CORNERS)]).any()
        assert not _hits(masks["eye_r"] | masks["eye_l"], sample.points[[48, 54]]).any()
        checked += 1
    assert checked >= 15


def test_nose_and_jaw_points_lie_on_the_head(faces96):
    checked = 0
    for sample, masks in faces96:
        if not _near_frontal(sample):
            continue
        head = _dilate(masks["head"] | masks["nose"], 5)
        assert _hits(head, sample.points[27:36]).all(), sample.name
        # Visible jaw points sit on the head outline: inside the dilated head, outside the eroded one.
        jaw = sample.points[:17][~sample.occluded[:17]]
        assert _hits(head, jaw).mean() >= 0.9, sample.name
        checked += 1
    assert checked >= 15


def test_ibug_order_on_upright_faces(faces96):
    checked = 0
    for sample, _ in faces96:
        m = sample.meta
        if abs(m["yaw"]) > 30 or abs(m["roll"]) > 15 or abs(m["pitch"]) > 20:
            continue
        checked += 1
        p = sample.points
        assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]  # subject's right eye is on the image left
        assert p[17, 0] < p[21, 0] < p[22, 0] < p[26, 0]
        assert p[0, 0] < p[8, 0] < p[16, 0]
        assert p[48, 0] < p[51, 0] < p[54, 0] and p[31, 0] < p[33, 0] < p[35, 0]
        assert p[19, 1] < p[37, 1] < p[30, 1] < p[51, 1] < p[57, 1] < p[8, 1]  # top to bottom
        assert p[27, 1] < p[28, 1] < p[29, 1] < p[30, 1]
    assert checked >= 10


def test_flip_permutation_matches_the_geometry(poses):
    """Mirroring a frontal face maps each point onto its FLIP_PERMUTATION partner (roughly)."""
    perm = np.array(C.FLIP_PERMUTATION)
    checked = 0
    for sample in poses:
        m = sample.meta
        if abs(m["yaw"]) > 6 or abs(m["roll"]) > 4 or abs(m["pitch"]) > 10 or m["expression"]["wink"]:
            continue
        checked += 1
        p = sample.points.astype(np.float64)
        mirrored = p.copy()
        axis = np.mean(p[:, 0] + p[perm, 0]) / 2  # the best vertical mirror axis
        mirrored[:, 0] = 2 * axis - p[:, 0]
        err = np.linalg.norm(mirrored[perm] - p, axis=1)
        face = np.linalg.norm(p[16] - p[0])
        assert np.median(err) < 0.06 * face, sample.name
    assert checked >= 3


def test_poses_span_the_required_ranges(poses):
    yaw = np.array([s.meta["yaw"] for s in poses])
    pitch = np.array([s.meta["pitch"] for s in poses])
    roll = np.array([s.meta["roll"] for s in poses])
    assert yaw.min() < -60 and yaw.max() > 60
    assert pitch.min() < -27 and pitch.max() > 27 and np.abs(pitch).max() <= 30
    assert roll.min() < -27 and roll.max() > 27 and np.abs(roll).max() <= 30
    assert 0.25 < np.mean(np.abs(yaw) < 15) < 0.6  # plenty of near-frontal faces too


def test_expressions_and_occluders_all_occur(poses):
    flags = {k: np.mean([s.meta["expression"][k] for s in poses]) for k in poses[0].meta["expression"]}
    for key in ("mouth_open", "smile", "eyes_closed", "brows_raised"):
        assert 0.05 < flags[key] < 0.6, (key, flags[key])
    kinds = {s.meta["occluder"] for s in poses}
    assert kinds == set(OCCLUDERS)


def test_expressions_change_the_points():
    gen = SynthFaces(size=128, seed=1)
    samples = [gen.render(i) for i in range(120)]
    face = np.array([np.linalg.norm(s.points[16] - s.points[0]) + 1e-6 for s in samples])
    gap = np.array([np.linalg.norm(s.points[66] - s.points[62]) for s in samples]) / face
    lids = np.array([np.linalg.norm(s.points[[37, 38, 43, 44]] - s.points[[41, 40, 47, 46]], axis=1).mean()
                     for s in samples]) / face
    open_mouth = np.array([s.meta["expression"]["mouth_open"] for s in samples])
    closed_eyes = np.array([s.meta["expression"]["eyes_closed"] for s in samples])
    assert gap[~open_mouth].max() < 1e-3  # a closed mouth: inner lips touch
    assert np.median(gap[open_mouth]) > 0.05
    assert lids[closed_eyes].max() < 0.02 < np.median(lids[~closed_eyes])


def test_points_stay_inside_the_image_for_most_faces(poses):
    pts = np.stack([s.points for s in poses])
    inside = ((pts >= -0.5) & (pts <= 31.5)).all(axis=2)
    assert inside.mean() > 0.97
    assert inside.all(axis=1).mean() > 0.85
    extent = (pts.max(1) - pts.min(1)).max(1) / 32
    assert 0.45 < extent.min() and extent.max() < 0.8  # the face fills 50-75 % of the image


def test_occluder_flags_match_what_the_occluder_covers(faces96):
    seen = 0
    for sample, masks in faces96:
        if "occluder" not in masks:
            assert sample.meta["occluder"] in ("none", "glasses")
            continue
        covered = _hits(masks["occluder"], sample.points)
        assert sample.occluded[covered].all(), sample.name  # every covered point is flagged
        seen += int(covered.any())
    assert seen >= 3


def test_sunglasses_and_masks_hide_the_right_points():
    gen = SynthFaces(size=128, seed=0)
    found = set()
    for i in range(400):
        s = gen.render(i)
        kind = s.meta["occluder"]
        if kind in found or abs(s.meta["yaw"]) > 20:
            continue
        if kind == "sunglasses":
            assert s.occluded[36:48].mean() > 0.8, s.name
            assert not s.occluded[48:68].any(), s.name
            found.add(kind)
        elif kind == "mask":
            assert s.occluded[48:68].all(), s.name
            assert not s.occluded[17:27].any(), s.name
            found.add(kind)
        if found == {"sunglasses", "mask"}:
            break
    assert found == {"sunglasses", "mask"}


def test_turned_faces_hide_the_far_side(poses):
    # Not looking far up or down as well: from 20+ degrees below, the points of the far jaw next
    # to the chin come into view.
    turned = [s for s in poses if abs(s.meta["yaw"]) > 50 and abs(s.meta["pitch"]) <= 20
              and s.meta["occluder"] == "none"]
    assert len(turned) >= 5
    for s in turned:
        # yaw > 0 turns the nose to the image's right: the image-right side (jaw 11..16) goes away.
        far = slice(11, 17) if s.meta["yaw"] > 0 else slice(0, 6)
        near = slice(0, 6) if s.meta["yaw"] > 0 else slice(11, 17)
        assert s.occluded[far].mean() >= 0.8, s.name
        assert not s.occluded[near].any(), s.name
    frontal = [s for s in poses if abs(s.meta["yaw"]) < 5 and abs(s.meta["pitch"]) < 10
               and s.meta["occluder"] == "none"]
    assert frontal and all(not s.occluded.any() for s in frontal)


def test_contact_sheet_draws_points_in_part_colours():
    gen = SynthFaces(size=64, seed=0)
    samples = [gen.render(i) for i in range(5)]
    sheet = contact_sheet(samples, cols=3, gap=2)
    assert sheet.shape == (2 * 66 + 2, 3 * 66 + 2, 3)
    drawn = draw_points(np.zeros((64, 64, 3), np.uint8), samples[0].points)
    assert (drawn.sum(-1) > 0).mean() > 0.05  # the dots are there
    nan = samples[0].points.copy()
    nan[3] = np.nan
    draw_points(samples[0].image, nan)  # non-finite points are skipped, not a crash


def test_render_with_masks_draws_the_same_face():
    gen = SynthFaces(size=64, seed=9)
    for i in range(5):
        plain = gen.render(i)
        sample, masks = gen.render_with_masks(i)
        assert plain.image.tobytes() == sample.image.tobytes() and plain.meta == sample.meta
        assert {"head", "lips", "nose"} <= set(masks)
        assert all(m.dtype == bool and m.shape == (64, 64) for m in masks.values())


def test_surface_normals_match_finite_differences():
    """The analytic normal of the head surface equals the numerical gradient of its field."""

    rng = np.random.default_rng(0)
    for _ in range(3):
        ident = f3d.Identity.sample(rng)
        p = np.stack([rng.uniform(-1, 1, 300), rng.uniform(-1.4, 1.3, 300), rng.uniform(-1, 1.5, 300)], 1)

        def field(q, ident=ident):
            x, y, z = q[..., 0], q[..., 1], q[..., 2]
            return ((x / f3d._width(ident, y)) ** 2 + ((y - f3d.HC) / f3d.HH) ** 2
                    + ((z - f3d._shear(ident, y)) / ident.depth) ** 2)

        grad = np.stack([field(p + e) - field(p - e) for e in np.eye(3) * 1e-6], -1)
        grad /= np.linalg.norm(grad, axis=-1, keepdims=True)
        np.testing.assert_allclose(f3d.surface_normal(ident, p), grad, atol=1e-6)
        # Points placed on the face lie on the surface: the field is 1 there.
        x, y = rng.uniform(-0.5, 0.5, 50), rng.uniform(-0.6, 0.9, 50)
        on = np.stack([x, y, f3d.surface_z(ident, x, y)], 1)
        np.testing.assert_allclose(field(on), 1.0, atol=1e-9)


def test_generator_pickles_for_dataloader_workers():
    gen = SynthFaces(size=48, seed=3)
    clone = pickle.loads(pickle.dumps(gen))
    assert clone.render(5).image.tobytes() == gen.render(5).image.tobytes()
    assert repr(clone) == "SynthFaces(size=48, seed=3)"


# ---------------------------------------------------------------- generator v2: what a photo shows
def test_exposure_lifts_dark_skins_but_keeps_the_order_of_the_tones():
    """A camera exposes a dark face brighter; it does not repaint it lighter than a light one."""
    exposed = [_expose(skin, np.random.default_rng(7)) for skin in _SKIN]  # one exposure jitter for all
    luma = np.array([float(c @ _LUMA) for c in exposed])
    assert np.all(np.diff(luma) < 0), luma  # _SKIN runs from the lightest to the darkest
    assert 140 <= luma[-1] <= 180 and 195 <= luma[0] <= 245, luma
    for raw, out in zip(_SKIN, exposed):  # the hue stays: one gain for all three channels
        assert np.allclose(out / out.sum(), raw / raw.sum(), atol=0.02)


def test_brows_are_much_darker_than_the_skin_around_them(faces96):
    """Light brows on shaded skin were the same grey as the skin, and a photo-trained detector
    missed the face; v2 paints them at most half as bright as the lit skin."""
    checked = 0
    for sample, masks in faces96:
        if not _near_frontal(sample) or "brows" not in masks:
            continue
        grey = cv2.cvtColor(sample.image, cv2.COLOR_RGB2GRAY).astype(np.float64)
        features = masks["brows"] | masks["eye_r"] | masks["eye_l"] | masks["lips"] | masks["nose"]
        skin = masks["head"] & ~_dilate(features, 5)
        ratio = grey[masks["brows"]].mean() / grey[skin].mean()
        assert ratio < 0.7, f"{sample.name}: brows at {ratio:.2f} of the skin's brightness"
        checked += 1
    assert checked >= 15


def test_soft_shadows_darken_the_eye_sockets_and_nothing_far_from_the_face():
    gen = SynthFaces(size=128, seed=0)
    face = next(s for s in (gen.render(i) for i in range(50)) if _near_frontal(s))
    grey = np.full((128, 128, 3), 200, np.uint8)
    _soft_shadows(np.random.default_rng(0), grey, face.points)
    lm = face.points
    for eye, brow in ((slice(36, 42), slice(17, 22)), (slice(42, 48), slice(22, 27))):
        x, y = np.round(lm[eye].mean(0) * 0.65 + lm[brow].mean(0) * 0.35).astype(int)
        assert grey[y, x, 0] <= 200 * 0.85, "the socket between brow and eye is in shadow"
    x, y = np.round(lm[33] + (lm[33] - lm[30]) * 0.25).astype(int)
    assert grey[y, x, 0] < 200, "under the nose is in shadow"
    cheek = lm[2] * 0.7 + lm[31] * 0.3
    assert grey[int(cheek[1]), int(cheek[0]), 0] >= 195, "the cheek stays lit"
    assert (grey[:4] == 200).all() and (grey[:, :4] == 200).all(), "no shadow far from the face"
