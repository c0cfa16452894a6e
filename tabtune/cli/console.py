"""Where the command line writes, and how it writes numbers.

Results go to stdout (:func:`console`); progress, spinners and interruptions to stderr
(:func:`err_console`), so that ``tabtune ... > file`` keeps only the results.
"""

from __future__ import annotations

import logging
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


def console() -> Console:
    """A rich console on stdout, without automatic highlighting of numbers and paths."""
    return _Console(highlight=False)


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
