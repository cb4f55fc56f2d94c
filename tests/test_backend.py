"""The backend as a real subprocess: results, errors, keep-alive, cancel, timeouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import numpy as np
import pytest
from test_raster_cpu import SAMPLE

from masksplat_blender.backend.raster_cpu import CpuRasterizer
from masksplat_blender.backend.rasterizer import Gaussians, View
from masksplat_blender.client import (
    BackendCancelled,
    BackendClient,
    BackendError,
    compute_votes,
    find_backend_python,
    render_views,
)
from masksplat_blender.core.cameras import orbit_cameras
from masksplat_blender.core.request import make_request_dir, write_request
from masksplat_blender.core.splat_io import read_splats

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "masksplat_blender" / "backend" / "__main__.py"


@pytest.fixture(scope="module")
def scene():
    data = read_splats(SAMPLE)
    arrays = {"means": data.means(), "quats": data.quats_wxyz(), "log_scales": data.log_scales(), "opacity_logits": data.opacity_logits()}
    lo, hi = np.percentile(data.means(), [2, 98], axis=0)
    return arrays, data.sh(), (lo + hi) / 2, 1.1 * float(np.linalg.norm(hi - lo))


def cams(scene, n, size=48):
    _, _, centre, radius = scene
    return orbit_cameras(centre, radius, n, size, size, fov_deg=45, up=(0, -1, 0))


def disc_masks(cameras):
    out = []
    for cam in cameras:
        yy, xx = np.mgrid[: cam.height, : cam.width]
        out.append((((xx - cam.width / 2) ** 2 + (yy - cam.height / 2) ** 2) < (cam.width / 4) ** 2).astype(np.uint8) * 255)
    return out


@pytest.fixture(scope="module")
def client():
    c = BackendClient(sys.executable, device="cpu", idle_timeout=120)
    yield c
    c.close()


def test_votes_through_the_process_equal_in_process_votes(scene, client):
    arrays, _, _, _ = scene
    cameras = cams(scene, 3)
    masks = disc_masks(cameras)
    votes, result = compute_votes(client, arrays, cameras, masks)
    assert result["device"] == "cpu" and votes.dtype == np.float32 and votes.shape == (len(arrays["means"]), 2)
    expected = np.zeros(votes.shape)
    g = Gaussians(**arrays)
    for cam, mask in zip(cameras, masks, strict=True):
        m = mask.astype(np.float32) / 255
        CpuRasterizer().votes(g, View(cam.world_to_camera.astype(np.float32), cam.K().astype(np.float32), cam.width, cam.height),
                              np.stack([m, 1 - m], -1), expected)  # fmt: skip
    np.testing.assert_allclose(votes, expected, rtol=1e-5, atol=1e-4)
    assert votes[:, 0].sum() > 1 and votes[:, 1].sum() > 1


def test_process_stays_alive_between_requests(scene, client):
    arrays, _, _, _ = scene
    cameras = cams(scene, 1)
    compute_votes(client, arrays, cameras, disc_masks(cameras))
    pid = client.pid
    compute_votes(client, arrays, cameras, disc_masks(cameras))
    assert client.pid == pid


def test_render_returns_images(scene, client):
    arrays, sh, _, _ = scene
    cameras = cams(scene, 2, size=40)
    images = render_views(client, arrays, sh, cameras)
    assert len(images) == 2
    rgb, alpha = images[0]
    assert rgb.shape == (40, 40, 3) and rgb.dtype == np.uint8 and alpha.shape == (40, 40)
    assert alpha.max() > 200 and rgb.max() > 50


def test_invalid_request_gets_an_error_not_a_crash(scene, client):
    arrays, _, _, _ = scene
    cameras = cams(scene, 1)
    folder = make_request_dir()
    write_request(folder, "votes", arrays, cameras, [np.zeros((10, 10), np.uint8)])
    with pytest.raises(BackendError) as err:
        client.run(folder)
    assert err.value.kind == "invalid_request" and "mask is 10x10" in str(err.value)
    assert client.alive()  # a bad request does not kill the backend


@pytest.mark.parametrize("how", ["module", "path"])
def test_once_mode_exit_codes_by_module_and_by_path(scene, tmp_path, how):
    arrays, _, _, _ = scene
    cameras = cams(scene, 1)
    write_request(tmp_path, "votes", arrays, cameras, disc_masks(cameras))
    start = [sys.executable, "-m", "masksplat_blender.backend"] if how == "module" else [sys.executable, str(MAIN)]
    cwd = ROOT if how == "module" else tmp_path
    ok = subprocess.run([*start, "--once", str(tmp_path), "--device", "cpu"], cwd=cwd, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.splitlines()[-1])["ok"] is True
    np.save(tmp_path / "means.npy", np.zeros((3, 3), np.float32))
    bad = subprocess.run([*start, "--once", str(tmp_path), "--device", "cpu"], cwd=cwd, capture_output=True, text=True)
    assert bad.returncode == 2
    assert "means.npy has shape (3, 3)" in bad.stderr
    assert "Traceback" not in bad.stderr


def _slow_request(scene, n=300):
    arrays, _, _, _ = scene
    cameras = cams(scene, n, size=128)
    folder = make_request_dir()
    write_request(folder, "votes", arrays, cameras, disc_masks(cameras))
    return folder


def test_cancel_stops_within_a_second(scene):
    client = BackendClient(sys.executable, device="cpu")
    folder = _slow_request(scene)
    state = {}

    def progress(done, total, message):
        if done >= 2 and "cancel_at" not in state:
            state["cancel_at"] = time.monotonic()

    with pytest.raises(BackendCancelled):
        client.run(folder, progress, cancel_check=lambda: "cancel_at" in state)
    assert time.monotonic() - state["cancel_at"] < 1.0
    assert not (folder / "votes.npy").exists()
    client.close()


def test_timeout_and_killed_process_give_clear_errors(scene):
    client = BackendClient(sys.executable, device="cpu")
    folder = _slow_request(scene)
    with pytest.raises(BackendError) as err:
        client.run(folder, timeout=0.5)
    assert err.value.kind == "timeout" and "longer than 0.5 s" in str(err.value)

    def kill_it(done, total, message):
        if done >= 1:
            os.kill(client.pid, signal.SIGKILL)

    with pytest.raises(BackendError) as err:
        client.run(folder, kill_it)
    assert err.value.kind == "killed" and "out of memory" in str(err.value)
    client.close()


def test_cuda_requested_without_cuda_is_a_clear_error():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    client = BackendClient(sys.executable, device="cuda")
    with pytest.raises(BackendError) as err:
        client.start()
    assert err.value.kind == "cuda_unavailable" and "CUDA" in str(err.value)


def test_missing_interpreter_and_python_without_torch(tmp_path):
    with pytest.raises(BackendError) as err:
        find_backend_python(str(tmp_path / "no-python"))
    assert err.value.kind == "python_missing" and "add-on preferences" in str(err.value)
    with pytest.raises(BackendError) as err:
        BackendClient(str(tmp_path / "nope")).start()
    assert err.value.kind == "python_missing"
    env = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    with pytest.raises(BackendError) as err:
        BackendClient(str(python)).start()
    assert err.value.kind == "torch_missing" and "Install Backend" in str(err.value)
    managed, how = find_backend_python(None, env)
    assert how == "managed environment" and managed == str(python)
    this, how = find_backend_python(None, tmp_path / "absent")
    assert how == "this Python" and this == sys.executable


def test_idle_backend_exits_by_itself():
    client = BackendClient(sys.executable, device="cpu", idle_timeout=1.0)
    client.start()
    client.process.wait(timeout=10)
    assert client.process.returncode == 0


def test_install_commands_are_argument_lists():
    from masksplat_blender.client import install_commands

    for flavour in ("cpu", "cuda"):
        commands = install_commands("/tmp/venv", flavour)
        assert all(isinstance(c, list) and c[1:3] == ["-m", "pip"] for c in commands)
        assert any("torch" in c for c in commands)
    assert any("gsplat" in c for c in install_commands("/tmp/venv", "cuda")[-1])
    with pytest.raises(ValueError):
        install_commands("/tmp/venv", "rocm")
