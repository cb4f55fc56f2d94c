"""What the backend reports about itself: the packages this Python offers (the ready line,
`--info`) and how much memory a request took (result lines)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


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


def memory(windowed: bool) -> dict:
    """peak_rss_mb: the process's peak so far (ru_maxrss); request_peak_rss_mb: the peak
    during this request alone, where the OS lets us start a new window (Linux)."""
    out = {"peak_rss_mb": _round(peak_rss_mb())}
    if windowed:
        out["request_peak_rss_mb"] = _round(request_peak_rss_mb())
    return out


def _round(value):
    return None if value is None else round(value, 1)
