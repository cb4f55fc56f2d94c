"""Camera files: every format reads back the cameras that were written, errors are clear."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from camera_writers import save_cameras_json, save_colmap, save_transforms_json
from scenes import sample_cameras

from masksplat_blender.core.camera_files import CameraFormatError, load_cameras
from masksplat_blender.core.cameras import Camera, image_stem, look_at
from masksplat_blender.core.orbit import orbit_cameras


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
        ("transforms.json", '{"frames": [{"file_path": "a.png"}]}', "frame 0 has no w/h"),
        ("transforms.json", '{"w": 4, "h": 4, "frames": [{"file_path": "a.png"}]}', "frame 0 is malformed"),
        ("transforms.json", '{"camera_model": "OPENCV_FISHEYE", "frames": [{"file_path": "a"}]}', "not a pinhole"),
        ("transforms.json", '{"w": 4, "h": 4, "fl_x": 2, "frames": [{"file_path": "a", "transform_matrix": 3}]}',
         "frame 0 is malformed"),
        ("cameras.json", '{"no": "frames"}', "'frames' list"),
        ("cameras.json", "[1, 2]", "camera 0 is malformed"),
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
    with pytest.raises(CameraFormatError, match="share the file stem"):
        load_cameras(tmp_path / "cameras.json")
    with pytest.raises(CameraFormatError, match="no COLMAP"):
        load_cameras(tmp_path)


def _colmap_line_camera(tmp_path, model_line: str, binary: bool) -> Camera:
    """One camera with the given cameras.txt line, read back as text or via our binary writer."""
    folder = tmp_path / ("bin" if binary else "txt") / "sparse" / "0"
    folder.mkdir(parents=True)
    (folder / "cameras.txt").write_text("# comment\n" + model_line + "\n")
    (folder / "images.txt").write_text("# c\n1 1 0 0 0 0.5 -1 3 1 sub/dir/frame 7.JPG\n1.0 2.0 -1\n")
    warnings: list[str] = []
    (cam,) = load_cameras(folder, warnings=warnings)
    if binary:  # write what we read as binary and read that back
        save_colmap(tmp_path / "bin2", [cam], binary=True)
        (cam,) = load_cameras(tmp_path / "bin2", warnings=warnings)
    return cam, warnings


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(
    "line, intrinsics, distorted",
    [
        ("1 SIMPLE_PINHOLE 640 480 500 320 240", (500, 500, 320, 240), False),
        ("1 PINHOLE 640 480 500 510 321 241", (500, 510, 321, 241), False),
        ("1 SIMPLE_RADIAL 640 480 500 322 242 0.01", (500, 500, 322, 242), True),
        ("1 SIMPLE_RADIAL 640 480 500 322 242 0", (500, 500, 322, 242), False),
        ("1 RADIAL 640 480 500 320 240 0.01 -0.002", (500, 500, 320, 240), True),
        ("1 OPENCV 640 480 500 505 320 240 0.01 0.02 0.001 0.002", (500, 505, 320, 240), True),
    ],
)
def test_colmap_camera_models(tmp_path, binary, line, intrinsics, distorted):
    cam, warnings = _colmap_line_camera(tmp_path, line, binary)
    assert (cam.name, cam.image_name) == ("frame 7", "sub/dir/frame 7.JPG")
    assert (cam.width, cam.height) == (640, 480)
    np.testing.assert_array_equal([cam.fx, cam.fy, cam.cx, cam.cy], intrinsics)
    np.testing.assert_allclose(cam.world_to_camera[:3, 3], [0.5, -1, 3])
    np.testing.assert_allclose(cam.world_to_camera[:3, :3], np.eye(3))
    assert (cam.distortion is not None) == distorted
    if distorted:
        assert cam.distortion[0] == line.split()[1]
        assert len(warnings) == (2 if binary else 1) and "distortion, which is ignored" in warnings[0]
        assert line.split()[1] in warnings[0]
    else:
        assert warnings == []


@pytest.mark.parametrize(
    "cameras_txt, images_txt, message",
    [
        ("1 OPENCV_FISHEYE 10 10 5 5 5 5 0 0 0 0", "", "OPENCV_FISHEYE is not supported"),
        ("1 PINHOLE 10 10 5 5 5", "", "needs 4 parameters, not 3"),
        ("1 PINHOLE ten 10 5 5 5 5", "", "cameras.txt: malformed"),
        ("1 PINHOLE 10 10 5 5 5 5", "1 1 0 0 0 0 0 0 2 a.png\n\n", "a.png uses unknown camera 2"),
        ("1 PINHOLE 10 10 5 5 5 5", "1 1 0 0 0 0 0 a.png\n\n", "malformed image line"),
        ("1 PINHOLE 10 10 5 5 5 5", "1 1 0 0 0 0 0 0 1 a.png\n\n2 1 0 0 0 0 0 0 1 a.png\n\n", "share the file stem"),
        ("1 PINHOLE 10 10 5 5 5 5", "1 0 0 0 0 0 0 0 1 a.png\n\n", "zero quaternion"),
        ("1 PINHOLE 10 10 5 5 5 5", "1 1 0 0 0 0 0 nan 1 a.png\n\n", "NaN or Inf"),
        ("1 PINHOLE 10 10 5 5 5 5", "# nothing\n", "holds no cameras"),
    ],
)
def test_bad_colmap_text(tmp_path, cameras_txt, images_txt, message):
    (tmp_path / "cameras.txt").write_text(cameras_txt + "\n")
    (tmp_path / "images.txt").write_text(images_txt)
    with pytest.raises(CameraFormatError, match=message) as info:
        load_cameras(tmp_path)
    assert str(tmp_path) in str(info.value)  # the message names the file or folder


def test_bad_colmap_binary(tmp_path):
    save_colmap(tmp_path, sample_cameras()[:2], binary=True)
    raw = (tmp_path / "images.bin").read_bytes()
    (tmp_path / "images.bin").write_bytes(raw[:-5])
    with pytest.raises(CameraFormatError, match=r"images\.bin: (malformed or truncated|is truncated)"):
        load_cameras(tmp_path / "images.bin")
    (tmp_path / "images.bin").unlink()
    with pytest.raises(CameraFormatError, match="lacks its images file"):
        load_cameras(tmp_path)
    save_colmap(tmp_path, sample_cameras()[:2], binary=True)
    raw = bytearray((tmp_path / "cameras.bin").read_bytes())
    raw[12:16] = (99).to_bytes(4, "little")  # model id of the first camera
    (tmp_path / "cameras.bin").write_bytes(bytes(raw))
    with pytest.raises(CameraFormatError, match="cameras.bin: COLMAP camera model #99 is not supported"):
        load_cameras(tmp_path)


def test_colmap_text_writer_writes_plain_numbers(tmp_path):
    save_colmap(tmp_path, sample_cameras(), binary=False)
    text = (tmp_path / "cameras.txt").read_text() + (tmp_path / "images.txt").read_text()
    assert "float" not in text and "np." not in text


def test_colmap_points_are_skipped(tmp_path):
    """images.bin with 2D points (24 bytes each) still reads the next image."""
    cams = sample_cameras()[:2]
    save_colmap(tmp_path, cams, binary=True)
    raw = (tmp_path / "images.bin").read_bytes()
    first_end = raw.index(b"\0", 8 + 64) + 1
    points = struct.pack("<Q", 2) + struct.pack("<ddq", 1.0, 2.0, -1) * 2
    (tmp_path / "images.bin").write_bytes(raw[:first_end] + points + raw[first_end + 8 :])
    assert_same(cams, load_cameras(tmp_path))


def _png(width, height) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + b"\0\0\0\0"


def _jpeg(width, height) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    dqt = b"\xff\xdb" + struct.pack(">H", 4) + b"\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\0"
    return b"\xff\xd8" + app0 + dqt + sof + b"\xff\xd9"


def test_transforms_json_without_size_reads_the_image_header(tmp_path):
    """NeRF-synthetic style: camera_angle_x only, file paths without extension."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "r_0.png").write_bytes(_png(800, 600))
    (tmp_path / "train" / "r_1.jpg").write_bytes(_jpeg(400, 300))
    meta = {"camera_angle_x": 2 * np.arctan(0.5),
            "frames": [{"file_path": "./train/r_0", "transform_matrix": np.eye(4).tolist()},
                       {"file_path": "train\\r_1.jpg", "transform_matrix": np.eye(4).tolist()}]}  # fmt: skip
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    a, b = load_cameras(tmp_path / "transforms.json")
    assert (a.name, a.image_name, a.width, a.height, a.cx, a.cy) == ("r_0", "r_0", 800, 600, 400, 300)
    assert (b.name, b.image_name, b.width, b.height) == ("r_1", "r_1.jpg", 400, 300)
    assert (a.fx, a.fy, b.fx) == pytest.approx((800, 800, 400), rel=1e-12)


def test_transforms_json_global_intrinsics_frame_overrides_and_distortion(tmp_path):
    c2w = np.eye(4)
    c2w[:3, 3] = [1, 2, 3]
    meta = {"fl_x": 300.0, "fl_y": 310.0, "cx": 100.0, "cy": 90.0, "w": 200, "h": 180, "k1": 0.01,
            "frames": [{"file_path": "images/a.png", "transform_matrix": c2w.tolist()},
                       {"file_path": "images/b.png", "transform_matrix": c2w.tolist(), "fl_x": 250.0, "k1": 0.0}]}  # fmt: skip
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    warnings: list[str] = []
    a, b = load_cameras(tmp_path / "transforms.json", warnings)
    assert (a.fx, a.fy, a.cx, a.cy, a.width, a.height) == (300, 310, 100, 90, 200, 180)
    assert (b.fx, b.fy) == (250, 310)
    assert a.distortion == ("OPENCV", (0.01, 0, 0, 0, 0, 0)) and b.distortion is None
    assert len(warnings) == 1 and warnings[0].startswith("1 of 2 cameras have OPENCV lens distortion")
    np.testing.assert_allclose(a.center(), [1, 2, 3])
    # OpenGL -> OpenCV: the camera's y and z axes flip
    np.testing.assert_allclose(a.camera_to_world()[:3, :3], np.diag([1.0, -1.0, -1.0]))


def test_mirrored_or_scaled_rotation_is_refused(tmp_path):
    entry = {"id": 0, "img_name": "a", "width": 10, "height": 10, "position": [0, 0, 0],
             "rotation": np.diag([1.0, 1.0, -1.0]).tolist(), "fx": 5.0, "fy": 5.0}  # fmt: skip
    (tmp_path / "cameras.json").write_text(json.dumps([entry]))
    with pytest.raises(CameraFormatError, match="scaled, sheared or mirrored"):
        load_cameras(tmp_path / "cameras.json")
    with pytest.raises(CameraFormatError, match="not found"):
        load_cameras(tmp_path / "missing.json")


def test_camera_fields_are_normalised_and_image_stems():
    cam = Camera("a", "a.png", np.eye(4, dtype=np.float32).tolist(), 10, 11, 5, 6, 10.0, 12.0)
    assert cam.world_to_camera.dtype == np.float64 and cam.world_to_camera.shape == (4, 4)
    assert isinstance(cam.fx, float) and isinstance(cam.width, int) and cam.width == 10
    np.testing.assert_array_equal(cam.K(), [[10, 0, 5], [0, 11, 6], [0, 0, 1]])
    assert image_stem("dir/sub\\x.y.JPG") == "x.y" and image_stem("00001") == "00001" and image_stem("./r_0") == "r_0"


def test_orbit_cameras_are_deterministic_and_any_up_works():
    for up in [(0, 0, 1), (0, -1, 0), (1, 1, 1)]:
        a = orbit_cameras((0, 0, 0), 2.0, 7, 32, 32, up=up, elevation_deg=(-90, 90))
        b = orbit_cameras((0, 0, 0), 2.0, 7, 32, 32, up=up, elevation_deg=(-90, 90))
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.world_to_camera, y.world_to_camera)
            r = x.world_to_camera[:3, :3]
            np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
            assert np.linalg.det(r) == pytest.approx(1.0)
            np.testing.assert_allclose(x.project(np.zeros((1, 3)))[0], [[16, 16]], atol=1e-9)
    # straight above: looking along `up` still gives a valid camera
    w2c = look_at((0, 0, 5), (0, 0, 0))
    np.testing.assert_allclose(w2c[:3, :3] @ w2c[:3, :3].T, np.eye(3), atol=1e-12)
