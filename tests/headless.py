"""Running the batch entry point as pipelines do: a real subprocess, by module or by file path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_batch(*args, by_path=False, cwd=ROOT):
    start = [sys.executable, str(ROOT / "masksplat_blender" / "batch.py"), "--"] if by_path else [sys.executable, "-m", "masksplat_blender.batch"]
    return subprocess.run([*start, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)
