"""Embedded synthetic faces: the default data source, so every command runs with no download.

`SynthFaces(size, seed).render(index)` draws one face with its 68 iBUG/300W points. A face is a
posed 3D head (`synth_face3d`) projected with perspective and painted with OpenCV at the requested
size (sub-pixel coordinates through cv2's `shift`). The points are sampled from the same curves
the painter fills, so they lie on the drawn features. Each render derives its own random generator
from (seed, index): the same pair gives the same bytes in any call order, in any process.

Variety: pose (yaw +-70, pitch +-30, roll +-30 degrees), identity, expression, skin tone and light
direction, hair, ears, neck and clothes, cluttered backgrounds, occluders (hand, glasses,
sunglasses, mask, random shapes), blur, noise and JPEG artefacts. Points hidden by the head itself,
the nose or an occluder keep their projected position and are flagged in `FaceSample.occluded`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lightmark.data import synth_face3d as f3d
from lightmark.data.constants import N_LANDMARKS
from lightmark.data.sample import FaceSample
from lightmark.errors import ConfigError

SHIFT = 4  # cv2 fixed-point bits: coordinates are drawn with 1/16 pixel precision
ONE = 1 << SHIFT
AA = cv2.LINE_AA
_LEVELS = 10  # shade levels per unit brightness of the head (the head is blurred afterwards)
# Latitude and |longitude| at the centre of each head-mesh quad (read-only constants).
_QUAD_V_FLAT = np.repeat((f3d._MESH_V[:-1, 0] + f3d._MESH_V[1:, 0]) / 2, f3d.N_U)
_QUAD_ABS_U_FLAT = np.tile(np.abs((f3d._MESH_U[0, :-1] + f3d._MESH_U[0, 1:]) / 2), f3d.N_V)


def _quad_index() -> np.ndarray:
    """(N_V*N_U, 4) flat vertex indices of each head-mesh quad, corners in drawing order."""
    row, col = np.meshgrid(np.arange(f3d.N_V), np.arange(f3d.N_U), indexing="ij")
    w = f3d.N_U + 1
    base = (row * w + col).reshape(-1)
    return np.stack([base, base + 1, base + w + 1, base + w], axis=1)


_QUAD_IDX = _quad_index()

# The version of the pictures and labels SynthFaces draws. Raise it with any change that alters a
# rendered face: candidate keys and tabular benchmarks carry it, so results of two generators never mix.
GENERATOR_VERSION = 2
# v2 (what a photo-trained detector needs to see a face; docs/data.md "How realistic"): a camera
# exposure per skin tone, a neutral head pose that faces the camera, a neck in the jaw's shadow,
# mostly frontal light, soft shadows in the sockets and under the nose and lip, darker brows,
# thicker lashes, shaded sclera, darker irises and an eyelid crease.

# v1's head at pitch 0 looked about 10 degrees down (its chin sits far behind the brow), so a
# photo-trained detector found the faces best at pitch -10..-20: v2 turns the head up by this much,
# and the `pitch` in the meta is measured from the pose that faces the camera.
NEUTRAL_PITCH_DEG = -10.0
_LUMA = np.array([0.299, 0.587, 0.114])

OCCLUDERS = ("none", "hand", "glasses", "sunglasses", "mask", "shape")
_OCCLUDER_P = np.array([0.6, 0.1, 0.08, 0.06, 0.06, 0.1])

_SKIN = np.array([[245, 214, 190], [232, 185, 152], [212, 152, 115], [182, 122, 86],
                  [140, 92, 62], [98, 64, 44], [70, 46, 34]], dtype=np.float64)
_HAIR = np.array([[22, 18, 16], [58, 38, 26], [96, 62, 38], [170, 130, 80], [200, 170, 110],
                  [128, 58, 32], [150, 150, 150], [225, 225, 220]], dtype=np.float64)
_HAIR_P = np.array([0.25, 0.22, 0.15, 0.09, 0.07, 0.07, 0.1, 0.05])
_IRIS = np.array([[60, 38, 25], [100, 70, 40], [60, 100, 140], [80, 110, 70], [30, 25, 22]], dtype=np.float64)


def _fx(points: np.ndarray) -> np.ndarray:
    """Image points (..., 2) float -> cv2 fixed-point int32."""
    return np.round(points * ONE).astype(np.int32)


def _col(c: np.ndarray | tuple) -> tuple[int, int, int]:
    r, g, b = int(c[0]), int(c[1]), int(c[2])
    return (0 if r < 0 else 255 if r > 255 else r, 0 if g < 0 else 255 if g > 255 else g,
            0 if b < 0 else 255 if b > 255 else b)


def _rand_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


@dataclass
class _Scene:
    """Everything sampled for one face before painting (kept for meta and masks)."""

    ident: f3d.Identity
    expr: f3d.Expression
    yaw: float
    pitch: float
    roll: float
    camera: f3d.Camera
    skin: np.ndarray
    hair: np.ndarray
    light: np.ndarray
    ambient: float
    bald: bool
    long_hair: bool


class SynthFaces:
    """Deterministic synthetic faces: `render(index)` depends only on (size, seed, index)."""

    def __init__(self, size: int = 384, seed: int = 0) -> None:
        if int(size) < 16:
            raise ConfigError(f"synthetic face size must be >= 16 pixels, got {size}")
        self.size = int(size)
        self.seed = int(seed)

    def __repr__(self) -> str:
        return f"SynthFaces(size={self.size}, seed={self.seed})"

    def render(self, index: int) -> FaceSample:
        sample, _ = self._render(int(index), masks=False)
        return sample

    def render_with_masks(self, index: int) -> tuple[FaceSample, dict[str, np.ndarray]]:
        """The same sample plus boolean masks of the drawn features (eye_r, eye_l, lips, brows,
        nose, head, occluder): for tests that check the points lie on what was drawn."""
        return self._render(int(index), masks=True)

    # ------------------------------------------------------------------ sampling
    def _scene(self, rng: np.random.Generator) -> _Scene:
        ident = f3d.Identity.sample(rng)
        expr = f3d.Expression.sample(rng)
        if rng.random() < 0.5:
            yaw = rng.uniform(-70, 70)
        else:
            yaw = min(max(rng.normal(0, 20), -70.0), 70.0)
        pitch = rng.uniform(-30, 30) if rng.random() < 0.4 else min(max(rng.normal(0, 10), -30.0), 30.0)
        roll = rng.uniform(-30, 30) if rng.random() < 0.4 else min(max(rng.normal(0, 8), -30.0), 30.0)
        distance = rng.uniform(5.0, 14.0)
        camera = f3d.Camera(rot=f3d.rotation(yaw, pitch + NEUTRAL_PITCH_DEG, roll), distance=distance,
                            pivot=np.array([0.0, 0.15, 0.0]))
        k = rng.uniform(0, len(_SKIN) - 1)
        lo = int(k)
        skin = _SKIN[lo] * (1 - (k - lo)) + _SKIN[min(lo + 1, len(_SKIN) - 1)] * (k - lo)
        skin = skin * rng.uniform(0.92, 1.08, size=3)
        skin = _expose(skin, rng)
        hair = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P)] * rng.uniform(0.8, 1.2, size=3)
        if rng.random() < 0.25:  # light from anywhere in front
            light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.6), rng.uniform(0.4, 1.3)])
        else:  # the usual portrait: from the front, at most a little to the side, from above
            light = np.array([rng.uniform(-0.7, 0.7), rng.uniform(-1, 0.3), rng.uniform(0.6, 1.3)])
        light /= np.linalg.norm(light)
        return _Scene(ident, expr, float(yaw), float(pitch), float(roll), camera, skin, hair, light,
                      ambient=rng.uniform(0.35, 0.6), bald=rng.random() < 0.08,
                      long_hair=rng.random() < 0.35)

    # ------------------------------------------------------------------ painting
    def _render(self, index: int, masks: bool) -> tuple[FaceSample, dict[str, np.ndarray]]:
        rng = np.random.default_rng([self.seed, index])
        S = self.size
        sc = self._scene(rng)
        cam = sc.camera
        geo = f3d.build_face(sc.ident, sc.expr, rng)
        mesh = f3d.head_mesh(sc.ident, sc.expr)

        # Project everything in one go, then place the face in the image.
        names = list(geo.parts)
        chunks = [geo.landmarks, mesh.reshape(-1, 3)] + [geo.parts[n] for n in names]
        sizes = np.cumsum([0] + [len(c) for c in chunks])
        all_cam = cam.to_camera(np.concatenate(chunks))
        all_2d = cam.project(all_cam)
        lm2 = all_2d[: sizes[1]]
        lo_, hi_ = lm2.min(0), lm2.max(0)
        extent = max(hi_[0] - lo_[0], hi_[1] - lo_[1], 0.8)
        frac = rng.uniform(0.5, 0.75)
        scale = frac * S / extent
        box = (hi_ - lo_) * scale
        slack = np.maximum(S - box, 0) / 2
        centre = (S - 1) / 2 + rng.uniform(-0.8, 0.8, size=2) * slack * 0.85  # pixel centres
        img2d = (all_2d - (lo_ + hi_) / 2) * scale + centre
        lm = img2d[: sizes[1]]
        mesh2 = img2d[sizes[1]: sizes[2]].reshape(mesh.shape[0], mesh.shape[1], 2)
        mesh_cam = all_cam[sizes[1]: sizes[2]].reshape(mesh.shape)
        part2 = {n: img2d[sizes[2 + i]: sizes[3 + i]] for i, n in enumerate(names)}
        partc = {n: all_cam[sizes[2 + i]: sizes[3 + i]] for i, n in enumerate(names)}
        # How much each feature point faces the camera (one normal computation for all parts).
        parts_frontal = np.concatenate([geo.parts[n] for n in names])
        cos = cam.facing(all_cam[sizes[2]:], f3d.surface_normal(sc.ident, parts_frontal))
        pcos = {n: cos[sizes[2 + i] - sizes[2]: sizes[3 + i] - sizes[2]] for i, n in enumerate(names)}
        lw = max(scale * 0.012, 1.0)  # a thin line: ~1 % of a face width

        img = self._background(rng, S)
        mk: dict[str, np.ndarray] = {}
        self._body(rng, img, sc, mesh2, lm, scale)
        ears_cos = {side: float(pcos[f"ear{side}"].mean()) for side in (-1, 1)}
        for side in (-1, 1):
            if ears_cos[side] <= 0.05:
                self._ear(img, sc, part2[f"ear{side}"], ears_cos[side])
        # The head, its faceted shading smoothed inside its own outline (the box around it keeps
        # the sharp background), before the sharp features go on.
        x0, y0 = np.maximum(np.floor(mesh2.reshape(-1, 2).min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(mesh2.reshape(-1, 2).max(0)).astype(int) + 2, S)
        before = img[y0:y1, x0:x1].copy()
        hull, base = self._head(img, sc, mesh2, mesh_cam)
        k = int(max(3, (scale * 0.2) // 2 * 2 + 1))
        if x1 > x0 and y1 > y0:
            roi = img[y0:y1, x0:x1]
            inside = np.zeros(roi.shape[:2], np.uint8)
            cv2.fillPoly(inside, [_fx(hull - [x0, y0])], 255, AA, SHIFT)
            padded = np.empty_like(roi)
            padded[:] = base  # no background bleeds into the face edge
            cv2.copyTo(roi, inside, padded)
            # Two box filters (a tent) at half resolution: cheap, and the result is smooth anyway.
            h, w = padded.shape[:2]
            small = cv2.resize(padded, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_LINEAR)
            half = (k // 2) | 1
            small = cv2.blur(cv2.blur(small, (half, half)), (half, half))
            smooth = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
            # Inside: the smooth head; outside: what was there; blend only the anti-aliased rim.
            rim = np.flatnonzero((inside > 0) & (inside < 255))
            alpha = (inside.reshape(-1)[rim].astype(np.float32) * np.float32(1 / 255))[:, None]
            mixed = smooth.reshape(-1, 3)[rim] * alpha + before.reshape(-1, 3)[rim] * (1 - alpha)
            cv2.copyTo(smooth, inside, before)
            before.reshape(-1, 3)[rim] = (mixed + 0.5).astype(np.uint8)
            roi[:] = before
            if masks:
                mk["head"] = np.zeros((S, S), bool)
                mk["head"][y0:y1, x0:x1] = inside > 127
        for side in (-1, 1):
            if ears_cos[side] > 0.05:
                self._ear(img, sc, part2[f"ear{side}"], ears_cos[side])

        facing = cam.facing(all_cam[: sizes[1]], geo.normals)
        self._brows(img, sc, part2, pcos, mk if masks else None, lw)
        for side, key in ((-1, "eye_r"), (1, "eye_l")):
            self._eye(rng, img, sc, side, part2, pcos, mk if masks else None, key, lw)
        self._mouth(rng, img, sc, part2, mk if masks else None, lw)
        nose_mask = self._nose(img, sc, part2, partc, pcos, cam, lw)
        if masks:
            mk["nose"] = nose_mask
        _soft_shadows(rng, img, lm)

        occluded = facing < 0.0
        on_nose = np.ones(N_LANDMARKS, dtype=bool)
        on_nose[27:36] = False
        occluded |= on_nose & _sample_mask(nose_mask, lm)
        kind = OCCLUDERS[rng.choice(len(OCCLUDERS), p=_OCCLUDER_P)]
        if kind != "none":
            occ = np.zeros((S, S), np.uint8)
            self._occluder(rng, img, occ, kind, lm, part2, scale, sc)
            covered = _sample_mask(occ, lm)
            occluded |= covered
            if masks:
                mk["occluder"] = occ > 0
        self._post(rng, img, scale)

        meta = {
            "yaw": round(sc.yaw, 3), "pitch": round(sc.pitch, 3), "roll": round(sc.roll, 3),
            "expression": sc.expr.flags(), "occluder": kind,
            "n_occluded": int(occluded.sum()), "face_fraction": round(float(frac), 3),
            "camera_distance": round(float(cam.distance), 3),
        }
        sample = FaceSample(image=img, points=lm.astype(np.float32), name=f"synth-{self.seed}-{index:07d}",
                            occluded=occluded, meta=meta)
        return sample, {k: v.astype(bool) for k, v in mk.items()}

    # ------------------------------------------------------------------ layers
    @staticmethod
    def _background(rng: np.random.Generator, S: int) -> np.ndarray:
        grid = 2 if rng.random() < 0.5 else int(rng.integers(3, 7))  # a gradient or smooth blotches
        corners = rng.integers(10, 246, size=(grid, grid, 3), dtype=np.uint8)
        img = cv2.resize(corners, (S, S), interpolation=cv2.INTER_LINEAR)
        n = int(rng.integers(2, 14))
        for _ in range(n):
            c = _col(_rand_colour(rng))
            kind = rng.integers(0, 4)
            p = _fx(rng.uniform(-0.1, 1.1, size=(2, 2)) * S)
            if kind == 0:
                cv2.rectangle(img, tuple(p[0]), tuple(p[1]), c, -1, AA, SHIFT)
            elif kind == 1:
                r = int(rng.uniform(0.02, 0.25) * S * ONE)
                cv2.circle(img, tuple(p[0]), r, c, -1, AA, SHIFT)
            elif kind == 2:
                t = int(max(1, rng.uniform(0.003, 0.03) * S))
                cv2.line(img, tuple(p[0]), tuple(p[1]), c, t, AA, SHIFT)
            else:
                poly = _fx(rng.uniform(-0.1, 1.1, size=(int(rng.integers(3, 6)), 2)) * S)
                cv2.fillPoly(img, [poly], c, AA, SHIFT)
        return img

    @staticmethod
    def _body(rng, img, sc: _Scene, mesh2, lm, scale) -> None:
        S = img.shape[0]
        # Neck: from under the jaw straight down (the body does not turn with the head).
        chin = lm[8]
        jaw_l, jaw_r = lm[4], lm[12]
        half = np.linalg.norm(jaw_r - jaw_l) * 0.42
        mid = (jaw_l + jaw_r) / 2 * 0.5 + chin * 0.5
        down = np.array([0.0, 1.0])
        neck = np.array([mid - [half, 0.1 * scale], mid + [half, -0.1 * scale],
                         mid + [half * 1.05, 0] + down * scale * 0.9, mid - [half * 1.05, 0] + down * scale * 0.9])
        cloth = _rand_colour(rng)
        top = mid[1] + scale * rng.uniform(0.6, 0.9)
        sh = half * rng.uniform(2.6, 3.6)
        shoulders = np.array([[mid[0] - half * 1.1, top - 0.05 * scale], [mid[0] + half * 1.1, top - 0.05 * scale],
                              [mid[0] + sh, top + 0.35 * scale], [mid[0] + sh * 1.1, S * 2.0],
                              [mid[0] - sh * 1.1, S * 2.0], [mid[0] - sh, top + 0.35 * scale]])
        if sc.long_hair and not sc.bald:
            outline = mesh2[: mesh2.shape[0] * 2 // 3].reshape(-1, 2)
            hull = cv2.convexHull(outline.astype(np.float32)).reshape(-1, 2)
            c = hull.mean(0)
            hull = (hull - c) * 1.12 + c
            low = hull[:, 1].max() + scale * rng.uniform(0.3, 1.0)
            left, right = hull[:, 0].min(), hull[:, 0].max()
            drape = np.array([[right, hull[:, 1].mean()], [right + 0.1 * scale, low], [left - 0.1 * scale, low],
                              [left, hull[:, 1].mean()]])
            cv2.fillPoly(img, [_fx(hull), _fx(drape)], _col(sc.hair * 0.8), AA, SHIFT)
        cv2.fillPoly(img, [_fx(neck)], _col(sc.skin * sc.ambient * 0.8), AA, SHIFT)  # in the jaw's shadow
        cv2.fillPoly(img, [_fx(shoulders)], _col(cloth), AA, SHIFT)

    @staticmethod
    def _ear(img, sc: _Scene, ear2, cos) -> None:
        shade = sc.ambient + (1 - sc.ambient) * 0.6 * max(cos, 0.2)
        cv2.fillPoly(img, [_fx(ear2)], _col(sc.skin * shade * 0.95), AA, SHIFT)
        c = ear2.mean(0)
        cv2.fillPoly(img, [_fx((ear2 - c) * 0.55 + c)], _col(sc.skin * shade * 0.75), AA, SHIFT)

    @staticmethod
    def _head(img, sc: _Scene, mesh2, mesh_cam) -> tuple[np.ndarray, tuple[int, int, int]]:
        """Lambert-shaded quads of the head, grouped by shade level so cv2 fills each group in one call."""
        flat = mesh_cam.reshape(-1, 3)
        a, b, c, d = (flat[_QUAD_IDX[:, k]] for k in range(4))
        e, f = c - a, b - d  # the quad's diagonals; their cross product is its normal
        n = np.empty_like(e)
        n[:, 0] = e[:, 1] * f[:, 2] - e[:, 2] * f[:, 1]
        n[:, 1] = e[:, 2] * f[:, 0] - e[:, 0] * f[:, 2]
        n[:, 2] = e[:, 0] * f[:, 1] - e[:, 1] * f[:, 0]
        n /= np.maximum(np.sqrt(np.sum(n * n, axis=1, keepdims=True)), 1e-12)
        centre = (a + b + c + d) * 0.25
        out = centre - (np.array([0, f3d.HC, 0]) - sc.camera.pivot) @ sc.camera.rot.T
        n *= np.sign(np.sum(n * out, axis=1, keepdims=True) + 1e-12)  # outwards (poles are degenerate)
        view = np.array([0, 0, sc.camera.distance]) - centre
        visible = np.flatnonzero(np.sum(n[:, :] * view, axis=1) > 0)
        lam = np.maximum(n[visible] @ sc.light, 0)
        shade = sc.ambient + (1 - sc.ambient) * 0.85 * lam + 0.12 * lam ** 12
        levels = np.minimum(np.round(shade * _LEVELS), 2 * _LEVELS).astype(np.int64)
        # Hair: above the hairline everywhere, the back of the head above the ears, the temples.
        v, au = _QUAD_V_FLAT[visible], _QUAD_ABS_U_FLAT[visible]
        hair = ((v < sc.ident.hairline) | ((au > 0.55 * np.pi) & (v < 0.35))
                | ((au > sc.ident.hair_side) & (v < -0.05)))
        if sc.bald:
            hair[:] = False
        quads = mesh2.reshape(-1, 2)[_QUAD_IDX[visible]]
        hull = cv2.convexHull(quads.reshape(-1, 2).astype(np.float32)).reshape(-1, 2)
        base = _col((sc.hair if hair.mean() > 0.5 else sc.skin) * min(sc.ambient * 1.25, 1.0))
        cv2.fillPoly(img, [_fx(hull)], base, cv2.LINE_8, SHIFT)
        # One fillPoly per (material, shade level): sort the visible quads by that key.
        key = levels + hair * (4 * _LEVELS)
        order = np.argsort(key, kind="stable")
        key, group_quads = key[order], _fx(quads[order])
        cuts = np.flatnonzero(np.diff(key)) + 1
        starts = [0, *cuts.tolist()]
        ends = [*cuts.tolist(), len(key)]
        for i, j in zip(starts, ends):
            k = int(key[i])
            colour = sc.hair if k >= 4 * _LEVELS else sc.skin
            cv2.fillPoly(img, group_quads[i:j], _col(colour * ((k % (4 * _LEVELS)) / _LEVELS)), cv2.LINE_8, SHIFT)
        return hull, base

    @staticmethod
    def _brows(img, sc: _Scene, part2, pcos, mk, lw) -> None:
        # Lit like the skin around them, and at most half as bright: light brows on a shaded face
        # were the same grey as the skin.
        lit = sc.ambient + 0.3
        skin_luma = float(sc.skin @ _LUMA) * lit
        brow = (sc.hair * 0.7 + sc.skin * 0.15) * lit if not sc.bald else sc.skin * lit * 0.6
        colour = _col(brow * min(1.0, 0.5 * skin_luma / max(float(brow @ _LUMA), 1.0)))
        for side in (-1, 1):
            top, bot = part2[f"brow{side}_top"], part2[f"brow{side}_bot"]
            if pcos[f"brow{side}_top"].mean() < 0.0:
                continue
            poly = _fx(np.concatenate([top, bot[::-1]]))
            cv2.fillPoly(img, [poly], colour, AA, SHIFT)
            if mk is not None:
                m = mk.setdefault("brows", np.zeros(img.shape[:2], np.uint8))
                cv2.fillPoly(m, [poly], 1, cv2.LINE_8, SHIFT)

    @staticmethod
    def _eye(rng, img, sc: _Scene, side, part2, pcos, mk, key, lw) -> None:
        up, lo = part2[f"eye{side}_up"], part2[f"eye{side}_lo"]
        if pcos[f"eye{side}_up"].mean() < -0.05:
            return
        skin_dark = sc.skin * sc.ambient * 0.9
        lid = _fx(np.concatenate([up, lo[::-1]]))
        opened = np.abs(up[:, 1] - lo[:, 1]).max() > 0.6
        # Eye socket shadow around the eye.
        c = np.concatenate([up, lo]).mean(0)
        sock = np.concatenate([(up - c) * [1.15, 1.9] + c, ((lo - c) * [1.15, 1.4] + c)[::-1]])
        H, W = img.shape[:2]
        sx0, sy0 = np.maximum(np.floor(sock.min(0)).astype(int) - 2, 0)
        sx1, sy1 = np.minimum(np.ceil(sock.max(0)).astype(int) + 3, [W, H])
        if sx1 > sx0 and sy1 > sy0:  # a soft shadow in the socket, blended in the eye's box only
            roi = img[sy0:sy1, sx0:sx1]
            overlay = roi.copy()
            cv2.fillPoly(overlay, [_fx(sock - [sx0, sy0])], _col(skin_dark), AA, SHIFT)
            cv2.addWeighted(overlay, 0.35, roi, 0.65, 0, dst=roi)
        if opened:
            x0, y0 = np.floor(np.concatenate([up, lo]).min(0)).astype(int) - 2
            x1, y1 = np.ceil(np.concatenate([up, lo]).max(0)).astype(int) + 3
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
            if x1 > x0 and y1 > y0:
                roi = img[y0:y1, x0:x1]
                off = np.array([x0, y0])
                m = np.zeros(roi.shape[:2], np.uint8)
                cv2.fillPoly(m, [_fx(np.concatenate([up, lo[::-1]]) - off)], 255, AA, SHIFT)
                eye = roi.copy()
                white = np.array([235, 230, 225]) * (0.55 + 0.35 * sc.ambient)  # the sclera is in the lids' shade
                eye[:] = _col(white)
                iris2 = part2[f"iris{side}"] - off
                icol = _IRIS[int(rng.integers(len(_IRIS)))] * rng.uniform(0.5, 0.9)
                cv2.fillPoly(eye, [_fx(iris2)], _col(icol), AA, SHIFT)
                ic = iris2.mean(0)
                cv2.fillPoly(eye, [_fx((iris2 - ic) * 0.6 + ic)], (12, 10, 10), AA, SHIFT)
                glint = ic + (np.array([-0.3, -0.35]) * (iris2.max(0) - iris2.min(0)) / 2)
                r = max(int(0.12 * (iris2.max(0) - iris2.min(0)).max() * ONE), ONE // 2)
                cv2.circle(eye, tuple(_fx(glint)), r, (250, 250, 250), -1, AA, SHIFT)
                alpha = (m.astype(np.float32) / 255)[..., None]
                roi[:] = (eye * alpha + roi * (1 - alpha)).astype(np.uint8)
        lash = _col(sc.hair * 0.3 + 8)
        if opened:  # the upper lid's crease, above the lash line
            height = np.ptp(np.concatenate([up, lo])[:, 1])
            crease = up + (up - up.mean(0)) * [0.1, 0.0] - [0.0, 0.9 * height]
            cv2.polylines(img, [_fx(crease[1:-1])], False, _col(skin_dark * 0.85), max(1, int(round(lw * 0.8))),
                          AA, SHIFT)
        cv2.polylines(img, [_fx(up)], False, lash, max(1, int(round(lw * 2.6))), AA, SHIFT)
        cv2.polylines(img, [_fx(lo)], False, _col(skin_dark * 0.8), max(1, int(round(lw * 0.7))), AA, SHIFT)
        if mk is not None:
            m = mk.setdefault(key, np.zeros(img.shape[:2], np.uint8))
            cv2.fillPoly(m, [lid], 1, cv2.LINE_8, SHIFT)
            cv2.polylines(m, [_fx(up)], False, 1, max(1, int(round(lw * 1.6))), cv2.LINE_8, SHIFT)

    @staticmethod
    def _mouth(rng, img, sc: _Scene, part2, mk, lw) -> None:
        oup, iup, ilo, olo = part2["lip_oup"], part2["lip_iup"], part2["lip_ilo"], part2["lip_olo"]
        lip = sc.skin * np.array([0.82, 0.55, 0.55]) + np.array([30, 5, 10]) * rng.uniform(0.5, 1.5)
        lip = lip * (sc.ambient + 0.35)
        outer = _fx(np.concatenate([oup, olo[::-1]]))
        cv2.fillPoly(img, [outer], _col(lip), AA, SHIFT)
        cv2.fillPoly(img, [_fx(np.concatenate([iup, ilo[::-1]]))], (40, 14, 16), AA, SHIFT)
        if sc.expr.mouth_open > 0.03 and rng.random() < 0.7:  # upper teeth
            teeth = np.concatenate([iup[2:-2], (iup[2:-2] * 0.6 + ilo[2:-2] * 0.4)[::-1]])
            cv2.fillPoly(img, [_fx(teeth)], _col(np.array([230, 225, 210]) * (sc.ambient + 0.4)), AA, SHIFT)
        cv2.polylines(img, [_fx((iup + ilo) / 2)], False, _col(lip * 0.45), max(1, int(round(lw))), AA, SHIFT)
        if mk is not None:
            m = mk.setdefault("lips", np.zeros(img.shape[:2], np.uint8))
            cv2.fillPoly(m, [outer], 1, cv2.LINE_8, SHIFT)

    @staticmethod
    def _nose(img, sc: _Scene, part2, partc, pcos, cam, lw) -> np.ndarray:
        """Shaded nose triangles; returns the mask of what the nose covers (for occlusion)."""
        p2, pc = part2["nose"], partc["nose"]
        b0, b1, b2, tip = 0, 1, 2, 3
        n31, n32, n33, n34, n35 = 4, 5, 6, 7, 8
        w_r, w_l, s_r, s_l = 9, 10, 11, 12
        tris = np.array([
            [s_r, b0, b1], [s_r, b1, w_r], [w_r, b1, b2], [w_r, b2, tip], [w_r, tip, n32], [w_r, n32, n31],
            [s_l, b1, b0], [s_l, w_l, b1], [w_l, b2, b1], [w_l, tip, b2], [w_l, n34, tip], [w_l, n35, n34],
            [tip, n33, n32], [tip, n34, n33],
        ])
        a, b, c = pc[tris[:, 0]], pc[tris[:, 1]], pc[tris[:, 2]]
        n = np.cross(b - a, c - a)
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
        # Orient outwards: away from the inside of the nose (below the bridge, behind the tip).
        inside = (pc[b1] + pc[n33]) / 2 + (np.array([0, 0, -1.0]) @ cam.rot.T) * 0.3
        centre = (a + b + c) / 3
        n *= np.sign(np.sum(n * (centre - inside), axis=-1, keepdims=True) + 1e-12)
        view = np.array([0, 0, cam.distance]) - centre
        visible = np.sum(n * view, axis=-1) > 0
        shade = sc.ambient + (1 - sc.ambient) * 0.85 * np.maximum(n @ sc.light, 0)
        mask = np.zeros(img.shape[:2], np.uint8)
        shown = np.flatnonzero(visible)
        # Front-facing nose triangles do not overlap on screen: one fillPoly per shade level.
        level = np.round(shade[shown] * 2 * _LEVELS).astype(np.int64)
        tri_fx = _fx(p2[tris[shown]])
        for lv in np.unique(level).tolist():
            cv2.fillPoly(img, tri_fx[level == lv], _col(sc.skin * (lv / (2 * _LEVELS))), AA, SHIFT)
        if len(shown):
            hull = cv2.convexHull(p2[tris[shown]].reshape(-1, 2).astype(np.float32))
            cv2.fillConvexPoly(mask, _fx(hull.reshape(-1, 2)), 1, cv2.LINE_8, SHIFT)
        # Nostrils and the crease of the wings.
        dark = _col(sc.skin * sc.ambient * 0.35)
        for side in (-1, 1):
            if pcos[f"nostril{side}"].mean() > -0.2:
                cv2.fillPoly(img, [_fx(part2[f"nostril{side}"])], dark, AA, SHIFT)
            wing = p2[[s_r, w_r, n31]] if side < 0 else p2[[s_l, w_l, n35]]
            if visible[5 if side < 0 else 11]:
                cv2.polylines(img, [_fx(wing[1:])], False, _col(sc.skin * sc.ambient * 0.75),
                              max(1, int(round(lw))), AA, SHIFT)
        return mask

    @staticmethod
    def _occluder(rng, img, occ, kind, lm, part2, scale, sc: _Scene) -> None:
        fill = lambda polys, colour: (cv2.fillPoly(img, polys, _col(colour), AA, SHIFT),  # noqa: E731
                                      cv2.fillPoly(occ, polys, 1, cv2.LINE_8, SHIFT))
        if kind == "hand":
            centre = lm[rng.integers(0, N_LANDMARKS)] + rng.normal(0, 0.1 * scale, size=2)
            ang = rng.uniform(0, 2 * np.pi)
            r = scale * rng.uniform(0.22, 0.32)
            direction = np.array([np.cos(ang), np.sin(ang)])
            perp = np.array([-direction[1], direction[0]])
            palm = centre + (np.stack([np.cos(t := np.linspace(0, 2 * np.pi, 16, endpoint=False)),
                                       np.sin(t)], 1) * [r, r * 0.85]) @ np.stack([direction, perp])
            colour = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.7, 1.0)
            fill([_fx(palm)], colour)
            for k in range(4):
                base = centre + direction * r * 0.7 + perp * r * (k - 1.5) * 0.5
                tip_ = base + direction * r * rng.uniform(0.9, 1.4)
                th = max(int(r * 0.42), 1)
                cv2.line(img, tuple(_fx(base)), tuple(_fx(tip_)), _col(colour * 0.95), th, AA, SHIFT)
                cv2.line(occ, tuple(_fx(base)), tuple(_fx(tip_)), 1, th, cv2.LINE_8, SHIFT)
            thumb = centre - perp * r * 0.8
            cv2.line(img, tuple(_fx(thumb)), tuple(_fx(thumb - perp * r * 0.6 + direction * r * 0.5)),
                     _col(colour * 0.9), max(int(r * 0.45), 1), AA, SHIFT)
        elif kind in ("glasses", "sunglasses"):
            frame = _col(rng.uniform(0, 80, size=3)) if rng.random() < 0.7 else _col(_rand_colour(rng))
            th = max(int(round(scale * rng.uniform(0.015, 0.04))), 1)
            lenses = []
            for eye in (slice(36, 42), slice(42, 48)):
                pts = lm[eye]
                c = pts.mean(0)
                w = max(np.ptp(pts[:, 0]) * 0.75, scale * 0.05)
                h = max(w * rng.uniform(0.55, 0.8), scale * 0.12)
                t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
                lenses.append(np.stack([c[0] + w * np.cos(t), c[1] + h * np.sin(t) + 0.1 * h], 1))
            if kind == "sunglasses":
                tint = rng.uniform(5, 60, size=3)
                fill([_fx(lens) for lens in lenses], tint)
            else:  # clear lenses hide nothing; only the frame is drawn
                pass
            for lens in lenses:
                cv2.polylines(img, [_fx(lens)], True, frame, th, AA, SHIFT)
            a, b = lenses[0], lenses[1]
            cv2.line(img, tuple(_fx(a[np.argmax(a[:, 0])])), tuple(_fx(b[np.argmin(b[:, 0])])), frame, th, AA, SHIFT)
            cv2.line(img, tuple(_fx(a[np.argmin(a[:, 0])])), tuple(_fx(lm[0])), frame, th, AA, SHIFT)
            cv2.line(img, tuple(_fx(b[np.argmax(b[:, 0])])), tuple(_fx(lm[16])), frame, th, AA, SHIFT)
        elif kind == "mask":
            top = (lm[29] + lm[28]) / 2
            poly = np.concatenate([[lm[1] * 0.85 + top * 0.15], [top], [lm[15] * 0.85 + top * 0.15], lm[14:1:-1]])
            c = poly.mean(0)
            poly = (poly - c) * 1.05 + c
            colour = np.array([235, 238, 240]) if rng.random() < 0.5 else np.array([120, 170, 220])
            fill([_fx(poly)], colour * rng.uniform(0.6, 1.0))
        else:  # a random shape somewhere on the face
            centre = lm[rng.integers(0, N_LANDMARKS)] + rng.normal(0, 0.15 * scale, size=2)
            r = scale * rng.uniform(0.1, 0.35)
            k = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * np.pi, size=k))
            poly = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * r * rng.uniform(0.5, 1.0, size=(k, 1))
            fill([_fx(poly)], _rand_colour(rng))

    @staticmethod
    def _post(rng, img, scale) -> None:
        S = img.shape[0]
        if rng.random() < 0.3:
            sigma = rng.uniform(0.3, 1.4) * S / 192
            img[:] = cv2.GaussianBlur(img, (0, 0), sigma)
        if rng.random() < 0.5:  # sensor-like grey noise, slightly correlated (made at half size)
            h = (S + 1) // 2
            grey = rng.standard_normal((h, h), dtype=np.float32) * np.float32(rng.uniform(2, 10))
            grey = cv2.resize(grey, (S, S), interpolation=cv2.INTER_NEAREST)
            img[:] = cv2.add(img, cv2.merge([grey, grey, grey]), dtype=cv2.CV_8U)
        if rng.random() < 0.5:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
            img[:] = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _expose(skin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The skin colour as a camera that exposes for the face records it: a dark skin comes out
    brighter than it is, but still darker than a light one (luma 160 for the darkest tone, 220 for
    the lightest, +-10 %). Unexposed, dark faces were too dark for their features to show."""
    luma = float(skin @ _LUMA)
    tone = min(max((luma - 50.0) / 150.0, 0.0), 1.0)  # 0 = the darkest of _SKIN, 1 = the lightest
    return np.clip(skin * ((160.0 + 60.0 * tone) * rng.uniform(0.9, 1.1) / luma), 0, 255)


def _soft_shadows(rng: np.random.Generator, img: np.ndarray, lm: np.ndarray) -> None:
    """Darken the eye sockets, under the nose and under the lower lip, softly: the occlusion
    shadows that make the eyes a dark band in a photo. Drawn as blurred ellipses at quarter
    resolution inside the face's box, then multiplied into the image."""
    H, W = img.shape[:2]
    pad = int(np.ptp(lm[:, 0]) * 0.25) + 2  # room for the blurred edge of the brow-side shadows
    x0, y0 = np.maximum(np.floor(lm.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(lm.max(0)).astype(int) + pad, [W, H])
    if x1 - x0 < 8 or y1 - y0 < 8:
        return
    q = 4
    dark = np.zeros(((y1 - y0 + q - 1) // q, (x1 - x0 + q - 1) // q), np.float32)
    depth = rng.uniform(0.24, 0.4)
    at = lambda p: (p - [x0, y0]) / q  # noqa: E731  image -> shadow-map coordinates

    def ellipse(centre: np.ndarray, axes: tuple[float, float], angle: float, value: float) -> None:
        cv2.ellipse(dark, tuple(_fx(centre).tolist()), tuple(max(int(a * ONE), ONE) for a in axes), angle,
                    0, 360, value, -1, AA, SHIFT)

    eye_w = 1.0
    for eye, brow in ((slice(36, 42), slice(17, 22)), (slice(42, 48), slice(22, 27))):
        corners = lm[eye][[0, 3]]
        eye_c, brow_c = lm[eye].mean(0), lm[brow].mean(0)
        eye_w = max(float(np.linalg.norm(corners[1] - corners[0])), 1.0)
        d = corners[1] - corners[0]
        reach = max(float(np.linalg.norm(eye_c - brow_c)) * 0.9, eye_w * 0.4)
        ellipse(at(eye_c * 0.65 + brow_c * 0.35), (eye_w * 0.85 / q, reach / q),
                float(np.degrees(np.arctan2(d[1], d[0]))), depth)
    nose_w = max(float(np.linalg.norm(lm[35] - lm[31])), 1.0)
    ellipse(at(lm[33] + (lm[33] - lm[30]) * 0.25), (nose_w * 0.7 / q, nose_w * 0.3 / q), 0.0, depth * 0.8)
    mouth_w = float(np.linalg.norm(lm[54] - lm[48]))
    ellipse(at(lm[57] + (lm[57] - lm[66]) * 0.5), (mouth_w * 0.3 / q, nose_w * 0.2 / q), 0.0, depth * 0.6)
    dark = cv2.GaussianBlur(dark, (0, 0), max(eye_w / q * 0.35, 0.5))
    keep = cv2.resize(cv2.convertScaleAbs(dark, alpha=-255.0, beta=255.0), (dark.shape[1] * q, dark.shape[0] * q),
                      interpolation=cv2.INTER_LINEAR)[: y1 - y0, : x1 - x0]  # 255 = no shadow
    roi = img[y0:y1, x0:x1]
    cv2.multiply(roi, cv2.merge([keep, keep, keep]), dst=roi, scale=1 / 255)


def _sample_mask(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """True where the (rounded) point falls on a set mask pixel; False outside the image."""
    H, W = mask.shape[:2]
    xy = np.round(points).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H)
    out = np.zeros(len(points), dtype=bool)
    out[inside] = mask[xy[inside, 1], xy[inside, 0]] > 0
    return out
