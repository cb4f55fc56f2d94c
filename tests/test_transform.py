"""Baking object transforms into Gaussians: SH rotation, covariances, refusal of mirrors."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import make_splat_data

from masksplat_blender.core.sh_rotation import eval_sh, rotate_sh
from masksplat_blender.core.transform import (
    apply_transform_to_vertices,
    bake_transform,
    matrix_to_quat,
    quat_to_matrix,
)


def random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=(1, 4))
    return quat_to_matrix(q)[0]


def covariances(quats, log_scales):
    r = quat_to_matrix(quats)
    return r * np.exp(2 * log_scales)[:, None, :] @ np.transpose(r, (0, 2, 1))


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_rotated_sh_seen_from_rotated_direction_is_unchanged(degree):
    rng = np.random.default_rng(degree)
    n, m = 200, (degree + 1) ** 2 - 1
    dc = rng.normal(size=(n, 1, 3))
    rest = rng.normal(size=(n, m, 3)).astype(np.float32)
    dirs = rng.normal(size=(n, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    for _ in range(5):
        rotation = random_rotation(rng)
        rotated = rotate_sh(rest, rotation)
        assert rotated.dtype == np.float32
        before = eval_sh(np.concatenate([dc, rest], 1), dirs)
        after = eval_sh(np.concatenate([dc, rotated], 1), dirs @ rotation.T)
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_identity_rotation_keeps_sh():
    rest = np.random.default_rng(0).normal(size=(10, 15, 3))
    np.testing.assert_allclose(rotate_sh(rest, np.eye(3)), rest, atol=1e-12)


def test_quaternion_matrix_round_trip():
    q = np.random.default_rng(1).normal(size=(1000, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, :1])
    np.testing.assert_allclose(matrix_to_quat(quat_to_matrix(q)), q, atol=1e-9)


@pytest.mark.parametrize(
    "linear",
    [
        np.eye(3) * 2.5,
        np.diag([1.0, 2.0, 0.5]),
        np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.2], [0.1, 0.0, 0.7]]),  # with shear
    ],
)
def test_covariances_and_means_transform_like_the_matrix(linear):
    rng = np.random.default_rng(2)
    rotation = random_rotation(rng)
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ linear
    matrix[:3, 3] = [0.5, -2.0, 3.0]
    data = make_splat_data(300, 2, seed=3)
    means, quats, log_scales, f_rest = bake_transform(
        data.means(), data.quats_wxyz(), data.log_scales(), data.f_rest(), matrix
    )
    a = matrix[:3, :3]
    expected = a @ covariances(data.quats_wxyz().astype(np.float64), data.log_scales().astype(np.float64)) @ a.T
    got = covariances(quats, log_scales)
    scale = np.abs(expected).max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(got / scale, expected / scale, atol=1e-6)
    np.testing.assert_allclose(means, data.means() @ a.T + matrix[:3, 3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-9)


def test_mirroring_is_refused():
    data = make_splat_data(5, 1)
    with pytest.raises(ValueError, match="mirror"):
        apply_transform_to_vertices(data.vertices, 1, np.diag([-1.0, 1.0, 1.0, 1.0]))


def test_identity_is_bit_identical_and_extra_fields_untouched():
    data = make_splat_data(100, 3, extra=(("label", "u1"),), byte_order=">")
    same = apply_transform_to_vertices(data.vertices, 3, np.eye(4))
    assert same.tobytes() == data.vertices.tobytes()
    moved = apply_transform_to_vertices(data.vertices, 3, np.diag([2.0, 2.0, 2.0, 1.0]))
    assert moved.dtype == data.vertices.dtype
    np.testing.assert_array_equal(moved["label"], data.vertices["label"])
    np.testing.assert_allclose(moved["scale_0"], data.vertices["scale_0"] + np.log(2.0), atol=1e-6)


def test_composition_equals_product():
    rng = np.random.default_rng(5)
    m1, m2 = np.eye(4), np.eye(4)
    m1[:3, :3], m1[:3, 3] = random_rotation(rng) * 1.5, [1, 2, 3]
    m2[:3, :3], m2[:3, 3] = random_rotation(rng) @ np.diag([1.0, 0.5, 2.0]), [0, -1, 0]
    data = make_splat_data(100, 3, seed=6)
    twice = apply_transform_to_vertices(apply_transform_to_vertices(data.vertices, 3, m1), 3, m2)
    once = apply_transform_to_vertices(data.vertices, 3, m2 @ m1)
    from masksplat_blender.core.splat_io import SplatData

    a, b = SplatData(twice, 3), SplatData(once, 3)
    np.testing.assert_allclose(a.means(), b.means(), rtol=1e-5, atol=1e-5)
    ca = covariances(a.quats_wxyz().astype(np.float64), a.log_scales().astype(np.float64))
    cb = covariances(b.quats_wxyz().astype(np.float64), b.log_scales().astype(np.float64))
    np.testing.assert_allclose(ca, cb, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(a.f_rest(), b.f_rest(), atol=1e-5)
