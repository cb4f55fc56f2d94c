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
Results are written as .npy into the request folder under core.request's names (votes.npy
[N, K] float32; render_<i>.npy [H, W, 3] uint8 and alpha_<i>.npy [H, W] uint8; for
transfer also labels_<i>.npy [H, W] int32).
--download-model ID --to FOLDER downloads a model's safetensors and JSON files from the
Hugging Face Hub (the only path that uses the network) and prints one result line.

This module is the process: its command line, the JSON-line loop and the dispatch of a
request to its kind's handler (handlers.HANDLERS); the handlers, the rasterizer choice
(rasterizer.select_rasterizer), the diagnostics and the download live beside it.
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

from ..core.request import RequestError, read_request
from ..core.streams import line_queue
from .diagnostics import info, memory, reset_peak_rss
from .download import download_model
from .features import ModelUnavailable
from .handlers import HANDLERS, Cancelled
from .rasterizer import CudaUnavailable, select_rasterizer

EXIT_OK, EXIT_FAILURE, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 130


def handle(folder, device: str, progress, cancelled, rasterizers: dict) -> dict:
    """Run one request folder by its kind's handler; returns the result fields. Raises on failure.

    `rasterizers` caches the chosen rasterizer per device across the requests of a process.
    """
    request = read_request(folder)
    if request.kind == "ping":
        return {"outputs": []}
    if device not in rasterizers:
        rasterizers[device] = select_rasterizer(device, progress)
    rasterizer, note = rasterizers[device]
    outputs, extra = HANDLERS[request.kind](request, rasterizer, device, progress, cancelled)
    total = len(request.views)
    progress(total, total, "done")
    return {"outputs": outputs, "device": rasterizer.name, "device_note": note, **extra}


def failure_result(err: BaseException) -> dict:
    """The result fields of a failed request: its kind, a message and (internal errors only) the traceback."""
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


def run_request(folder, device: str, progress, cancelled, rasterizers: dict, windowed: bool = False) -> dict:
    """The result fields of one request, ok or not (every failure becomes a result).
    `windowed`: a peak-memory window was started for it (diagnostics.reset_peak_rss)."""
    start = time.perf_counter()
    try:
        result = handle(folder, device, progress, cancelled, rasterizers)
    except BaseException as err:  # noqa: BLE001 - every failure becomes a result line
        return failure_result(err)
    result.update(ok=True, seconds=round(time.perf_counter() - start, 4), **memory(windowed))
    return result


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

        windowed = reset_peak_rss()
        return run_request(folder, device, progress, lambda: job_id in self.cancel_ids, self.rasterizers, windowed)

    def serve(self, stdin) -> int:
        thread = threading.Thread(target=self.worker, daemon=True)
        thread.start()
        lines = line_queue(stdin)
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


def protocol_stream():
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
    out = protocol_stream()
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
        return run_once(out, args.once, args.device)
    parser.print_usage(sys.stderr)
    return EXIT_INVALID


def run_once(out, folder, device: str) -> int:
    """`--once FOLDER`: progress and result lines without ids, and an exit code by the failure's kind."""

    def progress(done, total, message):
        out.write(json.dumps({"event": "progress", "done": done, "total": total, "message": message}) + "\n")

    result = run_request(folder, device, progress, lambda: False, {})
    out.write(json.dumps({"event": "result", **result}) + "\n")
    if result["ok"]:
        return EXIT_OK
    print(f"masksplat backend: {result['error']}", file=sys.stderr)
    return {"invalid_request": EXIT_INVALID, "cancelled": EXIT_CANCELLED}.get(result["kind"], EXIT_FAILURE)
