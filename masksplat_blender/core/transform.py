"""Bake an object transform into Gaussians: positions, rotations, log-scales and SH.

A similarity (rotation, uniform scale, translation) composes rotations and adds log(s)
to the log-scales. Any other linear part changes the covariance's shape, so each
covariance A R S^2 R^T A^T is re-diagonalised. SH rotate with the rotation part of A.
Mirroring cannot be expressed by a Gaussian's rotation quaternion and is refused.
"""

from __future__ import annotations

import numpy as np

from .sh_rotation import rotate_sh


def quat_to_matrix(quats: np.ndarray) -> np.ndarray:
    """[N, 4] wxyz (normalised here) to [N, 3, 3] rotation matrices."""
    q = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=1,
    ).reshape(-1, 3, 3)  # fmt: skip


def matrix_to_quat(matrices: np.ndarray) -> np.ndarray:
    """[N, 3, 3] rotation matrices to [N, 4] unit wxyz with w >= 0 (Shepperd's method)."""
    m = matrices
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    candidates = np.stack(
        [
            np.stack([1 + trace, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], 1),
            np.stack([m[:, 2, 1] - m[:, 1, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2], m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], 1),
            np.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], 1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], m[:, 1, 2] + m[:, 2, 1]], 1),
            np.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1], 1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], 1),
        ],
        axis=1,
    )  # [N, 4 choices, 4]
    choice = np.argmax(np.stack([trace, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], 1), axis=1)
    q = candidates[np.arange(len(m)), choice]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions (broadcasting)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def split_linear(linear: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Rotation part of a 3x3 (polar decomposition) and its uniform scale, or None if not uniform."""
    linear = np.asarray(linear, dtype=np.float64)
    det = np.linalg.det(linear)
    if det <= 0:
        raise ValueError(
            "the object's transform mirrors it (a negative scale); Gaussians cannot be mirrored. "
            "Clear the negative scale (or apply it to another object) and export again"
        )
    u, sigma, vt = np.linalg.svd(linear)
    rotation = u @ vt
    uniform = float(sigma.mean()) if np.allclose(sigma, sigma.mean(), rtol=1e-6, atol=0) else None
    return rotation, uniform


def bake_transform(means, quats_wxyz, log_scales, f_rest, matrix):
    """Apply a 4x4 world matrix to Gaussians; returns (means, quats, log_scales, f_rest) in float64.

    means [N, 3], quats_wxyz [N, 4], log_scales [N, 3], f_rest [N, M, 3] or None.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    linear, offset = matrix[:3, :3], matrix[:3, 3]
    rotation, uniform = split_linear(linear)
    means = np.asarray(means, dtype=np.float64) @ linear.T + offset
    quats = np.asarray(quats_wxyz, dtype=np.float64)
    log_scales = np.asarray(log_scales, dtype=np.float64)
    if uniform is not None:
        q_rot = matrix_to_quat(rotation[None])[0]
        quats = quat_multiply(q_rot, quats / np.linalg.norm(quats, axis=1, keepdims=True))
        log_scales = log_scales + np.log(uniform)
    else:
        frames = quat_to_matrix(quats)
        covariance = frames * np.exp(2.0 * log_scales)[:, None, :] @ np.transpose(frames, (0, 2, 1))
        covariance = linear @ covariance @ linear.T
        values, vectors = np.linalg.eigh(covariance)
        flip = np.linalg.det(vectors) < 0
        vectors[flip, :, 2] *= -1.0
        quats = matrix_to_quat(vectors)
        log_scales = 0.5 * np.log(np.maximum(values, 1e-300))
    if f_rest is not None and f_rest.shape[1] > 0:
        f_rest = rotate_sh(np.asarray(f_rest, dtype=np.float64), rotation)
    return means, quats, log_scales, f_rest


def apply_transform_to_vertices(vertices: np.ndarray, sh_degree: int, matrix) -> np.ndarray:
    """A copy of a structured vertex array (any PLY layout) with `matrix` baked in.

    Only positions, rotations, scales, SH and normals change; other properties are kept
    bit for bit, and the identity returns the data unchanged.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if np.array_equal(matrix, np.eye(4)):
        return vertices.copy()
    names = vertices.dtype.names

    def stack(fields):
        return np.stack([vertices[f].astype(np.float64) for f in fields], axis=1)

    m = (sh_degree + 1) ** 2 - 1
    f_rest = None
    if m:
        f_rest = stack([f"f_rest_{i}" for i in range(3 * m)]).reshape(-1, 3, m).transpose(0, 2, 1)
    means, quats, log_scales, f_rest = bake_transform(
        stack(("x", "y", "z")), stack([f"rot_{i}" for i in range(4)]), stack([f"scale_{i}" for i in range(3)]), f_rest, matrix
    )
    out = vertices.copy()
    for i, name in enumerate(("x", "y", "z")):
        out[name] = means[:, i]
    for i in range(4):
        out[f"rot_{i}"] = quats[:, i]
    for i in range(3):
        out[f"scale_{i}"] = log_scales[:, i]
    if f_rest is not None:
        flat = f_rest.transpose(0, 2, 1).reshape(-1, 3 * m)
        for i in range(3 * m):
            out[f"f_rest_{i}"] = flat[:, i]
    if {"nx", "ny", "nz"} <= set(names):
        rotation, _ = split_linear(matrix[:3, :3])
        normals = stack(("nx", "ny", "nz")) @ rotation.T
        for i, name in enumerate(("nx", "ny", "nz")):
            out[name] = normals[:, i]
    return out
