"""Starts MaskSplat's backend process and talks to it (stdlib and core only: no bpy, no torch).

Blender's Python has no torch and a CUDA crash must not take Blender down, so the work
runs in a separate Python, found in this order: the "Backend Python" preference, the
MaskSplat-managed virtual environment ("Install Backend"), then the Python running us
if it can import torch (the bpy module in tests and batch jobs). The process stays up
between requests (an idle timeout ends it), so interactive updates do not pay for
importing torch and compiling again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import venv
from pathlib import Path

import numpy as np

from .core.request import (
    ALPHA,
    LABELS,
    RENDER,
    VOTES_FILE,
    is_hugging_face_id,
    load_array,
    load_numbered,
    make_request_dir,
    write_request,
)

BACKEND_MAIN = Path(__file__).resolve().parent / "backend" / "__main__.py"
CANCEL_GRACE = 0.5
START_TIMEOUT = 120.0


class BackendError(RuntimeError):
    """A backend failure, with a message a user can act on. `kind` names the failure."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class BackendCancelled(BackendError):
    def __init__(self):
        super().__init__("cancelled", "cancelled")


class _IdleExit(Exception):
    """The backend ended on its own idle timeout before it took our request."""


def _explain(kind: str, error: str, traceback_text: str = "") -> str:
    """A failure message a user can act on, from a result line's kind and error."""
    if kind == "invalid_request":
        return f"the backend refused the request: {error}"
    if kind == "out_of_memory":
        return f"the backend ran out of memory ({error}); use fewer Gaussians, smaller views, or the CPU device"
    if kind == "cuda_unavailable":
        return f"{error}; choose CPU or Automatic as the backend device"
    if kind == "model_unavailable":
        return f"the feature model cannot be loaded: {error}"
    if kind == "internal":
        last = traceback_text.strip().splitlines()[-3:]
        return f"the backend failed: {error}" + (f" ({' | '.join(last)})" if last else "")
    return error


def managed_venv_dir(base) -> Path:
    """Where "Install Backend" puts MaskSplat's own environment (under the extension's user folder)."""
    return Path(base) / "backend-venv"


def venv_python(folder) -> Path:
    folder = Path(folder)
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install_commands(folder, flavour: str = "cpu") -> list[list[str]]:
    """The pip commands "Install Backend" runs in a fresh venv (argument lists, never a shell)."""
    if flavour not in ("cpu", "cuda"):
        raise ValueError(f"unknown backend flavour {flavour!r} (cpu or cuda)")
    python = str(venv_python(folder))
    packages = ["numpy", "numba", "torch", "transformers", "safetensors"]
    commands = [[python, "-m", "pip", "install", "--upgrade", "pip"]]
    if flavour == "cpu":
        commands.append([python, "-m", "pip", "install", "torch", "--index-url", "https://download.pytorch.org/whl/cpu"])
    else:
        packages += ["gsplat", "ninja"]
    commands.append([python, "-m", "pip", "install", *packages])
    return commands


def install_backend_venv(folder, flavour: str = "cpu", progress=None) -> Path:
    """Create the managed venv and install the backend's packages; returns its Python."""
    folder = Path(folder)
    venv.EnvBuilder(with_pip=True, clear=False).create(folder)
    for index, command in enumerate(install_commands(folder, flavour)):
        if progress:
            progress(index, " ".join(command[3:]))
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BackendError("install_failed", f"installing the backend failed: {proc.stderr.strip()[-800:]}")
    return venv_python(folder)


def _has_torch(python: str) -> bool:
    if Path(python).resolve() == Path(sys.executable).resolve():
        return importlib.util.find_spec("torch") is not None
    proc = subprocess.run([python, "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('torch') is None)"],
                          capture_output=True, timeout=60)  # fmt: skip
    return proc.returncode == 0


def find_backend_python(preferred: str | None = None, managed_venv=None) -> tuple[str, str]:
    """(python, how it was found). A preferred path that is wrong is an error, not skipped."""
    if preferred:
        path = Path(preferred).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise BackendError("python_missing", f"Backend Python '{preferred}' does not exist or cannot be run; fix it in the add-on preferences")
        return str(path), "preferences"
    if managed_venv is not None and venv_python(managed_venv).is_file():
        return str(venv_python(managed_venv)), "managed environment"
    if _has_torch(sys.executable):
        return sys.executable, "this Python"
    raise BackendError(
        "torch_missing",
        "No Python with torch was found for MaskSplat's backend: press Install Backend in the add-on "
        "preferences, or point Backend Python at a Python that has torch",
    )


class BackendClient:
    """One backend process, kept alive across requests."""

    def __init__(self, python: str, device: str = "auto", idle_timeout: float = 900.0, env: dict | None = None):
        self.python, self.device, self.idle_timeout = python, device, idle_timeout
        self.env = env
        self.process: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
        self.stderr_file = None
        self.info: dict = {}
        self._next_id = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive() else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _stderr_tail(self, lines: int = 15) -> str:
        if self.stderr_file is None:
            return ""
        self.stderr_file.flush()
        self.stderr_file.seek(0)
        return "\n".join(self.stderr_file.read().decode(errors="replace").strip().splitlines()[-lines:])

    def start(self) -> None:
        if self.alive():
            return
        if not Path(self.python).is_file():
            raise BackendError("python_missing", f"Backend Python '{self.python}' does not exist")
        self.stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        lines = self.lines = queue.Queue()  # a fresh queue: lines of an earlier process never leak in
        command = [self.python, "-u", str(BACKEND_MAIN), "--serve", "--device", self.device, "--idle-timeout", str(self.idle_timeout)]
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
                text=True, bufsize=1, env=self.env,
            )  # fmt: skip
        except OSError as err:
            raise BackendError("python_missing", f"cannot start Backend Python '{self.python}': {err}") from None
        stdout = self.process.stdout

        def pump():
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        message = self._next_message(time.monotonic() + START_TIMEOUT)
        if message is not None and message.get("event") == "fatal":
            self.kill()
            raise BackendError(message.get("kind", "crashed"), f"{message.get('error')}: press Install Backend in the add-on preferences, or point Backend Python at a Python with torch")
        if message is not None and message.get("event") == "timeout":
            self.kill()
            raise BackendError("timeout", f"the backend did not start within {START_TIMEOUT:g} s. {self._stderr_tail()}".strip())
        if message is None or message.get("event") != "ready":
            self._died("the backend did not start")
        self.info = message
        if not message.get("torch"):
            self.close()
            raise BackendError("torch_missing", f"Backend Python '{self.python}' has no torch: press Install Backend in the add-on preferences")
        if self.device == "cuda" and not message.get("cuda"):
            self.close()
            raise BackendError("cuda_unavailable", "CUDA was requested, but the backend's torch sees no CUDA device; choose CPU or Automatic")

    def _next_message(self, deadline: float) -> dict | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"event": "timeout"}
            try:
                line = self.lines.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
            if line is None:
                return None
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue

    def _died(self, what: str):
        if self.process is not None:
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.returncode if self.process else None
        tail = self._stderr_tail()
        if "No module named 'torch'" in tail:
            raise BackendError("torch_missing", f"Backend Python '{self.python}' has no torch: press Install Backend in the add-on preferences")
        if code is not None and code < 0:
            reason = "killed (out of memory?)" if code == -9 else f"killed by signal {-code}"
            raise BackendError("killed", f"{what}: the backend process was {reason}. {tail}".strip())
        raise BackendError("crashed", f"{what}: the backend process ended (exit code {code}). {tail}".strip())

    def _send(self, message: dict) -> None:
        if not self._try_send(message):
            self._died("the backend stopped listening")

    def run(self, request_dir, progress_cb=None, cancel_check=None, timeout: float | None = None) -> dict:
        """Run one request folder; returns the result message. Raises BackendError/BackendCancelled.

        progress_cb(done, total, message) is called for each progress line; cancel_check()
        is polled every 0.1 s and, once true, the backend is told to cancel and killed if
        it has not stopped within CANCEL_GRACE seconds. The timeout covers the whole run.
        """
        deadline = time.monotonic() + timeout if timeout else float("inf")
        for attempt in (1, 2):
            self.start()
            self._next_id += 1
            try:
                return self._run_job(self._next_id, request_dir, progress_cb, cancel_check, timeout, deadline)
            except _IdleExit:
                # It ended on its idle timeout just as the request arrived: start a new one, once.
                if attempt == 2:
                    self._died("the request failed")
        raise AssertionError("unreachable")

    def _run_job(self, job_id, request_dir, progress_cb, cancel_check, timeout, deadline) -> dict:
        heard = False
        if not self._try_send({"id": job_id, "request": str(request_dir)}):
            if self._exited_cleanly():
                raise _IdleExit()
            self._died("the backend stopped listening")
        cancel_sent = None
        while True:
            now = time.monotonic()
            if cancel_sent is None and cancel_check is not None and cancel_check():
                self._send({"cancel": job_id})
                cancel_sent = now
            if cancel_sent is not None and now - cancel_sent > CANCEL_GRACE:
                self.kill()
                raise BackendCancelled()
            if now > deadline:
                self.kill()
                raise BackendError("timeout", f"the backend took longer than {timeout:g} s and was stopped")
            message = self._next_message(min(deadline, now + 0.1))
            if message is None:
                if not heard and cancel_sent is None and self._exited_cleanly():
                    raise _IdleExit()
                self._died("the request failed")
            event = message.get("event")
            if event == "timeout" or message.get("id") != job_id:
                continue
            heard = True
            if event == "progress":
                if progress_cb:
                    progress_cb(message["done"], message["total"], message.get("message", ""))
            elif event == "result":
                if message.get("ok"):
                    return message
                kind = message.get("kind", "internal")
                if kind == "cancelled":
                    raise BackendCancelled()
                raise BackendError(kind, _explain(kind, message.get("error") or "the backend failed", message.get("traceback", "")))

    def _try_send(self, message: dict) -> bool:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def _exited_cleanly(self) -> bool:
        try:
            return self.process.wait(timeout=2) == 0
        except subprocess.TimeoutExpired:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        if self.alive():
            try:
                self._send({"shutdown": True})
                self.process.wait(timeout=2)
            except (BackendError, subprocess.TimeoutExpired):
                self.kill()
        self.process = None


_SHARED: dict = {}


def get_client(python: str, device: str = "auto") -> BackendClient:
    """The shared warm backend for this Blender session (restarted when its settings change)."""
    client = _SHARED.get("client")
    if client is None or (client.python, client.device) != (python, device):
        if client is not None:
            client.close()
        client = _SHARED["client"] = BackendClient(python, device)
    return client


def shutdown_client() -> None:
    client = _SHARED.pop("client", None)
    if client is not None:
        client.close()


def compute_votes(
    client: BackendClient, gaussians: dict, cameras, masks, ignores=(), mode: str = "two_class",
    progress=None, cancel_check=None, timeout: float | None = None,
) -> tuple[np.ndarray, dict]:  # fmt: skip
    """Votes [N, K] float32 for `cameras` and their `masks`; the request folder is removed after."""
    folder = make_request_dir()
    try:
        write_request(folder, "votes", gaussians, cameras, masks, ignores, mode=mode)
        result = client.run(folder, progress, cancel_check, timeout)
        return load_array(folder, VOTES_FILE), result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def render_views(
    client: BackendClient, gaussians: dict, sh: np.ndarray, cameras, background=(0.0, 0.0, 0.0),
    progress=None, cancel_check=None, timeout: float | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """(RGB [H, W, 3] uint8, alpha [H, W] uint8) per camera."""
    folder = make_request_dir()
    try:
        write_request(folder, "render", gaussians, cameras, sh=sh, background=background)
        client.run(folder, progress, cancel_check, timeout)
        return list(zip(load_numbered(folder, RENDER, len(cameras)), load_numbered(folder, ALPHA, len(cameras)), strict=True))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def transfer_labels(
    client: BackendClient, gaussians: dict, sh: np.ndarray, cameras, sources, model: str, *, num_labels: int,
    cache_dir: str | None = None, k: int = 5, feature_size: int = 448, background=(0.0, 0.0, 0.0),
    progress=None, cancel_check=None, timeout: float | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], dict]:  # fmt: skip
    """Carry part labels from annotated images to every camera's render (the paper's affordance transfer).

    `sources` are (image [H, W, 3] uint8, labels [H, W] int in 0..num_labels-1) pairs; `model` a
    DINOv2 folder, a cached Hugging Face id, or "rgb-patches". Returns per camera the label map
    (int32 [H, W], 0 where no splat covers the pixel) and the render (uint8 [H, W, 3]), and the
    result message. The request folder is removed after.
    """
    folder = make_request_dir()
    try:
        write_request(folder, "transfer", gaussians, cameras, sh=sh, background=background, sources=sources,
                      model=model, num_labels=num_labels, cache_dir=cache_dir, k=k, feature_size=feature_size)  # fmt: skip
        result = client.run(folder, progress, cancel_check, timeout)
        return load_numbered(folder, LABELS, len(cameras)), load_numbered(folder, RENDER, len(cameras)), result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def download_model(python: str, model_id: str, folder, timeout: float | None = None) -> Path:
    """Download `model_id`'s safetensors and JSON files into `folder` with the backend Python
    (`--download-model`): the add-on's explicit Download Model button, the only network use.

    Started from an argument list (no shell). Returns the folder; raises BackendError
    ("download_failed", or "timeout") with the backend's message.
    """
    if not is_hugging_face_id(model_id):
        raise BackendError("download_failed", f"{model_id!r} is not a Hugging Face model id (owner/name, e.g. facebook/dinov2-small)")
    folder = Path(folder).expanduser()
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    command = [python, "-u", str(BACKEND_MAIN), "--download-model", model_id, "--to", str(folder)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise BackendError("timeout", f"downloading {model_id} took longer than {timeout:g} s and was stopped") from None
    except OSError as err:
        raise BackendError("python_missing", f"cannot start Backend Python '{python}': {err}") from None
    result = None
    for line in proc.stdout.splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(message, dict) and message.get("event") in ("result", "fatal"):
            result = message
    if result is not None and result.get("ok"):
        return Path(result.get("folder", folder))
    if result is not None:
        raise BackendError(result.get("kind", "download_failed"), result.get("error") or "the download failed")
    tail = " ".join(proc.stderr.strip().splitlines()[-3:])
    raise BackendError("download_failed", f"downloading {model_id} failed (exit code {proc.returncode}). {tail}".strip())
