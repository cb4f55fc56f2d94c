"""Ctrl-C and SIGTERM in headless runs: a cancel at a safe point, never a half-written file.

`install()` routes SIGINT and SIGTERM here, also when the process was started with SIGINT
ignored (a shell's background job: Python then installs no handler of its own). A signal
is remembered (`requested()`) and becomes a `KeyboardInterrupt` where the program is, so
every `finally` runs: temporary outputs and request folders are removed, the backend
process is stopped. Two places take it differently:

- `exit_at_once()`: nothing to clean up yet, but code that must not be interrupted half
  way (loading the bpy module, which crashes at exit when a KeyboardInterrupt cuts its
  start short): print the line and end the process with 130 at once.
- `deferred()`: a step that must finish once begun (publishing a set of outputs, removing
  temporaries on the way out): the signal is remembered and raised when the step is over.

stdlib only.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager, suppress

EXIT_CANCELLED = 130
_STATE = {"signal": None, "deferred": 0, "exit_at_once": 0, "message": "masksplat: cancelled"}


def _handle(signum, frame) -> None:
    _STATE["signal"] = signal.Signals(signum).name
    if _STATE["exit_at_once"]:
        os.write(2, (_STATE["message"] + "\n").encode())
        os._exit(EXIT_CANCELLED)
    if not _STATE["deferred"]:
        raise KeyboardInterrupt


def install(message: str = "masksplat: cancelled") -> None:
    """Take SIGINT and SIGTERM (main thread only; a no-op elsewhere)."""
    _STATE["message"] = message
    for name in ("SIGINT", "SIGTERM"):
        with suppress(ValueError, OSError, AttributeError):  # not the main thread, or no such signal here
            signal.signal(getattr(signal, name), _handle)


def requested() -> str | None:
    """The name of the signal that asked to cancel ("SIGINT", "SIGTERM"), or None."""
    return _STATE["signal"]


def forget() -> None:
    _STATE["signal"] = None


@contextmanager
def exit_at_once():
    """A cancel inside this block ends the process with 130 at once (nothing to clean up)."""
    _STATE["exit_at_once"] += 1
    try:
        yield
    finally:
        _STATE["exit_at_once"] -= 1


@contextmanager
def deferred(reraise: bool = True):
    """A cancel inside this block waits until the block is over, then raises KeyboardInterrupt
    (`reraise=False`: cleanup on the way out of a cancel or failure, which must not be cut short)."""
    _STATE["deferred"] += 1
    try:
        yield
    finally:
        _STATE["deferred"] -= 1
    if reraise and _STATE["signal"] and not _STATE["deferred"]:
        raise KeyboardInterrupt
