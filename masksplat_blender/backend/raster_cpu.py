"""MaskSplat's CPU rasterizer: gsplat 1.5's rules in a compiled tile loop.

It is the reference the CUDA path is tested against, so it follows gsplat's kernels
(projection_ewa_3dgs_fused_fwd, intersect_tile, rasterize_to_pixels_3dgs_fwd) step by
step in float32:

- projection: quaternions normalised, covariance R S S^T R^T with S = exp(log-scales),
  world to camera with the view matrix, culled outside near 0.01 / far 1e10, perspective
  Jacobian with the tan-fov clamp (1.3x the image), eps2d 0.3 added to the 2D
  covariance (no antialiasing compensation), det <= 0 culled, opacity sigmoid(logit)
  < 1/255 culled, per-axis radius ceil(min(3.33, sqrt(2 log(255 opacity))) * sigma),
  culled when both radii are 0 or the box misses the image;
- tiles: 16x16, tile range [floor((u - r) / 16), ceil((u + r) / 16)) clamped to the
  grid, each tile's list in depth order (ties by Gaussian index, like the stable radix
  sort of (tile, depth) keys);
- blending at pixel centres (x + 0.5, y + 0.5): sigma = 0.5 (a dx^2 + c dy^2) + b dx dy,
  alpha = min(0.999, opacity exp(-sigma)), skipped when sigma < 0 or alpha < 1/255; a
  pixel stops before the Gaussian that would bring its transmittance T to 1e-4 or below,
  otherwise w = alpha T and T *= 1 - alpha.

Speed (none of it changes a result): Gaussians are depth-sorted once per view and each
tile's list holds ranks into that order, so a tile streams through contiguous memory;
inside a tile the loop runs Gaussian by Gaussian over only the pixels of the Gaussian's
own box (plus a pixel of margin; outside the box alpha < 1/255 by construction of the
radius), with per-pixel early termination and a stop for the whole tile once every
pixel is done; pixels whose weights are all zero never start (votes only). Votes of a
tile go to that tile's own slots of a per-intersection buffer (no races between
threads), then are scattered into out[N, K] in float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..core.cameras import Camera
from ..core.votes import vote_weights
from .rasterizer import Gaussians, weights_hwk

TILE = 16
EPS2D = 0.3
NEAR, FAR = 0.01, 1e10
ALPHA_MIN = np.float32(1.0 / 255.0)
ALPHA_MAX = np.float32(0.999)
T_MIN = np.float32(1e-4)
EXTEND_MAX = 3.33


class Projected:
    """Screen-space Gaussians of one view that survive culling, in depth order."""

    def __init__(self, ids, means2d, conics, opacities, depths, radii):
        self.ids = ids  # [M] int64 indices into the scene, front to back (ties by index)
        self.means2d = means2d  # [M, 2] float32 pixel coordinates
        self.conics = conics  # [M, 3] float32 (a, b, c) of the inverse 2D covariance
        self.opacities = opacities  # [M] float32
        self.depths = depths  # [M] float32 camera-space z
        self.radii = radii  # [M, 2] int32 (x, y)


@numba.njit(parallel=True, cache=True)
def _project_kernel(means, quats, log_scales, logits, viewmat, intrinsics, width, height,
                    means2d, conics, opacities, depths, radii, valid):  # fmt: skip
    """gsplat's fused EWA projection, one Gaussian per iteration, float32 throughout."""
    f32 = np.float32
    one, two = f32(1.0), f32(2.0)
    fx, fy, cx, cy = intrinsics[0], intrinsics[1], intrinsics[2], intrinsics[3]
    w, h = f32(width), f32(height)
    tan_fovx, tan_fovy = f32(0.5) * w / fx, f32(0.5) * h / fy
    lim_x_pos = (w - cx) / fx + f32(0.3) * tan_fovx
    lim_x_neg = cx / fx + f32(0.3) * tan_fovx
    lim_y_pos = (h - cy) / fy + f32(0.3) * tan_fovy
    lim_y_neg = cy / fy + f32(0.3) * tan_fovy
    r00, r01, r02, t0 = viewmat[0, 0], viewmat[0, 1], viewmat[0, 2], viewmat[0, 3]
    r10, r11, r12, t1 = viewmat[1, 0], viewmat[1, 1], viewmat[1, 2], viewmat[1, 3]
    r20, r21, r22, t2 = viewmat[2, 0], viewmat[2, 1], viewmat[2, 2], viewmat[2, 3]
    for i in numba.prange(means.shape[0]):
        valid[i] = False
        px, py, pz = means[i, 0], means[i, 1], means[i, 2]
        x = r00 * px + r01 * py + r02 * pz + t0
        y = r10 * px + r11 * py + r12 * pz + t1
        z = r20 * px + r21 * py + r22 * pz + t2
        if not (z >= f32(NEAR) and z <= f32(FAR)):  # also drops NaN
            continue
        # quat_to_rotmat (wxyz, normalised)
        qw, qx, qy, qz = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        inv = one / f32(math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw))
        qw, qx, qy, qz = qw * inv, qx * inv, qy * inv, qz * inv
        x2, y2, z2 = qx * qx, qy * qy, qz * qz
        xy, xz, yz = qx * qy, qx * qz, qy * qz
        wx, wy, wz = qw * qx, qw * qy, qw * qz
        q00, q01, q02 = one - two * (y2 + z2), two * (xy - wz), two * (xz + wy)
        q10, q11, q12 = two * (xy + wz), one - two * (x2 + z2), two * (yz - wx)
        q20, q21, q22 = two * (xz - wy), two * (yz + wx), one - two * (x2 + y2)
        # M = R S; covar = M M^T
        s0 = f32(math.exp(log_scales[i, 0]))
        s1 = f32(math.exp(log_scales[i, 1]))
        s2 = f32(math.exp(log_scales[i, 2]))
        m00, m01, m02 = q00 * s0, q01 * s1, q02 * s2
        m10, m11, m12 = q10 * s0, q11 * s1, q12 * s2
        m20, m21, m22 = q20 * s0, q21 * s1, q22 * s2
        c00 = m00 * m00 + m01 * m01 + m02 * m02
        c01 = m00 * m10 + m01 * m11 + m02 * m12
        c02 = m00 * m20 + m01 * m21 + m02 * m22
        c11 = m10 * m10 + m11 * m11 + m12 * m12
        c12 = m10 * m20 + m11 * m21 + m12 * m22
        c22 = m20 * m20 + m21 * m21 + m22 * m22
        # covar_c = Rv covar Rv^T (first A = Rv covar, then A Rv^T)
        a00 = r00 * c00 + r01 * c01 + r02 * c02
        a01 = r00 * c01 + r01 * c11 + r02 * c12
        a02 = r00 * c02 + r01 * c12 + r02 * c22
        a10 = r10 * c00 + r11 * c01 + r12 * c02
        a11 = r10 * c01 + r11 * c11 + r12 * c12
        a12 = r10 * c02 + r11 * c12 + r12 * c22
        a20 = r20 * c00 + r21 * c01 + r22 * c02
        a21 = r20 * c01 + r21 * c11 + r22 * c12
        a22 = r20 * c02 + r21 * c12 + r22 * c22
        k00 = a00 * r00 + a01 * r01 + a02 * r02
        k01 = a00 * r10 + a01 * r11 + a02 * r12
        k02 = a00 * r20 + a01 * r21 + a02 * r22
        k11 = a10 * r10 + a11 * r11 + a12 * r12
        k12 = a10 * r20 + a11 * r21 + a12 * r22
        k22 = a20 * r20 + a21 * r21 + a22 * r22
        # persp_proj: J = [[fx/z, 0, -fx tx/z^2], [0, fy/z, -fy ty/z^2]], cov2d = J K J^T
        rz = one / z
        rz2 = rz * rz
        tx = z * min(lim_x_pos, max(-lim_x_neg, x * rz))
        ty = z * min(lim_y_pos, max(-lim_y_neg, y * rz))
        j00, j02 = fx * rz, -fx * tx * rz2
        j11, j12 = fy * rz, -fy * ty * rz2
        b00 = j00 * k00 + j02 * k02  # (J K)[0, :]
        b01 = j00 * k01 + j02 * k12
        b02 = j00 * k02 + j02 * k22
        b11 = j11 * k11 + j12 * k12  # (J K)[1, 1:]
        b12 = j11 * k12 + j12 * k22
        ca = b00 * j00 + b02 * j02 + f32(EPS2D)
        cb = b01 * j11 + b02 * j12
        cc = b11 * j11 + b12 * j12 + f32(EPS2D)
        det = ca * cc - cb * cb
        if not det > f32(0.0):
            continue
        opacity = one / (one + f32(math.exp(-logits[i])))
        if not opacity >= ALPHA_MIN:
            continue
        extend = min(f32(EXTEND_MAX), f32(math.sqrt(two * f32(math.log(opacity / ALPHA_MIN)))))
        rx = f32(math.ceil(extend * f32(math.sqrt(ca))))
        ry = f32(math.ceil(extend * f32(math.sqrt(cc))))
        if rx <= f32(0.0) and ry <= f32(0.0):
            continue
        u = fx * x * rz + cx
        v = fy * y * rz + cy
        if u + rx <= f32(0.0) or u - rx >= w or v + ry <= f32(0.0) or v - ry >= h:
            continue
        if not (math.isfinite(u) and math.isfinite(v) and math.isfinite(rx) and math.isfinite(ry)):
            continue
        inv_det = one / det  # glm::inverse(mat2)
        means2d[i, 0], means2d[i, 1] = u, v
        conics[i, 0], conics[i, 1], conics[i, 2] = cc * inv_det, -cb * inv_det, ca * inv_det
        opacities[i], depths[i] = opacity, z
        radii[i, 0], radii[i, 1] = int(rx), int(ry)
        valid[i] = True


def _project_all(gaussians: Gaussians, view: Camera):
    """Run the projection kernel over every Gaussian; returns its per-Gaussian outputs."""
    n = gaussians.count
    f32 = np.float32
    means2d, conics = np.empty((n, 2), f32), np.empty((n, 3), f32)
    opacities, depths = np.empty(n, f32), np.empty(n, f32)
    radii, valid = np.empty((n, 2), np.int32), np.empty(n, np.bool_)
    intrinsics = np.array([view.fx, view.fy, view.cx, view.cy], dtype=f32)
    _project_kernel(
        np.ascontiguousarray(gaussians.means, f32), np.ascontiguousarray(gaussians.quats, f32),
        np.ascontiguousarray(gaussians.log_scales, f32), np.ascontiguousarray(gaussians.opacity_logits, f32).reshape(-1),
        np.ascontiguousarray(view.world_to_camera, f32), intrinsics, int(view.width), int(view.height),
        means2d, conics, opacities, depths, radii, valid,
    )  # fmt: skip
    return means2d, conics, opacities, depths, radii, valid


def project(gaussians: Gaussians, view: Camera) -> Projected:
    """EWA projection with gsplat 1.5's culling; the survivors in depth order (ties by index)."""
    means2d, conics, opacities, depths, radii, valid = _project_all(gaussians, view)
    ids = _depth_order(valid, depths.view(np.uint32))
    return Projected(ids, means2d[ids], conics[ids], opacities[ids], depths[ids], radii[ids])


@numba.njit(cache=True)
def _depth_order(valid, depth_bits):
    """Indices of the valid Gaussians sorted by depth, ties by index.

    A stable LSD radix sort (3 passes of 11 bits) of the float32 depth bits, which order
    like the depths themselves since every depth is positive (the near plane culls the
    rest): the same order as gsplat's radix sort of (tile | depth bits) keys.
    """
    n = valid.shape[0]
    count = 0
    for i in range(n):
        if valid[i]:
            count += 1
    ids = np.empty(count, np.int64)
    keys = np.empty(count, np.uint32)
    j = 0
    for i in range(n):
        if valid[i]:
            ids[j] = i
            keys[j] = depth_bits[i]
            j += 1
    ids_tmp = np.empty(count, np.int64)
    keys_tmp = np.empty(count, np.uint32)
    for shift in (0, 11, 22):
        hist = np.zeros(2049, np.int64)
        for j in range(count):
            hist[((keys[j] >> shift) & 2047) + 1] += 1
        for b in range(2048):
            hist[b + 1] += hist[b]
        for j in range(count):
            b = (keys[j] >> shift) & 2047
            keys_tmp[hist[b]] = keys[j]
            ids_tmp[hist[b]] = ids[j]
            hist[b] += 1
        keys, keys_tmp = keys_tmp, keys
        ids, ids_tmp = ids_tmp, ids
    return ids


@numba.njit(cache=True)
def _gather_and_bin(ids, means2d, conics, opacities, radii, tiles_x, tiles_y):
    """Per-Gaussian raster parameters in depth order, then a counting sort into tiles.

    Gaussians are visited in depth order, so every tile's list is too. Returns params
    [M, 8] (u, v, conic a, b, c, opacity, radius x, radius y), offsets [T + 1] and
    entries [n_isect] (ranks into params).
    """
    m = ids.shape[0]
    params = np.empty((m, 8), np.float32)
    bounds = np.zeros((m, 4), np.int64)  # tile range x0, x1, y0, y1 (ends exclusive)
    counts = np.zeros(tiles_x * tiles_y + 1, np.int64)
    size = np.float32(TILE)
    for j in range(m):
        i = ids[j]
        params[j, 0], params[j, 1] = means2d[i, 0], means2d[i, 1]
        params[j, 2], params[j, 3], params[j, 4] = conics[i, 0], conics[i, 1], conics[i, 2]
        params[j, 5] = opacities[i]
        params[j, 6], params[j, 7] = radii[i, 0], radii[i, 1]
        if radii[i, 0] <= 0 or radii[i, 1] <= 0:  # isect_tiles gives such a Gaussian no tile
            continue
        tx = means2d[i, 0] / size
        ty = means2d[i, 1] / size
        rx = np.float32(radii[i, 0]) / size
        ry = np.float32(radii[i, 1]) / size
        x0 = min(max(0, int(math.floor(tx - rx))), tiles_x)
        x1 = min(max(0, int(math.ceil(tx + rx))), tiles_x)
        y0 = min(max(0, int(math.floor(ty - ry))), tiles_y)
        y1 = min(max(0, int(math.ceil(ty + ry))), tiles_y)
        bounds[j, 0], bounds[j, 1], bounds[j, 2], bounds[j, 3] = x0, x1, y0, y1
        for t_y in range(y0, y1):
            for t_x in range(x0, x1):
                counts[t_y * tiles_x + t_x + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    entries = np.empty(offsets[-1], np.int32)
    for j in range(m):
        for t_y in range(bounds[j, 2], bounds[j, 3]):
            for t_x in range(bounds[j, 0], bounds[j, 1]):
                t = t_y * tiles_x + t_x
                entries[fill[t]] = j
                fill[t] += 1
    return params, offsets, entries


@numba.njit(parallel=True, cache=True)
def _raster_tiles(tile_order, offsets, entries, params, colors, weights, width, height, tiles_x,
                  contrib, image, final_t):  # fmt: skip
    """Composite the tiles in `tile_order`, each on its own.

    params [M, 8] float32 per Gaussian in depth order: u, v, conic a, b, c, opacity,
    radius x, radius y. Adds w * weights[p] into contrib[entry] (votes; K may be 0) and
    w * colour into image (renders; C may be 0); writes the final transmittance.
    """
    k_channels = weights.shape[2]
    c_channels = colors.shape[1]
    votes_only = k_channels > 0 and c_channels == 0
    f32 = np.float32
    half = f32(0.5)
    for ti in numba.prange(tile_order.shape[0]):
        t = tile_order[ti]
        start, end = offsets[t], offsets[t + 1]
        x0 = (t % tiles_x) * TILE
        y0 = (t // tiles_x) * TILE
        x1 = min(x0 + TILE, width)
        y1 = min(y0 + TILE, height)
        trans = np.ones(TILE * TILE, f32)
        done = np.zeros(TILE * TILE, np.bool_)
        wloc = np.zeros((TILE * TILE, k_channels), f32)
        cloc = np.zeros((TILE * TILE, c_channels), f32)
        acc = np.zeros(k_channels, np.float64)
        alive = 0
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * TILE + (px - x0)
                total = f32(0.0)
                for k in range(k_channels):
                    wloc[p, k] = weights[py, px, k]
                    total += abs(weights[py, px, k])
                if votes_only and total == f32(0.0):
                    done[p] = True  # contributes nothing: never composited
                else:
                    alive += 1
        for e in range(start, end):
            if alive == 0:
                break  # every pixel of the tile is done
            g = entries[e]
            u, v = params[g, 0], params[g, 1]
            ca, cb, cc, opac = params[g, 2], params[g, 3], params[g, 4], params[g, 5]
            # Only pixels inside the ellipse sigma <= log(255 opacity) can reach alpha >= 1/255.
            # Visit the rows of the Gaussian's box and, per row, the span of that ellipse
            # (float64, widened a little against rounding), cut to the tile.
            s0 = math.log(float(opac) * 255.0) * 1.001 + 1e-4
            ry = float(params[g, 7]) + 1e-3
            ya = max(y0, int(math.ceil(v - ry - 0.5)))
            yb = min(y1, int(math.floor(v + ry - 0.5)) + 1)
            for k in range(k_channels):
                acc[k] = 0.0
            for py in range(ya, yb):
                dy = v - (f32(py) + half)
                dy64 = float(dy)
                disc = float(cb) * float(cb) * dy64 * dy64 - float(ca) * (float(cc) * dy64 * dy64 - 2.0 * s0)
                if disc < 0.0:
                    continue
                root = math.sqrt(disc)
                # dx = u - x_centre lies in [lo, hi]
                lo = (-float(cb) * dy64 - root) / float(ca)
                hi = (-float(cb) * dy64 + root) / float(ca)
                xa = max(x0, int(math.ceil(float(u) - hi - 0.5 - 1e-3)))
                xb = min(x1, int(math.floor(float(u) - lo - 0.5 + 1e-3)) + 1)
                for px in range(xa, xb):
                    p = (py - y0) * TILE + (px - x0)
                    if done[p]:
                        continue
                    dx = u - (f32(px) + half)
                    sigma = half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < f32(0.0):
                        continue
                    alpha = min(ALPHA_MAX, opac * f32(math.exp(-sigma)))
                    if alpha < ALPHA_MIN:
                        continue
                    t_p = trans[p]
                    next_t = t_p * (f32(1.0) - alpha)
                    if next_t <= T_MIN:
                        done[p] = True
                        alive -= 1
                        continue
                    wgt = alpha * t_p
                    for k in range(k_channels):
                        acc[k] += wgt * wloc[p, k]
                    for c in range(c_channels):
                        cloc[p, c] += wgt * colors[g, c]
                    trans[p] = next_t
            for k in range(k_channels):
                contrib[e, k] = acc[k]
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * TILE + (px - x0)
                final_t[py, px] = trans[p]
                for c in range(c_channels):
                    image[py, px, c] = cloc[p, c]


@numba.njit(cache=True)
def _scatter(entries, ids, contrib, out):
    for e in range(entries.shape[0]):
        g = ids[entries[e]]
        for k in range(contrib.shape[1]):
            out[g, k] += contrib[e, k]


def _eval_sh_colors(gaussians: Gaussians, view: Camera, ids: np.ndarray) -> np.ndarray:
    """RGB per Gaussian for this view: SH along (mean - camera centre), +0.5, clamped at 0 (as gsplat)."""
    from ..core.sh_rotation import sh_basis

    sh = np.asarray(gaussians.sh)[ids].astype(np.float32)
    degree = int(round(math.sqrt(sh.shape[1]))) - 1
    c2w = np.linalg.inv(view.world_to_camera)
    dirs = np.asarray(gaussians.means)[ids].astype(np.float64) - c2w[:3, 3]
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
    basis = sh_basis(dirs, degree).astype(np.float32)
    rgb = np.einsum("nk,nkc->nc", basis, sh) + np.float32(0.5)
    return np.ascontiguousarray(np.maximum(rgb, 0.0), dtype=np.float32)


class CpuRasterizer:
    """The reference rasterizer (numba, all cores). One view at a time: its tile loop
    already keeps every core busy."""

    name = "cpu"
    batch = 1

    def _prepare(self, gaussians: Gaussians, view: Camera):
        means2d, conics, opacities, depths, radii, valid = _project_all(gaussians, view)
        ids = _depth_order(valid, depths.view(np.uint32))
        tiles_x = (view.width + TILE - 1) // TILE
        tiles_y = (view.height + TILE - 1) // TILE
        params, offsets, entries = _gather_and_bin(ids, means2d, conics, opacities, radii, tiles_x, tiles_y)
        # busiest tiles first, so the threads finish together
        tile_order = np.argsort(-np.diff(offsets), kind="stable")
        tile_order = tile_order[offsets[tile_order + 1] > offsets[tile_order]].astype(np.int64)
        return ids, tiles_x, offsets, entries, params, tile_order

    def _run(self, prep, view, colors, weights, contrib, image, final_t):
        _, tiles_x, offsets, entries, params, tile_order = prep
        with numba.parallel_chunksize(1):
            _raster_tiles(tile_order, offsets, entries, params, colors, weights, int(view.width), int(view.height),
                          tiles_x, contrib, image, final_t)  # fmt: skip

    def votes(self, gaussians: Gaussians, view: Camera, weights: np.ndarray, out: np.ndarray) -> None:
        weights = weights_hwk(weights)
        if weights.ndim != 3 or weights.shape[:2] != (view.height, view.width):
            raise ValueError(f"weights are {weights.shape[:2]}, the view is {(view.height, view.width)}")
        if out.shape != (gaussians.count, weights.shape[2]):
            raise ValueError(f"out is {out.shape}, expected {(gaussians.count, weights.shape[2])}")
        prep = self._prepare(gaussians, view)
        ids, entries = prep[0], prep[3]
        contrib = np.zeros((entries.shape[0], weights.shape[2]), dtype=np.float64)
        no_colors = np.zeros((ids.shape[0], 0), dtype=np.float32)
        image = np.zeros((1, 1, 0), dtype=np.float32)
        final_t = np.ones((view.height, view.width), dtype=np.float32)
        self._run(prep, view, no_colors, weights, contrib, image, final_t)
        if out.dtype == np.float64 and out.flags.c_contiguous:
            _scatter(entries, ids, contrib, out)
        else:
            acc = np.zeros(out.shape, dtype=np.float64)
            _scatter(entries, ids, contrib, acc)
            out += acc

    def votes_masks(self, gaussians: Gaussians, views, masks, ignores, mode: str, out: np.ndarray) -> None:
        for view, mask, ignore in zip(views, masks, ignores, strict=True):
            self.votes(gaussians, view, vote_weights(mask, ignore, mode), out)

    def render(self, gaussians: Gaussians, view: Camera, background: np.ndarray | None = None):
        if gaussians.sh is None:
            raise ValueError("rendering needs SH colours")
        prep = self._prepare(gaussians, view)
        colors = _eval_sh_colors(gaussians, view, prep[0])
        image = np.zeros((view.height, view.width, 3), dtype=np.float32)
        final_t = np.ones((view.height, view.width), dtype=np.float32)
        no_weights = np.zeros((1, 1, 0), dtype=np.float32)
        contrib = np.zeros((0, 0), dtype=np.float64)
        self._run(prep, view, colors, no_weights, contrib, image, final_t)
        if background is not None:
            image += final_t[:, :, None] * np.asarray(background, dtype=np.float32).reshape(-1)[None, None, :3]
        return image, (np.float32(1.0) - final_t).astype(np.float32)
