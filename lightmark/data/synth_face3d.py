"""The 3D face model behind the synthetic faces: identity, expression, the 68 points and the
outlines of every drawn feature, all on one deformable head surface, posed and projected with
perspective.

Frame: x to the image's right (the subject's left), y down, z towards the camera; one unit is
about half a face width. The 68 points and the outlines the painter fills are sampled from the
SAME curves, so a point lies on the feature it names by construction.

The head is an ellipsoid (x/W(y))^2 + ((y-HC)/HH)^2 + ((z-shear(y))/D)^2 = 1 whose width W(y)
changes below the cheekbones (the jaw) and whose lower part is sheared forward (the chin sits in
front of the neck).

Proportions (generator v2): in units of the outer-eye-corner distance, on near-frontal faces, the
median brow, nose base, mouth, chin heights below the eye line and the jaw's widths match those of
dlib's 68 points on real photographs (the dev set of `lightmark data realdev`), and dlib's points
on these faces sit close to the jaw labels (docs/data.md has the measurement). A plain ellipsoid's jaw is
too round, so W(y) widens slightly towards the chin (a negative taper): a squarer jaw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lightmark.data.constants import N_LANDMARKS

HC = -0.15  # head centre height
HH = 1.35  # head half height: crown at HC - HH, chin at HC + HH
TAPER_FROM = 0.15  # the jaw tapers below this height
EYE_RECESS = 0.03
LIP_RAISE = 0.03

# Mesh resolution of the head (longitude x latitude).
N_U, N_V = 28, 18
N_LID = 9  # samples per eyelid curve
N_LIP = 13  # samples per lip curve (odd: includes the middle)
N_BROW = 7
N_IRIS = 14

# Constant sample grids, computed once (read-only).
_MESH_V = np.linspace(-np.pi / 2, np.pi / 2, N_V + 1)[:, None]
_MESH_U = np.linspace(-np.pi, np.pi, N_U + 1)[None, :]
_MESH_SIN_V, _MESH_COS_V = np.sin(_MESH_V), np.cos(_MESH_V)
_MESH_SIN_U, _MESH_COS_U = np.sin(_MESH_U), np.cos(_MESH_U)
_T_LID = np.linspace(0.0, 1.0, N_LID)
_COS_LID = np.cos(np.pi * _T_LID)
_BUMP_LID = np.sin(np.pi * _T_LID) ** 0.8
_ANG_IRIS = np.linspace(0, 2 * np.pi, N_IRIS, endpoint=False)
_JAW_T = np.linspace(-1.0, 1.0, 17)
_T_BROW = np.linspace(0.0, 1.0, N_BROW)
_BROW_PICK = np.round(np.linspace(0, N_BROW - 1, 5)).astype(int)
_LIP_T = np.linspace(-1.0, 1.0, N_LIP)
_ANG8 = np.linspace(0, 2 * np.pi, 8, endpoint=False)
_ANG12 = np.linspace(0, 2 * np.pi, 12, endpoint=False)
for _a in (_MESH_SIN_V, _MESH_COS_V, _MESH_SIN_U, _MESH_COS_U, _COS_LID, _BUMP_LID, _ANG_IRIS, _JAW_T,
           _T_BROW, _BROW_PICK, _LIP_T, _ANG8, _ANG12):
    _a.flags.writeable = False


@dataclass(frozen=True)
class Identity:
    """Who the face is: shape parameters sampled once per sample."""

    width: float  # W at the cheekbones
    depth: float  # D
    taper: float  # how much the jaw narrows towards the chin (negative: a squarer, wider jaw)
    chin_forward: float
    eye_dx: float  # half the distance between the eye centres
    eye_y: float
    eye_w: float  # half the eye width
    eye_h: float  # upper-lid height when open
    eye_tilt: float
    brow_y: float  # brow height above the eye centre
    brow_thick: float
    brow_arch: float
    nose_len: float  # nose base height below the eyes
    nose_w: float
    nose_h: float  # how far the tip stands out
    mouth_y: float
    mouth_w: float  # half width
    lip_up: float
    lip_low: float
    hairline: float  # latitude (radians) where hair starts, crown = -pi/2
    ear_y: float
    hair_side: float  # longitude (radians) beyond which the sides of the head carry hair

    @staticmethod
    def sample(rng: np.random.Generator) -> Identity:
        """Every shape parameter uniform in its range (one vectorised draw)."""
        lo, hi = _IDENTITY_RANGES[:, 0], _IDENTITY_RANGES[:, 1]
        values = rng.uniform(lo, hi).tolist()
        return Identity(**dict(zip(_IDENTITY_FIELDS, values)))


_IDENTITY_SPEC = {
    "width": (0.88, 1.08), "depth": (1.05, 1.3), "taper": (-0.22, -0.05), "chin_forward": (0.25, 0.5),
    "eye_dx": (0.33, 0.41), "eye_y": (-0.09, -0.03), "eye_w": (0.13, 0.17), "eye_h": (0.055, 0.085),
    "eye_tilt": (-0.06, 0.1), "brow_y": (0.2, 0.28), "brow_thick": (0.05, 0.1), "brow_arch": (0.02, 0.07),
    "nose_len": (0.48, 0.59), "nose_w": (0.12, 0.17), "nose_h": (0.22, 0.34), "mouth_y": (0.76, 0.86),
    "mouth_w": (0.22, 0.3), "lip_up": (0.04, 0.07), "lip_low": (0.05, 0.09), "hairline": (-0.75, -0.45),
    "ear_y": (0.1, 0.22), "hair_side": (0.3 * np.pi, 0.45 * np.pi),
}
_IDENTITY_FIELDS = tuple(_IDENTITY_SPEC)
_IDENTITY_RANGES = np.array([_IDENTITY_SPEC[k] for k in _IDENTITY_FIELDS])
_IDENTITY_RANGES.flags.writeable = False


@dataclass(frozen=True)
class Expression:
    """What the face does: continuous amounts plus the flags reports break NME down by."""

    mouth_open: float  # gap between the inner lips
    smile: float  # 0..1: corners up and out
    eye_open_r: float  # 0 = closed, 1 = open
    eye_open_l: float
    brow_raise: float

    @staticmethod
    def sample(rng: np.random.Generator) -> Expression:
        mouth_open = rng.uniform(0.04, 0.3) if rng.random() < 0.35 else 0.0
        smile = rng.uniform(0.4, 1.0) if rng.random() < 0.35 else rng.uniform(0.0, 0.2)
        if rng.random() < 0.15:
            eye_r = eye_l = 0.0
        else:
            eye_r = eye_l = rng.uniform(0.55, 1.2)
            if rng.random() < 0.08:  # a wink
                eye_l = 0.0
        brow = rng.uniform(0.06, 0.13) if rng.random() < 0.25 else rng.uniform(-0.02, 0.03)
        return Expression(mouth_open, smile, eye_r, eye_l, brow)

    def flags(self) -> dict[str, bool]:
        return {
            "mouth_open": self.mouth_open > 0.0,
            "smile": self.smile >= 0.4,
            "eyes_closed": self.eye_open_r == 0.0 and self.eye_open_l == 0.0,
            "wink": (self.eye_open_r == 0.0) != (self.eye_open_l == 0.0),
            "brows_raised": self.brow_raise >= 0.06,
        }


def _width(ident: Identity, y: np.ndarray) -> np.ndarray:
    t = np.minimum(np.maximum((y - TAPER_FROM) * (1.0 / (HC + HH - TAPER_FROM)), 0.0), 1.0)
    return ident.width * (1.0 - ident.taper * t * t)


def _shear(ident: Identity, y: np.ndarray) -> np.ndarray:
    t = np.minimum(np.maximum((y - 0.1) * (1.0 / (HC + HH - 0.1)), 0.0), 1.0)
    return ident.chin_forward * ident.depth * t


def surface_z(ident: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth of the front of the head at frontal (x, y)."""
    q = 1.0 - (x / _width(ident, y)) ** 2 - ((y - HC) / HH) ** 2
    return ident.depth * np.sqrt(np.maximum(q, 0.0)) + _shear(ident, y)


def surface_normal(ident: Identity, p: np.ndarray) -> np.ndarray:
    """Outward unit normals at points (N, 3) on (or near) the head: the gradient of the implicit
    field (x/W(y))^2 + ((y-HC)/HH)^2 + ((z-shear(y))/D)^2, written out."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    span_w = 1.0 / (HC + HH - TAPER_FROM)
    tw = (y - TAPER_FROM) * span_w
    inside_w = (tw > 0.0) & (tw < 1.0)
    tw = np.minimum(np.maximum(tw, 0.0), 1.0)
    w = ident.width * (1.0 - ident.taper * tw * tw)
    dw = np.where(inside_w, -2.0 * ident.width * ident.taper * tw * span_w, 0.0)
    span_s = 1.0 / (HC + HH - 0.1)
    ts = (y - 0.1) * span_s
    ds = np.where((ts > 0.0) & (ts < 1.0), ident.chin_forward * ident.depth * span_s, 0.0)
    zr = (z - ident.chin_forward * ident.depth * np.minimum(np.maximum(ts, 0.0), 1.0)) / (ident.depth ** 2)
    n = np.empty(p.shape)
    n[..., 0] = x / (w * w)
    n[..., 1] = -(x * x) * dw / (w * w * w) + (y - HC) / (HH * HH) - zr * ds
    n[..., 2] = zr
    return n / np.maximum(np.sqrt(np.sum(n * n, axis=-1, keepdims=True)), 1e-12)


def jaw_drop(ident: Identity, expr: Expression, y: np.ndarray) -> np.ndarray:
    """How far an open mouth pulls the head down at height y: nothing above the mouth, the most
    at the chin (the same for the jaw points and the drawn head, so the points stay on the outline)."""
    t = np.minimum(np.maximum((y - ident.mouth_y) * (1.0 / (HC + HH - ident.mouth_y)), 0.0), 1.0)
    return 0.8 * expr.mouth_open * t


def head_mesh(ident: Identity, expr: Expression) -> np.ndarray:
    """Vertices (N_V+1, N_U+1, 3) of the head: latitude from crown to chin, longitude around."""
    y = HC + HH * _MESH_SIN_V + 0 * _MESH_U
    x = _width(ident, y) * _MESH_SIN_U * _MESH_COS_V
    z = ident.depth * _MESH_COS_U * _MESH_COS_V + _shear(ident, y)
    return np.stack([x, y + jaw_drop(ident, expr, y), z], axis=-1)


def _on_face(ident: Identity, x: np.ndarray, y: np.ndarray, dz: float = 0.0) -> np.ndarray:
    """Points at frontal (x, y), `dz` above the surface. The surface depth itself is added once for
    all points at the end of `build_face` (one vectorised call instead of one per curve)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape + (3,))
    out[..., 0] = x
    out[..., 1] = y
    out[..., 2] = dz
    return out


@dataclass
class FaceGeometry:
    """Every 3D point of one face (frontal frame), grouped by what the painter does with it."""

    landmarks: np.ndarray  # (68, 3)
    normals: np.ndarray  # (68, 3) for self-occlusion
    parts: dict[str, np.ndarray]  # named outlines (M, 3)


def _eye(ident: Identity, side: int, openness: float, gaze: np.ndarray) -> tuple[np.ndarray, ...]:
    """One eye. side=-1: subject's right (image left). Returns lm (6, 3) in iBUG order,
    upper and lower lid curves (N_LID, 3) from the outer corner to the inner one, iris (N_IRIS, 3)."""
    cx, cy = side * ident.eye_dx, ident.eye_y
    a = ident.eye_w
    # Along the lid: t = 0 at the outer corner, 1 at the inner one; cos(pi t) = _COS_LID.
    x = cx + side * a * _COS_LID  # outer corner at cx + side*a
    tilt = -ident.eye_tilt * _COS_LID * a  # outer corner higher when tilt > 0
    bump = _BUMP_LID
    skew = 1.0 + 0.15 * _COS_LID  # the upper lid peaks a little towards the outer corner
    upper_open = cy + tilt - ident.eye_h * bump * skew
    lower = cy + tilt + 0.55 * ident.eye_h * bump
    closed = cy + tilt + 0.35 * ident.eye_h * bump
    upper = openness * upper_open + (1.0 - openness) * closed
    lower = openness * lower + (1.0 - openness) * closed
    upper = np.minimum(upper, lower)
    up3 = _on_face(ident, x, upper, -EYE_RECESS)
    lo3 = _on_face(ident, x, lower, -EYE_RECESS)
    # iBUG: outer corner, two upper-lid points, inner corner, two lower-lid points (inner first).
    k1, k2 = round((N_LID - 1) / 3), round(2 * (N_LID - 1) / 3)
    lm = np.stack([up3[0], up3[k1], up3[k2], up3[-1], lo3[k2], lo3[k1]])
    if side > 0:  # the subject's left eye starts at its inner corner (42) in iBUG order
        lm = np.stack([up3[-1], up3[k2], up3[k1], up3[0], lo3[k1], lo3[k2]])
    r = 0.9 * ident.eye_h
    ang = _ANG_IRIS
    ix = cx + gaze[0] * a * 0.45 + r * np.cos(ang)
    iy = cy + gaze[1] * ident.eye_h * 0.3 - 0.1 * ident.eye_h + r * np.sin(ang)
    iris = _on_face(ident, ix, iy, -EYE_RECESS + 0.01)
    return lm, up3, lo3, iris


def build_face(ident: Identity, expr: Expression, rng: np.random.Generator) -> FaceGeometry:
    """The 68 landmarks and the outlines of every feature, frontal, for one identity/expression."""
    parts: dict[str, np.ndarray] = {}
    # Jaw 0..16: slightly in front of the frontal silhouette, from the right temple to the chin.
    # The top ends sit between the eyes and the brows, where 300-W's (and dlib's) jaw starts.
    y_top = ident.eye_y - 0.12
    v0 = np.arcsin((y_top - HC) / HH)
    s = np.abs(_JAW_T)  # 1 at the ends, 0 at the chin
    v = v0 + (np.pi / 2 - v0) * (1.0 - s) * 0.985
    u = np.sign(_JAW_T) * 0.43 * np.pi
    jy = HC + HH * np.sin(v)
    jx = _width(ident, jy) * np.sin(u) * np.cos(v)
    jz = ident.depth * np.cos(u) * np.cos(v) + _shear(ident, jy)
    jy = jy + jaw_drop(ident, expr, jy)
    jaw = np.stack([jx, jy, jz], axis=-1)

    # Brows 17..26, outer to inner on the right, inner to outer on the left.
    brows = []
    for side in (-1, 1):
        t = _T_BROW  # 0 outer, 1 inner
        x = side * (ident.eye_dx + ident.eye_w * 1.25 - t * ident.eye_w * 2.2)
        y = (ident.eye_y - ident.brow_y - expr.brow_raise - ident.brow_arch * np.sin(np.pi * (0.3 + 0.7 * t))
             + 0.03 * (1 - t))
        centre = _on_face(ident, x, y, 0.01)
        half = ident.brow_thick * (0.55 + 0.45 * np.sin(np.pi * (0.15 + 0.8 * t))) / 2
        parts[f"brow{side}_top"] = _on_face(ident, x, y - half, 0.01)
        parts[f"brow{side}_bot"] = _on_face(ident, x, y + half, 0.01)
        pick = centre[_BROW_PICK]
        brows.append(pick if side < 0 else pick[::-1])

    # Nose: bridge 27..30 on the midline, rising to the tip; base 31..35 with the nostrils.
    top_y = ident.eye_y - 0.02
    tip_y = ident.nose_len - 0.07
    by = np.linspace(top_y, tip_y, 4)
    rise = ident.nose_h * np.linspace(0.15, 1.0, 4) ** 1.4
    bridge = _on_face(ident, 0.0 * by, by)
    bridge[:, 2] += rise
    bx = ident.nose_w * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    bys = ident.nose_len + np.array([-0.03, 0.0, 0.015, 0.0, -0.03])
    base = _on_face(ident, bx, bys)
    base[:, 2] += ident.nose_h * np.array([0.25, 0.45, 0.6, 0.45, 0.25])
    wing = _on_face(ident, np.array([-1.2, 1.2]) * ident.nose_w, np.full(2, ident.nose_len - 0.09))
    wing[:, 2] += 0.2 * ident.nose_h
    side_top = _on_face(ident, np.array([-0.06, 0.06]), np.full(2, top_y + 0.03))
    parts["nose"] = np.concatenate([bridge, base, wing, side_top])  # 4 + 5 + 2 + 2
    nostril = []
    for side in (-1, 1):
        cx = side * ident.nose_w * 0.5
        ang = _ANG8
        nx = cx + ident.nose_w * 0.28 * np.cos(ang)
        ny = ident.nose_len - 0.012 + ident.nose_w * 0.12 * np.sin(ang)
        p = _on_face(ident, nx, ny)
        p[:, 2] += ident.nose_h * 0.4
        nostril.append(p)
    parts["nostril-1"], parts["nostril1"] = nostril

    # Eyes 36..47.
    gaze = rng.uniform(-1.0, 1.0, size=2)
    eye_r, up_r, lo_r, iris_r = _eye(ident, -1, expr.eye_open_r, gaze)
    eye_l, up_l, lo_l, iris_l = _eye(ident, 1, expr.eye_open_l, gaze)
    parts.update({"eye-1_up": up_r, "eye-1_lo": lo_r, "iris-1": iris_r,
                  "eye1_up": up_l, "eye1_lo": lo_l, "iris1": iris_l})

    # Mouth 48..67: curves from the right corner (x < 0) to the left one.
    w = ident.mouth_w * (1.0 + 0.15 * expr.smile)
    x = w * _LIP_T
    r = np.clip(1.0 - (x / w) ** 2, 0.0, 1.0)
    centre = ident.mouth_y - 0.1 * expr.smile * (x / w) ** 2 + 0.02 * expr.smile
    bow = 1.0 - 0.35 * np.exp(-((x / (0.18 * w)) ** 2))
    gap_up = 0.3 * expr.mouth_open * r ** 0.6
    gap_lo = 0.7 * expr.mouth_open * r ** 0.6
    inner_up = centre - gap_up
    inner_lo = centre + gap_lo
    outer_up = inner_up - ident.lip_up * r ** 0.45 * bow * (1.0 - 0.3 * expr.smile)
    outer_lo = inner_lo + ident.lip_low * r ** 0.5
    curves = {name: _on_face(ident, x, yy, LIP_RAISE * (0.3 + r))
              for name, yy in (("lip_oup", outer_up), ("lip_iup", inner_up),
                               ("lip_ilo", inner_lo), ("lip_olo", outer_lo))}
    parts.update(curves)
    m = N_LIP - 1
    half = m // 2
    q = [0, round(m * 0.2), round(m * 0.38), half, m - round(m * 0.38), m - round(m * 0.2), m]
    oup, olo, iup, ilo = curves["lip_oup"], curves["lip_olo"], curves["lip_iup"], curves["lip_ilo"]
    outer = np.concatenate([oup[q], olo[q[5:0:-1]]])  # 48..54 along the top, 55..59 back along the bottom
    ic = [1, round(m * 0.3), half, m - round(m * 0.3), m - 1]
    inner = np.concatenate([iup[ic], ilo[ic[3:0:-1]]])  # 60..64, 65..67

    landmarks = np.concatenate([jaw, brows[0], brows[1], bridge, base, eye_r, eye_l, outer, inner])
    # Lift everything placed with _on_face onto the surface in one call.
    on_surface = list(parts)
    flat = np.concatenate([landmarks[17:]] + [parts[n] for n in on_surface])
    flat[:, 2] += surface_z(ident, flat[:, 0], flat[:, 1])
    landmarks[17:] = flat[: N_LANDMARKS - 17]
    start = N_LANDMARKS - 17
    for n in on_surface:
        parts[n] = flat[start: start + len(parts[n])]
        start += len(parts[n])
    normals = surface_normal(ident, landmarks)
    # The jaw points mark the jaw line, which faces forwards more than the ellipsoid below it does:
    # they count as hidden only once they are clearly behind the outline.
    normals[:17, 2] += 0.5
    normals[:17] /= np.linalg.norm(normals[:17], axis=-1, keepdims=True)
    # The nose points face sideways along the nose, not along the cheek below them.
    normals[31:36, 0] += 0.9 * np.sign(bx)
    normals[27:36, 2] += 0.3
    normals[27:36] /= np.linalg.norm(normals[27:36], axis=-1, keepdims=True)
    # Ears: a flat loop at each side of the head.
    for side in (-1, 1):
        ang = _ANG12
        ey = ident.ear_y + 0.24 * np.sin(ang) - 0.03
        ex = side * (_width(ident, np.array(ident.ear_y)) * 0.99 + 0.07 * (1 + np.cos(ang)) * 0.5)
        ez = -0.05 * ident.depth + 0.13 * np.cos(ang) + _shear(ident, ey)
        parts[f"ear{side}"] = np.stack([ex, ey, ez], axis=-1)
    return FaceGeometry(landmarks=landmarks, normals=normals, parts=parts)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation (degrees): yaw turns the face to the image's right for yaw > 0, pitch > 0 looks
    up, roll > 0 tilts clockwise in the image."""
    a, b, c = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass(frozen=True)
class Camera:
    """Pose + perspective: camera on the +z axis at `distance` head units from the pivot."""

    rot: np.ndarray
    distance: float
    pivot: np.ndarray

    def to_camera(self, p: np.ndarray) -> np.ndarray:
        return (p - self.pivot) @ self.rot.T

    def project(self, pc: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) -> 2D (..., 2) in head units, image y down."""
        depth = self.distance - pc[..., 2]
        return pc[..., :2] * (self.distance / np.maximum(depth, 1e-3))[..., None]

    def facing(self, pc: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Cosine between each rotated normal and the direction to the camera."""
        view = np.array([0.0, 0.0, self.distance]) - pc
        view /= np.linalg.norm(view, axis=-1, keepdims=True)
        return np.sum((normals @ self.rot.T) * view, axis=-1)
