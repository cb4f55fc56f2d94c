"""Slow, readable references for the CPU rasterizer: a differentiable PyTorch compositor.

It projects in float64 with the same rules as gsplat 1.5 and composites every pixel
against every Gaussian whose tile range covers it, so votes can be checked as real
autograd gradients of sum(mask * render) with respect to the colours.
"""

from __future__ import annotations

import math

import numpy as np
import torch

TILE = 16


def project_torch(means, quats, log_scales, logits, viewmat, K, width, height):
    """float64 EWA projection; returns means2d, conics, opacity, depth, radii, valid (all [N...])."""
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    means, quats, log_scales, logits, viewmat, K = map(t, (means, quats, log_scales, logits, viewmat, K))
    q = quats / quats.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    rot = torch.stack(
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
         2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
         2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], 1,
    ).reshape(-1, 3, 3)  # fmt: skip
    m = rot * log_scales.exp()[:, None, :]
    cov = viewmat[:3, :3] @ (m @ m.transpose(1, 2)) @ viewmat[:3, :3].T
    mc = means @ viewmat[:3, :3].T + viewmat[:3, 3]
    zc = mc[:, 2]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    tx = zc * torch.clamp(mc[:, 0] / zc, -(cx / fx + 0.3 * tan_x), (width - cx) / fx + 0.3 * tan_x)
    ty = zc * torch.clamp(mc[:, 1] / zc, -(cy / fy + 0.3 * tan_y), (height - cy) / fy + 0.3 * tan_y)
    jac = torch.zeros(len(zc), 2, 3, dtype=torch.float64)
    jac[:, 0, 0], jac[:, 0, 2] = fx / zc, -fx * tx / zc**2
    jac[:, 1, 1], jac[:, 1, 2] = fy / zc, -fy * ty / zc**2
    cov2 = jac @ cov @ jac.transpose(1, 2)
    a, b, c = cov2[:, 0, 0] + 0.3, cov2[:, 0, 1], cov2[:, 1, 1] + 0.3
    det = a * c - b * b
    conics = torch.stack([c / det, -b / det, a / det], 1)
    means2d = torch.stack([fx * mc[:, 0] / zc + cx, fy * mc[:, 1] / zc + cy], 1)
    opacity = torch.sigmoid(logits)
    extend = torch.clamp(torch.sqrt(2 * torch.log(torch.clamp(opacity * 255, min=1.0))), max=3.33)
    radii = torch.stack([torch.ceil(extend * a.sqrt()), torch.ceil(extend * c.sqrt())], 1)
    valid = (zc >= 0.01) & (det > 0) & (opacity >= 1 / 255) & ((radii > 0).any(1))
    valid &= ~((means2d[:, 0] + radii[:, 0] <= 0) | (means2d[:, 0] - radii[:, 0] >= width))
    valid &= ~((means2d[:, 1] + radii[:, 1] <= 0) | (means2d[:, 1] - radii[:, 1] >= height))
    return means2d, conics, opacity, zc, radii, valid


def blend_weights(means2d, conics, opacity, depth, radii, valid, width, height):
    """w[p, i] = alpha_i(p) T_i(p) for every pixel p (row-major) and Gaussian i, gsplat's rules."""
    tiles_x, tiles_y = math.ceil(width / TILE), math.ceil(height / TILE)
    lo_x = torch.clamp(torch.floor(means2d[:, 0] / TILE - radii[:, 0] / TILE), 0, tiles_x)
    hi_x = torch.clamp(torch.ceil(means2d[:, 0] / TILE + radii[:, 0] / TILE), 0, tiles_x)
    lo_y = torch.clamp(torch.floor(means2d[:, 1] / TILE - radii[:, 1] / TILE), 0, tiles_y)
    hi_y = torch.clamp(torch.ceil(means2d[:, 1] / TILE + radii[:, 1] / TILE), 0, tiles_y)
    order = torch.argsort(depth, stable=True)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    px, py = xs.reshape(-1, 1).double() + 0.5, ys.reshape(-1, 1).double() + 0.5
    tx, ty = (xs.reshape(-1, 1) // TILE).double(), (ys.reshape(-1, 1) // TILE).double()
    o = order
    covered = valid[o] & (tx >= lo_x[o]) & (tx < hi_x[o]) & (ty >= lo_y[o]) & (ty < hi_y[o])
    dx, dy = means2d[o, 0] - px, means2d[o, 1] - py
    sigma = 0.5 * (conics[o, 0] * dx * dx + conics[o, 2] * dy * dy) + conics[o, 1] * dx * dy
    alpha = torch.clamp(opacity[o] * torch.exp(-sigma), max=0.999)
    alpha = torch.where(covered & (sigma >= 0) & (alpha >= 1 / 255), alpha, torch.zeros_like(alpha))
    trans_after = torch.cumprod(1 - alpha, dim=1)
    trans_before = torch.cat([torch.ones_like(alpha[:, :1]), trans_after[:, :-1]], 1)
    weights = alpha * trans_before * (trans_after > 1e-4)
    out = torch.zeros_like(weights)
    out[:, o] = weights
    return out


def autograd_votes(gaussians, view, weights_hwk: np.ndarray) -> np.ndarray:
    """dL/dc for L = sum_p sum_k m_k(p) C_k(p), colours c a zero tensor that requires grad."""
    proj = project_torch(gaussians.means, gaussians.quats, gaussians.log_scales, gaussians.opacity_logits,
                         view.world_to_camera, view.K(), view.width, view.height)  # fmt: skip
    w = blend_weights(*proj, view.width, view.height)
    k = weights_hwk.shape[2]
    colors = torch.zeros(gaussians.count, k, dtype=torch.float64, requires_grad=True)
    render = w @ colors  # [P, K]
    loss = (torch.as_tensor(weights_hwk.reshape(-1, k), dtype=torch.float64) * render).sum()
    loss.backward()
    return colors.grad.numpy()


def brute_force_votes(gaussians, view, weights_hwk: np.ndarray) -> np.ndarray:
    """The same votes with no tiles at all: every pixel against every Gaussian (numpy).

    Only the per-Gaussian box decides which pixels a Gaussian may touch (pixel centre
    within radius_x, radius_y of its mean); depth order, alpha and transmittance rules as
    gsplat's. For each pixel the depth-sorted alphas give T by a cumulative product; a
    pixel stops before the first Gaussian that would bring T to 1e-4 or below.
    """
    proj = [p.numpy() for p in project_torch(gaussians.means, gaussians.quats, gaussians.log_scales,
                                            gaussians.opacity_logits, view.world_to_camera, view.K(), view.width, view.height)]  # fmt: skip
    means2d, conics, opacity, depth, radii, valid = proj
    order = np.array([i for i in np.argsort(depth, kind="stable") if valid[i]], dtype=np.int64)
    u, v = means2d[order, 0], means2d[order, 1]
    a, b, c, o = conics[order, 0], conics[order, 1], conics[order, 2], opacity[order]
    rx, ry = radii[order, 0], radii[order, 1]
    votes = np.zeros((gaussians.count, weights_hwk.shape[2]))
    for y in range(view.height):
        for x in range(view.width):
            dx, dy = u - (x + 0.5), v - (y + 0.5)
            inside = (np.abs(dx) <= rx) & (np.abs(dy) <= ry)
            sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
            alpha = np.minimum(0.999, o * np.exp(-sigma))
            alpha = np.where(inside & (sigma >= 0) & (alpha >= 1 / 255), alpha, 0.0)
            after = np.cumprod(1.0 - alpha)
            before = np.concatenate([[1.0], after[:-1]])
            w = alpha * before * (after > 1e-4)
            np.add.at(votes, order, w[:, None] * weights_hwk[y, x][None, :])
    return votes


SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
         1.445305721320277, -0.5900435899266435)  # fmt: skip


def eval_sh_3dgs(sh, dirs):
    """The original 3DGS `eval_sh` (utils/sh_utils.py): sh [N, (d+1)^2, 3], unit dirs [N, 3]."""
    deg = int(round(math.sqrt(sh.shape[1]))) - 1
    x, y, z = dirs[:, 0:1], dirs[:, 1:2], dirs[:, 2:3]
    r = SH_C0 * sh[:, 0]
    if deg > 0:
        r = r - SH_C1 * y * sh[:, 1] + SH_C1 * z * sh[:, 2] - SH_C1 * x * sh[:, 3]
    if deg > 1:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        r = (r + SH_C2[0] * xy * sh[:, 4] + SH_C2[1] * yz * sh[:, 5] + SH_C2[2] * (2 * zz - xx - yy) * sh[:, 6]
             + SH_C2[3] * xz * sh[:, 7] + SH_C2[4] * (xx - yy) * sh[:, 8])  # fmt: skip
    if deg > 2:
        r = (r + SH_C3[0] * y * (3 * xx - yy) * sh[:, 9] + SH_C3[1] * xy * z * sh[:, 10]
             + SH_C3[2] * y * (4 * zz - xx - yy) * sh[:, 11] + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[:, 12]
             + SH_C3[4] * x * (4 * zz - xx - yy) * sh[:, 13] + SH_C3[5] * z * (xx - yy) * sh[:, 14]
             + SH_C3[6] * x * (xx - 3 * yy) * sh[:, 15])  # fmt: skip
    return r


def reference_render(gaussians, view, background=None):
    """RGB [H, W, 3] and alpha [H, W] in float64: SH colours along (mean - camera centre),
    +0.5, clamped at 0 (gsplat's rasterization), composited with the weights above."""
    proj = project_torch(gaussians.means, gaussians.quats, gaussians.log_scales, gaussians.opacity_logits,
                         view.world_to_camera, view.K(), view.width, view.height)  # fmt: skip
    w = blend_weights(*proj, view.width, view.height)
    viewmat = torch.as_tensor(view.world_to_camera, dtype=torch.float64)
    centre = -viewmat[:3, :3].T @ viewmat[:3, 3]
    dirs = torch.as_tensor(np.asarray(gaussians.means), dtype=torch.float64) - centre
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    colors = torch.clamp(eval_sh_3dgs(torch.as_tensor(np.asarray(gaussians.sh), dtype=torch.float64), dirs) + 0.5, min=0)
    rgb = (w @ colors).reshape(view.height, view.width, 3)
    alpha = w.sum(1).reshape(view.height, view.width)
    if background is not None:
        rgb = rgb + (1 - alpha)[:, :, None] * torch.as_tensor(np.asarray(background), dtype=torch.float64)
    return rgb.numpy(), alpha.numpy()


def tile_compositor_votes(gaussians, view, weights_hwk: np.ndarray) -> np.ndarray:
    """Votes by a plain float64 PyTorch compositor, one 16x16 tile at a time (the benchmark's baseline)."""
    means2d, conics, opacity, depth, radii, valid = project_torch(
        gaussians.means, gaussians.quats, gaussians.log_scales, gaussians.opacity_logits,
        view.world_to_camera, view.K(), view.width, view.height,
    )  # fmt: skip
    tiles_x, tiles_y = math.ceil(view.width / TILE), math.ceil(view.height / TILE)
    lo = torch.clamp(torch.floor(means2d / TILE - radii / TILE), min=0)
    hi = torch.ceil(means2d / TILE + radii / TILE)
    order = torch.argsort(depth, stable=True)
    order = order[valid[order]]
    weights = torch.as_tensor(weights_hwk, dtype=torch.float64)
    votes = torch.zeros(gaussians.count, weights.shape[2], dtype=torch.float64)
    for ty in range(tiles_y):
        for tx in range(tiles_x):
            ids = order[(lo[order, 0] <= tx) & (tx < hi[order, 0]) & (lo[order, 1] <= ty) & (ty < hi[order, 1])]
            if ids.numel() == 0:
                continue
            ys, xs = torch.meshgrid(torch.arange(ty * TILE, min((ty + 1) * TILE, view.height)),
                                    torch.arange(tx * TILE, min((tx + 1) * TILE, view.width)), indexing="ij")  # fmt: skip
            px, py = xs.reshape(-1, 1).double() + 0.5, ys.reshape(-1, 1).double() + 0.5
            dx, dy = means2d[ids, 0] - px, means2d[ids, 1] - py
            sigma = 0.5 * (conics[ids, 0] * dx * dx + conics[ids, 2] * dy * dy) + conics[ids, 1] * dx * dy
            alpha = torch.clamp(opacity[ids] * torch.exp(-sigma), max=0.999)
            alpha = torch.where((sigma >= 0) & (alpha >= 1 / 255), alpha, torch.zeros_like(alpha))
            after = torch.cumprod(1 - alpha, dim=1)
            before = torch.cat([torch.ones_like(alpha[:, :1]), after[:, :-1]], 1)
            w = alpha * before * (after > 1e-4)
            votes.index_add_(0, ids, w.T @ weights[ys.reshape(-1), xs.reshape(-1)])
    return votes.numpy()
