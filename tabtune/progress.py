"""The progress hook of long library calls (a refresh, a tuning study), without any display.

A library function that runs for a while takes ``progress``: ``None`` (the default: silent) or
a :data:`ProgressFactory`, a callable ``progress(label, total)`` that returns a context manager
yielding an :class:`ProgressUpdate`. The library calls that update as work completes; what it
shows is the caller's business (the command line passes :func:`tabtune.cli.progress.progress_bar`,
a rich progress bar on stderr).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

__all__ = ["ProgressFactory", "ProgressUpdate", "track"]


class ProgressUpdate(Protocol):
    """Reports progress: ``advance`` steps done, or ``completed`` in all, and a short status."""

    def __call__(
        self, *, advance: float = 0, completed: float | None = None, status: str | None = None
    ) -> None: ...


#: ``progress(label, total)`` -> a context manager yielding a :class:`ProgressUpdate`.
ProgressFactory = Callable[[str, int | None], AbstractContextManager[ProgressUpdate]]


def _ignore(
    *, advance: float = 0, completed: float | None = None, status: str | None = None
) -> None:
    """The update of a call without a progress hook: does nothing."""


@contextlib.contextmanager
def track(
    progress: ProgressFactory | None, label: str, total: int | None
) -> Iterator[ProgressUpdate]:
    """Open ``progress(label, total)`` and yield its update; a no-op update when ``None``.

    Parameters
    ----------
    progress : ProgressFactory or None
        The caller's hook.
    label : str
        What is being done (e.g. ``"refresh bid 2024-04-30"``).
    total : int or None
        Steps expected, when known.

    Yields
    ------
    ProgressUpdate
    """
    if progress is None:
        yield _ignore
        return
    with progress(label, total) as update:
        yield update
