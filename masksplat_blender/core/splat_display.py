"""What the viewport's Gaussian display draws: per-Gaussian data packed for the GPU once per
change, the back-to-front order for a view, and when a view has turned enough to re-sort.

Packing (numpy only; ui/splat_display uploads it). Four RGBA32F textures, row-major in
rows of `TEXTURE_WIDTH` texels, texel i for Gaussian i, all in the object's own space (the
object matrix is a uniform, so a transform shows at once without a new upload):

    texel 0: mean x, y, z, opacity (sigmoid of the logit)
    texel 1: covariance xx, xy, xz, yy
    texel 2: covariance yz, zz, 0, 0
    texel 3: colour r, g, b (0.5 + C0 f_dc, or the SH seen from the eye; >= 0), 1

The covariance is R S S^T R^T (S = exp(log-scale) times the object's splat scale), the
same as gsplat's. The draw order is one R32F texture of Gaussian indices (Blender's Python
textures take float data only: exact up to MAX_GAUSSIANS = 2^24 an object), farthest first.
That is 4 * 16 + 4 = 68 bytes a Gaussian of GPU memory (SH0 or not: SH colours are
evaluated here per view and uploaded as texel 3).

Order: gsplat sorts by view-space depth z (not by distance to the eye), so the order
only depends on the direction of the view axis in the object's space: moving the eye
without turning never changes it. Depths are quantised to 16 bits across the object and
sorted by one stable radix pass (numpy's sort for 16-bit keys), ~16 ms for 1M Gaussians
(24 bits took two passes, ~36 ms); Gaussians within 1/65536 of the object's depth of each
other keep their file order, which no one can see.
"""

from __future__ import annotations

import math

import numpy as np

from .sh_rotation import eval_sh
from .splat_io import SH_C0
from .transform import quat_to_matrix

TEXTURE_WIDTH = 4096  # texels a row: 4096 x 16384 holds 67M Gaussians
TEXELS = 4  # RGBA32F texels a Gaussian
BYTES_PER_GAUSSIAN = TEXELS * 16 + 4  # and the R32F order texture
CHUNK = 1 << 18  # Gaussians a packing step: keeps float64 temporaries small for millions
DEPTH_BITS = 16  # one radix pass (see the order above)
MAX_GAUSSIANS = 1 << 24  # an object's Gaussians the order texture indexes exactly (float32 indices)


def texture_rows(count: int, width: int = TEXTURE_WIDTH) -> int:
    """Rows of a texture of `width` texels that hold `count` Gaussians (at least one)."""
    return max(1, -(-int(count) // width))


def covariances(quats_wxyz: np.ndarray, log_scales: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """[N, 6] float32 (xx, xy, xz, yy, yz, zz) of R S S^T R^T, S = exp(log_scales) * scale."""
    rotations = quat_to_matrix(np.asarray(quats_wxyz, dtype=np.float64))
    m = rotations * (np.exp(np.asarray(log_scales, dtype=np.float64)) * float(scale))[:, None, :]
    sigma = m @ m.transpose(0, 2, 1)
    return sigma[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]].astype(np.float32)


def opacities(logits: np.ndarray) -> np.ndarray:
    """[N] float32 sigmoid of the opacity logits."""
    return (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))).astype(np.float32)


def base_colours(f_dc: np.ndarray) -> np.ndarray:
    """[N, 3] float32 view-independent colour 0.5 + C0 f_dc, clamped at 0 like the renderers."""
    return np.maximum(0.5 + SH_C0 * np.asarray(f_dc, dtype=np.float32), 0.0).astype(np.float32)


def sh_colours(sh: np.ndarray, means: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """[N, 3] float32 colour of SH [N, K, 3] (DC first, in the frame of `means`) seen from `eye`:
    0.5 + SH(normalise(mean - eye)), clamped at 0 (3DGS's rule)."""
    out = np.empty((len(means), 3), dtype=np.float32)
    for start in range(0, len(means), CHUNK):
        part = slice(start, start + CHUNK)
        dirs = np.asarray(means[part], dtype=np.float64) - np.asarray(eye, dtype=np.float64)
        dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
        out[part] = np.maximum(eval_sh(sh[part], dirs) + 0.5, 0.0)
    return out


def pack(
    means, quats_wxyz, log_scales, logits, colours, scale: float = 1.0, width: int = TEXTURE_WIDTH
) -> np.ndarray:
    """[TEXELS, rows * width, 4] float32 texture data (layout in the module docstring); rows past
    the last Gaussian are zero (opacity 0: never drawn)."""
    n = len(means)
    out = np.zeros((TEXELS, texture_rows(n, width) * width, 4), dtype=np.float32)
    out[0, :n, :3] = means
    out[3, :n, :3] = colours
    out[3, :n, 3] = 1.0
    for start in range(0, n, CHUNK):
        part = slice(start, min(n, start + CHUNK))
        out[0, part, 3] = opacities(logits[part])
        cov = covariances(quats_wxyz[part], log_scales[part], scale)
        out[1, part] = cov[:, :4]
        out[2, part, :2] = cov[:, 4:]
    return out


def colour_texels(colours: np.ndarray, width: int = TEXTURE_WIDTH) -> np.ndarray:
    """[rows * width, 4] float32 texel 3 alone (a new view's SH colours, a new tint)."""
    out = np.zeros((texture_rows(len(colours), width) * width, 4), dtype=np.float32)
    out[: len(colours), :3] = colours
    out[: len(colours), 3] = 1.0
    return out


def view_axis(view_matrix, model_matrix) -> np.ndarray:
    """The unit row of (view @ model) that gives a point's view-space z from its object-space
    position (plus a constant): all that the depth order depends on."""
    row = (np.asarray(view_matrix, dtype=np.float64) @ np.asarray(model_matrix, dtype=np.float64))[2, :3]
    return row / max(np.linalg.norm(row), 1e-30)


def back_to_front(means: np.ndarray, axis: np.ndarray, width: int = TEXTURE_WIDTH) -> np.ndarray:
    """[rows * width] int32 indices, farthest first (Blender looks down -z: the smallest z first),
    ties in index order; padded with index 0 (drawn as nothing past the count)."""
    n = len(means)
    out = np.zeros(texture_rows(n, width) * width, dtype=np.int32)
    if n == 0:
        return out
    z = np.asarray(means, dtype=np.float32) @ np.asarray(axis, dtype=np.float32)
    low, high = float(z.min()), float(z.max())
    span = high - low
    if not math.isfinite(span) or span <= 0.0:
        out[:n] = np.arange(n, dtype=np.int32)
        return out
    top = (1 << DEPTH_BITS) - 1
    key = (z - np.float32(low)) * np.float32(top / span)
    np.clip(key, 0, top, out=key)  # float32 rounding may carry the farthest past the top
    out[:n] = np.argsort(key.astype(np.uint16), kind="stable")  # numpy's radix sort: one pass
    return out


def turned(old_axis, new_axis, degrees: float) -> bool:
    """Whether the view axis turned more than `degrees` since the last sort (None: never sorted)."""
    if old_axis is None:
        return True
    cosine = float(np.clip(np.dot(old_axis, new_axis), -1.0, 1.0))
    return math.degrees(math.acos(cosine)) > degrees


def moved(old_eye, new_eye, centre, radius: float, degrees: float) -> bool:
    """Whether the eye moved enough for view-dependent colours to change: more than `degrees`
    as seen from the splat's centre (at least its radius away). None: never coloured."""
    if old_eye is None:
        return True
    distance = max(float(np.linalg.norm(np.asarray(new_eye) - np.asarray(centre))), float(radius), 1e-9)
    return float(np.linalg.norm(np.asarray(new_eye) - np.asarray(old_eye))) > math.radians(degrees) * distance


def project_ewa(means, covs, opacity, view_matrix, projection, width: int, height: int, eps2d: float = 0.3):
    """The display's projection in numpy, as its vertex shader does it (the twin the tests check
    against the backend's): points in world space, Blender's view and projection matrices
    (perspective or orthographic), pixels in window coordinates (x right, y up, centres at +0.5).

    Returns (centres [N, 2], covariance [N, 3] (a, b, c), extent [N] in standard deviations,
    visible [N] bool). The Jacobian is that of the full projection to pixels, with the centre's
    NDC clamped to +-1.3 (gsplat's tan-fov clamp: 1.3x the image), and eps2d on the diagonal.
    """
    p = np.asarray(projection, dtype=np.float64)
    v = np.asarray(view_matrix, dtype=np.float64)
    pv = np.c_[np.asarray(means, np.float64), np.ones(len(means))] @ v.T
    clip = pv @ p.T
    w = clip[:, 3]
    ndc = clip[:, :2] / w[:, None]
    ndc_clamped = np.clip(ndc, -1.3, 1.3)
    half = np.array([width, height], dtype=np.float64) / 2.0
    jx = half[0] * (p[0, :3][None] - ndc_clamped[:, :1] * p[3, :3][None]) / w[:, None]
    jy = half[1] * (p[1, :3][None] - ndc_clamped[:, 1:] * p[3, :3][None]) / w[:, None]
    c = np.asarray(covs, np.float64)
    sigma = np.stack([c[:, [0, 1, 2]], c[:, [1, 3, 4]], c[:, [2, 4, 5]]], axis=1)
    r = v[:3, :3]
    sigma_v = r @ sigma @ r.T
    a = np.einsum("ni,nij,nj->n", jx, sigma_v, jx) + eps2d
    b = np.einsum("ni,nij,nj->n", jx, sigma_v, jy)
    cc = np.einsum("ni,nij,nj->n", jy, sigma_v, jy) + eps2d
    op = np.asarray(opacity, np.float64)
    near = (w > 0.01) if p[3, 3] == 0.0 else np.abs(clip[:, 2]) <= 1.0
    visible = near & (a * cc - b * b > 0) & (op >= 1.0 / 255.0)
    extent = np.sqrt(2.0 * np.log(np.maximum(255.0 * op, 1.0)))
    centres = (ndc + 1.0) * half
    return centres, np.stack([a, b, cc], axis=1), extent, visible
