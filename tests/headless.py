"""The headless batch entry as a user starts it, for the tests: `python -m masksplat_blender.batch`
or `masksplat_blender/batch.py` by path (as `blender -b --python` does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_batch(*args, by_path=False, cwd=ROOT) -> subprocess.CompletedProcess:
    """Run one batch command to the end (5 minutes at most); its output is captured as text."""
    start = [sys.executable, str(ROOT / "masksplat_blender" / "batch.py"), "--"] if by_path else [sys.executable, "-m", "masksplat_blender.batch"]
    return subprocess.run([*start, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)
