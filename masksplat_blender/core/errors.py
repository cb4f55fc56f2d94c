"""What kind of failure an error is, carried from where it happens to the exit code.

Three kinds (and success): a failure (exit 1), bad input (exit 2: the command line or an
input file is wrong) and a cancel (exit 130: Ctrl-C, SIGTERM, Esc). The kind is a property
of the error's type, decided where the error is raised, never by reading its message:

- an error with an `outcome` attribute says it itself (`MaskSplatError`, the backend
  client's `BackendError`, whose `outcome` follows its `kind`);
- `KeyboardInterrupt` is a cancel;
- a `ValueError` is bad input: every reader refuses a file with one (`SplatFileError`,
  `CameraFormatError`, `MaskError`, `LabelError`, ...), and so do missing files;
- anything else is a failure.

Operators report errors as text (that is all `bpy.ops` passes on), so an operator that
catches an error also `record`s it here, and a batch job `take`s it back after the call.
stdlib only.
"""

from __future__ import annotations

OK, FAILURE, BAD_INPUT, CANCELLED = "ok", "failure", "bad_input", "cancelled"
EXIT_CODES = {OK: 0, FAILURE: 1, BAD_INPUT: 2, CANCELLED: 130}


class MaskSplatError(Exception):
    """An error whose kind is known where it is raised (default: a failure)."""

    outcome = FAILURE

    def __init__(self, message: str, outcome: str | None = None, detail: str = ""):
        super().__init__(message)
        if outcome is not None:
            if outcome not in EXIT_CODES or outcome == OK:
                raise ValueError(f"unknown outcome {outcome!r}")
            self.outcome = outcome
        self.detail = detail  # more than the one line (e.g. a traceback), shown with --debug


class BadInput(MaskSplatError):
    """The command line or an input file is wrong: exit 2 with a one-line reason."""

    outcome = BAD_INPUT


class Cancelled(MaskSplatError):
    """The user cancelled (Ctrl-C, SIGTERM, Esc): exit 130."""

    outcome = CANCELLED

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


def outcome_of(err: BaseException) -> str:
    """FAILURE, BAD_INPUT or CANCELLED for an exception, from its type (see the module docstring)."""
    if isinstance(err, KeyboardInterrupt):
        return CANCELLED
    outcome = getattr(err, "outcome", None)
    if outcome in (FAILURE, BAD_INPUT, CANCELLED):
        return outcome
    if isinstance(err, (ValueError, FileNotFoundError)):
        return BAD_INPUT
    return FAILURE


def exit_code(err: BaseException) -> int:
    return EXIT_CODES[outcome_of(err)]


def one_line(err: BaseException) -> str:
    """The error as one line for a user (its message; the type name when it has none)."""
    if isinstance(err, KeyboardInterrupt):
        return "cancelled"
    text = " ".join(str(err).split())
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        text = f"{where}{err.strerror}"
    return text or type(err).__name__


_REPORTED: list[BaseException] = []


def record(err: BaseException) -> None:
    """Keep the error an operator is about to report, for a batch job to `take` after the call."""
    _REPORTED[:] = [err]


def take() -> BaseException | None:
    """The error recorded since the last `take` (or None), and forget it."""
    err = _REPORTED.pop() if _REPORTED else None
    _REPORTED.clear()
    return err
