"""Checking a campaign store on read: files that do not belong, changed files, rows twice.

:class:`~tabtune.data.store.CampaignStore` calls these before it reads (see its
:meth:`~tabtune.data.store.CampaignStore.check`); each problem is one line that names the file
or folder and the fix. Harmless strays (a README, a non-Parquet file) are logged as warnings.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tabtune.data.limits import RULE_BAD_BRAND_ID, brand_id_problem
from tabtune.data.schema import NON_NEGATIVE_COLUMNS, POSITIVE_COLUMNS, Violation
from tabtune.errors import ContractError, TabTuneInputError

__all__ = [
    "check_brands",
    "reconcile_schema",
    "DATA_FILE_RE",
    "FIX_FOREIGN",
    "brand_folders",
    "check_data_file",
    "check_layout",
    "duplicate_rows_problem",
    "file_covers",
    "file_date_bounds",
    "file_may_hold",
    "uncastable_rows_error",
]

logger = logging.getLogger("tabtune.data.store")

DATA_FILE_RE = re.compile(r"^part-(\d{8})-(\d{8})-([0-9a-f]{8})\.parquet$")
"""A data file's name: first and last day, and the start of the sha256 of its bytes."""

FIX_FOREIGN = "move it out of the store folder (tabtune only reads files it wrote)"

MEASURE_COLUMNS: tuple[str, ...] = (*NON_NEGATIVE_COLUMNS, *POSITIVE_COLUMNS)
"""Per-row measures (spend, clicks, conversions, revenue, impressions, bid): never a constant."""

_HIDDEN = (".", "_")  # pyarrow.dataset's default ignore_prefixes
#: A store folder modified this recently (ns) is listed again rather than taken from the cache.
_SETTLE_NS = 2_000_000_000


def check_layout(
    root: Path,
    prefix: str,
    canonical: Callable[[str], str],
    wanted: set[str] | None,
    latest: str,
    verified: dict[Path, tuple[int, int]],
    listing: dict[str, Any] | None = None,
) -> list[str]:
    """Problems of a store's folders and files.

    Parameters
    ----------
    root : pathlib.Path
        The store's folder.
    prefix : str
        Brand folders' name prefix (``"brand_id="``).
    canonical : callable
        Brand id -> the name of its folder.
    wanted : set of str or None
        Only these brands' folders (the top level is then not checked); all when None.
    latest : str
        The latest allowed day, ``YYYYMMDD``.
    verified : dict
        Files whose bytes matched their name, ``path -> (size, mtime_ns)``; updated.
    listing : dict, optional
        A cache of the store's brand folders (:func:`brand_folders`), reused while the
        store's folder is unchanged; updated. Checking a few brands of a big store then costs
        no listing of the store's folder each time.

    Returns
    -------
    list of str
    """
    problems: list[str] = []
    if not root.is_dir():
        return problems
    if wanted is not None:
        folders = brand_folders(root, prefix, {} if listing is None else listing)
        for brand in sorted(wanted):
            for name in folders.get(brand, ()):
                problems.extend(
                    _check_brand_folder(root / name, brand, canonical, latest, verified)
                )
        return problems
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(_HIDDEN):
            continue
        if not (entry.name.startswith(prefix) and entry.is_dir()):
            problems.extend(_check_stray(entry, root, prefix))
            continue
        brand = unquote(entry.name[len(prefix) :])
        problems.extend(_check_brand_folder(entry, brand, canonical, latest, verified))
    return problems


def brand_folders(root: Path, prefix: str, cache: dict[str, Any]) -> dict[str, list[str]]:
    """Brand id -> the names of the folders of ``root`` that decode to it (sorted).

    ``cache`` keeps the answer with the folder's inode and modification time: adding,
    removing or renaming a brand folder changes them, and the folder is listed again. A
    folder modified in the last :data:`_SETTLE_NS` is listed every time (two changes within
    one tick of the file system's clock leave the same modification time).
    """
    stat = root.stat()
    key = (str(root), stat.st_ino, stat.st_mtime_ns)
    settled = time.time_ns() - stat.st_mtime_ns > _SETTLE_NS
    cached = cache.get("listing")  # one (key, folders) pair: read and replaced atomically
    if settled and cached is not None and cached[0] == key:
        return cast(dict[str, list[str]], cached[1])
    folders: dict[str, list[str]] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(_HIDDEN) or not name.startswith(prefix) or not entry.is_dir():
                continue
            folders.setdefault(unquote(name[len(prefix) :]), []).append(name)
    for names in folders.values():
        names.sort()
    if settled:  # a listing taken before the folder settled is not kept
        cache["listing"] = (key, folders)
    return folders


def _check_brand_folder(
    entry: Path,
    brand: str,
    canonical: Callable[[str], str],
    latest: str,
    verified: dict[Path, tuple[int, int]],
) -> list[str]:
    """Problems of one brand folder (``brand``: its decoded name) and its files."""
    problems: list[str] = []
    if not entry.is_dir():  # removed since it was listed
        return problems
    problem = brand_id_problem(brand)
    if problem is not None:
        problems.append(
            f"{entry}: brand id {brand!r} {problem} ({RULE_BAD_BRAND_ID}); "
            "move the folder out of the store"
        )
    elif entry.name != canonical(brand):
        problems.append(
            f"{entry}: a second folder for brand {brand!r} (its canonical folder is "
            f"{canonical(brand)}); its rows would be read twice: move it out of the store"
        )
    for item in sorted(entry.iterdir()):
        if not item.name.startswith(_HIDDEN):
            problems.extend(check_data_file(item, latest, verified))
    return problems


def _check_stray(entry: Path, root: Path, prefix: str) -> list[str]:
    """A top-level entry that is not a brand folder: a problem if it holds Parquet data."""
    if entry.suffix == ".parquet" or (entry.is_dir() and any(entry.rglob("*.parquet"))):
        return [
            f"{entry}: Parquet data outside the brand folders ({root}/{prefix}<id>/); {FIX_FOREIGN}"
        ]
    if entry not in _STRAY_WARNED:  # once per process: every check of the store met it
        _STRAY_WARNED.add(entry)
        logger.warning("%s: not part of the campaign store; ignored", entry)
    return []


#: Stray entries already warned about in this process.
_STRAY_WARNED: set[Path] = set()


def check_data_file(path: Path, latest: str, verified: dict[Path, tuple[int, int]]) -> list[str]:
    """Problems of one visible entry of a brand folder.

    Parameters
    ----------
    path : pathlib.Path
        The entry.
    latest : str
        The latest allowed day, ``YYYYMMDD``.
    verified : dict
        Files whose bytes matched their name, ``path -> (size, mtime_ns)``; updated.

    Returns
    -------
    list of str
    """
    if path.suffix != ".parquet" or not path.is_file():
        logger.warning("%s: not a data file of the campaign store; ignored", path)
        return []
    match = DATA_FILE_RE.match(path.name)
    if match is None:
        return [
            f"{path}: not a file of the store (tabtune names its files "
            f"part-<YYYYMMDD>-<YYYYMMDD>-<hash8>.parquet); {FIX_FOREIGN}"
        ]
    problems = []
    if match.group(2) > latest:  # YYYYMMDD strings compare like the dates
        problems.append(
            f"{path}: holds rows dated up to {match.group(2)}, after the latest allowed day "
            f"{latest} (today plus TABTUNE_MAX_FUTURE_DAYS); move the file out of the store "
            "and append the rows again with correct dates (or, if they were loaded with "
            "TABTUNE_MAX_FUTURE_DAYS set, set it again to the same value)"
        )
    stat = path.stat()
    if verified.get(path) != (stat.st_size, stat.st_mtime_ns):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(match.group(3)):
            problems.append(
                f"{path}: its content was changed after it was written (sha256 "
                f"{digest[:8]}..., the name says {match.group(3)}); restore it from a backup "
                "or move it out of the store"
            )
        elif (wrong := _dates_unlike_name(path, match.group(1), match.group(2))) is not None:
            problems.append(wrong)
        else:
            verified[path] = (stat.st_size, stat.st_mtime_ns)
    return problems


def _dates_unlike_name(path: Path, first: str, last: str) -> str | None:
    """Why a data file's dates are not the days its name gives (a file written by hand): an
    append looks for stored rows in the files whose names cover the new rows' days, so such
    a file's rows were stored again, and a date with a time of day fell out of date filters."""
    low, high = file_date_bounds(path)
    named = (pd.Timestamp(first), pd.Timestamp(last))
    if (low, high) == named:
        return None
    return (
        f"{path}: holds rows dated {low} .. {high}, where its name says {named[0]:%Y-%m-%d} .. "
        f"{named[1]:%Y-%m-%d} (a file written by hand: appends look for stored rows by the "
        f"days of the files' names, and dates are days at midnight); {FIX_FOREIGN}"
    )


def file_covers(path: Path, day: pd.Timestamp) -> bool:
    """Whether a data file's name says it holds rows of ``day``.

    Parameters
    ----------
    path : pathlib.Path
    day : pandas.Timestamp

    Returns
    -------
    bool
    """
    match = DATA_FILE_RE.match(path.name)
    return match is not None and match.group(1) <= f"{day:%Y%m%d}" <= match.group(2)


def duplicate_rows_problem(
    root: Path, frame: pd.DataFrame, keys: list[str], files_of: Callable[[str], list[Path]]
) -> str | None:
    """The message for rows read twice (same key), naming the files that hold them.

    Parameters
    ----------
    root : pathlib.Path
        The store's folder.
    frame : pandas.DataFrame
        Rows as read, with ``brand_id``, ``date`` and the other ``keys``.
    keys : list of str
        The key columns.
    files_of : callable
        Brand id -> its data files.

    Returns
    -------
    str or None
        None when no key repeats.
    """
    if "brand_id" not in keys or "date" not in keys:
        return None
    duplicated = frame.duplicated(keys, keep=False)
    if not duplicated.any():
        return None
    clashes = frame.loc[duplicated, ["brand_id", "date"]].drop_duplicates()
    lines = []
    for brand, rows in clashes.groupby("brand_id", sort=True):
        days = set(rows["date"])
        files = [f.name for f in files_of(str(brand)) if any(file_covers(f, d) for d in days)]
        shown = ", ".join(sorted(f"{d:%Y-%m-%d}" for d in days)[:5])
        lines.append(f"brand {brand!r} on {shown}: files {files}")
    return (
        f"{root}: {int(duplicated.sum())} rows are stored more than once (same "
        f"{', '.join(keys)}):\n  - " + "\n  - ".join(lines) + "\nmove the file that repeats "
        "rows out of the store (a copy of a file, or one written by hand)"
    )


def file_may_hold(path: Path, days: list[str]) -> bool:
    """Whether a data file may hold rows of one of ``days`` (sorted ``YYYYMMDD``), by the date
    range in its name (a name without one: True)."""
    match = DATA_FILE_RE.match(path.name)
    if match is None:
        return True
    at = bisect.bisect_left(days, match.group(1))
    return at < len(days) and days[at] <= match.group(2)


def file_date_bounds(path: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last date of a data file, from its column statistics when present."""
    metadata = pq.read_metadata(path)
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    if "date" in names and metadata.num_row_groups:
        index = names.index("date")
        lows, highs = [], []
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_min_max:
                break
            lows.append(pd.Timestamp(stats.min))
            highs.append(pd.Timestamp(stats.max))
        else:
            return min(lows), max(highs)
    dates = pq.read_table(path, columns=["date"]).column("date").to_pandas()
    return pd.Timestamp(dates.min()), pd.Timestamp(dates.max())


def reconcile_schema(new: pa.Schema, stored: pa.Schema, root: Path) -> pa.Schema:
    """The stored schema, after checking that ``new`` (an append's) has the same columns and
    castable types.

    Raises
    ------
    ContractError
        Columns missing or not in the store, or a type the stored one cannot be cast from.
    """
    missing = [n for n in stored.names if n not in new.names]
    extra = [n for n in new.names if n not in stored.names]
    if missing or extra:
        parts, fixes = [], []
        if missing:
            parts.append(f"missing {missing}")
            fixes.extend(_missing_fixes(missing))
        if extra:
            parts.append(f"not in the store {extra}")
            fixes.append(
                f"leave {extra} out: a column the export itself has under that name goes with "
                "data.drop: [<name>], one the config adds with its entry in data.columns / "
                "data.constants / data.extra_columns; or, to keep them, load every export again "
                "into a new store (a new data.store folder) with this config"
            )
        violation = Violation(", ".join(missing + extra), "columns differ from the store's", 0)
        raise ContractError(
            f"{root}: appended columns must match the stored ones (the store's first load fixed "
            "them): " + "; ".join(parts) + "; nothing was written. Fix: " + "; ".join(fixes),
            [violation],
        )
    for stored_field in stored:
        new_type = new.field(stored_field.name).type
        if new_type != stored_field.type and not _castable(new_type, stored_field.type):
            violation = Violation(
                stored_field.name, f"must have type {stored_field.type} like the store", 0
            )
            raise ContractError(
                f"{root}: column {stored_field.name!r} is {new_type} but the store holds "
                f"{stored_field.type}",
                [violation],
            )
    return stored


def _missing_fixes(missing: list[str]) -> list[str]:
    """Fixes for stored columns an append lacks; never a constant for a per-row measure (one
    value on every row would be taken for real spend, clicks or bids)."""
    measures = [n for n in missing if n in MEASURE_COLUMNS]
    others = [n for n in missing if n not in MEASURE_COLUMNS]
    fixes = []
    if others:
        fixes.append(
            f"map {others} (data.columns.<name>, or data.constants.<name> for a value every "
            "row shares)"
        )
    if measures:
        fixes.append(
            f"map {measures} to the export's column (data.columns.<name>); a per-row measure "
            "cannot be a constant: if the export lacks it, load it into a new store (a new "
            "data.store folder)"
        )
    return fixes


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    try:
        pa.array([], type=source).cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def check_brands(wanted: Sequence[str], known: Sequence[str], where: str | Path) -> None:
    """Refuse brands that are not in a store, naming them and the first ten known ones.

    Parameters
    ----------
    wanted : sequence of str
        The brands asked for.
    known : sequence of str
        The store's brands (:meth:`CampaignStore.brands`).
    where : str or Path
        The store, for the message.

    Raises
    ------
    TabTuneInputError
        Some of ``wanted`` are not in ``known``.
    """
    unknown = [b for b in wanted if b not in known]
    if unknown:
        raise TabTuneInputError(
            f"unknown brand(s) {unknown} in {where}; known: {list(known[:10])}"
            + (" ..." if len(known) > 10 else "")
        )


def uncastable_rows_error(
    root: Path, brand: str, body: pd.DataFrame, schema: pa.Schema, exc: Exception
) -> ContractError:
    """The refusal for a brand's rows that cannot be cast to the store's file schema: the
    first column that cannot (an extra column stored as int64, now given ``7.5`` or ``--``)
    with its stored type and the fix; the cast's own message otherwise."""
    for stored in schema:
        if stored.name not in body.columns:
            continue
        try:
            pa.Array.from_pandas(body[stored.name]).cast(stored.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return ContractError(
                f"{root}: column {stored.name!r} is stored as {stored.type} in this store, and "
                f"the new rows of brand {brand!r} hold values it cannot take ({exc}); nothing "
                f"was written\n  fix: write the export's {stored.name!r} as the stored type "
                "(e.g. whole numbers for int64), or leave the column out (data.extra_columns, "
                "data.drop)",
                [Violation(stored.name, f"must fit the stored type {stored.type}", len(body))],
            )
    return ContractError(
        f"{root}: rows of brand {brand!r} cannot be stored: {exc}",
        [Violation("brand_id", f"cannot be stored: {exc}", len(body))],
    )
