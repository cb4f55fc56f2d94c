"""Host side of the window tests: run a scenario in Debian's Blender (4.3 "trixie" and 5.2
"sid") in a real window on a virtual screen, through ../shared/tools/blender-window.

Needs root, bubblewrap and the Debian package registry (to build the Blender roots once);
elsewhere the tests skip and say why. Screenshots land in window_out/<suite>/<scenario>/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("MASKSPLAT_BLENDER_WINDOW", ROOT.parent / "shared" / "tools" / "blender-window"))
OUT = ROOT / "window_out"
SUITES = {"trixie": "4.3", "sid": "5.2"}
DRIVER = Path(__file__).with_name("driver.py")


def unavailable() -> str | None:
    """Why real-window tests cannot run here, or None."""
    if not TOOL.exists():
        return f"real-window tests need {TOOL} (../shared/tools is absent)"
    if os.geteuid() != 0:
        return (
            "real-window tests need root (blender-window builds Debian roots and sandboxes with bubblewrap)"
        )
    return None


def ensure_suite(suite: str) -> None:
    """Build the suite's Blender root once (1-3 minutes; needs the Debian registry)."""
    proc = subprocess.run([str(TOOL), "setup", suite], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"Debian's Blender ({suite}) could not be set up here: {proc.stderr.strip()[-300:]}")


def run_scenario(
    suite: str, scenario: str | Path, args: dict, timeout: float = 420.0, size: str = "1600x1000"
) -> dict:
    """Run tests/window/scenarios/<scenario>.py (or a scenario file given by its path, e.g. a
    benchmark's) in Blender; returns result.json plus the console text."""
    script = (
        Path(scenario) if str(scenario).endswith(".py") else DRIVER.parent / "scenarios" / f"{scenario}.py"
    )
    scenario = script.stem
    out = OUT / suite / scenario
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    payload = {"scenario": str(script.resolve()), "out": str(out),
               "backend_python": str(ROOT / ".venv" / "bin" / "python"), **args}  # fmt: skip
    paths = [
        p
        for v in args.values()
        for p in (v if isinstance(v, list) else [v])
        if isinstance(p, str) and Path(p).is_absolute()
    ]
    binds = sorted({str(Path(p).resolve().parent) for p in paths} | {str(out)})
    command = [str(TOOL), "run", suite, *[a for b in binds for a in ("--bind", b)], "--size", size, "--",
               "--python", str(DRIVER), "--", json.dumps(payload)]  # fmt: skip
    print(f"window test {scenario} in Blender {SUITES[suite]}: screenshots in {out}", file=sys.stderr)
    log = out / "console.txt"  # written as Blender goes, so a slow or hung run can be followed
    with log.open("w") as console_file:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=console_file, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(
                f"Blender {SUITES[suite]} did not finish {scenario} within {timeout:g} s:\n{log.read_text()[-3000:]}"
            )
    console = log.read_text()
    result_file = out / "result.json"
    if not result_file.exists():
        pytest.fail(
            f"{scenario} in Blender {SUITES[suite]} wrote no result (exit {proc.returncode}):\n{console[-3000:]}"
        )
    result = json.loads(result_file.read_text())
    result["console"] = console
    return result


def assert_passed(result: dict) -> None:
    """The scenario ran to its end, every check held, and the console shows no Python error."""
    assert result["error"] is None, result["error"]
    failed = [c for c in result["checks"] if not c["ok"]]
    assert not failed, failed
    errors = [
        line for line in result["console"].splitlines() if "Traceback" in line or line.startswith("Error")
    ]
    assert not errors, result["console"][-3000:]
