"""MaskSplat's CPU rasterizer: gsplat 1.5's rules in a compiled tile loop.

It is the reference the CUDA path is tested against, so it follows gsplat's kernels
(projection_ewa_3dgs_fused_fwd, isect_tiles, rasterize_to_pixels_3dgs_fwd) step by
step in float32: EWA projection with the tan-fov clamp, eps2d 0.3, opacity-aware
per-axis extent (at most 3.33 sigma), 16x16 tiles, per-tile depth order, pixel centres
at +0.5, alpha clamped to 0.999, alpha < 1/255 skipped, and a pixel stops before the
Gaussian that would bring its transmittance to 1e-4 or below.

Votes accumulate w_i(p) = alpha_i(p) T_i(p) times K weight channels straight into a
per-(tile, Gaussian) buffer, so tiles run in parallel without races.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .rasterizer import Gaussians, View

TILE = 16
EPS2D = 0.3
NEAR, FAR = 0.01, 1e10
ALPHA_MIN = np.float32(1.0 / 255.0)
ALPHA_MAX = np.float32(0.999)
T_MIN = np.float32(1e-4)
EXTEND_MAX = 3.33
SH_C0 = 0.28209479177387814


class Projected:
    """Screen-space Gaussians of one view (only those that survive culling)."""

    def __init__(self, ids, means2d, conics, opacities, depths, radii):
        self.ids = ids  # [M] int64 indices into the scene
        self.means2d = means2d  # [M, 2] float32
        self.conics = conics  # [M, 3] float32 (a, b, c) of the inverse 2D covariance
        self.opacities = opacities  # [M] float32
        self.depths = depths  # [M] float32
        self.radii = radii  # [M, 2] int32


@numba.njit(parallel=True, cache=True)
def _project_kernel(means, quats, log_scales, logits, viewmat, intrinsics, width, height,
                    means2d, conics, opacities, depths, radii, valid):  # fmt: skip
    """gsplat's fused EWA projection, one Gaussian per iteration, float32 throughout."""
    f32 = np.float32
    fx, fy, cx, cy = intrinsics[0], intrinsics[1], intrinsics[2], intrinsics[3]
    w, h = f32(width), f32(height)
    tan_fovx, tan_fovy = f32(0.5) * w / fx, f32(0.5) * h / fy
    lim_x_pos = (w - cx) / fx + f32(0.3) * tan_fovx
    lim_x_neg = cx / fx + f32(0.3) * tan_fovx
    lim_y_pos = (h - cy) / fy + f32(0.3) * tan_fovy
    lim_y_neg = cy / fy + f32(0.3) * tan_fovy
    for i in numba.prange(means.shape[0]):
        valid[i] = False
        mc = np.empty(3, f32)
        for r in range(3):
            mc[r] = (viewmat[r, 0] * means[i, 0] + viewmat[r, 1] * means[i, 1] + viewmat[r, 2] * means[i, 2]) + viewmat[r, 3]
        z = mc[2]
        if not (z >= f32(NEAR) and z <= f32(FAR)):
            continue
        qw, qx, qy, qz = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        inv = f32(1.0) / math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        qw, qx, qy, qz = qw * inv, qx * inv, qy * inv, qz * inv
        rot = np.empty((3, 3), f32)
        rot[0, 0], rot[0, 1], rot[0, 2] = 1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)
        rot[1, 0], rot[1, 1], rot[1, 2] = 2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)
        rot[2, 0], rot[2, 1], rot[2, 2] = 2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)
        # M = R_view @ R @ S, so the camera-space covariance is M @ M^T.
        m = np.empty((3, 3), f32)
        for r in range(3):
            for c in range(3):
                m[r, c] = (viewmat[r, 0] * rot[0, c] + viewmat[r, 1] * rot[1, c] + viewmat[r, 2] * rot[2, c]) * f32(
                    math.exp(log_scales[i, c])
                )
        cov = np.empty((3, 3), f32)
        for r in range(3):
            for c in range(3):
                cov[r, c] = m[r, 0] * m[c, 0] + m[r, 1] * m[c, 1] + m[r, 2] * m[c, 2]
        rz = f32(1.0) / z
        rz2 = rz * rz
        tx = z * min(lim_x_pos, max(-lim_x_neg, mc[0] * rz))
        ty = z * min(lim_y_pos, max(-lim_y_neg, mc[1] * rz))
        j00, j02 = fx * rz, -fx * tx * rz2
        j11, j12 = fy * rz, -fy * ty * rz2
        # cov2d = J cov J^T with J = [[j00, 0, j02], [0, j11, j12]]
        a = j00 * (j00 * cov[0, 0] + j02 * cov[2, 0]) + j02 * (j00 * cov[0, 2] + j02 * cov[2, 2]) + f32(EPS2D)
        b = j00 * (j11 * cov[0, 1] + j12 * cov[0, 2]) + j02 * (j11 * cov[2, 1] + j12 * cov[2, 2])
        c2 = j11 * (j11 * cov[1, 1] + j12 * cov[2, 1]) + j12 * (j11 * cov[1, 2] + j12 * cov[2, 2]) + f32(EPS2D)
        det = a * c2 - b * b
        if not det > 0:
            continue
        opacity = f32(1.0) / (f32(1.0) + f32(math.exp(-logits[i])))
        if opacity < ALPHA_MIN:
            continue
        extend = min(f32(EXTEND_MAX), f32(math.sqrt(f32(2.0) * math.log(opacity / ALPHA_MIN))))
        rx = f32(math.ceil(extend * math.sqrt(a)))
        ry = f32(math.ceil(extend * math.sqrt(c2)))
        if rx <= 0 and ry <= 0:
            continue
        u = fx * mc[0] * rz + cx
        v = fy * mc[1] * rz + cy
        if u + rx <= 0 or u - rx >= w or v + ry <= 0 or v - ry >= h:
            continue
        if not (math.isfinite(u) and math.isfinite(v) and math.isfinite(rx) and math.isfinite(ry)):
            continue
        means2d[i, 0], means2d[i, 1] = u, v
        conics[i, 0], conics[i, 1], conics[i, 2] = c2 / det, -b / det, a / det
        opacities[i], depths[i] = opacity, z
        radii[i, 0], radii[i, 1] = int(rx), int(ry)
        valid[i] = True


def project(gaussians: Gaussians, view: View) -> Projected:
    """EWA projection with gsplat 1.5's culling; returns the surviving Gaussians."""
    n = gaussians.count
    f32 = np.float32
    means2d, conics = np.empty((n, 2), f32), np.empty((n, 3), f32)
    opacities, depths = np.empty(n, f32), np.empty(n, f32)
    radii, valid = np.empty((n, 2), np.int32), np.empty(n, np.bool_)
    intrinsics = np.array([view.K[0, 0], view.K[1, 1], view.K[0, 2], view.K[1, 2]], dtype=f32)
    _project_kernel(
        np.ascontiguousarray(gaussians.means, f32), np.ascontiguousarray(gaussians.quats, f32),
        np.ascontiguousarray(gaussians.log_scales, f32), np.ascontiguousarray(gaussians.opacity_logits, f32),
        np.ascontiguousarray(view.viewmat, f32), intrinsics, view.width, view.height,
        means2d, conics, opacities, depths, radii, valid,
    )  # fmt: skip
    ids = np.flatnonzero(valid)
    return Projected(ids, means2d[ids], conics[ids], opacities[ids], depths[ids], radii[ids])


@numba.njit(cache=True)
def _bin_tiles(means2d, radii, order, tiles_x, tiles_y):
    """Tile lists in depth order: offsets [T+1] and the Gaussian (local index) of each entry."""
    n = means2d.shape[0]
    lo = np.empty((n, 2), np.int64)
    hi = np.empty((n, 2), np.int64)
    counts = np.zeros(tiles_x * tiles_y + 1, np.int64)
    for i in range(n):
        for axis, limit in ((0, tiles_x), (1, tiles_y)):
            centre = means2d[i, axis] / np.float32(TILE)
            r = radii[i, axis] / np.float32(TILE)
            lo[i, axis] = min(max(0, int(math.floor(centre - r))), limit)
            hi[i, axis] = min(max(0, int(math.ceil(centre + r))), limit)
        for ty in range(lo[i, 1], hi[i, 1]):
            for tx in range(lo[i, 0], hi[i, 0]):
                counts[ty * tiles_x + tx + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    entries = np.empty(offsets[-1], np.int64)
    for k in range(n):
        i = order[k]
        for ty in range(lo[i, 1], hi[i, 1]):
            for tx in range(lo[i, 0], hi[i, 0]):
                t = ty * tiles_x + tx
                entries[fill[t]] = i
                fill[t] += 1
    return offsets, entries


@numba.njit(parallel=True, fastmath=False, cache=True)
def _raster_tiles(offsets, entries, means2d, conics, opacities, sigma_max, colors, weights, width, height, tiles_x, contrib, image, final_t):
    """Composite every tile; add w * weights into contrib[entry] and w * colour into image.

    weights: [H, W, K] (K may be 0); colors: [M, C] (C may be 0).
    """
    n_tiles = offsets.shape[0] - 1
    k_channels = weights.shape[2]
    c_channels = colors.shape[1]
    for t in numba.prange(n_tiles):
        start, end = offsets[t], offsets[t + 1]
        if start == end:
            continue
        x0 = (t % tiles_x) * TILE
        y0 = (t // tiles_x) * TILE
        for py in range(y0, min(y0 + TILE, height)):
            for px in range(x0, min(x0 + TILE, width)):
                if k_channels > 0 and c_channels == 0:
                    total = np.float32(0.0)
                    for k in range(k_channels):
                        total += weights[py, px, k]
                    if total == 0.0:
                        continue
                fx = np.float32(px) + np.float32(0.5)
                fy = np.float32(py) + np.float32(0.5)
                trans = np.float32(1.0)
                for e in range(start, end):
                    g = entries[e]
                    dx = means2d[g, 0] - fx
                    dy = means2d[g, 1] - fy
                    sigma = np.float32(0.5) * (conics[g, 0] * dx * dx + conics[g, 2] * dy * dy) + conics[g, 1] * dx * dy
                    # alpha < 1/255 exactly when sigma > log(255 * opacity): skip the exp
                    if sigma < 0.0 or sigma > sigma_max[g]:
                        continue
                    alpha = min(ALPHA_MAX, opacities[g] * np.float32(math.exp(-sigma)))
                    if alpha < ALPHA_MIN:
                        continue
                    next_t = trans * (np.float32(1.0) - alpha)
                    if next_t <= T_MIN:
                        break
                    w = alpha * trans
                    for k in range(k_channels):
                        contrib[e, k] += w * weights[py, px, k]
                    for c in range(c_channels):
                        image[py, px, c] += w * colors[g, c]
                    trans = next_t
                final_t[py, px] = trans


def _sigma_max(proj: Projected) -> np.ndarray:
    """Per Gaussian, the Mahalanobis term past which alpha < 1/255 (a margin keeps it exact in float32)."""
    return (np.log(proj.opacities.astype(np.float64) * 255.0) + 1e-3).astype(np.float32)


@numba.njit(cache=True)
def _scatter(entries, ids, contrib, out):
    for e in range(entries.shape[0]):
        g = ids[entries[e]]
        for k in range(contrib.shape[1]):
            out[g, k] += contrib[e, k]


def _eval_sh_colors(gaussians: Gaussians, view: View, ids: np.ndarray) -> np.ndarray:
    """RGB per Gaussian for this view: SH along (mean - camera centre), +0.5, clamped at 0 (as gsplat)."""
    from ..core.sh_rotation import sh_basis

    sh = gaussians.sh[ids].astype(np.float32)
    degree = int(round(math.sqrt(sh.shape[1]))) - 1
    c2w = np.linalg.inv(view.viewmat.astype(np.float64))
    dirs = gaussians.means[ids].astype(np.float64) - c2w[:3, 3]
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
    basis = sh_basis(dirs, degree).astype(np.float32)
    rgb = np.einsum("nk,nkc->nc", basis, sh) + np.float32(0.5)
    return np.maximum(rgb, 0.0).astype(np.float32)


class CpuRasterizer:
    """The reference rasterizer (numba, all cores)."""

    name = "cpu"

    def _prepare(self, gaussians: Gaussians, view: View):
        proj = project(gaussians, view)
        tiles_x = (view.width + TILE - 1) // TILE
        tiles_y = (view.height + TILE - 1) // TILE
        order = np.argsort(proj.depths, kind="stable")
        offsets, entries = _bin_tiles(proj.means2d, proj.radii, order, tiles_x, tiles_y)
        return proj, tiles_x, offsets, entries

    def votes(self, gaussians: Gaussians, view: View, weights: np.ndarray, out: np.ndarray) -> None:
        weights = np.ascontiguousarray(weights, dtype=np.float32)
        if weights.ndim == 2:
            weights = weights[:, :, None]
        if weights.shape[:2] != (view.height, view.width):
            raise ValueError(f"weights are {weights.shape[:2]}, the view is {(view.height, view.width)}")
        proj, tiles_x, offsets, entries = self._prepare(gaussians, view)
        contrib = np.zeros((entries.shape[0], weights.shape[2]), dtype=np.float32)
        no_colors = np.zeros((proj.ids.shape[0], 0), dtype=np.float32)
        image = np.zeros((1, 1, 0), dtype=np.float32)
        final_t = np.ones((view.height, view.width), dtype=np.float32)
        _raster_tiles(offsets, entries, proj.means2d, proj.conics, proj.opacities, _sigma_max(proj), no_colors, weights,
                      view.width, view.height, tiles_x, contrib, image, final_t)  # fmt: skip
        _scatter(entries, proj.ids, contrib, out)

    def render(self, gaussians: Gaussians, view: View, background: np.ndarray | None = None):
        if gaussians.sh is None:
            raise ValueError("rendering needs SH colours")
        proj, tiles_x, offsets, entries = self._prepare(gaussians, view)
        colors = _eval_sh_colors(gaussians, view, proj.ids)
        image = np.zeros((view.height, view.width, 3), dtype=np.float32)
        final_t = np.ones((view.height, view.width), dtype=np.float32)
        no_weights = np.zeros((1, 1, 0), dtype=np.float32)
        contrib = np.zeros((0, 0), dtype=np.float32)
        _raster_tiles(offsets, entries, proj.means2d, proj.conics, proj.opacities, _sigma_max(proj), colors, no_weights,
                      view.width, view.height, tiles_x, contrib, image, final_t)  # fmt: skip
        if background is not None:
            image += final_t[:, :, None] * np.asarray(background, dtype=np.float32)[None, None, :3]
        return image, (1.0 - final_t).astype(np.float32)
