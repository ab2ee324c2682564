"""Heatmap codecs: points (input pixels) <-> heatmaps at 1/4 of the input size.

Three codecs share one interface (`Codec.encode`, `Codec.decode`), all batched torch code on the
tensors' device, with no per-landmark Python loops:

- `plain`: the paper's baseline. A 7x7, sigma 1.75 Gaussian at round(x / 4); decode = argmax * 4.
  The rounding alone costs up to 2 input pixels per axis.
- `offset`: the paper's "Gaussian with offset". The 1-D kernel is bilinearly shifted by the
  rounding offset d = x/4 - round(x/4), i.e. the ratio kernel [1-|d|, |d|] convolved with the
  Gaussian, and normalised so the centre cell is 1. Decoding: a smoothed argmax plus a
  first-order neighbour-difference offset on a lightly smoothed map (`exact=True`: the exact
  inverse). Unlike the reference code, an offset of exactly zero leaves the peak where it is.
- `subpixel` (ours): one consistent pixel-to-heatmap mapping u = (x + 0.5) / 4 - 0.5 (pixel
  centres to cell centres), an untruncated sigma-1.75 Gaussian at the exact float centre, decoded
  by a weighted least-squares quadratic fit to the log-heatmap on a 5x5 patch around the smoothed
  argmax and the fit's maximum (a DARK-style Newton step, Zhang et al. 2020, on 25 cells instead
  of finite differences). The log of a Gaussian is exactly quadratic, so the round trip is exact
  (~1e-9 % NME); the 25-cell weighted fit averages the noise of predicted maps.

Coordinates follow `lightmark.data.sample`: (x, y) input pixels, integers are pixel centres.

Borders: encoding never fails: points near or outside the map give a partial (or, for the 7x7
codecs, possibly empty) peak. Decoding always returns finite points: the argmax is always inside
the map. `subpixel` clamps its 5x5 patch inside the map and extrapolates the fit; the step from the argmax is
limited to `max_step` = 1.5 cells from the edge cell's centre, so points up to 4 input px beyond the
image's edge decode exactly and farther ones come back clamped there (tests/test_properties.py); a
non-concave fit (flat or noise-only map) falls back to the argmax. `offset` uses the
one-sided exact formula at the map's edge cells; `plain` and `offset` cannot represent points
that the paper's round(x / 4) puts outside the map (x >= 382 at 384 px): they decode to the edge.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
import torch.nn.functional as F

from lightmark.device import intra_op_threads
from lightmark.errors import ConfigError
from lightmark.layouts import DEFAULT_LAYOUT
from lightmark.models.spec import HEATMAP_STRIDE

SIGMA = 1.75
KERNEL_RADIUS = 3  # the paper's 7x7 kernel



def _as_batched(points: torch.Tensor) -> tuple[torch.Tensor, bool]:
    points = torch.as_tensor(points)
    if points.dim() == 2:
        return points.unsqueeze(0), True
    if points.dim() != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must be [B, K, 2] or [K, 2], got {tuple(points.shape)}")
    return points, False


def _argmax_2d(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer (row, col) of each map's maximum: heatmaps [B,K,H,W] -> two int64 [B,K]."""
    # max of each row, then the best row, then the best column in it: same answer (first maximum in
    # row-major order) as argmax over the flattened map, several times faster on a CPU
    rows = heatmaps.amax(dim=-1).argmax(dim=-1)  # [B,K]
    best_row = heatmaps.gather(2, rows[..., None, None].expand(-1, -1, 1, heatmaps.shape[-1])).squeeze(2)
    return rows, best_row.argmax(dim=-1)


def _gather_patch(heatmaps: torch.Tensor, row: torch.Tensor, col: torch.Tensor, radius: int,
                  fill: float | None = None) -> torch.Tensor:
    """Values at (row+dy, col+dx), |dy|,|dx| <= radius: [B,K,2r+1,2r+1]. Cells outside the map
    repeat the nearest edge cell, or read `fill` when given."""
    b, k, h, w = heatmaps.shape
    offs = torch.arange(-radius, radius + 1, device=heatmaps.device)
    rows = row[..., None] + offs  # [B,K,P]
    cols = col[..., None] + offs
    index = (rows.clamp(0, h - 1)[..., :, None] * w + cols.clamp(0, w - 1)[..., None, :]).flatten(2)
    vals = heatmaps.flatten(2).gather(2, index).view(b, k, 2 * radius + 1, 2 * radius + 1)
    if fill is not None:
        inside = ((rows >= 0) & (rows < h))[..., :, None] & ((cols >= 0) & (cols < w))[..., None, :]
        vals = torch.where(inside, vals, torch.full_like(vals, fill))
    return vals


def _gauss(dist: torch.Tensor, sigma: float, radius: float | None = None) -> torch.Tensor:
    """exp(-dist^2 / (2 sigma^2)), zero beyond `radius` when given; overwrites `dist` (a temporary)."""
    outside = dist.abs() > radius if radius is not None else None
    out = dist.square_().mul_(-0.5 / sigma**2).exp_()
    if outside is not None:
        out.masked_fill_(outside, 0.0)
    return out


def _dilate_1d(profile: torch.Tensor) -> torch.Tensor:
    """Max over each cell and its two neighbours along the last axis (zero beyond the ends)."""
    padded = F.pad(profile, (1, 1))
    return torch.maximum(torch.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])


MASK_RADIUS = 5  # every cell of the dilation mask lies within 5 cells of the profiles' peaks


def _window_mask(gx: torch.Tensor, gy: torch.Tensor, threshold: float) -> torch.Tensor:
    """Dilation mask of the heatmaps gy[i] * gx[j] ([B,K,H,W] bool), filled only in an 11x11
    window around each peak: profiles are <= 1, so a masked cell needs both dilated profiles >=
    threshold, which holds within a few cells of their peak only."""
    b, k, w = gx.shape
    h = gy.shape[-1]
    dx, dy = _dilate_1d(gx), _dilate_1d(gy)
    offs = torch.arange(-MASK_RADIUS, MASK_RADIUS + 1, device=gx.device)
    cols = (dx.argmax(-1, keepdim=True) + offs).clamp(0, w - 1)  # [B,K,P]
    rows = (dy.argmax(-1, keepdim=True) + offs).clamp(0, h - 1)
    local = torch.ge(dx.gather(-1, cols).unsqueeze(-2), (threshold / dy.gather(-1, rows)).unsqueeze(-1))
    mask = torch.zeros(b, k, h * w, dtype=torch.bool, device=gx.device)
    index = (rows.unsqueeze(-1) * w + cols.unsqueeze(-2)).flatten(2)  # clamped duplicates carry equal values
    mask.scatter_(2, index, local.flatten(2))
    return mask.view(b, k, h, w)


def _smoothed_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax robust to isolated noisy cells, found locally: the raw argmax, then the best 3x3 box
    mean among its 3x3 neighbours (a full-map blur costs more than the whole decode budget on a
    CPU), then the largest raw cell next to that."""
    row, col = _argmax_2d(heatmaps)
    h, w = heatmaps.shape[-2:]
    patch = _gather_patch(heatmaps, row, col, 2)  # [B,K,5,5], edge cells repeated outside the map
    box = F.avg_pool2d(patch.flatten(0, 1).unsqueeze(1), 3, stride=1).view(*patch.shape[:2], 9)
    best = box.argmax(-1)
    row = (row + best // 3 - 1).clamp(0, h - 1)
    col = (col + best % 3 - 1).clamp(0, w - 1)
    # The box mean is biased at the map's edges (whatever the padding), so it only picks the
    # region: the answer is the largest raw cell within one cell of the smoothed maximum.
    local = _gather_patch(heatmaps, row, col, 1, fill=float("-inf")).flatten(2).argmax(-1)
    return (row + local // 3 - 1).clamp(0, h - 1), (col + local % 3 - 1).clamp(0, w - 1)


MIN_HEATMAP_CELLS = 5  # the subpixel decode's patch side; smaller maps repeat edge cells in the fit


class Codec:
    """Base: holds the geometry. `encode(points[B,K,2]) -> [B,K,h,w]` float32 with peak 1,
    `decode(heatmaps[B,K,h,w]) -> [B,K,2]` float32 input pixels. A [K,2] input gives [K,h,w]."""

    name = "base"

    def __init__(self, input_size: int, stride: int = HEATMAP_STRIDE, sigma: float = SIGMA):
        if input_size <= 0 or input_size % stride:
            raise ConfigError(f"input_size: {input_size} is not a positive multiple of the heatmap stride {stride}")
        if input_size < MIN_HEATMAP_CELLS * stride:
            raise ConfigError(f"input_size: {input_size} px makes heatmaps of {input_size // stride} cells; at least "
                              f"{MIN_HEATMAP_CELLS} are needed ({MIN_HEATMAP_CELLS * stride} px): the sub-pixel "
                              f"decode fits a {MIN_HEATMAP_CELLS}x{MIN_HEATMAP_CELLS} patch")
        self.input_size = int(input_size)
        self.stride = int(stride)
        self.sigma = float(sigma)
        self.heatmap_size = self.input_size // self.stride

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_size={self.input_size}, heatmap_size={self.heatmap_size})"

    def encode(self, points: torch.Tensor) -> torch.Tensor:
        pts, single = _as_batched(points)
        pts = pts.float()
        gx, gy = self._profiles(pts)  # [B,K,W], [B,K,H]
        heatmaps = gy.unsqueeze(-1) * gx.unsqueeze(-2)
        return heatmaps[0] if single else heatmaps

    def encode_with_mask(self, points: torch.Tensor, threshold: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps and the weighted-MSE mask M (bool: 3x3 grey dilation of the heatmap >= threshold).

        The heatmaps are outer products of non-negative 1-D profiles, so their 3x3 dilation is the
        outer product of the dilated profiles: M[i, j] = dx[j] >= threshold / dy[i], one compare
        per cell instead of a 2-D max-pool. Equal to `losses.dilation_mask(heatmaps, threshold)`."""
        pts, single = _as_batched(points)
        pts = pts.float()
        gx, gy = self._profiles(pts)
        heatmaps = gy.unsqueeze(-1) * gx.unsqueeze(-2)
        mask = _window_mask(gx, gy, threshold)
        return (heatmaps[0], mask[0]) if single else (heatmaps, mask)

    def decode(self, heatmaps: torch.Tensor) -> torch.Tensor:
        single = heatmaps.dim() == 3
        hm = heatmaps.unsqueeze(0) if single else heatmaps
        if hm.dim() != 4:
            raise ValueError(f"heatmaps must be [B, K, H, W] or [K, H, W], got {tuple(heatmaps.shape)}")
        points = self._decode(hm.detach().float())
        return points[0] if single else points

    # subclasses implement these
    def _profiles(self, pts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _decode(self, hm: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _grid(self, device: torch.device) -> torch.Tensor:
        return torch.arange(self.heatmap_size, device=device, dtype=torch.float32)


class PlainCodec(Codec):
    """The paper's baseline: 7x7 Gaussian at round(x / 4), decode argmax * 4."""

    name = "plain"

    def _profiles(self, pts):
        grid = self._grid(pts.device)
        centre = torch.round(pts / self.stride)  # [B,K,2]
        prof = _gauss(grid - centre[..., None], self.sigma, KERNEL_RADIUS)  # [B,K,2,W]
        return prof[..., 0, :], prof[..., 1, :]

    def _decode(self, hm):
        row, col = _argmax_2d(hm)
        return torch.stack([col, row], dim=-1).float() * self.stride


class OffsetCodec(Codec):
    """The paper's Gaussian with offset: 7x7 kernel bilinearly shifted by the rounding offset.

    `exact=False` (default, the paper's method): the offset is the first-order neighbour
    difference d = (S(+1) - S(-1)) / (S(0) (1 - G2)) on a lightly smoothed map S (3x3 Gaussian,
    sigma `smooth_sigma` = 0.5 cell), whose ground-truth round trip is close to the paper's
    (`lightmark codec-check` prints both). `exact=True` inverts the encoding exactly (only points the
    paper's round(x / 4) mapping puts outside the map keep an error).
    """

    name = "offset"

    def __init__(self, input_size: int, stride: int = HEATMAP_STRIDE, sigma: float = SIGMA,
                 exact: bool = False, smooth_sigma: float = 0.5):
        super().__init__(input_size, stride, sigma)
        self.exact = bool(exact)
        self.smooth_sigma = float(smooth_sigma)

    def _profiles(self, pts):
        grid = self._grid(pts.device)
        u = pts / self.stride
        centre = torch.round(u)
        d = (u - centre)[..., None]  # [B,K,2,1], in [-0.5, 0.5]
        shift = torch.sign(d)  # 0 when d == 0: no shifted term at all (the reference's bug is absent)
        dist = grid - centre[..., None]
        g1 = _gauss(dist - shift, self.sigma, KERNEL_RADIUS)
        g0 = _gauss(dist, self.sigma, KERNEL_RADIUS)  # overwrites dist: after g1
        ad = d.abs()
        prof = g0.mul_(1 - ad).add_(g1.mul_(ad))  # ratio kernel [1-|d|, |d|] convolved with the Gaussian
        centre_value = (1 - d.abs()) + d.abs() * math.exp(-1 / (2 * self.sigma**2))
        prof = prof / centre_value  # centre cell = 1
        return prof[..., 0, :], prof[..., 1, :]

    def _axis_offset(self, left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor,
                     has_left: torch.Tensor, has_right: torch.Tensor) -> torch.Tensor:
        """Sub-cell offset d from the centre cell and its neighbours along one axis.

        The shifted kernel, centre normalised to 1, has h(0) = 1 - |d| (1 - G1) and
        h(+1) - h(-1) = d (1 - G2), so with r = (h(+1) - h(-1)) / h(0):
        d = r / (1 - G2 + |r| (1 - G1)) (exact). At a map edge only one neighbour s exists; then
        q = h(s) / h(0) gives |d| and its side: q >= G1 means the point lies towards s.
        """
        g1 = math.exp(-1 / (2 * self.sigma**2))
        g2 = math.exp(-4 / (2 * self.sigma**2))
        c = centre.clamp_min(1e-6)
        r = (right - left) / c
        both = r / (1 - g2 + r.abs() * (1 - g1))
        side = torch.where(has_right, torch.ones_like(c), -torch.ones_like(c))
        q = torch.where(has_right, right, left) / c
        towards = (q - g1) / (1 + q) / (1 - g1)
        away = -(g1 - q) / ((g1 - g2) - q * (1 - g1)).clamp_min(1e-6)
        one = side * torch.where(q >= g1, towards, away)
        d = torch.where(has_left & has_right, both, torch.where(has_left | has_right, one, torch.zeros_like(c)))
        return d.clamp(-0.5, 0.5)

    def _decode(self, hm):
        h, w = hm.shape[-2:]
        row, col = _smoothed_argmax(hm)
        patch = _gather_patch(hm, row, col, 1)  # raw values around the smoothed argmax
        centre = patch[..., 1, 1]
        # exact inversion (used at the map's edges in both modes: one neighbour is all there is)
        dx = self._axis_offset(patch[..., 1, 0], centre, patch[..., 1, 2], col > 0, col < w - 1)
        dy = self._axis_offset(patch[..., 0, 1], centre, patch[..., 2, 1], row > 0, row < h - 1)
        if not self.exact:
            a = math.exp(-1 / (2 * self.smooth_sigma**2))
            kern = torch.tensor([a, 1.0, a], device=hm.device) / (1 + 2 * a)
            big = _gather_patch(hm, row, col, 2).flatten(0, 1).unsqueeze(1)  # [BK,1,5,5]
            sm = F.conv2d(big, (kern[:, None] * kern[None, :]).view(1, 1, 3, 3)).view(*row.shape, 3, 3)
            g2 = math.exp(-4 / (2 * self.sigma**2))
            c = sm[..., 1, 1].clamp_min(1e-6)
            lin_x = ((sm[..., 1, 2] - sm[..., 1, 0]) / c / (1 - g2)).clamp(-0.5, 0.5)
            lin_y = ((sm[..., 2, 1] - sm[..., 0, 1]) / c / (1 - g2)).clamp(-0.5, 0.5)
            dx = torch.where((col > 1) & (col < w - 2), lin_x, dx)
            dy = torch.where((row > 1) & (row < h - 2), lin_y, dy)
        return torch.stack([col.float() + dx, row.float() + dy], dim=-1) * self.stride


def _solve_spd(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Batched Gauss-Jordan for small symmetric positive-definite systems ([...,n,n] x = [...,n]).

    A handful of whole-batch tensor ops: for 544 6x6 systems far cheaper than LAPACK's per-matrix
    calls. No pivoting is needed for SPD matrices; a non-positive pivot gives non-finite values,
    which the caller treats as a failed fit."""
    aug = torch.cat([matrix, rhs.unsqueeze(-1)], dim=-1)
    n = matrix.shape[-1]
    for i in range(n):
        pivot_row = aug[..., i : i + 1, :] / aug[..., i : i + 1, i : i + 1]
        aug = aug - aug[..., :, i : i + 1] * pivot_row
        aug[..., i : i + 1, :] = pivot_row
    return aug[..., :, n]


class SubpixelCodec(Codec):
    """Ours: a Gaussian at the exact float centre under one consistent mapping, decoded by a
    weighted least-squares fit of a quadratic to the log-heatmap on a 5x5 patch, then its maximum
    (a Newton step on the fitted log-Gaussian, DARK-style).

    The log of a Gaussian is exactly quadratic, so the fit is exact on clean maps, including at the
    borders (the patch is clamped inside the map and the fit extrapolates). Weighting each cell by
    its squared value (Guo's weighted Gaussian fit) makes low, noisy cells count little, and 25
    cells average out noise that a 3-point finite-difference Hessian would amplify. A patch that is
    not concave falls back to the argmax; the step from the argmax is limited to `max_step` cells.
    """

    name = "subpixel"
    PATCH_RADIUS = 2

    def __init__(self, input_size: int, stride: int = HEATMAP_STRIDE, sigma: float = SIGMA, max_step: float = 1.5):
        super().__init__(input_size, stride, sigma)
        self.max_step = float(max_step)
        r = self.PATCH_RADIUS
        t = torch.arange(-r, r + 1, dtype=torch.float64)
        yy, xx = torch.meshgrid(t, t, indexing="ij")
        x, y = xx.flatten(), yy.flatten()
        self._design = torch.stack([torch.ones_like(x), x, y, x * x, y * y, x * y], dim=-1)  # [25, 6]
        self._outer = (self._design[:, :, None] * self._design[:, None, :]).reshape(-1, 36)  # [25, 36]

    def to_heatmap(self, xy: torch.Tensor) -> torch.Tensor:
        """Input pixels -> heatmap cells: pixel centres map to cell centres (u = (x + 0.5) / 4 - 0.5)."""
        return (xy + 0.5) / self.stride - 0.5

    def to_input(self, uv: torch.Tensor) -> torch.Tensor:
        return (uv + 0.5) * self.stride - 0.5

    def _profiles(self, pts):
        grid = self._grid(pts.device)
        u = self.to_heatmap(pts)
        prof = _gauss(grid - u[..., None], self.sigma)  # untruncated: exactly log-quadratic
        return prof[..., 0, :], prof[..., 1, :]

    def _decode(self, hm):
        h, w = hm.shape[-2:]
        r = self.PATCH_RADIUS
        row, col = _smoothed_argmax(hm)
        prow = row.clamp(r, max(r, h - 1 - r))  # patch fully inside the map
        pcol = col.clamp(r, max(r, w - 1 - r))
        patch = _gather_patch(hm, prow, pcol, r).flatten(2).double()  # [B,K,25]
        peak = patch.amax(-1, keepdim=True).clamp_min(1e-12)
        rel = (patch / peak).clamp_min(0)
        weight = rel * rel
        logv = torch.log(rel.clamp_min(1e-12))
        design = self._design.to(hm.device)
        normal = (weight @ self._outer.to(hm.device)).view(*weight.shape[:-1], 6, 6)
        normal = normal + 1e-9 * torch.eye(6, dtype=normal.dtype, device=hm.device)
        rhs = (weight * logv) @ design  # [B,K,6]
        coef = _solve_spd(normal, rhs)
        c1, c2, c3, c4, c5 = coef[..., 1], coef[..., 2], coef[..., 3], coef[..., 4], coef[..., 5]
        # maximum of the quadratic: [2c3 c5; c5 2c4] [x y]^T = -[c1 c2]^T
        det = 4 * c3 * c4 - c5 * c5
        concave = (c3 < 0) & (det > 1e-12)
        safe = torch.where(concave, det, torch.ones_like(det))
        fx = -(2 * c4 * c1 - c5 * c2) / safe + pcol.double()
        fy = -(2 * c3 * c2 - c5 * c1) / safe + prow.double()
        ok = concave & torch.isfinite(fx) & torch.isfinite(fy)
        cx, cy = col.double(), row.double()
        u = torch.where(ok, cx + (fx - cx).clamp(-self.max_step, self.max_step), cx)
        v = torch.where(ok, cy + (fy - cy).clamp(-self.max_step, self.max_step), cy)
        return self.to_input(torch.stack([u, v], dim=-1)).float()


_CODECS = {"plain": PlainCodec, "offset": OffsetCodec, "subpixel": SubpixelCodec}
CODEC_NAMES = tuple(_CODECS)  # the registry's names (the protocol's `codec` takes these)


def get_codec(name: str, input_size: int = 384, **kwargs) -> Codec:
    """The codec called `name` (plain | offset | subpixel) for square inputs of `input_size` px."""
    try:
        cls = _CODECS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"codec: unknown name {name!r}; choose one of {', '.join(CODEC_NAMES)}") from None
    return cls(input_size, **kwargs)


def uniform_points(n_images: int, input_size: int, n_points: int = DEFAULT_LAYOUT.n_points,
                   seed: int = 0) -> torch.Tensor:
    """Uniform float points over the whole image ([-0.5, size - 0.5] per axis): [n_images, n_points, 2]."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n_images, n_points, 2, generator=gen, dtype=torch.float64).float() * input_size - 0.5


def round_trip_nme(name: str, input_size: int = 384, n_images: int = 100, n_points: int = DEFAULT_LAYOUT.n_points,
                   seed: int = 0) -> float:
    """Ground-truth round trip of one codec: mean point error / image side * 100 (NME %, image)."""
    points = uniform_points(n_images, input_size, n_points, seed)
    return float(round_trip_errors(name, points, input_size).norm(dim=-1).mean() / input_size * 100)


def round_trip_errors(name: str, points: torch.Tensor, input_size: int) -> torch.Tensor:
    """decode(encode(points)) - points in input pixels (float64, the shape of `points`)."""
    codec = get_codec(name, input_size)
    return codec.decode(codec.encode(points)).double() - points.double()


def codec_speed(name: str, batch: int = 8, size: int = 96, repeats: int = 20, n_points: int = DEFAULT_LAYOUT.n_points,
                threads: int = 2, device: str = "cpu", clock: str = "wall") -> dict:
    """Median ms to encode (heatmaps + the weighted-MSE mask) and to decode one batch, on `threads`
    CPU threads (or a CUDA device).

    clock="wall" (default) is elapsed time. clock="cpu" is the CPU time of this process
    (`time.process_time`), useful on a shared, overloaded machine where elapsed time mostly
    measures waiting for a core; use it with threads=1 (with more threads it adds their times).
    """
    if clock not in ("wall", "cpu"):
        raise ConfigError(f"clock: {clock!r} is not 'wall' or 'cpu'")
    now = time.perf_counter if clock == "wall" else time.process_time
    codec = get_codec(name, size * HEATMAP_STRIDE)
    points = uniform_points(batch, size * HEATMAP_STRIDE, n_points, seed=1).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    enc, dec = [], []
    with intra_op_threads(threads), torch.no_grad():
        for _ in range(repeats + 2):  # two warm-up rounds are dropped
            sync()
            t0 = now()
            heatmaps, _mask = codec.encode_with_mask(points)
            sync()
            t1 = now()
            codec.decode(heatmaps)
            sync()
            t2 = now()
            enc.append((t1 - t0) * 1e3)
            dec.append((t2 - t1) * 1e3)
    return {"encode_ms": statistics.median(enc[2:]), "decode_ms": statistics.median(dec[2:])}
