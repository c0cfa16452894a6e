"""Advisory locks of a campaign store: appends exclusive, reads shared.

Both lock ``<root>/.lock`` with :func:`fcntl.flock` (POSIX; elsewhere neither locks). An
append holds the exclusive lock while it writes and merges a brand's files
(:mod:`tabtune.data.compaction`); a read holds the shared lock while it lists the files and
reads them, so it sees a store either before or after an append, never a merge half done.

A read inside the same thread's append (the append checks the stored rows) does not lock
again: ``flock`` locks belong to an open file, so a second lock from the same thread would
wait for itself. A read that cannot open the lock file (a read-only store, or one no append
has written yet) reads without it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LOCK_FILE", "exclusive", "shared"]

#: The lock file, in the store's root folder.
LOCK_FILE = ".lock"

#: The store roots whose exclusive lock the current thread holds.
_HELD = threading.local()


def _held() -> set[str]:
    if not hasattr(_HELD, "roots"):
        _HELD.roots = set()
    roots: set[str] = _HELD.roots
    return roots


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Hold the store's exclusive lock (appends), creating the root folder if needed."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    key = str(root.resolve())
    with open(root / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _held().add(key)
        try:
            yield
        finally:
            _held().discard(key)
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def shared(root: Path) -> Iterator[None]:
    """Hold the store's shared lock (reads): wait for an append in progress to finish."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    if str(root.resolve()) in _held():  # this thread's own append: already exclusive
        yield
        return
    try:
        handle = open(root / LOCK_FILE, "rb")
    except OSError:  # no lock file (nothing appended yet) or not readable: read unlocked
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
