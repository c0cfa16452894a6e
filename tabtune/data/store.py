"""The campaign store: a hive-partitioned Parquet dataset, one folder per brand.

Layout::

    <root>/brand_id=<id>/part-<YYYYMMDD>-<YYYYMMDD>-<hash8>.parquet

The two dates are the first and last day in the file and ``hash8`` the start of the SHA-256 of
its bytes. Brand ids are percent-encoded in folder names exactly as ``pyarrow.dataset`` decodes
them (``"007"`` and ``"b-01"`` are written as is), and the files themselves do not hold a
``brand_id`` column: it comes from the folder, always as a string.

A brand's files are merged into one once it has 16 (:mod:`tabtune.data.compaction`).
Every file is written under a temporary name starting with ``"."`` in the same folder, fsynced
and renamed into place, so readers (``pyarrow.dataset`` skips names starting with ``"."`` or
``"_"``) never see a half-written file. Appends take an exclusive advisory lock on
``<root>/.lock`` and reads a shared one (:mod:`tabtune.data.locking`, POSIX only), so a read
waits for an append in progress (and its merges) to finish. A crash between two brands' files
leaves the first brands written; appending the same frame again with ``on_existing="skip"``
completes the rest.

All files of a store share one schema: the first append fixes the set of columns, and later
appends must bring the same columns.

Appends are keyed by the full row key (``brand_id``, ``date``, ``channel`` and ``campaign_id``,
``audience``, ``device`` when the store has them): rows whose key is already stored are skipped
(the stored values are kept), so re-appending a file changes nothing and the late rows of a day
that is partly stored are added. Stored rows exported again with other values are replaced
only by :func:`tabtune.data.restated.replace_restated` (``data.restated_rows: replace``).

The store is checked on read (:meth:`CampaignStore.check`): a file in a brand folder whose name
is not ``part-<first>-<last>-<hash8>.parquet`` or whose bytes no longer match ``hash8``, a
``.parquet`` file outside the brand folders, a folder whose name is not the canonical encoding
of a valid brand id, a file dated after :func:`tabtune.data.limits.latest_allowed_date`, and
rows stored twice are refused with a :class:`~tabtune.errors.TabTuneInputError` that names the
file and the fix; other stray files are ignored with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tabtune.atomic import atomic_write_bytes
from tabtune.data import compaction, locking
from tabtune.data.limits import RULE_BAD_BRAND_ID, encode_brand_id, latest_allowed_date
from tabtune.data.schema import (
    DATE_DTYPE,
    TABLE_COLUMN,
    Violation,
    key_columns,
    sort_campaigns,
    validate_campaigns,
)
from tabtune.data.store_check import (
    DATA_FILE_RE,
    FIX_FOREIGN,
    brand_folders,
    check_brands,
    check_layout,
    duplicate_rows_problem,
    file_date_bounds,
    file_may_hold,
    reconcile_schema,
    uncastable_rows_error,
)
from tabtune.errors import ContractError, TabTuneInputError

__all__ = [
    "PARTITION_COLUMN",
    "PARTITIONING",
    "RULE_BAD_BRAND_ID",
    "AppendResult",
    "CampaignStore",
    "atomic_write_bytes",
    "atomic_write_parquet",
    "check_brands",
    "parquet_bytes",
]

PARTITION_COLUMN = "brand_id"
PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")
"""Hive partitioning of the store; pass it to any ``pyarrow.dataset`` (or Dask) reader so
brand ids stay strings ("007" is not the integer 7)."""

_PREFIX = f"{PARTITION_COLUMN}="
_HIDDEN = (".", "_")  # pyarrow.dataset's default ignore_prefixes
_TIMESTAMP = pa.timestamp("us")
#: A data file's name: first and last day, and the start of the sha256 of its bytes.

logger = logging.getLogger(__name__)

DateLike: TypeAlias = str | date | datetime | pd.Timestamp | np.datetime64


# --------------------------------------------------------------------------- Parquet files


def _as_table(table_or_df: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(table_or_df, pd.DataFrame):
        return pa.Table.from_pandas(table_or_df, preserve_index=False)
    return table_or_df


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as the store encodes its data files (Parquet, zstd), in memory."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def atomic_write_parquet(table_or_df: pa.Table | pd.DataFrame, path: str | Path) -> str:
    """Write a table (or DataFrame, index dropped) as one Parquet file, atomically.

    The table is encoded (zstd) in memory and written with
    :func:`tabtune.atomic.atomic_write_bytes` (re-exported here, where callers have always
    imported it from).

    Parameters
    ----------
    table_or_df : pyarrow.Table or pandas.DataFrame
        The data.
    path : str or pathlib.Path
        Destination file.

    Returns
    -------
    str
        SHA-256 hex digest of the file's bytes.
    """
    return atomic_write_bytes(path, parquet_bytes(_as_table(table_or_df)))


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class AppendResult:
    """What :meth:`CampaignStore.append` did.

    Attributes
    ----------
    rows_written : int
        Rows written to new files.
    rows_skipped : int
        Rows dropped because their key (brand, date, channel and the optional key columns)
        was already stored.
    brands : list of str
        Brands that received a new file, sorted.
    files : list of pathlib.Path
        The new files (a brand's merged file where the append merged its files).
    """

    rows_written: int
    rows_skipped: int
    brands: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _to_timestamp(value: DateLike, name: str) -> pd.Timestamp:
    """``value`` as a midnight timestamp; text must be ISO (``2026`` or ``03/04/2026`` would
    be guessed as a day the user may not mean, and a read would quietly cut elsewhere)."""
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.strip())
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise TabTuneInputError(
            f"{name}={value!r} is not an ISO date: write it as YYYY-MM-DD (a date like "
            "05/11/2025 could be either of two days)"
        ) from exc
    if pd.isna(stamp):
        raise TabTuneInputError(f"{name}={value!r} is not a date (use YYYY-MM-DD)")
    if stamp.tz is not None:
        stamp = stamp.tz_localize(None)
    return stamp.normalize()


def _with_string_types(schema: pa.Schema) -> pa.Schema:
    """The same schema with large_string fields as string and no pandas metadata."""
    fields = [f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in schema]
    return pa.schema(fields)


class CampaignStore:
    """Campaign rows in a Parquet dataset partitioned by brand.

    Parameters
    ----------
    root : str or pathlib.Path
        The store's folder, e.g. ``data/campaigns``; created by the first append.
    max_future_days : int, optional
        Rows (appended, or stored) may be dated at most this many days after today; default
        ``$TABTUNE_MAX_FUTURE_DAYS`` or 1 (see :mod:`tabtune.data.limits`).

    Examples
    --------
    >>> store = CampaignStore("data/campaigns")  # doctest: +SKIP
    >>> store.append(frame)  # doctest: +SKIP
    >>> store.read("acme", start="2024-01-01", end="2024-03-31")  # doctest: +SKIP
    """

    def __init__(self, root: str | Path, *, max_future_days: int | None = None) -> None:
        self.root = Path(root)
        self.max_future_days = max_future_days
        # Files whose bytes matched their name's hash: path -> (size, mtime_ns).
        self._verified: dict[Path, tuple[int, int]] = {}
        # The brand folders, while the store's folder is unchanged (store_check.brand_folders);
        # shared by the instances of one process, as refresh workers make one per brand.
        self._listing: dict[str, Any] = _LISTINGS.setdefault(str(self.root.absolute()), {})

    def __repr__(self) -> str:
        return f"CampaignStore({str(self.root)!r})"

    # -- layout --------------------------------------------------------------

    def partition_dir(self, brand: str) -> Path:
        """Folder that holds one brand's files (it may not exist yet).

        Parameters
        ----------
        brand : str
            Brand id.

        Returns
        -------
        pathlib.Path
        """
        return self.root / f"{_PREFIX}{encode_brand_id(brand)}"

    def _partitions(self) -> Iterator[tuple[str, Path]]:
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.name.startswith(_PREFIX) and entry.is_dir():
                yield unquote(entry.name[len(_PREFIX) :]), entry

    def _data_files_of(self, brand: str) -> list[Path]:
        return self._data_files(self.partition_dir(brand))

    @staticmethod
    def _data_files(folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        listed = [f for f in folder.iterdir() if f.suffix == ".parquet" and f.is_file()]
        # then the journal: files a merged file of this listing replaced are hidden
        gone = compaction.superseded(folder, {f.name for f in listed})
        return sorted(f for f in listed if not f.name.startswith(_HIDDEN) and f.name not in gone)

    def files(self, brands: Sequence[str] | str | None = None) -> list[Path]:
        """Data files of the store (temporary and hidden files excluded).

        Parameters
        ----------
        brands : str or sequence of str, optional
            Only these brands' files; all brands when omitted.

        Returns
        -------
        list of pathlib.Path
            Sorted by brand, then file name.
        """
        if brands is None:
            folders = sorted(self._partitions())
        else:
            folders = [(b, self.partition_dir(b)) for b in sorted(set(_brand_list(brands)))]
        return [f for _, folder in folders for f in self._data_files(folder)]

    def exists(self) -> bool:
        """Whether the store holds any data.

        Returns
        -------
        bool
        """
        return any(self._data_files(folder) for _, folder in self._partitions())

    def brands(self) -> list[str]:
        """Brands with data, sorted.

        Returns
        -------
        list of str
        """
        return sorted(b for b, folder in self._partitions() if self._data_files(folder))

    def row_counts(self) -> dict[str, int]:
        """Rows per brand, read from the Parquet footers (no data is scanned).

        Returns
        -------
        dict of str to int
            Sorted by brand; brands without data are absent.
        """
        self.require_sound()
        counts: dict[str, int] = {}
        for brand in self.brands():
            files = self._data_files(self.partition_dir(brand))
            counts[brand] = sum(pq.read_metadata(f).num_rows for f in files)
        return counts

    def date_range(self, brand: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last date in the store, or of one brand.

        Uses the Parquet column statistics when present, so it is cheap.

        Parameters
        ----------
        brand : str, optional
            Restrict to this brand.

        Returns
        -------
        tuple of pandas.Timestamp
            ``(first, last)``, both inclusive.

        Raises
        ------
        TabTuneInputError
            If the store (or the brand) has no data.
        """
        self.require_sound(None if brand is None else [brand])
        files = self.files(None if brand is None else [brand])
        if not files:
            if brand is None or not self.exists():
                raise self._empty_error()
            raise TabTuneInputError(f"{self.root}: no data for brand {brand!r}")
        lows, highs = [], []
        for path in files:
            low, high = file_date_bounds(path)
            lows.append(low)
            highs.append(high)
        return min(lows), max(highs)

    def schema(self) -> pa.Schema | None:
        """Arrow schema of the stored rows (``brand_id`` first), or None for an empty store.

        Returns
        -------
        pyarrow.Schema or None
        """
        first = self._first_written_file()
        if first is None:
            return None
        try:
            file_schema = pq.read_schema(first).remove_metadata()
        except (OSError, pa.ArrowException) as exc:
            raise TabTuneInputError(
                f"{first}: not a readable Parquet file ({exc}); {FIX_FOREIGN}"
            ) from exc
        return pa.schema([pa.field(PARTITION_COLUMN, pa.string()), *file_schema])

    def _first_written_file(self) -> Path | None:
        """The first file tabtune wrote, in the order of :meth:`files` (a foreign one is
        refused by :meth:`check`, not read for the schema), found without listing every
        brand's folder: reading one brand of a store of N brands lists one folder, not N."""
        if not self.root.is_dir():
            return None
        # the cached listing of the brand folders: no stat of every brand's folder per read
        folders = brand_folders(self.root, _PREFIX, self._listing)
        for brand in sorted(folders):
            for name in folders[brand]:
                for f in self._data_files(self.root / name):
                    if DATA_FILE_RE.match(f.name):
                        return f
        return None

    def dataset(self, brands: Sequence[str] | str | None = None) -> ds.Dataset:
        """A ``pyarrow.dataset`` over the store (or only some brands' folders).

        Parameters
        ----------
        brands : str or sequence of str, optional
            Only list these brands' files (partition pruning before any scan).

        Returns
        -------
        pyarrow.dataset.Dataset
            With ``brand_id`` as a string partition column.

        Raises
        ------
        TabTuneInputError
            If the store is empty or damaged (:meth:`check`).
        """
        self.require_sound(brands)
        schema = self.schema()
        if schema is None:
            raise self._empty_error()
        root = self.root.absolute()
        paths = [str(root / f.relative_to(self.root)) for f in self.files(brands)]
        return ds.dataset(
            paths,
            schema=schema,
            format="parquet",
            partitioning=PARTITIONING,
            partition_base_dir=str(root),
        )

    def _empty_error(self) -> TabTuneInputError:
        if self.root.is_file():
            return TabTuneInputError(
                f"{self.root} (data.store) is a file, not the store's folder; fix: point "
                "data.store at a folder (tabtune load FILE fills a new one)"
            )
        return TabTuneInputError(
            f"{self.root}: the campaign store is empty or does not exist; "
            "load your export with `tabtune load FILE` (or simulate data with `tabtune synth`)"
        )

    # -- integrity -------------------------------------------------------------

    def check(self, brands: Sequence[str] | str | None = None) -> list[str]:
        """Check the store's layout and files; return the problems that make it unsafe to read.

        Problems (each names the file or folder and the fix): a ``.parquet`` file in a brand
        folder that tabtune did not write (name not ``part-<first>-<last>-<hash8>.parquet``),
        or whose bytes no longer match the hash in its name; a file dated after the latest
        allowed day; a brand folder whose name is not the canonical encoding of a valid brand
        id (a copy of a brand's folder under another spelling duplicates its rows); a
        ``.parquet`` file outside the brand folders (any hive reader of the folder would read
        it). Other stray files and folders are harmless: they are logged as warnings.
        Rows stored twice are found when they are read (:meth:`read`). See
        :mod:`tabtune.data.store_check`.

        Parameters
        ----------
        brands : str or sequence of str, optional
            Only these brands' folders (and the store's top level is not checked); all when
            omitted.

        Returns
        -------
        list of str
            One line per problem; empty when the store is sound.
        """
        return check_layout(
            self.root,
            _PREFIX,
            lambda brand: self.partition_dir(brand).name,
            None if brands is None else set(_brand_list(brands)),
            f"{latest_allowed_date(self.max_future_days):%Y%m%d}",
            self._verified,
            self._listing,
        )

    def require_sound(self, brands: Sequence[str] | str | None = None) -> None:
        """Raise unless :meth:`check` finds no problem.

        Parameters
        ----------
        brands : str or sequence of str, optional
            Only these brands' folders; all when omitted.

        Raises
        ------
        TabTuneInputError
            Listing every problem, each naming the file and the fix.
        """
        problems = self.check(brands)
        if problems:
            raise TabTuneInputError(
                f"{self.root}: the campaign store is damaged ({len(problems)} problem(s)); "
                "nothing was read or written:\n  - " + "\n  - ".join(problems)
            )

    # -- reading ---------------------------------------------------------------

    def read(
        self,
        brands: Sequence[str] | str | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Read campaign rows, filtered by brand and date.

        Parameters
        ----------
        brands : str or sequence of str, optional
            Only these brands (only their folders are opened). Unknown brands give no rows.
        start, end : str, date, datetime or pandas.Timestamp, optional
            Inclusive date bounds (times of day are ignored).
        columns : sequence of str, optional
            Return only these columns, in this order.

        Returns
        -------
        pandas.DataFrame
            Same dtypes and row order as :func:`~tabtune.data.schema.validate_campaigns`
            returns; an empty frame with the store's columns when nothing matches.

        Raises
        ------
        TabTuneInputError
            If the store is empty or damaged (:meth:`check`, or rows stored twice), a date
            cannot be parsed, ``start`` is after ``end``, or a requested column does not
            exist.
        """
        with locking.shared(self.root):  # an append in another process finishes first
            return self._read(brands, start, end, columns)

    def _read(
        self,
        brands: Sequence[str] | str | None,
        start: DateLike | None,
        end: DateLike | None,
        columns: Sequence[str] | None,
    ) -> pd.DataFrame:
        wanted = None if brands is None else _brand_list(brands)
        self.require_sound(wanted)
        schema = self.schema()
        if schema is None:
            raise self._empty_error()
        names = schema.names
        if columns is not None:
            columns = list(columns)
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise TabTuneInputError(
                    f"{self.root}: unknown column(s) {unknown}; the store has {names}"
                )
        low = None if start is None else _to_timestamp(start, "start")
        high = None if end is None else _to_timestamp(end, "end")
        if low is not None and high is not None and low > high:
            raise TabTuneInputError(f"start {low.date()} is after end {high.date()}")

        terms = []
        if wanted is not None:
            terms.append(ds.field(PARTITION_COLUMN).isin(wanted))
        if low is not None:
            terms.append(ds.field("date") >= pa.scalar(low.to_pydatetime(), type=_TIMESTAMP))
        if high is not None:
            terms.append(ds.field("date") <= pa.scalar(high.to_pydatetime(), type=_TIMESTAMP))
        condition = None
        for term in terms:
            condition = term if condition is None else condition & term

        selected = names if columns is None else list(dict.fromkeys(columns))
        read_columns = list(dict.fromkeys([*selected, *key_columns(names)]))
        if wanted is not None and not self.files(wanted):
            table = schema.empty_table().select(read_columns)
        else:
            table = self._to_table(wanted, read_columns, condition)
        frame = sort_campaigns(table.to_pandas())
        if "date" in frame.columns:
            frame["date"] = frame["date"].astype(DATE_DTYPE)
        problem = duplicate_rows_problem(
            self.root, frame, key_columns(frame.columns), self._data_files_of
        )
        if problem is not None:
            raise TabTuneInputError(problem)
        return frame if columns is None else frame[columns]

    def _to_table(self, wanted: list[str] | None, columns: list[str], condition: Any) -> pa.Table:
        """The filtered rows; a listed file that a merge elsewhere deleted (an unlocked read)
        lists the folder again, once."""
        for again in (False, True):
            try:
                return self.dataset(wanted).to_table(columns=columns, filter=condition)
            except FileNotFoundError as exc:
                if again:
                    raise TabTuneInputError(
                        f"{self.root}: files changed while they were read ({exc}): an append in "
                        "another process, read without the store's lock; read again"
                    ) from exc
        raise AssertionError("unreachable")

    def already_stored(self, rows: pd.DataFrame) -> np.ndarray:
        """Which rows :meth:`append` would skip: those whose key the store holds.

        Parameters
        ----------
        rows : pandas.DataFrame
            Validated campaign rows (:func:`~tabtune.data.schema.validate_campaigns`).

        Returns
        -------
        numpy.ndarray
            One bool per row.

        Raises
        ------
        TabTuneInputError
            If the rows' brands' folders are damaged (:meth:`check`).
        """
        mask = np.zeros(len(rows), dtype=bool)
        schema = self.schema()
        if schema is None or not len(rows):
            return mask
        self.require_sound(sorted(rows[PARTITION_COLUMN].unique()))
        keys = [k for k in key_columns(rows.columns) if k in schema.names]
        for brand, positions in rows.groupby(PARTITION_COLUMN, sort=True).indices.items():
            mask[positions] = self._stored(str(brand), rows.iloc[positions], keys)
        return mask

    def stored_rows(
        self, brand: str, rows: pd.DataFrame, keys: Sequence[str], values: Sequence[str] = ()
    ) -> pd.DataFrame | None:
        """The brand's stored rows on the days of ``rows``: the key columns ``keys`` (but
        ``brand_id``) and the columns ``values``, typed like ``rows``' keys; None when none.

        Only the files whose name's date range holds one of the days are read (a night's new
        day usually touches none).
        """
        unique_days = pd.DatetimeIndex(rows["date"].unique())
        wanted = sorted({f"{d:%Y%m%d}" for d in unique_days})
        files = [f for f in self._data_files(self.partition_dir(brand)) if file_may_hold(f, wanted)]
        if not files:
            return None
        days = [pa.scalar(d.to_pydatetime(), type=_TIMESTAMP) for d in unique_days]
        fields = [k for k in keys if k != PARTITION_COLUMN]
        table = ds.dataset([str(f) for f in files], format="parquet").to_table(
            columns=[*fields, *values], filter=ds.field("date").isin(days)
        )
        if table.num_rows == 0:
            return None
        stored = table.to_pandas()
        for name in fields:
            stored[name] = stored[name].astype(rows[name].dtype)
        return stored

    def _stored(self, brand: str, rows: pd.DataFrame, keys: list[str]) -> np.ndarray:
        """Mask of ``rows`` (one brand's) whose key is already stored."""
        stored = self.stored_rows(brand, rows, keys)
        if stored is None:
            return np.zeros(len(rows), dtype=bool)
        fields = [k for k in keys if k != PARTITION_COLUMN]
        found = pd.MultiIndex.from_frame(rows[fields]).isin(pd.MultiIndex.from_frame(stored))
        return np.asarray(found, dtype=bool)

    # -- writing ---------------------------------------------------------------

    def append(
        self,
        df: pd.DataFrame,
        *,
        extra_columns: Sequence[str] = (),
        on_existing: Literal["skip", "error"] = "skip",
    ) -> AppendResult:
        """Validate rows and add them to the store, one new file per brand (a brand's files
        are merged into one once it has :data:`~tabtune.data.compaction.COMPACT_AT`).

        Parameters
        ----------
        df : pandas.DataFrame
            Campaign rows with contract column names.
        extra_columns : sequence of str, default ()
            Further columns that must be present; they are stored too.
        on_existing : {"skip", "error"}, default "skip"
            What to do with rows whose key (``brand_id``, ``date``, ``channel`` and the
            optional key columns the store has) is already stored: ``"skip"`` drops them and
            keeps the stored values (so appending the same rows twice changes nothing, and the
            late rows of a partly stored day are added), ``"error"`` raises before anything is
            written.

        Returns
        -------
        AppendResult

        Raises
        ------
        ContractError
            If the rows break the contract (brand ids and dates included, see
            :mod:`tabtune.data.limits`) or the columns differ from the store's. Nothing is
            written.
        TabTuneInputError
            With ``on_existing="error"``, naming the brands and dates already stored; or if
            the brands' folders are damaged (:meth:`check`). Nothing is written.
        """
        if on_existing not in ("skip", "error"):
            raise TabTuneInputError(f"on_existing must be 'skip' or 'error', got {on_existing!r}")
        data = validate_campaigns(
            df, extra_columns=extra_columns, max_future_days=self.max_future_days
        )
        target = self._schema_of(data)
        with locking.exclusive(self.root):
            self.require_sound(sorted(data[PARTITION_COLUMN].unique()))
            stored = self.schema()
            if stored is not None:
                target = reconcile_schema(target, stored.remove(0), self.root)

            plan, skipped = self._plan(data, on_existing)

            # Serialise every brand first, so a bad cast fails before any file is written.
            pending = [(brand, self._encode(brand, rows, target)) for brand, rows in plan]
            files = []
            for brand, (path, data) in pending:
                compaction.finish(path.parent)
                atomic_write_bytes(path, data)
                files.append(path)
                if len(brand_files := self._data_files_of(brand)) >= compaction.COMPACT_AT:
                    files[-1] = compaction.merge(path.parent, brand_files, parquet_bytes) or path
        written = sum(len(rows) for _, rows in plan)
        return AppendResult(written, skipped, [b for b, _ in plan], files)

    def _schema_of(self, data: pd.DataFrame) -> pa.Schema:
        """The Parquet schema validated rows would be stored with (before reconciliation)."""
        try:
            body = data.drop(columns=PARTITION_COLUMN)
            return _with_string_types(pa.Schema.from_pandas(body, preserve_index=False))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise ContractError(
                f"{self.root}: the rows cannot be stored as Parquet: {exc}",
                [Violation(TABLE_COLUMN, f"cannot be stored as Parquet: {exc}", len(data))],
            ) from exc

    def check_columns(self, rows: pd.DataFrame) -> None:
        """Refuse validated rows whose columns an :meth:`append` would refuse (the store's
        first load fixed them), whether or not their keys are new: a dry run, and a load whose
        rows are all stored already, say so too instead of dropping a new column silently.

        Raises
        ------
        ContractError
            As :meth:`append` (:func:`~tabtune.data.store_check.reconcile_schema`).
        """
        stored = self.schema()
        if stored is not None and len(rows):
            reconcile_schema(self._schema_of(rows), stored.remove(0), self.root)

    def _plan(
        self, data: pd.DataFrame, on_existing: str
    ) -> tuple[list[tuple[str, pd.DataFrame]], int]:
        """Each brand's rows whose key is not stored yet, and the number of rows skipped.

        Raises
        ------
        TabTuneInputError
            With ``on_existing="error"``, when some keys are stored, naming brands and dates.
        """
        plan: list[tuple[str, pd.DataFrame]] = []
        clashes: list[str] = []
        skipped = 0
        keys = key_columns(data.columns)
        for brand, rows in data.groupby(PARTITION_COLUMN, sort=True):
            known = self._stored(str(brand), rows, keys)
            if known.any():
                if on_existing == "error":
                    days = sorted({d.strftime("%Y-%m-%d") for d in rows.loc[known, "date"]})
                    shown = ", ".join(days[:10]) + (", ..." if len(days) > 10 else "")
                    clashes.append(f"brand {brand!r}: {len(days)} date(s): {shown}")
                    continue
                skipped += int(known.sum())
                rows = rows[~known]
                if len(rows):
                    logger.info(
                        "brand %r: %d row(s) already stored skipped, %d new",
                        brand,
                        int(known.sum()),
                        len(rows),
                    )
            if len(rows):
                plan.append((str(brand), rows))
        if clashes:
            raise TabTuneInputError(
                f"{self.root}: data already stored for\n  "
                + "\n  ".join(clashes)
                + "\nnothing was written; pass on_existing='skip' to keep the stored rows "
                "(and add only the rows whose key is new)"
            )
        return plan, skipped

    def file_table(self, brand: str, rows: pd.DataFrame, schema: pa.Schema) -> pa.Table:
        """One brand's validated rows as a data file holds them (``schema``: the file schema,
        without ``brand_id``); a :class:`ContractError` when they cannot be cast to it."""
        body = rows.drop(columns=PARTITION_COLUMN)
        try:
            table = pa.Table.from_pandas(body, preserve_index=False).select(schema.names)
            return table.cast(schema).replace_schema_metadata(None)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise uncastable_rows_error(self.root, brand, body, schema, exc) from exc

    def _encode(self, brand: str, rows: pd.DataFrame, schema: pa.Schema) -> tuple[Path, bytes]:
        data = parquet_bytes(self.file_table(brand, rows, schema))
        name = compaction.part_name(rows["date"].min(), rows["date"].max(), data)
        return self.partition_dir(brand) / name, data


# --------------------------------------------------------------------------- helpers


#: Store folder -> its cached brand-folder listing (see ``CampaignStore._listing``).
_LISTINGS: dict[str, dict[str, Any]] = {}


def _brand_list(brands: Sequence[str] | str) -> list[str]:
    if isinstance(brands, str):
        return [brands]
    return list(dict.fromkeys(str(b) for b in brands))
