"""Camera files: every format reads back the cameras that were written, errors are clear."""

from __future__ import annotations

import json

import numpy as np
import pytest

from masksplat_blender.core.cameras import (
    Camera,
    CameraFormatError,
    load_cameras,
    look_at,
    orbit_cameras,
    save_cameras_json,
    save_colmap,
    save_transforms_json,
)


def sample_cameras() -> list[Camera]:
    rng = np.random.default_rng(0)
    cams = []
    for i in range(5):
        eye = rng.normal(size=3) * 3
        w2c = look_at(eye, rng.normal(size=3) * 0.1)
        cams.append(Camera(f"img_{i:02d}", f"img_{i:02d}.jpg", w2c, 800.0 + i, 760.0 - i, 330.5 + i, 250.25, 640, 480))
    return cams


def assert_same(a: list[Camera], b: list[Camera]):
    assert [c.name for c in a] == [c.name for c in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(y.world_to_camera, x.world_to_camera, atol=1e-9)
        np.testing.assert_allclose([y.fx, y.fy, y.cx, y.cy], [x.fx, x.fy, x.cx, x.cy], rtol=1e-12)
        assert (y.width, y.height) == (x.width, x.height)


def test_cameras_json_round_trip(tmp_path):
    cams = sample_cameras()
    save_cameras_json(tmp_path / "cameras.json", cams)
    assert_same(cams, load_cameras(tmp_path / "cameras.json"))


def test_cameras_json_of_the_3dgs_trainer_without_principal_point(tmp_path):
    entry = {"id": 0, "img_name": "00001", "width": 100, "height": 50, "position": [0, 0, -5],
             "rotation": np.eye(3).tolist(), "fx": 120.0, "fy": 110.0}  # fmt: skip
    (tmp_path / "cameras.json").write_text(json.dumps([entry]))
    (cam,) = load_cameras(tmp_path / "cameras.json")
    assert (cam.cx, cam.cy) == (50.0, 25.0)
    np.testing.assert_allclose(cam.center(), [0, 0, -5])
    uv, depth = cam.project(np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0]]))
    np.testing.assert_allclose(uv, [[50, 25], [50 + 120 / 5, 25 + 110 * 0.5 / 5]])
    np.testing.assert_allclose(depth, [5, 5])


@pytest.mark.parametrize("binary", [False, True])
def test_colmap_round_trip(tmp_path, binary):
    cams = sample_cameras()
    save_colmap(tmp_path / "sparse" / "0", cams, binary=binary)
    for where in (tmp_path, tmp_path / "sparse", tmp_path / "sparse" / "0"):
        assert_same(cams, load_cameras(where))


def test_transforms_json_round_trip(tmp_path):
    cams = sample_cameras()
    save_transforms_json(tmp_path / "transforms.json", cams)
    assert_same(cams, load_cameras(tmp_path / "transforms.json"))


def test_transforms_json_with_camera_angle(tmp_path):
    meta = {"camera_angle_x": 2 * np.arctan(0.5), "w": 200, "h": 100,
            "frames": [{"file_path": "./train/r_0.png", "transform_matrix": np.eye(4).tolist()}]}  # fmt: skip
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    (cam,) = load_cameras(tmp_path / "transforms.json")
    assert cam.name == "r_0" and cam.fx == pytest.approx(200.0)
    # OpenGL camera at the origin looks down -z: a point at z=-2 projects to the centre
    uv, depth = cam.project(np.array([[0.0, 0.0, -2.0]]))
    np.testing.assert_allclose(uv, [[100, 50]])
    assert depth[0] == pytest.approx(2.0)


def test_orbit_cameras_look_at_the_centre():
    cams = orbit_cameras([1.0, 2.0, 3.0], 4.0, 12, 64, 48)
    assert len({c.name for c in cams}) == 12
    for cam in cams:
        uv, depth = cam.project(np.array([[1.0, 2.0, 3.0]]))
        np.testing.assert_allclose(uv, [[32, 24]], atol=1e-9)
        assert depth[0] == pytest.approx(4.0)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("cameras.json", "{not json", "not readable JSON"),
        ("cameras.json", "[]", "holds no cameras"),
        ("cameras.json", '[{"img_name": "a", "width": 10}]', "camera 0 is malformed"),
        ("transforms.json", '{"frames": [{"file_path": "a.png"}]}', "frame 0 is malformed"),
        ("cameras.yaml", "x", "unknown camera format"),
    ],
)
def test_bad_camera_files(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(CameraFormatError, match=message):
        load_cameras(tmp_path / name)


def test_duplicate_names_and_missing_folder(tmp_path):
    cams = sample_cameras()
    cams[1].name = cams[0].name
    save_cameras_json(tmp_path / "cameras.json", cams)
    with pytest.raises(CameraFormatError, match="share the image name"):
        load_cameras(tmp_path / "cameras.json")
    with pytest.raises(CameraFormatError, match="no COLMAP"):
        load_cameras(tmp_path)
