"""client.py against real backend processes: finding a Python, keep-alive, cancel,
timeouts, and a clear BackendError for every way it can fail.

Where a failure cannot be provoked on demand from the real backend (a crash with a
message on stderr, out of memory, a cancel that is not answered), a tiny stand-in
backend script plays that part; everything else is the real backend.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import textwrap
import time
import venv

import numpy as np
import pytest
from scenes import cameras, disc_masks, expected_votes, load_scene, votes_request

from masksplat_blender import client as client_module
from masksplat_blender.client import (
    BACKEND_MAIN,
    BackendCancelled,
    BackendClient,
    BackendError,
    compute_votes,
    find_backend_python,
    get_client,
    render_views,
    shutdown_client,
)
from masksplat_blender.core.request import make_request_dir


@pytest.fixture(scope="module")
def scene():
    return load_scene()


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """A Python without torch (a venv made with --without-pip)."""
    folder = tmp_path_factory.mktemp("bare") / "venv"
    venv.EnvBuilder(with_pip=False).create(folder)
    return folder / "bin" / "python"


def fake_backend(tmp_path, body: str) -> str:
    """An executable stand-in for a Python: it ignores the backend's arguments, says it is
    ready, then runs body."""
    path = tmp_path / "fake-python"
    header = f"#!{sys.executable}\nimport json, sys, time, os\ndef say(m):\n    print(json.dumps(m), flush=True)\n"
    path.write_text(header + READY + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


READY = 'say({"event": "ready", "pid": os.getpid(), "torch": "2.x", "cuda": False})\n'


# ---------------------------------------------------------------- finding a Python


def test_find_backend_python_order(tmp_path, bare_python, monkeypatch):
    managed = bare_python.parent.parent
    # 1. the preference wins, even over a managed venv
    assert find_backend_python(sys.executable, managed) == (sys.executable, "preferences")
    # 2. then the managed venv (whether it has torch is checked when it starts)
    assert find_backend_python(None, managed) == (str(bare_python), "managed environment")
    assert find_backend_python("", managed)[1] == "managed environment"
    # 3. then this Python, if it can import torch
    assert find_backend_python(None, tmp_path / "not-installed") == (sys.executable, "this Python")
    assert find_backend_python(None, None) == (sys.executable, "this Python")
    monkeypatch.setattr(client_module, "_has_torch", lambda python: False)
    with pytest.raises(BackendError) as err:
        find_backend_python(None, tmp_path / "not-installed")
    assert err.value.kind == "torch_missing"
    assert "Install Backend in the add-on preferences" in str(err.value) and "Backend Python" in str(err.value)


def test_a_wrong_preference_is_an_error_not_skipped(tmp_path):
    with pytest.raises(BackendError) as err:
        find_backend_python(str(tmp_path / "no-such-python"), None)
    assert err.value.kind == "python_missing" and "no-such-python" in str(err.value) and "preferences" in str(err.value)
    not_executable = tmp_path / "python"
    not_executable.write_text("")
    not_executable.chmod(0o644)
    with pytest.raises(BackendError) as err:
        find_backend_python(str(not_executable), None)
    assert err.value.kind == "python_missing" and "cannot be run" in str(err.value)


# ---------------------------------------------------------------- the real backend


def test_votes_round_trip_and_progress(scene, client):
    cams = cameras(scene, 3)
    masks = disc_masks(cams)
    progress = []
    votes, result = compute_votes(client, scene[0], cams, masks, progress=lambda d, t, m: progress.append((d, t)))
    assert result["ok"] and result["device"] == "cpu" and votes.dtype == np.float32
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    np.testing.assert_allclose(votes, expected_votes(scene, cams, masks), rtol=1e-5, atol=1e-4)


def test_render_views_returns_images(scene, client):
    cams = cameras(scene, 2, size=40)
    images = render_views(client, scene[0], scene[1], cams, background=(1.0, 0.0, 0.0))
    assert len(images) == 2
    for rgb, alpha in images:
        assert rgb.shape == (40, 40, 3) and rgb.dtype == np.uint8 and alpha.shape == (40, 40) and alpha.dtype == np.uint8
        assert alpha.max() > 200 and rgb.max() > 50
        assert (rgb[alpha == 0] == [255, 0, 0]).all()


def test_started_by_file_path_and_kept_alive(scene, client):
    folder, _ = votes_request(scene, n_views=1)
    client.run(folder)
    pid = client.pid
    args = client.process.args
    assert args[:3] == [sys.executable, "-u", str(BACKEND_MAIN)] and "-m" not in args
    assert client.run(folder)["ok"] and client.pid == pid  # the same process answers again
    shutil.rmtree(folder)


def test_invalid_request_is_a_clear_error_and_the_backend_survives(scene, client):
    folder, _ = votes_request(scene)
    np.save(folder / "mask_00001.npy", np.zeros((10, 12), np.uint8))
    pid = client.pid
    with pytest.raises(BackendError) as err:
        client.run(folder)
    assert err.value.kind == "invalid_request"
    assert "refused the request" in str(err.value) and "mask is 12x10, the camera is 48x48" in str(err.value)
    assert client.pid == pid or pid is None
    shutil.rmtree(folder)


def test_cancel_within_a_second_and_the_process_lives_on(scene):
    c = BackendClient(sys.executable, device="cpu")
    folder, _ = votes_request(scene, n_views=300, size=128)
    state = {}

    def progress(done, total, message):
        if done >= 2:
            state.setdefault("at", time.monotonic())

    with pytest.raises(BackendCancelled):
        c.run(folder, progress, cancel_check=lambda: "at" in state)
    assert time.monotonic() - state["at"] < 1.0
    assert c.alive()  # acknowledged between views: no need to kill it
    assert not (folder / "votes.npy").exists()
    c.close()
    shutil.rmtree(folder)


def test_an_unanswered_cancel_kills_the_process_within_a_second(tmp_path):
    python = fake_backend(tmp_path, """
        for line in sys.stdin:
            job = json.loads(line)
            say({"id": job.get("id"), "event": "progress", "done": 0, "total": 1, "message": "stuck"})
            time.sleep(600)
    """)
    c = BackendClient(python)
    c.start()
    pid = c.pid
    start = time.monotonic()
    with pytest.raises(BackendCancelled):
        c.run(tmp_path, cancel_check=lambda: time.monotonic() - start > 0.3)
    assert time.monotonic() - start < 1.3
    assert not c.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_timeout(scene):
    c = BackendClient(sys.executable, device="cpu")
    c.start()
    folder, _ = votes_request(scene, n_views=300, size=128)
    start = time.monotonic()
    with pytest.raises(BackendError) as err:
        c.run(folder, timeout=0.5)
    assert err.value.kind == "timeout" and "longer than 0.5 s" in str(err.value)
    assert time.monotonic() - start < 1.5
    c.close()
    shutil.rmtree(folder)


def test_killed_process_is_a_clear_error_and_the_next_run_restarts_it(scene):
    c = BackendClient(sys.executable, device="cpu")
    folder, _ = votes_request(scene, n_views=30, size=128)

    def kill_it(done, total, message):
        if done >= 1:
            os.kill(c.process.pid, signal.SIGKILL)

    with pytest.raises(BackendError) as err:
        c.run(folder, kill_it)
    assert err.value.kind == "killed" and "killed (out of memory?)" in str(err.value)
    dead = c.process.pid
    small, _ = votes_request(scene, n_views=1)
    assert c.run(small)["ok"] and c.pid != dead
    c.close()
    shutil.rmtree(folder)
    shutil.rmtree(small)


def test_crash_reports_the_last_stderr_lines(tmp_path):
    python = fake_backend(tmp_path, """
        sys.stdin.readline()
        print("loading things", file=sys.stderr)
        print("RuntimeError: something broke in the backend", file=sys.stderr, flush=True)
        sys.exit(1)
    """)
    with pytest.raises(BackendError) as err:
        BackendClient(python).run(tmp_path)
    assert err.value.kind == "crashed" and "exit code 1" in str(err.value)
    assert "something broke in the backend" in str(err.value)


def test_out_of_memory_and_internal_errors_are_explained(tmp_path):
    python = fake_backend(tmp_path, """
        for line in sys.stdin:
            job = json.loads(line)
            if job.get("id") == 1:
                say({"id": 1, "event": "result", "ok": False, "kind": "out_of_memory",
                     "error": "CUDA out of memory. Tried to allocate 20.00 GiB", "traceback": ""})
            else:
                say({"id": job.get("id"), "event": "result", "ok": False, "kind": "internal",
                     "error": "division by zero", "traceback": "Traceback...\\n  File x.py\\nZeroDivisionError: division by zero"})
    """)
    c = BackendClient(python)
    with pytest.raises(BackendError) as err:
        c.run(tmp_path)
    assert err.value.kind == "out_of_memory" and "ran out of memory" in str(err.value) and "20.00 GiB" in str(err.value)
    with pytest.raises(BackendError) as err:
        c.run(tmp_path)
    assert err.value.kind == "internal" and "ZeroDivisionError" in str(err.value)
    c.close()


def test_server_classifies_out_of_memory():
    from masksplat_blender.backend.server import failure_result

    assert failure_result(MemoryError())["kind"] == "out_of_memory"
    assert failure_result(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))["kind"] == "out_of_memory"
    assert failure_result(RuntimeError("boom"))["kind"] == "internal"


def test_missing_interpreter(tmp_path):
    with pytest.raises(BackendError) as err:
        BackendClient(str(tmp_path / "nope" / "python")).run(tmp_path)
    assert err.value.kind == "python_missing" and "does not exist" in str(err.value)
    not_executable = tmp_path / "python"
    not_executable.write_text("")
    with pytest.raises(BackendError) as err:
        BackendClient(str(not_executable)).start()
    assert err.value.kind == "python_missing" and "cannot start" in str(err.value)


def test_python_without_torch(bare_python, tmp_path):
    with pytest.raises(BackendError) as err:
        BackendClient(str(bare_python)).run(tmp_path)
    assert err.value.kind == "torch_missing"
    message = str(err.value)
    assert str(bare_python) in message and "Install Backend in the add-on preferences" in message and "Backend Python" in message


def test_cuda_requested_but_absent():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    c = BackendClient(sys.executable, device="cuda")
    with pytest.raises(BackendError) as err:
        c.start()
    assert err.value.kind == "cuda_unavailable" and "CUDA was requested" in str(err.value) and "CPU" in str(err.value)
    assert not c.alive()


def test_a_backend_that_ended_on_its_idle_timeout_is_restarted(scene):
    c = BackendClient(sys.executable, device="cpu", idle_timeout=0.5)
    c.start()
    first = c.process.pid
    assert c.process.wait(timeout=10) == 0
    folder, _ = votes_request(scene, n_views=1)
    assert c.run(folder)["ok"] and c.pid != first
    c.close()
    shutil.rmtree(folder)


def test_the_shared_client_is_one_warm_backend(scene):
    shutdown_client()
    a = get_client(sys.executable, "cpu")
    assert get_client(sys.executable, "cpu") is a
    folder, _ = votes_request(scene, n_views=1)
    a.run(folder)
    process = a.process
    b = get_client(sys.executable, "auto")  # other settings: the old backend is closed
    assert b is not a and process.poll() is not None
    shutdown_client()
    assert client_module._SHARED == {}
    shutil.rmtree(folder)


def test_request_dirs_are_private():
    folder = make_request_dir()
    try:
        assert folder.is_dir() and (folder.stat().st_mode & 0o777) == 0o700
    finally:
        shutil.rmtree(folder)


def test_a_backend_that_exits_just_as_a_request_arrives_is_restarted_once(tmp_path):
    starts = tmp_path / "starts"
    python = fake_backend(tmp_path, f"""
        with open({str(starts)!r}, "a") as f:
            f.write("x")
        sys.stdin.readline()
        sys.exit(0)  # as if its idle timeout had struck right then
    """)
    with pytest.raises(BackendError) as err:
        BackendClient(python).run(tmp_path)
    assert starts.read_text() == "xx" and err.value.kind == "crashed" and "exit code 0" in str(err.value)
