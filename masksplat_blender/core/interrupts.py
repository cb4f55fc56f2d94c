"""Ctrl-C and SIGTERM in headless runs: a cancel at a safe point, never a half-written file.

`install()` routes SIGINT and SIGTERM here, also when the process was started with SIGINT
ignored (a shell's background job: Python then installs no handler of its own). A signal
is remembered (`requested()`) and becomes a `KeyboardInterrupt` where the program is, so
every `finally` runs: temporary outputs and request folders are removed, the backend
process is stopped. `deferred()` holds it back over a step that must finish once begun
(loading the bpy module, which crashes at exit when a KeyboardInterrupt cuts its start
short; publishing a set of outputs; removing temporaries on the way out): the signal is
remembered and raised when the step is over. `finish()` ignores both once the outcome is
decided, so a late Ctrl-C cannot cut Blender's own cleanup short.

stdlib only.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager, suppress

_STATE = {"signal": None, "deferred": 0}


def _handle(signum, frame) -> None:
    _STATE["signal"] = signal.Signals(signum).name
    if not _STATE["deferred"]:
        raise KeyboardInterrupt


def install() -> None:
    """Take SIGINT and SIGTERM (main thread only; a no-op elsewhere)."""
    for name in ("SIGINT", "SIGTERM"):
        with suppress(ValueError, OSError, AttributeError):  # not the main thread, or no such signal here
            signal.signal(getattr(signal, name), _handle)


def finish() -> None:
    """The work is over (its outcome decided): ignore SIGINT and SIGTERM while the process
    winds down, so a late Ctrl-C cannot kill it half way through Blender's own cleanup."""
    for name in ("SIGINT", "SIGTERM"):
        with suppress(ValueError, OSError, AttributeError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def requested() -> str | None:
    """The name of the signal that asked to cancel ("SIGINT", "SIGTERM"), or None."""
    return _STATE["signal"]


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
