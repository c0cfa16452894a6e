"""Compaction of a brand's store folder: its part files merged into one.

Every append writes one new file per brand, so a brand refreshed nightly for a year is read
from 365 files, and reading costs grow with them (one brand's 7,938 rows after daily appends:
17 CPU ms from one file, 103 from 61, 369 from 301; every refresh night and pretraining reads
them). The store
(:meth:`~tabtune.data.store.CampaignStore.append`) merges a brand's files into one once it has
:data:`COMPACT_AT` of them.

The merge never lets a reader see a row twice or miss one, and a crash at any step loses
nothing:

1. the merged file is written under a hidden name (``.merging-<its final name>``; readers and
   the store check skip names starting with ``"."``), fsynced;
2. a journal (:data:`JOURNAL`, JSON, written atomically) names the merged file's final name
   and the files it replaces;
3. the merged file is renamed to its final ``part-<first>-<last>-<hash8>.parquet`` name: from
   here readers skip the replaced files (:func:`superseded`);
4. the replaced files are deleted, then the journal.

A crash before step 3 leaves the old files in charge; after it, the merged file is.
:func:`finish` completes or undoes an interrupted compaction; the store calls it, under its
lock, before it writes to the folder. A merge runs under the append's exclusive lock and a
:meth:`~tabtune.data.store.CampaignStore.read` holds the shared one
(:mod:`tabtune.data.locking`), so a read in another process sees the folder before or after a
merge. A reader without the lock (a store it cannot open the lock file of, or Windows) relies
on the steps above alone: it never mixes old and new rows, but at the moment a merge finishes
it can be refused (a file it listed deleted, or rows seen twice), and reading again works.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tabtune.atomic import atomic_write_bytes, fsync_dir

__all__ = [
    "COMPACT_AT",
    "JOURNAL",
    "compact",
    "finish",
    "merge",
    "part_name",
    "restate",
    "superseded",
]

logger = logging.getLogger("tabtune.data")

#: A brand folder with this many data files is merged into one by the next append.
COMPACT_AT = 16
#: The journal of a compaction in progress, in the brand folder.
JOURNAL = ".compaction.json"


def part_name(first: Any, last: Any, data: bytes) -> str:
    """A data file's name: its first and last day and the start of its bytes' SHA-256."""
    digest = hashlib.sha256(data).hexdigest()[:8]
    return f"part-{first:%Y%m%d}-{last:%Y%m%d}-{digest}.parquet"


def _journal(folder: Path) -> dict | None:
    path = folder / JOURNAL
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # written atomically: unreadable only if damaged; the old files count
    if not isinstance(entry, dict) or not isinstance(entry.get("replaces"), list):
        return None
    return entry


def _merged_in_place(folder: Path, entry: dict | None) -> bool:
    """Whether the journal's merged file is in place and is the one it wrote: a file of that
    name holding the journal's number of rows (a damaged or edited journal naming another file
    hides and deletes nothing)."""
    if entry is None or not isinstance(entry.get("final"), str) or "/" in entry["final"]:
        return False
    final = folder / entry["final"]
    if final.name.startswith(".") or not final.is_file():
        return False
    try:
        return pq.ParquetFile(final).metadata.num_rows == entry.get("rows")
    except (OSError, pa.ArrowException):
        return False


def superseded(folder: Path, listed: set[str] | None = None) -> set[str]:
    """Names of the files a finished merge replaced that are not deleted yet (hide them).

    Empty unless the folder's journal names a merged file that is in place (step 3 done) and,
    with ``listed`` (the names a reader listed before it read the journal), among them: a
    reader that listed the folder before the rename reads the old files, not none.
    """
    entry = _journal(folder)
    if entry is None or not _merged_in_place(folder, entry):
        return set()
    if listed is not None and entry["final"] not in listed:
        return set()
    return {str(name) for name in entry["replaces"] if str(name) != entry["final"]}


def finish(folder: Path) -> None:
    """Complete (merged file in place) or undo (not yet) an interrupted compaction."""
    entry = _journal(folder)
    if entry is not None and _merged_in_place(folder, entry):
        for name in superseded(folder):
            if "/" not in name and name.startswith("part-"):
                (folder / name).unlink(missing_ok=True)
        logger.info("%s: finished an interrupted compaction", folder)
    # the merged file, and the temporary files of a write killed midway (atomic_write_bytes)
    for pattern in (".merging-*.parquet", "..merging-*.tmp", f".{JOURNAL}.*.tmp"):
        for leftover in folder.glob(pattern):
            leftover.unlink(missing_ok=True)
    (folder / JOURNAL).unlink(missing_ok=True)


def merge(folder: Path, files: list[Path], encode: Callable[[pa.Table], bytes]) -> Path | None:
    """:func:`compact`, whose failure (a full disk, too little memory) is logged, not raised:
    the merge only saves reading time, and the append it follows has written its rows (what
    the failed merge left is cleaned by the next :func:`finish`)."""
    try:
        return compact(folder, files, encode)
    except (OSError, MemoryError, pa.ArrowException) as exc:
        logger.warning(
            "%s: the brand's files were not merged (%s); they stay as they are", folder, exc
        )
        return None


def compact(folder: Path, files: list[Path], encode: Callable[[pa.Table], bytes]) -> Path | None:
    """Merge ``files`` (the folder's data files) into one; return it (None: nothing to do).

    Parameters
    ----------
    folder : Path
        The brand folder (the store's lock held).
    files : list of Path
        Its data files, all of one schema (the store's).
    encode : callable
        The store's Parquet encoding of a table.
    """
    if len(files) < 2:
        return None
    path = _swap_in(folder, files, _read_files(files), encode)
    logger.info("%s: %d files merged into %s", folder, len(files), path.name)
    return path


def restate(
    folder: Path,
    files: list[Path],
    rows: pa.Table,
    keys: list[str],
    encode: Callable[[pa.Table], bytes],
) -> Path:
    """Rewrite ``files`` with ``rows`` in place of their stored rows of the same key.

    The same steps as a merge (module docstring): a reader sees the old values or the new
    ones, never both and never neither, and a crash at any step is completed or undone by the
    next :func:`finish`.

    Parameters
    ----------
    folder : Path
        The brand folder (the store's lock held).
    files : list of Path
        The folder's data files that hold the keys of ``rows`` (at least one).
    rows : pyarrow.Table
        The new values, in the store's file schema.
    keys : list of str
        The key columns of a file (the row key less ``brand_id``).
    encode : callable
        The store's Parquet encoding of a table.

    Returns
    -------
    Path
        The file that now holds the rows of ``files``.
    """
    stored = _read_files(files)
    old = pd.MultiIndex.from_frame(stored.select(keys).to_pandas())
    new = pd.MultiIndex.from_frame(rows.select(keys).to_pandas())
    kept = stored.filter(pa.array(~old.isin(new)))
    path = _swap_in(folder, files, pa.concat_tables([kept, rows]), encode)
    logger.info("%s: %d rows restated in %s", folder, rows.num_rows, path.name)
    return path


def _read_files(files: list[Path]) -> pa.Table:
    # ParquetFile: the file alone (no hive partition column from its folder's name)
    return pa.concat_tables([pq.ParquetFile(f).read() for f in files], promote_options="none")


def _swap_in(
    folder: Path, files: list[Path], table: pa.Table, encode: Callable[[pa.Table], bytes]
) -> Path:
    """Steps 1-4 of the module docstring: ``table`` as one file in place of ``files``."""
    data = encode(table)
    dates = table.column("date")
    final = part_name(pc.min(dates).as_py(), pc.max(dates).as_py(), data)
    hidden = folder / f".merging-{final}"
    atomic_write_bytes(hidden, data)  # 1
    replaces = sorted(f.name for f in files if f.name != final)
    journal = json.dumps({"final": final, "replaces": replaces, "rows": table.num_rows}).encode()
    atomic_write_bytes(folder / JOURNAL, journal)  # 2
    hidden.rename(folder / final)  # 3
    fsync_dir(folder)
    for name in replaces:  # 4
        (folder / name).unlink(missing_ok=True)
    (folder / JOURNAL).unlink(missing_ok=True)
    fsync_dir(folder)
    return folder / final
