"""How an operator tells what went wrong: to the user, and to a batch job that called it."""

from __future__ import annotations

import sys
import traceback

from ..client import BackendError
from ..core import errors

# Errors whose message says it all: an operator reports them and changes nothing. Anything
# else is a bug, whose traceback goes to the console (a batch job keeps it for --debug).
USER_ERRORS = (ValueError, OSError, errors.MaskSplatError, BackendError)
EXPECTED = (*USER_ERRORS, KeyboardInterrupt)


def report_error(operator, err: BaseException) -> set:
    """Report `err` in one line and keep it for batch jobs (`bpy.ops` passes on only the
    text; a batch job needs the error's kind for its exit code). Returns {"CANCELLED"}."""
    if not isinstance(err, EXPECTED):
        traceback.print_exception(err, file=sys.stderr)
    errors.record(err)
    operator.report({"ERROR"}, errors.one_line(err))
    return {"CANCELLED"}


def report_cancel(operator, err: BaseException | None = None) -> set:
    """Report a cancel (Esc, or the backend was cancelled): a warning, nothing changed."""
    errors.record(err if err is not None else errors.Cancelled())
    operator.report({"WARNING"}, f"{operator.bl_label} cancelled; nothing changed")
    return {"CANCELLED"}
