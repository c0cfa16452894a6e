"""Inter-process locks (:func:`fcntl.flock` on a file) and the identity of this process.

A lock file records its holder (pid, host, start time) while held, so a caller that times out
can say who holds it. ``flock`` is released by the kernel when the holder dies, and it is not
re-entrant across file descriptors: taking the same lock twice in one process waits for ever.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import errno
import fcntl
import json
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tabtune.errors import TabTuneInputError

__all__ = [
    "REFRESH_LOCK",
    "RegistryLockedError",
    "hold_lock",
    "host_tag",
    "outside_a_refresh",
    "pid_alive",
    "refreshing",
]

#: The registry lock a refresh holds (``<models_dir>/.locks/refresh.lock``).
REFRESH_LOCK = "refresh"
#: Per thread: registry roots (``"*"``: any) whose refresh lock this thread holds
#: exclusively (:func:`refreshing`), root -> times marked.
_MARKS = threading.local()

_LOCK_POLL_S = 0.05


class RegistryLockedError(TabTuneInputError):
    """Another process holds a registry lock and the caller's timeout ran out."""


def host_tag() -> str:
    """Return this host's name with anything but ``[A-Za-z0-9_.]`` replaced by ``_``.

    Hyphens separate the fields of temporary directory names, so the tag has none.
    """
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def pid_alive(pid: int) -> bool:
    """Return whether a process ``pid`` exists on this host (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError as exc:  # pragma: no cover
        return exc.errno != errno.ESRCH
    return True


@contextlib.contextmanager
def hold_lock(path: Path, timeout: float | None, *, shared: bool = False) -> Iterator[Path]:
    """Hold an exclusive (or shared) :func:`fcntl.flock` on ``path`` (created, with its
    folder).

    Parameters
    ----------
    path : Path
        The lock file.
    timeout : float or None
        ``None`` waits as long as needed; ``0`` fails at once; otherwise seconds to wait.
    shared : bool, default False
        Hold it shared: other shared holders run beside it, an exclusive one waits (or is
        refused). A shared holder does not record itself in the file.

    Yields
    ------
    Path
        The lock file, which holds the holder's pid, host and start time until released.

    Raises
    ------
    RegistryLockedError
        The timeout ran out; the message names the holder.
    TabTuneInputError
        ``timeout`` is negative or NaN.
    """
    if timeout is not None and (math.isnan(timeout) or timeout < 0):
        raise TabTuneInputError(f"lock timeout must be None or >= 0, got {timeout!r}")
    fd = _open_lock_file(path.absolute())  # messages name it whatever the working folder
    try:
        _acquire(fd, path, timeout, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        if shared:
            try:
                yield path
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return
        try:
            holder = {
                "pid": os.getpid(),
                "host": host_tag(),
                "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    """The lock file opened for writing (created, with its folder); a path in the way or a
    file of another user is refused naming it and the fix (it was a traceback, or a message
    about the folder's permissions)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in (path.parent, *path.parent.parents) if p.is_file()), None)
        raise TabTuneInputError(
            f"the lock {path} cannot be made: {blocking or path.parent} is a file, not a "
            "folder; fix: remove that file (tabtune makes the folder)"
        ) from None
    except IsADirectoryError:
        raise TabTuneInputError(
            f"the lock {path} is a folder; fix: remove it (tabtune makes the file)"
        ) from None
    except PermissionError as exc:
        if not path.exists():
            raise  # the folder is not writable: the command line names it
        raise TabTuneInputError(
            f"the lock {path} cannot be opened for writing ({exc.strerror}; another user's "
            "file?); fix: give this user write access to it, or remove it while no tabtune "
            "command runs"
        ) from None


def _acquire(fd: int, path: Path, timeout: float | None, mode: int) -> None:
    if timeout is None:
        fcntl.flock(fd, mode)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(min(_LOCK_POLL_S, max(0.0, deadline - time.monotonic())))
    holder = _lock_holder(path)
    waited = (
        f"waited {timeout:g} s. Wait for it to finish, or pass a longer timeout"
        if timeout > 0
        else "wait for it to finish, then run this again"
    )
    raise RegistryLockedError(f"another run holds the lock {path} ({holder}); {waited}")


def _lock_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "pid unknown: held shared, by commands that do not record themselves"
    return f"pid {info['pid']} on {info.get('host', '?')} since {info.get('since', '?')}"


def _marks() -> collections.Counter[str]:
    if not hasattr(_MARKS, "roots"):
        _MARKS.roots = collections.Counter()
    return _MARKS.roots  # type: ignore[no-any-return]


def _root_key(models_dir: str | os.PathLike[str]) -> str:
    return str(Path(models_dir).resolve())


@contextlib.contextmanager
def refreshing(models_dir: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Mark this thread as holding :data:`REFRESH_LOCK` of the registry in ``models_dir``
    exclusively (None: of any registry): a refresh, or a command that must not run beside
    one (``models gc``, ``rollback``), so that :func:`outside_a_refresh` lets its own work
    through (the night's pretraining, the command's gc or rollback). Per thread and registry:
    a process-wide mark let another thread's, or another registry's, writes through (review)."""
    key = "*" if models_dir is None else _root_key(models_dir)
    marks = _marks()
    marks[key] += 1
    try:
        yield
    finally:
        marks[key] -= 1


@contextlib.contextmanager
def outside_a_refresh(models_dir: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold the refresh lock of the registry in ``models_dir`` shared while ``what`` writes
    models (as the command line's guard does): refused at once while a refresh of another
    process holds it. The Python API published and promoted models mid-night, which the
    night's report did not name (Python red-team). Nothing is created for a registry never
    locked; this process's own refresh passes (:func:`refreshing`).

    Raises
    ------
    RegistryLockedError
        A refresh is running; the message names its holder.
    """
    locks = Path(models_dir) / ".locks"
    marks = _marks()
    if marks["*"] > 0 or marks[_root_key(models_dir)] > 0 or not locks.is_dir():
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(hold_lock(locks / f"{REFRESH_LOCK}.lock", 0, shared=True))
        except RegistryLockedError as exc:
            raise RegistryLockedError(
                f"a refresh is running: {what} would change the models the night is using; "
                f"run it after the refresh ({exc}); nothing was done"
            ) from None
        yield
