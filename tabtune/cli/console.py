"""Where the command line writes, and how it writes numbers.

Results go to stdout (:func:`console`); progress, spinners and interruptions to stderr
(:func:`err_console`), so that ``tabtune ... > file`` keeps only the results.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

__all__ = ["console", "err_console", "fmt", "notes_printed_instead"]


class _Console(Console):
    """rich's console, but a reader that went away (``| head``) raises ``BrokenPipeError``
    for the entry point to end with its exit code (rich would exit 1 on its own)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


#: Columns of the results written to a file or a pipe (a cron or CI log): rich's 80 cut the
#: tables' model ids and reasons short there. ``COLUMNS`` still sets it.
LOG_WIDTH = 160


def console() -> Console:
    """A rich console on stdout, without automatic highlighting of numbers and paths; not a
    terminal (a log), :data:`LOG_WIDTH` columns wide unless ``COLUMNS`` says otherwise."""
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return _Console(highlight=False, width=LOG_WIDTH if wide else None)


def err_console() -> Console:
    """A rich console on stderr, without automatic highlighting."""
    return Console(stderr=True, highlight=False)


def fmt(value: Any, digits: int = 4) -> str:
    """A value for a table or a summary line: ``-`` for None, floats to ``digits`` figures.

    Parameters
    ----------
    value : Any
    digits : int, default 4
        Significant figures of a float.

    Returns
    -------
    str
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@contextmanager
def notes_printed_instead() -> Iterator[None]:
    """Within: the library's warnings of notices the command prints itself as ``note:`` lines
    (a feature the data lacks) are not logged as well, so each is said once."""
    from tabtune.features import NOTICE_RECORD

    def keep(record: logging.LogRecord) -> bool:
        return not getattr(record, NOTICE_RECORD, False)

    tabtune_logger = logging.getLogger("tabtune")
    tabtune_logger.addFilter(keep)
    try:
        yield
    finally:
        tabtune_logger.removeFilter(keep)
