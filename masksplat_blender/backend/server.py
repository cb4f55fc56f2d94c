"""The backend process: reads requests, streams progress, returns votes and renders.

Protocol (JSON lines; stdout carries nothing else, stray prints go to stderr):
  in:  {"id": ID, "request": FOLDER} | {"cancel": ID} | {"shutdown": true}
  out: {"event": "ready", "pid", "torch", "cuda", "numba"}
       {"id", "event": "progress", "done", "total", "message"}
       {"id", "event": "result", "ok": true, "device", "device_note", "outputs", "seconds",
        "feature_model", "feature_device" (transfer only: the model and where its features ran),
        "peak_rss_mb" (process peak so far), "request_peak_rss_mb" (this request's peak; Linux)}
       {"id", "event": "result", "ok": false, "kind", "error", "traceback"}
kind is one of invalid_request, cuda_unavailable, model_unavailable (the feature model of a
transfer request cannot be loaded: the message says how to get it), out_of_memory, cancelled,
internal.
A progress line with total 0 has no fraction (e.g. "loading gsplat's CUDA code ...", sent
before gsplat's first-use compile). Cancel is checked between views (between batches of
views on the GPU); the client kills the process if a cancel is not answered in 0.5 s.
--once FOLDER prints the same progress and result lines (without "id") and exits 0 (ok),
2 (invalid request), 130 (interrupted) or 1 (anything else); --info prints one JSON object.
Results are written as .npy into the request folder (votes.npy [N, K] float32;
render_<i>.npy [H, W, 3] uint8 and alpha_<i>.npy [H, W] uint8; for transfer also
labels_<i>.npy [H, W] int32).
--download-model ID --to FOLDER downloads a model's safetensors and JSON files from the
Hugging Face Hub (the only path that uses the network) and prints one result line.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from ..core.request import Request, RequestError, read_request
from .features import ModelUnavailable
from .rasterizer import Gaussians, View

EXIT_OK, EXIT_FAILURE, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 130


class Cancelled(Exception):
    pass


class CudaUnavailable(Exception):
    pass


def reset_peak_rss() -> bool:
    """Start a new peak-memory window (Linux: VmHWM via /proc/self/clear_refs). False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def request_peak_rss_mb() -> float | None:
    """Peak resident memory since reset_peak_rss() (Linux), in MiB; None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process since it started, in MiB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB on Linux


def select_rasterizer(device: str, progress=None):
    """(rasterizer, note): gsplat on CUDA when asked or when `auto` finds it, else the CPU one."""
    if device not in ("auto", "cpu", "cuda"):
        raise RequestError(f"unknown device {device!r} (auto, cpu or cuda)")
    if device in ("auto", "cuda"):
        from . import raster_gsplat

        if progress is not None and _cuda_present():
            progress(0, 0, "loading gsplat's CUDA code (it compiles on first use, which can take several minutes)")
        ok, reason = raster_gsplat.available(progress)
        if ok:
            return raster_gsplat.GsplatRasterizer(), "gsplat on CUDA"
        if device == "cuda":
            raise CudaUnavailable(f"CUDA was requested but cannot be used: {reason}")
        note = f"CPU rasterizer ({reason})"
    else:
        note = "CPU rasterizer"
    from .raster_cpu import CpuRasterizer

    return CpuRasterizer(), note


def _round(value):
    return None if value is None else round(value, 1)


def _memory(windowed: bool) -> dict:
    """peak_rss_mb: the process's peak so far (ru_maxrss); request_peak_rss_mb: the peak
    during this request alone, where the OS lets us start a new window (Linux)."""
    out = {"peak_rss_mb": _round(peak_rss_mb())}
    if windowed:
        out["request_peak_rss_mb"] = _round(request_peak_rss_mb())
    return out


def _cuda_present() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _gaussians(request: Request, with_sh: bool) -> Gaussians:
    arrays = {name: np.ascontiguousarray(request.array(name)) for name in ("means", "quats", "log_scales", "opacity_logits")}
    sh = np.ascontiguousarray(request.array("sh")) if with_sh else None
    return Gaussians(sh=sh, **arrays)


def _view(spec) -> View:
    return View(spec.viewmat, spec.K(), spec.width, spec.height)


def _to_uint8(array) -> np.ndarray:
    return (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)


def _transfer(request: Request, rasterizer, device: str, progress, cancelled) -> tuple[list[str], dict]:
    """Render each view, carry the sources' labels to it by patch features, mask by coverage.

    The model is loaded once per process (features.load_feature_model caches it) and the
    source features once per request; views stream one at a time, so memory does not grow
    with their number.
    """
    from . import features

    spec = request.transfer
    total = len(request.views)
    progress(0, total, f"loading feature model {spec.model}")
    model = features.load_feature_model(spec.model, spec.cache_dir, device)
    if spec.feature_size % model.patch_size:
        raise RequestError(f"feature_size {spec.feature_size} is not a multiple of the model's patch size {model.patch_size}")
    feats, labels = [], []
    for index in range(len(spec.sources)):
        if cancelled():
            raise Cancelled()
        progress(0, total, f"features of source image {index + 1} of {len(spec.sources)}")
        image, source_labels = request.source(index)
        feats.append(features.patch_features(model, image, spec.feature_size))
        labels.append(source_labels)
    transfer = features.LabelTransfer(feats, labels, spec.num_labels)
    del feats, labels
    gaussians = _gaussians(request, with_sh=True)
    background = np.asarray(request.background, dtype=np.float32)
    outputs = []
    for index, view in enumerate(request.views):
        if cancelled():
            raise Cancelled()
        progress(index, total, f"transfer labels to {view.name}")
        image, alpha = rasterizer.render(gaussians, _view(view), background)
        rgb = _to_uint8(image)
        scores = transfer.scores(features.patch_features(model, rgb, spec.feature_size), spec.k)
        label_map = features.upsample_labels(scores, view.height, view.width)
        label_map[np.asarray(alpha) < 0.5] = 0  # no splat there: nothing to label
        for name, array in ((f"labels_{index:05d}.npy", label_map), (f"render_{index:05d}.npy", rgb),
                            (f"alpha_{index:05d}.npy", _to_uint8(alpha))):  # fmt: skip
            np.save(request.folder / name, array, allow_pickle=False)
            outputs.append(name)
    return outputs, {"feature_model": model.name, "feature_device": model.device}


def handle(folder, device: str, progress, cancelled, rasterizers: dict) -> dict:
    """Run one request folder; returns the result fields. Raises on failure."""
    request = read_request(folder)
    if request.kind == "ping":
        return {"outputs": []}
    if device not in rasterizers:
        rasterizers[device] = select_rasterizer(device, progress)
    rasterizer, note = rasterizers[device]
    total = len(request.views)
    outputs, extra = [], {}
    if request.kind == "votes":
        gaussians = _gaussians(request, with_sh=False)
        votes = np.zeros((request.num_gaussians, request.channels), dtype=np.float64)
        batch = getattr(rasterizer, "batch", 1) if hasattr(rasterizer, "votes_masks") else 1
        index = 0
        while index < total:
            if cancelled():
                raise Cancelled()
            spec = request.views[index]
            progress(index, total, f"view {spec.name}")
            if batch == 1:
                rasterizer.votes(gaussians, _view(spec), request.weights(index), votes)
                index += 1
                continue
            # Same-size neighbours go to the GPU together, masks still raw (uint8).
            group = [index]
            while len(group) < batch and group[-1] + 1 < total and (
                (request.views[group[-1] + 1].width, request.views[group[-1] + 1].height) == (spec.width, spec.height)
            ):
                group.append(group[-1] + 1)
            raw = [request.raw_mask(i) for i in group]
            rasterizer.votes_masks(gaussians, [_view(request.views[i]) for i in group],
                                   [m for m, _ in raw], [k for _, k in raw], request.mode, votes)  # fmt: skip
            index = group[-1] + 1
        np.save(request.folder / "votes.npy", votes.astype(np.float32), allow_pickle=False)
        outputs.append("votes.npy")
    elif request.kind == "transfer":
        outputs, extra = _transfer(request, rasterizer, device, progress, cancelled)
    else:
        gaussians = _gaussians(request, with_sh=True)
        background = np.asarray(request.background, dtype=np.float32)
        for index, spec in enumerate(request.views):
            if cancelled():
                raise Cancelled()
            progress(index, total, f"render {spec.name}")
            image, alpha = rasterizer.render(gaussians, _view(spec), background)
            for name, array in ((f"render_{index:05d}.npy", image), (f"alpha_{index:05d}.npy", alpha)):
                np.save(request.folder / name, _to_uint8(array), allow_pickle=False)
                outputs.append(name)
    progress(total, total, "done")
    return {"outputs": outputs, "device": rasterizer.name, "device_note": note, **extra}


def _failure(err: BaseException) -> dict:
    if isinstance(err, RequestError):
        kind = "invalid_request"
    elif isinstance(err, (Cancelled, KeyboardInterrupt)):
        kind = "cancelled"
    elif isinstance(err, CudaUnavailable):
        kind = "cuda_unavailable"
    elif isinstance(err, ModelUnavailable):
        kind = "model_unavailable"
    elif isinstance(err, MemoryError) or "out of memory" in str(err).lower():
        kind = "out_of_memory"
    else:
        kind = "internal"
    message = {"cancelled": "cancelled"}.get(kind, str(err) or type(err).__name__)
    return {"ok": False, "kind": kind, "error": message, "traceback": traceback.format_exc() if kind == "internal" else ""}


class Server:
    """Long-lived mode: one worker thread runs requests, the main thread reads stdin."""

    def __init__(self, out, device: str, idle_timeout: float):
        self.out, self.device, self.idle_timeout = out, device, idle_timeout
        self.lock = threading.Lock()
        self.jobs: queue.Queue = queue.Queue()
        self.cancel_ids: set = set()
        self.current = None
        self.rasterizers: dict = {}
        self.last_activity = time.monotonic()

    def send(self, message: dict) -> None:
        with self.lock:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()

    def worker(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.current = job[0]
            result = self.run_job(*job)
            self.current = None
            self.cancel_ids.discard(job[0])
            self.last_activity = time.monotonic()
            self.send({"id": job[0], "event": "result", **result})

    def run_job(self, job_id, folder, device) -> dict:
        def progress(done, total, message):
            self.send({"id": job_id, "event": "progress", "done": done, "total": total, "message": message})

        start = time.perf_counter()
        windowed = reset_peak_rss()
        try:
            result = handle(folder, device, progress, lambda: job_id in self.cancel_ids, self.rasterizers)
        except BaseException as err:  # noqa: BLE001 - every failure becomes a result line
            return _failure(err)
        result.update(ok=True, seconds=round(time.perf_counter() - start, 4), **_memory(windowed))
        return result

    def serve(self, stdin) -> int:
        thread = threading.Thread(target=self.worker, daemon=True)
        thread.start()
        lines: queue.Queue = queue.Queue()

        def read_lines():
            for line in stdin:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read_lines, daemon=True).start()
        self.send({"event": "ready", "pid": os.getpid(), **info()})
        while True:
            try:
                line = lines.get(timeout=0.5)
            except KeyboardInterrupt:
                return EXIT_CANCELLED
            except queue.Empty:
                idle = self.current is None and self.jobs.empty()
                if idle and time.monotonic() - self.last_activity > self.idle_timeout:
                    break
                continue
            if line is None:
                break
            self.last_activity = time.monotonic()
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                self.send({"event": "error", "error": f"not a JSON line: {line[:80]!r}"})
                continue
            if message.get("shutdown"):
                break
            if "cancel" in message:
                self.cancel_ids.add(message["cancel"])
                continue
            self.jobs.put((message.get("id"), message.get("request"), message.get("device", self.device)))
        self.jobs.put(None)
        return EXIT_OK


def info(probe: bool = False) -> dict:
    """What this Python offers, for diagnostics and the client's checks.

    probe=True (`--info`) really imports numba and gsplat and reports their versions or
    why they fail; the ready line only looks them up, to keep start-up fast.
    """
    import importlib.util

    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    try:
        import torch

        out["torch"] = torch.__version__
        out["torch_cuda"] = torch.version.cuda  # the CUDA torch was built for (None: a CPU build)
        out["cuda"] = bool(torch.cuda.is_available())
    except ImportError:
        out["torch"], out["torch_cuda"], out["cuda"] = None, None, False
    out["numba"] = importlib.util.find_spec("numba") is not None
    gsplat = importlib.util.find_spec("gsplat")
    out["gsplat"] = gsplat is not None
    # A prebuilt wheel ships its compiled CUDA code (gsplat/csrc.*); PyPI's compiles it on first use.
    folders = (gsplat.submodule_search_locations or []) if gsplat is not None else []
    out["gsplat_prebuilt"] = any(p.name.startswith("csrc.") for folder in folders for p in Path(folder).iterdir())
    if probe:
        for name in ("numba", "gsplat"):
            if not out[name]:
                continue
            try:
                module = importlib.import_module(name)
            except Exception as err:  # noqa: BLE001 - reported, not raised
                out[name] = False
                out[f"{name}_error"] = f"{type(err).__name__}: {err}"
            else:
                out[f"{name}_version"] = getattr(module, "__version__", "?")
        out["executable"] = sys.executable
    return out


DOWNLOAD_PATTERNS = ["*.safetensors", "*.json", "*.txt"]


def download_model(model_id: str, folder) -> dict:
    """Download a Hugging Face model's safetensors and JSON files into `folder` (never pickles).

    The one place the backend uses the network, run only on the user's explicit request
    (the add-on's Download Model button); it undoes HF_HUB_OFFLINE for that reason.
    Raises ModelUnavailable with a message saying what to do instead.
    """
    from .features import _looks_like_id, how_to_get

    if not _looks_like_id(model_id):
        raise ModelUnavailable(f"{model_id!r} is not a Hugging Face model id (owner/name, e.g. facebook/dinov2-small)")
    os.environ.pop("HF_HUB_OFFLINE", None)
    os.environ.pop("TRANSFORMERS_OFFLINE", None)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelUnavailable("the backend Python has no huggingface_hub: press Install Backend in the add-on preferences") from None
    try:
        path = Path(snapshot_download(repo_id=model_id, local_dir=str(folder), allow_patterns=DOWNLOAD_PATTERNS))
    except Exception as err:  # noqa: BLE001 - network, missing repo, disk: all reported the same way
        first = (str(err) or type(err).__name__).strip().splitlines()[0]
        raise ModelUnavailable(
            f"downloading {model_id} failed ({type(err).__name__}: {first}). Check the internet connection and "
            "the model id. " + how_to_get(model_id, button=False)
        ) from None
    files = sorted(p.name for p in path.iterdir() if p.is_file())
    if not any(name.endswith(".safetensors") for name in files):
        raise ModelUnavailable(f"{model_id} has no safetensors weights on the Hub (only pickles?); MaskSplat does not load pickles")
    return {"folder": str(path), "files": files}


def _protocol_stream():
    """The protocol owns the real stdout; everything else written there goes to stderr.

    Redirected at the file-descriptor level, so output from compiled code and child
    processes (numba, a gsplat/ninja build) cannot corrupt the JSON lines either.
    """
    sys.stdout.flush()
    try:
        fd = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no real descriptors (embedded use): Python-level redirection only
        out = sys.stdout
    else:
        out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr
    return out


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="masksplat-backend", description="MaskSplat's compute backend")
    parser.add_argument("--serve", action="store_true", help="long-lived: JSON lines on stdin/stdout")
    parser.add_argument("--once", metavar="FOLDER", help="run one request folder and exit")
    parser.add_argument("--info", action="store_true", help="print what this Python offers as JSON")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--idle-timeout", type=float, default=900.0, help="seconds without a request before exiting")
    parser.add_argument("--download-model", metavar="ID", help="download a Hugging Face model's safetensors (needs --to)")
    parser.add_argument("--to", metavar="FOLDER", help="where --download-model puts the files")
    args = parser.parse_args(argv)
    if args.download_model is not None and not args.to:
        parser.error("--download-model needs --to FOLDER")
    # Ctrl-C becomes a cancel (exit 130) even when we were started with SIGINT ignored (a
    # shell's background job), where Python installs no handler of its own.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    out = _protocol_stream()
    if args.info:
        out.write(json.dumps(info(probe=True)) + "\n")
        return EXIT_OK
    if args.download_model is not None:
        try:
            result = {"event": "result", "ok": True, **download_model(args.download_model, args.to)}
        except ModelUnavailable as err:
            out.write(json.dumps({"event": "result", "ok": False, "kind": "download_failed", "error": str(err)}) + "\n")
            print(f"masksplat backend: {err}", file=sys.stderr)
            return EXIT_FAILURE
        out.write(json.dumps(result) + "\n")
        return EXIT_OK
    if args.serve:
        return Server(out, args.device, args.idle_timeout).serve(sys.stdin)
    if args.once:
        start = time.perf_counter()
        try:
            result = handle(
                args.once, args.device, lambda d, t, m: out.write(json.dumps({"event": "progress", "done": d, "total": t, "message": m}) + "\n"),
                lambda: False, {},
            )  # fmt: skip
        except BaseException as err:  # noqa: BLE001
            failure = _failure(err)
            out.write(json.dumps({"event": "result", **failure}) + "\n")
            print(f"masksplat backend: {failure['error']}", file=sys.stderr)
            return {"invalid_request": EXIT_INVALID, "cancelled": EXIT_CANCELLED}.get(failure["kind"], EXIT_FAILURE)
        result.update(ok=True, seconds=round(time.perf_counter() - start, 4), **_memory(False))
        out.write(json.dumps({"event": "result", **result}) + "\n")
        return EXIT_OK
    parser.print_usage(sys.stderr)
    return EXIT_INVALID
