"""The backend process on its own, spoken to in its raw JSON-lines protocol (no client).

Started both ways: `python -m masksplat_blender.backend` from the repo root and by file
path from a copy laid out like the installed extension (a folder named `masksplat`, as
in `bl_ext.user_default.masksplat`), with a `bpy` on the path that refuses to import.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scenes import cameras, disc_masks, expected_votes, load_scene, votes_request

from masksplat_blender.core.request import write_request

ROOT = Path(__file__).resolve().parents[1]
MODULE = [sys.executable, "-m", "masksplat_blender.backend"]


# ---------------------------------------------------------------- scenes and requests (tests/scenes.py)


@pytest.fixture(scope="module")
def scene():
    return load_scene()


def _edit_header(folder, change):
    header = json.loads((folder / "header.json").read_text())
    change(header)
    (folder / "header.json").write_text(json.dumps(header))


# Each malformed request, and a piece of the message the backend must give for it.
MALFORMED = {
    "wrong shape": (lambda f: np.save(f / "means.npy", np.zeros((7, 3), np.float32)), "means.npy has shape (7, 3)"),
    "wrong dtype": (lambda f: np.save(f / "log_scales.npy", np.load(f / "log_scales.npy").astype(np.float64)), "dtype float64"),
    "nan": (lambda f: np.save(f / "means.npy", np.full(np.load(f / "means.npy").shape, np.nan, np.float32)), "NaN or Inf"),
    "mask size": (lambda f: np.save(f / "mask_00001.npy", np.zeros((30, 40), np.uint8)), "mask is 40x30, the camera is 48x48"),
    "unknown key": (lambda f: _edit_header(f, lambda h: h.update(scale=2)), "unknown header keys: scale"),
    "unknown view key": (lambda f: _edit_header(f, lambda h: h["views"][0].update(lens=50)), "unknown keys lens"),
    "version": (lambda f: _edit_header(f, lambda h: h.update(version=2)), "version 2"),
    "mask dtype": (lambda f: np.save(f / "mask_00000.npy", np.zeros((48, 48), np.int16)), "dtype int16"),
    "missing array": (lambda f: (f / "quats.npy").unlink(), "quats.npy is missing"),
    "pickled array": (lambda f: np.save(f / "opacity_logits.npy", np.array([{}] * 5, dtype=object)), "not a plain .npy"),
    "no folder": (lambda f: shutil.rmtree(f), "no header.json"),
}
ONCE_CASES = ["wrong shape", "wrong dtype", "nan", "mask size", "unknown key"]


# ---------------------------------------------------------------- ways to start it


@pytest.fixture(scope="module")
def no_bpy(tmp_path_factory):
    """A PYTHONPATH entry whose `bpy` refuses to import: the backend must never need it."""
    folder = tmp_path_factory.mktemp("nobpy")
    (folder / "bpy.py").write_text("raise ImportError('the backend must not import bpy')\n")
    return folder


@pytest.fixture(scope="module")
def installed_copy(tmp_path_factory):
    """The package copied to .../extensions/user_default/masksplat, as Blender installs it,
    beside a decoy extension named like a module the backend imports."""
    ext = tmp_path_factory.mktemp("extensions") / "user_default"
    shutil.copytree(ROOT / "masksplat_blender", ext / "masksplat", ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    (ext / "numba").mkdir()
    (ext / "numba" / "__init__.py").write_text("raise ImportError('a sibling extension shadowed numba')\n")
    return ext / "masksplat" / "backend" / "__main__.py"


def start_command(how, installed_copy):
    return MODULE if how == "module" else [sys.executable, str(installed_copy)]


def env_without_bpy(no_bpy):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(no_bpy)
    return env


class Serve:
    """A `--serve` backend and its JSON lines."""

    def __init__(self, command, cwd=ROOT, env=None, extra=()):
        self.proc = subprocess.Popen(
            [*command, "--serve", "--device", "cpu", *extra], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        self.lines: queue.Queue = queue.Queue()
        self.raw: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.ready = self.next(timeout=120)

    def _pump(self):
        for line in self.proc.stdout:
            self.raw.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def send(self, message):
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def next(self, timeout=60):
        line = self.lines.get(timeout=timeout)
        assert line is not None, f"the backend ended: {self.proc.stderr.read()}"
        return json.loads(line)

    def result(self, job_id, timeout=120, on_progress=None):
        deadline = time.monotonic() + timeout
        while True:
            message = self.next(timeout=max(0.1, deadline - time.monotonic()))
            if message.get("id") == job_id and message["event"] == "result":
                return message
            if on_progress and message.get("event") == "progress":
                on_progress(message)

    def close(self):
        if self.proc.poll() is None:
            self.send({"shutdown": True})
            assert self.proc.wait(timeout=10) == 0
        for line in self.raw:  # stdout carries nothing but protocol lines
            json.loads(line)


@pytest.fixture(scope="module")
def server(no_bpy):
    s = Serve(MODULE, env=env_without_bpy(no_bpy))
    yield s
    s.close()


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("how", ["module", "path"])
def test_serve_starts_both_ways_without_bpy(how, installed_copy, no_bpy, tmp_path):
    s = Serve(start_command(how, installed_copy), cwd=ROOT if how == "module" else tmp_path, env=env_without_bpy(no_bpy))
    try:
        assert s.ready["event"] == "ready" and s.ready["torch"] and s.ready["pid"] == s.proc.pid
        ping = tmp_path / "ping"
        ping.mkdir()
        (ping / "header.json").write_text(json.dumps({"version": 1, "kind": "ping"}))
        s.send({"id": "p", "request": str(ping)})
        assert s.result("p")["ok"] is True
    finally:
        s.close()


def test_serve_votes_equal_in_process_votes_and_stream_progress(scene, server):
    ignore = np.zeros((48, 48), bool)
    ignore[:, :10] = True
    folder, cams = votes_request(scene, n_views=3, dtype=np.float32, ignores=[None, ignore, None])
    seen = []
    server.send({"id": 7, "request": str(folder)})
    result = server.result(7, on_progress=seen.append)
    assert result["ok"] is True and result["device"] == "cpu" and result["outputs"] == ["votes.npy"]
    assert isinstance(result["peak_rss_mb"], float) and result["seconds"] > 0
    assert [m["done"] for m in seen] == [0, 1, 2, 3] and all(m["total"] == 3 and m["id"] == 7 for m in seen)
    votes = np.load(folder / "votes.npy", allow_pickle=False)
    assert votes.dtype == np.float32 and votes.shape == (len(scene[0]["means"]), 2)
    expected = expected_votes(scene, cams, disc_masks(cams, np.float32), [None, ignore, None])
    np.testing.assert_allclose(votes, expected, rtol=1e-5, atol=1e-4)
    assert votes[:, 0].sum() > 1 and votes[:, 1].sum() > 1
    shutil.rmtree(folder)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_serve_answers_a_malformed_request_and_keeps_serving(scene, server, case):
    folder, _ = votes_request(scene)
    change, message = MALFORMED[case]
    change(folder)
    server.send({"id": case, "request": str(folder)})
    result = server.result(case)
    assert result["ok"] is False and result["kind"] == "invalid_request", result
    assert message in result["error"] and "Traceback" not in result["error"]
    assert server.proc.poll() is None
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("case", ONCE_CASES)
def test_once_exits_2_with_a_clear_message(scene, tmp_path, case):
    folder, _ = votes_request(scene, tmp_path)
    change, message = MALFORMED[case]
    change(folder)
    proc = subprocess.run([*MODULE, "--once", str(folder), "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["ok"] is False and last["kind"] == "invalid_request" and message in last["error"]
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("how", ["module", "path"])
def test_once_votes_and_render_both_ways(scene, tmp_path, how, installed_copy, no_bpy):
    (tmp_path / "votes").mkdir()
    folder, cams = votes_request(scene, tmp_path / "votes", n_views=2)
    command = start_command(how, installed_copy)
    cwd = ROOT if how == "module" else tmp_path
    proc = subprocess.run([*command, "--once", str(folder), "--device", "cpu"], cwd=cwd, env=env_without_bpy(no_bpy),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[-1]["ok"] is True and lines[-1]["device"] == "cpu"
    assert [m["done"] for m in lines[:-1]] == [0, 1, 2]
    np.testing.assert_allclose(np.load(folder / "votes.npy"), expected_votes(scene, cams, disc_masks(cams)), rtol=1e-5, atol=1e-4)

    render = tmp_path / "render"
    render.mkdir()
    write_request(render, "render", scene[0], cams, sh=scene[1], background=(0.0, 0.0, 1.0))
    proc = subprocess.run([*command, "--once", str(render), "--device", "cpu"], cwd=cwd, env=env_without_bpy(no_bpy),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["outputs"] == ["render_00000.npy", "alpha_00000.npy", "render_00001.npy", "alpha_00001.npy"]
    rgb, alpha = np.load(render / "render_00000.npy"), np.load(render / "alpha_00000.npy")
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8 and alpha.shape == (48, 48) and alpha.dtype == np.uint8
    assert alpha.max() > 200 and alpha.min() < 50
    assert (rgb[alpha == 0][:, 2] == 255).all()  # the blue background shows where nothing is


def test_cancel_takes_effect_between_views_within_a_second(scene, server):
    folder, _ = votes_request(scene, n_views=300, size=128)
    server.send({"id": "slow", "request": str(folder)})
    while True:
        message = server.next()
        if message.get("event") == "progress" and message["done"] >= 2:
            break
    sent = time.monotonic()
    server.send({"cancel": "slow"})
    result = server.result("slow")
    elapsed = time.monotonic() - sent
    assert result["ok"] is False and result["kind"] == "cancelled"
    assert elapsed < 1.0, elapsed
    assert not (folder / "votes.npy").exists()
    # The process lives on and takes the next request.
    ok, _ = votes_request(scene, n_views=1)
    server.send({"id": "after", "request": str(ok)})
    assert server.result("after")["ok"] is True
    shutil.rmtree(folder)
    shutil.rmtree(ok)


def test_once_sigint_exits_130_right_after_the_view_in_progress(scene, tmp_path):
    """Ctrl-C stops a --once run at the next view, also when it was started with SIGINT ignored
    (a shell's background job, where Python installs no handler: the run used to go on to the end).

    Stopping early is proven without timing: the child blocks once the pipe holds ~700 unread
    progress lines, so it cannot be more than that far ahead of the line read before the signal;
    3000 views (sharing one mask file) lie well beyond. The deadline only bounds a hang."""
    arrays = scene[0]
    cams = cameras(scene, 3000, size=96)
    write_request(tmp_path, "votes", arrays, cams[:1], disc_masks(cams[:1]))
    _edit_header(tmp_path, lambda h: h.update(views=[{**h["views"][0], "name": c.name, "viewmat": c.world_to_camera.tolist()} for c in cams]))
    proc = subprocess.Popen([*MODULE, "--once", str(tmp_path), "--device", "cpu"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # fmt: skip
    for line in proc.stdout:  # started work: a view is done
        message = json.loads(line)
        if message["event"] == "progress" and message["done"] >= 1:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    lines = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 130, err[-2000:]
    assert lines[-1]["event"] == "result" and lines[-1]["kind"] == "cancelled"
    done = max([message["done"] for message in lines if message["event"] == "progress"] + [1])
    assert done < 1500 and not (tmp_path / "votes.npy").exists()


def test_idle_timeout_and_stdin_eof_end_the_process(tmp_path):
    idle = Serve(MODULE, extra=["--idle-timeout", "1"])
    start = time.monotonic()
    assert idle.proc.wait(timeout=15) == 0
    assert time.monotonic() - start < 5
    eof = Serve(MODULE)
    eof.proc.stdin.close()
    assert eof.proc.wait(timeout=10) == 0


def test_a_line_that_is_not_json_is_answered_and_the_process_serves_on(scene, server):
    server.proc.stdin.write("this is not json\n")
    server.proc.stdin.flush()
    assert server.next()["event"] == "error"
    folder, _ = votes_request(scene, n_views=1)
    server.send({"id": "after garbage", "request": str(folder)})
    assert server.result("after garbage")["ok"] is True  # (the fixture's close shuts it down and checks stdout)
    shutil.rmtree(folder)


def test_cuda_requested_without_cuda(scene, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    folder, _ = votes_request(scene, tmp_path)
    proc = subprocess.run([*MODULE, "--once", str(folder), "--device", "cuda"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["kind"] == "cuda_unavailable" and "CUDA was requested" in last["error"] and "no CUDA device" in last["error"]
    # auto falls back to the CPU and says why
    proc = subprocess.run([*MODULE, "--once", str(folder), "--device", "auto"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    last = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 0 and last["device"] == "cpu" and "no CUDA device" in last["device_note"]


def test_info_reports_the_environment():
    proc = subprocess.run([*MODULE, "--info"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    import torch

    assert info["torch"] == torch.__version__ and info["cuda"] == torch.cuda.is_available()
    assert info["numba"] is True and "numba_version" in info and isinstance(info["gsplat"], bool)


def test_stray_output_even_from_compiled_code_goes_to_stderr():
    code = (
        "import os\n"
        "from masksplat_blender.backend.server import protocol_stream\n"
        "out = protocol_stream()\n"
        "print('a stray print')\n"
        "os.write(1, b'a stray write from C\\n')\n"
        "out.write('{\"event\": \"x\"}\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '{"event": "x"}\n'
    assert "a stray print" in proc.stderr and "a stray write from C" in proc.stderr


def test_peak_memory_does_not_grow_with_views(scene, server, tmp_path, capsys):
    """16 vs 64 views of 384x384 float32 masks (0.56 MiB each): if the backend held every
    view, the 64-view run would need 27 MiB of masks (and 54 MiB of weights) more.

    Measured both in a fresh `--once` process (its whole peak, ru_maxrss) and in one
    warm `--serve` process (the peak during each request alone, Linux's VmHWM). A first
    request makes numba's cache current, as compiling needs memory of its own."""
    folders = {}
    for n in (1, 16, 64):
        folders[n] = tmp_path / f"v{n}"
        folders[n].mkdir()
        votes_request(scene, folders[n], n_views=n, size=384, dtype=np.float32)
    once = {}
    for n in (1, 16, 64):
        proc = subprocess.run([*MODULE, "--once", str(folders[n]), "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        once[n] = json.loads(proc.stdout.splitlines()[-1])["peak_rss_mb"]
    warm = {}
    for n in (1, 16, 64):  # the module's warm server: each request's own peak
        server.send({"id": f"memory {n}", "request": str(folders[n])})
        result = server.result(f"memory {n}", timeout=300)
        warm[n] = result.get("request_peak_rss_mb", result["peak_rss_mb"])
    with capsys.disabled():
        print(f"\nbackend peak RSS, {len(scene[0]['means'])} Gaussians, 384x384 float32 masks (MB): "
              f"fresh --once process 16 views {once[16]:.1f}, 64 views {once[64]:.1f}; "
              f"warm --serve, per request: 16 views {warm[16]:.1f}, 64 views {warm[64]:.1f}")  # fmt: skip
    assert warm[64] - warm[16] < 16, warm
    if abs(once[16] - once[1]) < 16:  # numba's cache was used by both (it is not when raster_cpu.py just changed)
        assert once[64] - once[16] < 16, once
