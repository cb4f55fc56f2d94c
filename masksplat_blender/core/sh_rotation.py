"""Real spherical harmonics in the 3DGS convention, and their rotation.

The basis and constants are those of the INRIA trainer's `eval_sh` (and gsplat's), so
coefficients rotated here look the same in any 3DGS renderer. A rotation acts on each
band separately through a (2l+1)x(2l+1) matrix, found once per rotation by least squares
on fixed directions; applying it is one matmul over all Gaussians.
"""

from __future__ import annotations

import numpy as np

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_basis(dirs: np.ndarray, degree: int) -> np.ndarray:
    """[N, (degree+1)^2] basis values at unit directions [N, 3], DC first."""
    x, y, z = (dirs[:, i].astype(np.float64) for i in range(3))
    out = [np.full_like(x, C0)]
    if degree >= 1:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            C2[0] * x * y,
            C2[1] * y * z,
            C2[2] * (2.0 * zz - xx - yy),
            C2[3] * x * z,
            C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            C3[0] * y * (3 * xx - yy),
            C3[1] * x * y * z,
            C3[2] * y * (4 * zz - xx - yy),
            C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            C3[4] * x * (4 * zz - xx - yy),
            C3[5] * z * (xx - yy),
            C3[6] * x * (xx - 3 * yy),
        ]
    return np.stack(out, axis=1)


def eval_sh(sh: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Colour [N, 3] of SH coefficients [N, K, 3] (DC first) seen along unit `dirs` [N, 3] (no +0.5)."""
    degree = int(round(np.sqrt(sh.shape[1]))) - 1
    basis = sh_basis(dirs, degree)
    return np.einsum("nk,nkc->nc", basis, sh.astype(np.float64))


def _fibonacci_dirs(count: int) -> np.ndarray:
    i = np.arange(count) + 0.5
    z = 1.0 - 2.0 * i / count
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (1.0 + 5**0.5) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def band_rotations(rotation: np.ndarray, degree: int) -> list[np.ndarray]:
    """For bands 1..degree, D_l with Y_l(R^T d) = Y_l(d) D_l, so c' = D_l c gives f'(R d) = f(d)."""
    dirs = _fibonacci_dirs(64)
    rotated = dirs @ np.asarray(rotation, dtype=np.float64)  # rows R^T d
    basis, basis_rotated = sh_basis(dirs, degree), sh_basis(rotated, degree)
    out = []
    for band in range(1, degree + 1):
        cols = slice(band * band, (band + 1) * (band + 1))
        solution, *_ = np.linalg.lstsq(basis[:, cols], basis_rotated[:, cols], rcond=None)
        out.append(solution)
    return out


def rotate_sh(f_rest: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Rotate higher-order coefficients [N, M, 3] (M = 3, 8 or 15) by the 3x3 `rotation`."""
    m = f_rest.shape[1]
    degree = {0: 0, 3: 1, 8: 2, 15: 3}[m]
    out = f_rest.astype(np.float64, copy=True)
    for band, matrix in enumerate(band_rotations(rotation, degree), start=1):
        rows = slice(band * band - 1, (band + 1) * (band + 1) - 1)
        out[:, rows, :] = np.einsum("ij,njc->nic", matrix, out[:, rows, :])
    return out.astype(f_rest.dtype, copy=False)
