"""What fundwatch lets Prefect's log handlers pass (日志).

Without --verbose a clerk sees fundwatch's own lines: a night's summary, or one line saying what
failed — never Prefect's housekeeping or a traceback (a traceback quotes the exception, and the
code around it, to whoever reads the console or the service's journal). Prefect's API, which its
UI shows, gets the flow and task lines, not Prefect's own reports of a failure.

`fundwatch nightly` and `demo` run the flow in their own process: the CLI installs the filters.
A night `fundwatch serve` starts runs in a process of Prefect's own; the serving process leaves
SERVED in its environment ("quiet", or "verbose" with --verbose), and the flow installs the same
filters when it starts and prints what `nightly` prints: the summary, or one line.
"""

from __future__ import annotations

import logging
import os

SERVED = "FUNDWATCH_SERVED"


def api_filter(record: logging.LogRecord) -> bool:
    """What reaches Prefect's API without --verbose: fundwatch's flow and task lines (masked, as
    the console's), not Prefect's own reports of a failure — their message and traceback quote the
    exception unmasked (fundwatch reports the failure itself, masked, in the run's state)."""
    return record.levelno < logging.ERROR and not record.exc_info


def console_filter(record: logging.LogRecord) -> bool:
    """What the log handlers pass on without --verbose."""
    if record.name.startswith("great_expectations"):
        # it announces every temporary docs site at INFO, and logs each page it cannot write (a
        # full disk) with the traceback in the message: the run summary says what became of the Data Docs
        return (record.levelno >= logging.WARNING and not record.exc_info
                and "Traceback (most recent call last)" not in record.getMessage())
    if f"{os.sep}prefect{os.sep}_internal{os.sep}" in record.pathname:
        return False  # its background services' housekeeping ("EventsWorker - Still processing items")
    if not record.name.startswith("prefect"):
        return True
    # Task and flow failures are reported by fundwatch in one line; no Prefect traceback.
    return record.levelno >= logging.WARNING and not record.exc_info and record.levelno < logging.ERROR


def install_filters() -> None:
    """Every handler of every logger gets its filter: Prefect's console handler hangs on the
    "prefect" logger, not on the root. A handler keeps one copy of a filter however often it is
    added, so calling this again (each served night) adds nothing."""
    from prefect.logging.handlers import APILogHandler

    loggers = [logging.getLogger()] + [lg for lg in logging.root.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    for handler in {h for lg in loggers for h in lg.handlers}:
        handler.addFilter(api_filter if isinstance(handler, APILogHandler) else console_filter)


def served() -> str | None:
    """"quiet" or "verbose" when this process runs a night `fundwatch serve` started, else None."""
    return os.environ.get(SERVED) or None


def warnings_on_one_line(command: str) -> None:
    """A warning (no holiday notice for 2027, a library's) is one line on the console, like every
    message — not Python's file:line and source line below it. Both hooks: great-expectations routes
    warnings into logging once imported (logging.captureWarnings), which formats them with
    warnings.formatwarning instead of calling showwarning."""
    import sys
    import warnings

    from .privacy import mask_ids_in_text

    def text(message, category, filename, lineno, line=None) -> str:  # noqa: ARG001 — warnings' hook
        return f"warning: {mask_ids_in_text(message)}"

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001 — warnings' hook
        print(f"fundwatch {command}: {text(message, category, filename, lineno)}", file=file or sys.stderr)

    warnings.formatwarning = text
    warnings.showwarning = show
