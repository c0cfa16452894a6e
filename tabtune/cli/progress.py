"""The command line's progress bar: the one display of :mod:`tabtune.progress` hooks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tabtune.cli.console import err_console
from tabtune.progress import ProgressUpdate

__all__ = ["progress_bar"]


@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[ProgressUpdate]:
    """A progress bar on stderr: label, bar, done/total, elapsed time and a status.

    A :data:`tabtune.progress.ProgressFactory`: pass it as ``progress=`` to the library
    (``refresh``, ``tune_global``, ...) or drive it directly.

    Parameters
    ----------
    label : str
        Shown in bold before the bar.
    total : int or None
        Steps expected (None: unknown).

    Yields
    ------
    ProgressUpdate
        ``update(advance=1, status="b007")`` or ``update(completed=12, status=...)``.
    """
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=err_console(),
        transient=False,
    )
    with progress:
        task_id = progress.add_task(label, total=total, status="")

        def update(
            *, advance: float = 0, completed: float | None = None, status: str | None = None
        ) -> None:
            fields: dict[str, Any] = {} if status is None else {"status": status}
            progress.update(task_id, advance=advance, completed=completed, **fields)

        yield update
