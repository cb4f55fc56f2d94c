"""Starts MaskSplat's backend process and talks to it (stdlib and core only: no bpy, no torch).

Blender's Python has no torch and a CUDA crash must not take Blender down, so the work
runs in a separate Python, found in this order: the "Backend Python" preference, the
MaskSplat-managed virtual environment ("Install Backend"), then the Python running us
if it can import torch (the bpy module in tests and batch jobs). The process stays up
between requests (an idle timeout ends it), so interactive updates do not pay for
importing torch and compiling again.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core import interrupts
from .core.errors import BAD_INPUT, CANCELLED, FAILURE
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
from .core.streams import line_queue

BACKEND_MAIN = Path(__file__).resolve().parent / "backend" / "__main__.py"
CANCEL_GRACE = 0.5
START_TIMEOUT = 120.0
START_TIMEOUT_ENV = "MASKSPLAT_BACKEND_START_TIMEOUT"  # seconds; for slow first imports (network file systems)
BACKEND_PYTHON_ENV = "MASKSPLAT_BACKEND_PYTHON"  # the backend's Python for this process, before the preference


def start_timeout() -> float:
    """How long a backend may take to say it is ready (START_TIMEOUT, or the environment's value)."""
    try:
        value = float(os.environ.get(START_TIMEOUT_ENV, START_TIMEOUT))
    except ValueError:
        return START_TIMEOUT
    return value if value > 0 else START_TIMEOUT


class BackendError(RuntimeError):
    """A backend failure, with a message a user can act on. `kind` names the failure;
    `outcome` says what kind of failure it is for an exit code (core.errors)."""

    # kinds that are the user's input, not a failure: a feature model that cannot be loaded
    BAD_INPUT_KINDS = ("model_unavailable",)

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    @property
    def outcome(self) -> str:
        if self.kind == "cancelled":
            return CANCELLED
        return BAD_INPUT if self.kind in self.BAD_INPUT_KINDS else FAILURE


class BackendCancelled(BackendError):
    def __init__(self):
        super().__init__("cancelled", "cancelled")


class _IdleExit(Exception):
    """The backend ended on its own idle timeout before it took our request."""


# What a user reads for a result line's failure kind ({error}: the backend's own words).
EXPLANATIONS = {
    "invalid_request": "the backend refused the request: {error}",
    "out_of_memory": "the backend ran out of memory ({error}); use fewer Gaussians, smaller views, or the CPU device",
    "cuda_unavailable": "{error}; choose CPU or Automatic as the backend device",
    "model_unavailable": "the feature model cannot be loaded: {error}",
}


def _explain(kind: str, error: str, traceback_text: str = "") -> str:
    """A failure message a user can act on, from a result line's kind and error."""
    if kind == "internal":
        last = traceback_text.strip().splitlines()[-3:]
        return f"the backend failed: {error}" + (f" ({' | '.join(last)})" if last else "")
    return EXPLANATIONS.get(kind, "{error}").format(error=error)


def venv_python(folder, platform: str | None = None) -> Path:
    folder = Path(folder)
    return folder / ("Scripts/python.exe" if (platform or sys.platform) == "win32" else "bin/python")


# ---------------------------------------------------------------- Install Backend
# Tested versions. CPU: what CI runs (.ci/requirements-dev.txt). CUDA: the newest torch/CUDA
# pair gsplat publishes prebuilt wheels for (its index per pt<torch>cu<cuda>), so artists need
# neither the CUDA toolkit nor a C++ compiler.
PINNED = ("numpy==1.26.4", "numba==0.68.1", "transformers==5.24.0", "safetensors==0.8.0")
TORCH_CPU = "torch==2.13.0"
TORCH_CUDA, TORCH_CUDA_INDEX = "torch==2.4.1", "cu124"
GSPLAT = "gsplat==1.5.3"
GSPLAT_DEPENDENCIES = ("ninja", "jaxtyping", "rich", "typing_extensions")  # installed apart: gsplat's index has only gsplat
PYTORCH_INDEX = "https://download.pytorch.org/whl/{}"
GSPLAT_INDEX = "https://docs.gsplat.studio/whl/{}"
OFFLINE_MESSAGE = "Online access is off: allow it in Preferences > System > Network to {}"
JIT_NOTE = (
    "gsplat has no prebuilt wheel for torch {torch} with CUDA {cuda} on this Python and system, so it was installed "
    "from PyPI: it compiles its CUDA code the first time it runs, which needs the CUDA toolkit (nvcc) and a C++ "
    "compiler (Visual Studio's MSVC on Windows); without them MaskSplat uses its CPU rasterizer"
)


def _pip(python: str, *args: str) -> list[str]:
    return [python, "-m", "pip", "install", "--disable-pip-version-check", *args]


def install_commands(folder, flavour: str = "cpu", platform: str | None = None) -> list[list[str]]:
    """The pip commands "Install Backend" runs in a fresh venv before gsplat (argument lists,
    never a shell): pip itself, torch from PyTorch's index for the flavour, the pinned rest."""
    platform = platform or sys.platform
    if flavour not in ("cpu", "cuda"):
        raise ValueError(f"unknown backend flavour {flavour!r} (cpu or cuda)")
    if flavour == "cuda" and platform == "darwin":
        raise BackendError("install_failed", "CUDA needs an NVIDIA GPU on Linux or Windows; on a Mac choose Install Backend (CPU)")
    python = str(venv_python(folder, platform))
    if flavour == "cpu":  # on macOS, PyPI's torch is the CPU (and Metal) build already
        torch = [TORCH_CPU] if platform == "darwin" else [TORCH_CPU, "--index-url", PYTORCH_INDEX.format("cpu")]
    else:
        torch = [TORCH_CUDA, "--index-url", PYTORCH_INDEX.format(TORCH_CUDA_INDEX)]
    return [_pip(python, "--upgrade", "pip"), _pip(python, *torch), _pip(python, *PINNED)]


def gsplat_index_tag(torch_version: str, cuda_version: str | None) -> str | None:
    """gsplat's wheel index for an installed torch/CUDA pair ("2.4.1+cu124", "12.4" -> "pt24cu124");
    None for a torch without CUDA."""
    if not cuda_version:
        return None
    major, minor = torch_version.split("+")[0].split(".")[:2]
    return f"pt{major}{minor}cu{cuda_version.replace('.', '')}"


def gsplat_commands(python: str, torch_version: str, cuda_version: str | None) -> tuple[list, list | None, list]:
    """(gsplat's dependencies, the prebuilt wheel from gsplat's index for this torch/CUDA pair
    (None without CUDA), the fallback: PyPI's gsplat, which compiles on first use)."""
    tag = gsplat_index_tag(torch_version, cuda_version)
    prebuilt = _pip(python, "--no-deps", GSPLAT, "--index-url", GSPLAT_INDEX.format(tag)) if tag else None
    return _pip(python, *GSPLAT_DEPENDENCIES), prebuilt, _pip(python, "--no-deps", GSPLAT)


def _run_pip(command: list[str], step: int, total: int, progress) -> tuple[bool, str]:
    """Run one pip command, passing each line it prints to progress(step, total, line);
    (whether it succeeded, the last lines it printed)."""
    tail: collections.deque = collections.deque(maxlen=12)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    try:
        for line in proc.stdout:
            line = line.strip()
            if line:
                tail.append(line)
                if progress:
                    progress(step, total, line[:160])
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc.returncode == 0, "\n".join(tail)


def _check_pip(command, step, total, progress) -> None:
    ok, tail = _run_pip(command, step, total, progress)
    if not ok:
        raise BackendError("install_failed", f"installing the backend failed ({' '.join(command[5:])}): {tail[-800:]}")


def _installed_torch(python: str) -> tuple[str, str | None]:
    code = "import json, torch; print(json.dumps([torch.__version__, torch.version.cuda]))"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise BackendError("install_failed", f"torch was installed but does not import: {proc.stderr.strip()[-400:]}")
    version, cuda = json.loads(proc.stdout.strip().splitlines()[-1])
    return version, cuda


@dataclass
class InstallResult:
    python: Path
    notes: list[str] = field(default_factory=list)  # what was installed, for the user
    warnings: list[str] = field(default_factory=list)  # what the user must know (gsplat compiles on first use)


def install_backend_venv(folder, flavour: str = "cpu", progress=None, *, allow_network: bool) -> InstallResult:
    """Create the managed venv and install the pinned backend packages (this downloads them:
    `allow_network` is the user's consent, e.g. Blender's online access). progress(step, total,
    text) follows pip."""
    if not allow_network:
        raise BackendError("offline", OFFLINE_MESSAGE.format("install the backend"))
    folder = Path(folder)
    commands = install_commands(folder, flavour)
    total = len(commands) + (2 if flavour == "cuda" else 0)
    if progress:
        progress(0, total, f"creating the environment in {folder}")
    venv.EnvBuilder(with_pip=True, clear=False).create(folder)
    python = str(venv_python(folder))
    for step, command in enumerate(commands):
        _check_pip(command, step, total, progress)
    result = InstallResult(Path(python))
    if flavour == "cuda":
        torch_version, cuda_version = _installed_torch(python)
        dependencies, prebuilt, fallback = gsplat_commands(python, torch_version, cuda_version)
        _check_pip(dependencies, len(commands), total, progress)
        if prebuilt is not None and _run_pip(prebuilt, total - 1, total, progress)[0]:
            result.notes.append(f"{GSPLAT} prebuilt for torch {torch_version} with CUDA {cuda_version}")
        else:
            _check_pip(fallback, total - 1, total, progress)
            result.warnings.append(JIT_NOTE.format(torch=torch_version, cuda=cuda_version or "(none)"))
    return result


def _has_torch(python: str) -> bool:
    if Path(python).resolve() == Path(sys.executable).resolve():
        return importlib.util.find_spec("torch") is not None
    proc = subprocess.run([python, "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('torch') is None)"],
                          capture_output=True, timeout=60)  # fmt: skip
    return proc.returncode == 0


def find_backend_python(preferred: str | None = None, managed_venv=None) -> tuple[str, str]:
    """(python, how it was found): MASKSPLAT_BACKEND_PYTHON (a batch job's --backend-python), the
    preference, the managed environment, this Python. A given path that is wrong is an error, not skipped."""
    given = [(os.environ.get(BACKEND_PYTHON_ENV), "--backend-python", BACKEND_PYTHON_ENV), (preferred, "the add-on preferences", "preferences")]
    for python, where, how in given:
        if not python:
            continue
        path = Path(python).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise BackendError("python_missing", f"Backend Python '{python}' does not exist or cannot be run; fix it in {where}")
        return str(path), how
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
        try:
            self._start()
        except BaseException:  # Ctrl-C or a failure while it starts: never leave it running
            self.kill()
            raise

    def _start(self) -> None:
        self.stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        command = [self.python, "-u", str(BACKEND_MAIN), "--serve", "--device", self.device, "--idle-timeout", str(self.idle_timeout)]
        try:
            with interrupts.deferred():  # a Ctrl-C half way through would leave an unknown child running
                self.process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
                    text=True, bufsize=1, env=self.env,
                )  # fmt: skip
        except OSError as err:
            raise BackendError("python_missing", f"cannot start Backend Python '{self.python}': {err}") from None
        self.lines = line_queue(self.process.stdout)  # a fresh queue: lines of an earlier process never leak in
        timeout = start_timeout()
        message = self._next_message(time.monotonic() + timeout)
        if message is not None and message.get("event") == "fatal":
            self.kill()
            raise BackendError(message.get("kind", "crashed"), f"{message.get('error')}: press Install Backend in the add-on preferences, or point Backend Python at a Python with torch")
        if message is not None and message.get("event") == "timeout":
            self.kill()
            raise BackendError("timeout", f"the backend did not start within {timeout:g} s. {self._stderr_tail()}".strip())
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
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM in a batch job: stop the work at once
                self.kill()
                raise
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


def backend_for(device: str | None = None, preferred_python: str | None = None, managed_venv=None,
                preferred_device: str = "auto") -> BackendClient:  # fmt: skip
    """The shared warm backend, for the UI and batch jobs alike: its Python found by
    `find_backend_python` (preference, managed environment, this Python), on `device`, or
    (None or "PREFERENCES") on the preferred one."""
    python, _ = find_backend_python(preferred_python, managed_venv)
    if device in (None, "PREFERENCES"):
        device = preferred_device
    return get_client(python, device)


def shutdown_client() -> None:
    client = _SHARED.pop("client", None)
    if client is not None:
        client.close()


@contextmanager
def request_folder():
    """A private request folder for one backend call, removed afterwards whatever happens
    (an error, Ctrl-C, SIGTERM in a batch job)."""
    folder = None
    try:
        with interrupts.deferred():  # made whole, and known to the finally below, before a cancel is taken
            folder = make_request_dir()
        yield folder
    finally:
        if folder is not None:
            with interrupts.deferred(reraise=False):  # a second Ctrl-C must not leave it behind
                shutil.rmtree(folder, ignore_errors=True)


def _write_request(folder: Path, *args, **kwargs) -> None:
    """write_request, with a failure to write (a full disk, a file size limit) said as such."""
    try:
        write_request(folder, *args, **kwargs)
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise BackendError("request_failed", f"cannot write the backend's request in {folder.parent} ({reason}): is the disk full?") from err


def compute_votes(
    client: BackendClient, gaussians: dict, cameras, masks, ignores=(), mode: str = "two_class",
    progress=None, cancel_check=None, timeout: float | None = None,
) -> tuple[np.ndarray, dict]:  # fmt: skip
    """Votes [N, K] float32 for `cameras` and their `masks`."""
    with request_folder() as folder:
        _write_request(folder, "votes", gaussians, cameras, masks, ignores, mode=mode)
        result = client.run(folder, progress, cancel_check, timeout)
        return load_array(folder, VOTES_FILE), result


def render_views(
    client: BackendClient, gaussians: dict, sh: np.ndarray, cameras, background=(0.0, 0.0, 0.0),
    progress=None, cancel_check=None, timeout: float | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """(RGB [H, W, 3] uint8, alpha [H, W] uint8) per camera."""
    with request_folder() as folder:
        _write_request(folder, "render", gaussians, cameras, sh=sh, background=background)
        client.run(folder, progress, cancel_check, timeout)
        return list(zip(load_numbered(folder, RENDER, len(cameras)), load_numbered(folder, ALPHA, len(cameras)), strict=True))


def transfer_labels(
    client: BackendClient, gaussians: dict, sh: np.ndarray, cameras, sources, model: str, *, num_labels: int,
    cache_dir: str | None = None, k: int = 5, feature_size: int = 448, background=(0.0, 0.0, 0.0),
    progress=None, cancel_check=None, timeout: float | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], dict]:  # fmt: skip
    """Carry part labels from annotated images to every camera's render (the paper's affordance transfer).

    `sources` are (image [H, W, 3] uint8, labels [H, W] int in 0..num_labels-1) pairs; `model` a
    DINOv2 folder, a cached Hugging Face id, or "rgb-patches". Returns per camera the label map
    (int32 [H, W], 0 where no splat covers the pixel) and the render (uint8 [H, W, 3]), and the
    result message.
    """
    with request_folder() as folder:
        _write_request(folder, "transfer", gaussians, cameras, sh=sh, background=background, sources=sources,
                      model=model, num_labels=num_labels, cache_dir=cache_dir, k=k, feature_size=feature_size)  # fmt: skip
        result = client.run(folder, progress, cancel_check, timeout)
        return load_numbered(folder, LABELS, len(cameras)), load_numbered(folder, RENDER, len(cameras)), result


class PlanBackend:
    """One backend client as the scene's plans call it (`plan.run(backend, progress, cancelled)`;
    scene/ does not import the client): results only, progress as (done, total), cancel as
    cancelled() -> bool, the same keywords for every call."""

    def __init__(self, client: BackendClient):
        self.client = client

    def votes(self, gaussians: dict, cameras, masks, ignores=(), mode: str = "two_class", progress=None, cancelled=None) -> np.ndarray:
        """Votes [N, K] float32 (compute_votes)."""
        return compute_votes(self.client, gaussians, cameras, masks, ignores, mode, _steps(progress), cancelled)[0]

    def renders(self, gaussians: dict, sh: np.ndarray, cameras, progress=None, cancelled=None) -> list[np.ndarray]:
        """RGB [H, W, 3] uint8 per camera (render_views)."""
        return [rgb for rgb, _ in render_views(self.client, gaussians, sh, cameras, progress=_steps(progress), cancel_check=cancelled)]

    def transfer(self, gaussians: dict, sh: np.ndarray, cameras, sources, model: str, progress=None, cancelled=None,
                 **options) -> list[np.ndarray]:  # fmt: skip
        """Label maps int32 [H, W] per camera (transfer_labels; `options`: num_labels, cache_dir, k, feature_size)."""
        maps, _, _ = transfer_labels(self.client, gaussians, sh, cameras, sources, model, progress=_steps(progress),
                                     cancel_check=cancelled, **options)  # fmt: skip
        return maps


def _steps(progress):
    """The backend's progress (done, total, message) as a plan's (done, total), or None."""
    return None if progress is None else (lambda done, total, *_: progress(done, total) if total else None)


def download_model(python: str, model_id: str, folder, timeout: float | None = None, *, allow_network: bool) -> Path:
    """Download `model_id`'s safetensors and JSON files into `folder` with the backend Python
    (`--download-model`): the add-on's explicit Download Model button. `allow_network` is the
    user's consent (Blender's online access).

    Started from an argument list (no shell). Returns the folder; raises BackendError
    ("offline", "download_failed", or "timeout") with the backend's message.
    """
    if not allow_network:
        raise BackendError("offline", OFFLINE_MESSAGE.format("download the model"))
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
