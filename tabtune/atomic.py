"""Atomic writes: a reader sees a file's (or a directory's) old content or its new one, never half.

Every file tabtune writes goes through this module.

Files
    :func:`atomic_open` (and :func:`atomic_write_bytes`, :func:`atomic_write_text` on top of it)
    writes to a temporary sibling ``.<name>.<random>.tmp`` in the destination's folder (so the
    rename stays on one file system, and readers that skip hidden names, such as
    ``pyarrow.dataset``, never list it), flushes and fsyncs it, renames it over the destination
    with :func:`os.replace` and fsyncs the folder, so the rename itself survives a crash. If
    anything fails the temporary file is removed and the destination is untouched.
Directories
    :func:`staging_dir` gives a fresh hidden sibling directory to fill (with
    :func:`write_durable`, or any writer followed by :func:`fsync_file`), and
    :func:`publish_dir` renames it into place as a whole. The staging directory is removed if
    the block fails before the rename.

Only the standard library is imported here, so the model registry stays free of numpy, pandas
and pyarrow; Parquet files are written by :func:`tabtune.data.store.atomic_write_parquet`, which
encodes the table and hands the bytes to :func:`atomic_write_bytes`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "WRITE_BLOCKED_ERRNOS",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "fsync_file",
    "publish_dir",
    "staging_dir",
    "write_blocked",
    "write_durable",
]

#: Errors of a full disk, an exhausted quota or a read-only file system: no brand or file of a
#: run can be written until the operator acts, so a refresh stops instead of failing brand by
#: brand (the command line says which folder and how to fix it).
WRITE_BLOCKED_ERRNOS = frozenset(
    {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG, errno.EROFS}
)


def write_blocked(exc: BaseException) -> bool:
    """Whether ``exc`` is an :class:`OSError` of :data:`WRITE_BLOCKED_ERRNOS`."""
    return isinstance(exc, OSError) and exc.errno in WRITE_BLOCKED_ERRNOS


PathLike = str | os.PathLike[str]


def fsync_dir(path: PathLike) -> None:
    """Fsync a directory, so that renames and new entries in it survive a crash.

    Skipped where that is not possible (Windows, platforms without directory descriptors,
    file systems that refuse to fsync a directory): the write itself has already happened.

    Parameters
    ----------
    path : str or path-like
        The directory.
    """
    if os.name != "posix":  # pragma: no cover - no directory fsync on Windows
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_file(path: PathLike) -> None:
    """Fsync a file someone else wrote (a model writer's output), so its bytes are on disk.

    Parameters
    ----------
    path : str or path-like
        The file.
    """
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def write_durable(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it; *not* atomic on its own.

    For files inside a :func:`staging_dir`, which become visible all at once when
    :func:`publish_dir` renames the directory.

    Parameters
    ----------
    path : str or path-like
        Destination file (replaced if it exists).
    data : bytes
        The complete content.
    """
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def atomic_open(
    path: PathLike, *, mode: int | None = None, durable: bool = True
) -> Iterator[BinaryIO]:
    """Open a binary handle whose content replaces ``path`` when the block ends without error.

    The handle writes to ``.<name>.<random>.tmp`` in the same folder (missing parent folders are
    created). On a clean exit the file is flushed, fsynced and renamed over ``path`` with
    :func:`os.replace`, then the folder is fsynced. If the block raises, the temporary file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    mode : int or None
        Permission bits set on the new file (e.g. ``0o644``, whatever the umask). ``None``
        creates it with ``0o666`` less the umask, like :func:`open`.
    durable : bool
        Fsync the file and the folder. ``False`` (for caches, which may be lost) still renames
        atomically: a reader never sees half a file, but a crash may lose the new one.

    Yields
    ------
    BinaryIO
        The open temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.chmod(tmp, mode)
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_bytes(
    path: PathLike, data: bytes, *, mode: int | None = None, durable: bool = True
) -> str:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file named ``.<name>.<random>.tmp`` in the same folder, are
    fsynced, and the file is renamed over ``path`` with :func:`os.replace` (see
    :func:`atomic_open`). Missing parent folders are created.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    data : bytes
        The complete new content.
    mode : int or None
        Permission bits of the new file; ``None``: ``0o666`` less the umask.
    durable : bool
        Fsync the file and its folder (see :func:`atomic_open`).

    Returns
    -------
    str
        SHA-256 hex digest of ``data``.
    """
    with atomic_open(path, mode=mode, durable=durable) as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8") -> str:
    """Write ``text`` to ``path`` atomically and durably (no newline translation).

    Parameters
    ----------
    path : str or path-like
        Destination file.
    text : str
        The complete new content.
    encoding : str
        Text encoding.

    Returns
    -------
    str
        SHA-256 hex digest of the encoded bytes.
    """
    return atomic_write_bytes(path, text.encode(encoding))


@contextmanager
def staging_dir(parent: PathLike, *, prefix: str, mode: int = 0o777) -> Iterator[Path]:
    """Create a fresh directory ``<parent>/<prefix><random>`` to fill before publishing it.

    Parameters
    ----------
    parent : str or path-like
        The folder the finished directory will be renamed into (created if missing), so the
        rename stays on one file system.
    prefix : str
        Start of the directory's name; start it with ``"."`` so listings skip it.
    mode : int
        Permission bits, less the umask (``0o700``: private until published).

    Yields
    ------
    Path
        The empty staging directory. Whatever is still there when the block ends (the block
        raised, or never called :func:`publish_dir`) is removed.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f"{prefix}{uuid.uuid4().hex[:12]}"
    tmp.mkdir(mode=mode)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish_dir(tmp: PathLike, target: PathLike, *, replace: bool = False) -> None:
    """Rename the complete directory ``tmp`` to ``target`` and make the rename durable.

    ``tmp`` is fsynced first (its files must already be: see :func:`write_durable`,
    :func:`fsync_file`), then renamed, then ``target``'s folder is fsynced.

    Parameters
    ----------
    tmp : str or path-like
        The filled staging directory (see :func:`staging_dir`), in ``target``'s folder.
    target : str or path-like
        The final name.
    replace : bool
        ``False``: ``target`` must not exist (:func:`os.rename`; an existing non-empty
        directory raises :class:`OSError`). ``True``: an existing ``target`` is moved aside to
        a hidden sibling, the new directory renamed in, the old one put back if that rename
        fails and removed after it succeeds. Directories cannot be swapped atomically, so
        ``target`` is missing for that moment.
    """
    tmp, target = Path(tmp), Path(target)
    fsync_dir(tmp)
    if not replace or not target.exists():
        os.rename(tmp, target)
        fsync_dir(target.parent)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if not target.exists():
            os.replace(old, target)
        raise
    finally:
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
    fsync_dir(target.parent)
