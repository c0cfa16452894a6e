"""The campaign data contract (daily grain) and its validation.

One row is one day of one brand's activity in one channel (optionally split further by
campaign, audience and device). :func:`validate_campaigns` checks a frame against the contract,
collects *every* violation and raises one :class:`~tabtune.errors.ContractError` whose message
names the column, the rule, the number of offending rows and a few example rows.

Row numbers in violations are **0-based positions in the input frame** (the first data row is
row 0). For a CSV file with a header line, the line number in the file is ``row + 2``.

On success the frame is returned normalised:

* string columns (``brand_id``, ``channel``, ...) use pandas' string dtype (``"str"``),
  values stripped of surrounding whitespace;
* ``date`` is ``datetime64[us]`` at midnight, without a timezone (timezone-aware values keep
  their local wall-clock date);
* integer columns are ``int64`` and float columns ``float64``;
* columns are ordered required, then optional, then any other columns in input order (those are
  kept untouched);
* rows are sorted by ``brand_id``, ``date``, ``channel``, ``campaign_id``, ``audience``,
  ``device`` (those present), with a fresh ``RangeIndex``.

Dates given as text must be ISO 8601 (``2024-01-03``, optionally with a time); ambiguous forms
such as ``03/01/2024`` are rejected rather than guessed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tabtune.data.limits import (
    EARLIEST_DATE,
    MAX_FUTURE_DAYS_ENV,
    RULE_BAD_BRAND_ID,
    brand_id_problem,
    default_max_future_days,
    latest_allowed_date,
)
from tabtune.errors import ContractError, TabTuneInputError

__all__ = [
    "DATE_DTYPE",
    "KEY_COLUMNS",
    "OPTIONAL_COLUMNS",
    "OPTIONAL_KEY_COLUMNS",
    "REQUIRED_COLUMNS",
    "RULE_BAD_BRAND_ID",
    "STRING_DTYPE",
    "CONVERSIONS_POLICIES",
    "Violation",
    "apply_column_mapping",
    "find_violations",
    "read_table",
    "sort_campaigns",
    "validate_campaigns",
    "validate_file",
]

REQUIRED_COLUMNS: dict[str, str] = {
    "brand_id": "string",
    "date": "date",
    "channel": "string",
    "spend": "float",
    "clicks": "int",
    "conversions": "int",
    "revenue": "float",
}
"""Columns every campaign frame must have, mapped to their kind."""

OPTIONAL_COLUMNS: dict[str, str] = {
    "campaign_id": "string",
    "audience": "string",
    "device": "string",
    "vertical": "string",
    "bid": "float",
    "impressions": "int",
}
"""Columns validated when present, mapped to their kind."""

CONTRACT_COLUMNS: dict[str, str] = {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}

KEY_COLUMNS: tuple[str, ...] = ("brand_id", "date", "channel")
"""Columns that identify a row; the optional key columns join them when present."""

OPTIONAL_KEY_COLUMNS: tuple[str, ...] = ("campaign_id", "audience", "device")

STRING_COLUMNS: tuple[str, ...] = tuple(c for c, k in CONTRACT_COLUMNS.items() if k == "string")

NON_NEGATIVE_COLUMNS: tuple[str, ...] = ("spend", "clicks", "conversions", "revenue", "impressions")
POSITIVE_COLUMNS: tuple[str, ...] = ("bid",)

DATE_DTYPE = "datetime64[us]"
"""dtype of the normalised ``date`` column (pandas 3's default resolution)."""

STRING_DTYPE = "str"
"""dtype of normalised string columns (pandas' default string dtype)."""

MAX_EXAMPLES = 5

# Rule texts. They read as the end of "column 'spend': ..." and are stable: tests and callers
# may compare ``Violation.rule`` against them.
RULE_NO_ROWS = "must have at least one row"
RULE_DUPLICATE_COLUMN = "column name appears more than once"
RULE_MISSING_COLUMN = "required column is missing"
RULE_MISSING_EXTRA_COLUMN = "column named in extra_columns is missing"
RULE_MISSING_VALUE = "must not be missing"
RULE_NOT_NUMBER = "must be a number"
RULE_NOT_WHOLE_NUMBER = "must be a whole number"
RULE_NOT_DATE = "must be a date (YYYY-MM-DD)"
RULE_NOT_FINITE = "must be finite"
RULE_NEGATIVE = "must be >= 0"
RULE_NOT_POSITIVE = "must be > 0"
RULE_CONVERSIONS_GT_CLICKS = "must be <= clicks"  # only with conversions_above_clicks="reject"
RULE_CLICKS_GT_IMPRESSIONS = "must be <= impressions"
RULE_DUPLICATE_KEY = "duplicate rows for the same key"
RULE_DATE_TOO_EARLY = f"must not be before {EARLIEST_DATE:%Y-%m-%d}"


def rule_date_too_late(latest: date, days: int) -> str:
    """The rule text for rows dated after ``latest`` (today + ``days``).

    Parameters
    ----------
    latest : datetime.date
        The last allowed day.
    days : int
        Days of slack after today it was computed with.

    Returns
    -------
    str
        E.g. ``"must not be after 2026-12-06 (today + 1 day; rows are observed history,
        set TABTUNE_MAX_FUTURE_DAYS to allow later dates)"``.
    """
    plural = "" if days == 1 else "s"
    return (
        f"must not be after {latest:%Y-%m-%d} (today + {days} day{plural}; rows are observed "
        f"history, set {MAX_FUTURE_DAYS_ENV} to allow later dates)"
    )


_WRONG_TYPE_RULES = {
    "string": "",  # any value can be text
    "date": RULE_NOT_DATE,
    "float": RULE_NOT_NUMBER,
    "int": RULE_NOT_WHOLE_NUMBER,
}

CONVERSIONS_POLICIES: tuple[str, ...] = ("allow", "clip", "reject")
"""What validation does with ``conversions > clicks`` (post-view conversions are normal in real
exports): ``allow`` keeps the rows, ``clip`` lowers conversions to clicks, ``reject`` breaks the
rule :data:`RULE_CONVERSIONS_GT_CLICKS`."""

TABLE_COLUMN = "*"
"""``Violation.column`` for rules about the whole table (e.g. no rows)."""

# Text that means "no value" in numeric and date columns. String columns only treat an empty
# string as missing, so a brand called "NA" survives.
_NA_TOKENS = frozenset(
    {"", "nan", "-nan", "na", "n/a", "#n/a", "null", "none", "<na>", "nat", "#na"}
)
_CSV_NA_VALUES = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_INT64_LIMIT = 2.0**63


def _no_examples() -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], dtype="int64", name="row"))


@dataclass(frozen=True)
class Violation:
    """One broken rule of the campaign data contract.

    Parameters
    ----------
    column : str
        The column the rule is about; several columns are joined with ``", "`` (duplicate
        keys) and :data:`TABLE_COLUMN` (``"*"``) means the whole table.
    rule : str
        What the values must satisfy, e.g. ``"must be >= 0"`` (see the ``RULE_*`` constants).
    count : int
        Number of offending rows (for a missing column: every row).
    examples : pandas.DataFrame
        Up to five offending rows with their original values, indexed by their 0-based position
        in the input (index name ``"row"``). Only the identifying columns and the columns the
        rule involves are included. Empty for column-level rules.
    """

    column: str
    rule: str
    count: int
    examples: pd.DataFrame = field(default_factory=_no_examples, compare=False, repr=False)

    def describe(self) -> str:
        """Describe the violation in a few terminal-friendly lines.

        Returns
        -------
        str
            E.g. ``"column 'spend': must be >= 0 (3 rows), e.g.\\n    row 17: brand_id=b001
            date=2024-01-03 channel=search spend=-5.0"``.
        """
        if self.column == TABLE_COLUMN:
            head = "table"
        elif ", " in self.column:
            head = f"columns ({self.column})"
        else:
            head = f"column {self.column!r}"
        text = f"{head}: {self.rule}"
        if len(self.examples) == 0:
            return text
        plural = "" if self.count == 1 else "s"
        lines = [f"{text} ({self.count} row{plural}), e.g."]
        for position, row in self.examples.iterrows():
            values = " ".join(f"{name}={_format_value(value)}" for name, value in row.items())
            lines.append(f"    row {position}: {values}")
        return "\n".join(lines)


_MAX_SHOWN_CHARS = 60


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > _MAX_SHOWN_CHARS:  # keep messages short whatever the input holds
            return repr(value[:_MAX_SHOWN_CHARS]) + f"... ({len(value)} characters)"
        return repr(value) if value == "" or value != value.strip() or " " in value else value
    if isinstance(value, datetime | pd.Timestamp):
        stamp = pd.Timestamp(value)
        if stamp.tz is None and stamp == stamp.normalize():
            return stamp.strftime("%Y-%m-%d")
        return str(stamp)
    try:
        if pd.isna(value):
            return "<missing>"
    except (TypeError, ValueError):  # array-like cells
        pass
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def format_violations(violations: Sequence[Violation], source: str | None = None) -> str:
    """Format violations as one terminal-friendly message.

    Parameters
    ----------
    violations : sequence of Violation
        The violations to report (at least one).
    source : str, optional
        Where the data came from (a path); ``"campaign data"`` when omitted.

    Returns
    -------
    str
        A header line (``"<source>: N contract violations"``) and one bullet per violation.
    """
    where = source or "campaign data"
    count = len(violations)
    lines = [f"{where}: {count} contract violation{'' if count == 1 else 's'}"]
    for violation in violations:
        first, *rest = violation.describe().splitlines()
        lines.append(f"  - {first}")
        lines.extend(f"  {line}" for line in rest)
    if any(len(v.examples) for v in violations):
        note = "  (row = 0-based position of the data row"
        if source is not None and source.lower().endswith(_CSV_SUFFIXES):
            note += "; line in the CSV file = row + 2"
        lines.append(note + ")")
    return "\n".join(lines)


# --------------------------------------------------------------------------- parsing


@dataclass
class _Parsed:
    """A contract column parsed into its kind, with per-row masks."""

    values: Any  # ndarray (numbers, dates) or Series (strings)
    missing: np.ndarray
    invalid: np.ndarray  # present but not of the column's kind
    nonfinite: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return ~(self.missing | self.invalid | self.nonfinite)


def _false(n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool)


def _stripped_text(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Values as stripped strings, and the mask of missing ones (NaN/None/NA/empty)."""
    missing = raw.isna().to_numpy(dtype=bool, copy=True)
    text = raw.astype(STRING_DTYPE).str.strip()
    missing |= (text == "").fillna(True).to_numpy(dtype=bool, copy=True)
    return text, missing


def _na_token_mask(text: pd.Series) -> np.ndarray:
    return text.str.lower().isin(_NA_TOKENS).to_numpy(dtype=bool, copy=True)


def _parse_string(raw: pd.Series) -> _Parsed:
    text, missing = _stripped_text(raw)
    n = len(raw)
    return _Parsed(text.where(~missing), missing, _false(n), _false(n))


def _parse_number(raw: pd.Series, *, whole: bool) -> _Parsed:
    n = len(raw)
    if pd.api.types.is_bool_dtype(raw.dtype):
        missing = raw.isna().to_numpy(dtype=bool, copy=True)
        values = np.full(n, np.nan)
        invalid = ~missing
    elif pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(values)
        invalid = _false(n)
    else:
        text, missing = _stripped_text(raw)
        missing |= _na_token_mask(text)
        parsed = pd.to_numeric(text.where(~missing), errors="coerce")
        values = parsed.to_numpy(dtype="float64", na_value=np.nan)
        invalid = ~missing & np.isnan(values)
    nonfinite = ~missing & ~invalid & np.isinf(values)
    if whole:
        finite = ~missing & ~invalid & ~nonfinite
        with np.errstate(invalid="ignore"):
            not_whole = (values != np.trunc(values)) | (np.abs(values) >= _INT64_LIMIT)
        invalid = invalid | (finite & not_whole)
    return _Parsed(values, missing, invalid, nonfinite)


def _parse_date(raw: pd.Series) -> _Parsed:
    n = len(raw)
    dtype = raw.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        stamps = raw.dt.tz_localize(None)
        missing = stamps.isna().to_numpy(dtype=bool, copy=True)
        invalid = _false(n)
    elif pd.api.types.is_datetime64_dtype(dtype):
        stamps = raw
        missing = raw.isna().to_numpy(dtype=bool, copy=True)
        invalid = _false(n)
    elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        # Numbers (e.g. 20240103 or epoch seconds) are ambiguous; refuse rather than guess.
        missing = raw.isna().to_numpy(dtype=bool, copy=True)
        return _Parsed(np.full(n, np.datetime64("NaT"), DATE_DTYPE), missing, ~missing, _false(n))
    elif isinstance(dtype, pd.StringDtype):  # all text: no per-value type checks needed
        text, missing = _stripped_text(raw)
        missing |= _na_token_mask(text)
        stamps = _parse_iso_dates(text.where(~missing))
        invalid = ~missing & stamps.isna().to_numpy(dtype=bool, copy=True)
    else:
        missing = raw.isna().to_numpy(dtype=bool, copy=True)
        objects = raw.astype(object).to_numpy()
        is_text = np.fromiter((isinstance(v, str) for v in objects), dtype=bool, count=n)
        is_stamp = np.fromiter(
            (isinstance(v, datetime | date | np.datetime64) for v in objects), dtype=bool, count=n
        )
        stamps = pd.Series(pd.NaT, index=raw.index, dtype=DATE_DTYPE)
        invalid = ~missing & ~is_text & ~is_stamp
        if is_text.any():
            text = pd.Series(objects[is_text], dtype=STRING_DTYPE).str.strip()
            empty = _na_token_mask(text)
            missing[np.flatnonzero(is_text)[empty]] = True
            parsed = _parse_iso_dates(text.where(~empty))
            stamps.iloc[np.flatnonzero(is_text)] = parsed.to_numpy()
        if is_stamp.any():
            stamps.iloc[np.flatnonzero(is_stamp & ~missing)] = [
                _naive_timestamp(v) for v in objects[is_stamp & ~missing]
            ]
        invalid |= ~missing & stamps.isna().to_numpy(dtype=bool, copy=True)
    values = stamps.dt.normalize().to_numpy(dtype=DATE_DTYPE)
    return _Parsed(values, missing, invalid & ~missing, _false(n))


def _naive_timestamp(value: Any) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, OverflowError):
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tz is not None else stamp


def _parse_iso_dates(text: pd.Series) -> pd.Series:
    """Parse ISO 8601 strings to naive timestamps; unparseable ones become NaT."""
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except (ValueError, TypeError, OverflowError):
        # Mixed UTC offsets cannot share one dtype; parse one by one, keeping wall time.
        parsed = pd.Series([_parse_one_iso(v) for v in text], index=text.index, dtype=DATE_DTYPE)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype(DATE_DTYPE)


def _parse_one_iso(value: Any) -> pd.Timestamp:
    if not isinstance(value, str):
        return pd.NaT
    try:
        return _naive_timestamp(pd.to_datetime(value, format="ISO8601"))
    except (ValueError, TypeError, OverflowError):
        return pd.NaT


def _parse(raw: pd.Series, kind: str) -> _Parsed:
    if kind == "string":
        return _parse_string(raw)
    if kind == "date":
        return _parse_date(raw)
    return _parse_number(raw, whole=kind == "int")


def _normalised(parsed: _Parsed, kind: str) -> pd.Series:
    if kind == "string":
        return parsed.values.reset_index(drop=True).astype(STRING_DTYPE)
    if kind == "date":
        return pd.Series(parsed.values, dtype=DATE_DTYPE)
    if kind == "int":
        return pd.Series(parsed.values.astype(np.int64), dtype="int64")
    return pd.Series(parsed.values, dtype="float64")


# --------------------------------------------------------------------------- validation


def key_columns(columns: Collection[str]) -> list[str]:
    """The row-identifying columns among ``columns``, in sort order.

    Parameters
    ----------
    columns : collection of str
        Column names of a campaign frame.

    Returns
    -------
    list of str
        ``brand_id``, ``date``, ``channel`` and the optional key columns present.
    """
    return [c for c in (*KEY_COLUMNS, *OPTIONAL_KEY_COLUMNS) if c in columns]


def sort_campaigns(df: pd.DataFrame) -> pd.DataFrame:
    """Order columns and rows the way :func:`validate_campaigns` returns them.

    Parameters
    ----------
    df : pandas.DataFrame
        Campaign rows (already normalised).

    Returns
    -------
    pandas.DataFrame
        Required, then optional, then other columns; rows sorted (stably) by the key columns;
        index reset.
    """
    contract = [c for c in CONTRACT_COLUMNS if c in df.columns]
    others = [c for c in df.columns if c not in CONTRACT_COLUMNS]
    ordered = df[contract + others]
    keys = key_columns(ordered.columns)
    if keys:
        ordered = ordered.sort_values(keys, kind="stable", ignore_index=True)
    return ordered.reset_index(drop=True)


class _Collector:
    """Collects violations with example rows taken from the original frame."""

    def __init__(self, df: pd.DataFrame, usable: set[str]) -> None:
        self.df = df
        self.context = [c for c in KEY_COLUMNS if c in usable]
        self.violations: list[Violation] = []
        self.masks: list[np.ndarray | None] = []

    def column_level(self, column: str, rule: str, count: int) -> None:
        self.violations.append(Violation(column, rule, count))
        self.masks.append(None)

    def rows(
        self,
        column: str,
        rule: str,
        mask: np.ndarray,
        involved: Sequence[str] = (),
        order: np.ndarray | None = None,
    ) -> None:
        positions = np.flatnonzero(mask) if order is None else order
        if len(positions) == 0:
            return
        shown = positions[:MAX_EXAMPLES]
        names = self.context + [c for c in (column, *involved) if c not in self.context]
        names = [c for c in names if c in self.df.columns]
        locations = [self.df.columns.get_loc(c) for c in names]
        examples = self.df.iloc[shown, locations].copy()
        examples.index = pd.Index(shown, dtype="int64", name="row")
        self.violations.append(Violation(column, rule, int(len(positions)), examples))
        full = np.zeros(len(self.df), dtype=bool)
        full[positions] = True
        self.masks.append(full)


def validate_campaigns(
    df: pd.DataFrame,
    *,
    extra_columns: Sequence[str] = (),
    source: str | None = None,
    conversions_above_clicks: str = "allow",
    max_future_days: int | None = None,
) -> pd.DataFrame:
    """Check campaign rows against the data contract and return a normalised copy.

    All violations are collected before anything is raised. The input is never modified.

    Parameters
    ----------
    df : pandas.DataFrame
        Campaign rows with contract column names (see :func:`apply_column_mapping`).
    extra_columns : sequence of str, default ()
        Further columns that must be present (e.g. feature columns named in the config);
        they are kept untouched.
    source : str, optional
        Where the rows came from (a path), used as the first word of the error message.
    conversions_above_clicks : {"allow", "clip", "reject"}, default "allow"
        The policy for rows with more conversions than clicks (see
        :data:`CONVERSIONS_POLICIES`); ``clip`` lowers them to the clicks in the returned copy.
    max_future_days : int, optional
        Rows may be dated at most this many days after today (UTC); default
        ``$TABTUNE_MAX_FUTURE_DAYS`` or 1 (:func:`tabtune.data.limits.latest_allowed_date`).
        Rows before :data:`~tabtune.data.limits.EARLIEST_DATE` are refused too, and brand ids
        must pass :func:`tabtune.data.limits.brand_id_problem` (the store's and the
        registry's rule).

    Returns
    -------
    pandas.DataFrame
        Normalised copy: see the module docstring for dtypes, column order and row order.

    Raises
    ------
    ContractError
        If any rule is broken; ``.violations`` lists one :class:`Violation` per
        (column, rule) and the message names column, rule, count and example rows.
    TabTuneInputError
        If ``df`` is not a DataFrame or the policy is unknown.
    """
    found, parsed = _collect(df, extra_columns, conversions_above_clicks, max_future_days)
    if found.violations:
        raise ContractError(format_violations(found.violations, source), found.violations)

    n = len(df)
    columns: dict[str, pd.Series] = {
        name: _normalised(parsed[name], CONTRACT_COLUMNS[name])
        for name in CONTRACT_COLUMNS
        if name in parsed
    }
    if conversions_above_clicks == "clip":
        columns["conversions"] = np.minimum(columns["conversions"], columns["clicks"])
    for name in df.columns:
        if name not in CONTRACT_COLUMNS:
            columns[name] = df[name].reset_index(drop=True)
    return sort_campaigns(pd.DataFrame(columns, index=pd.RangeIndex(n)))


def find_violations(
    df: pd.DataFrame,
    *,
    extra_columns: Sequence[str] = (),
    conversions_above_clicks: str = "allow",
    max_future_days: int | None = None,
) -> list[tuple[Violation, np.ndarray | None]]:
    """Every violation of the contract, each with the mask of the rows that break it.

    The same checks as :func:`validate_campaigns`, for callers that drop bad rows instead of
    refusing the whole table (``tabtune load`` with ``data.invalid_rows: skip``).

    Parameters
    ----------
    df : pandas.DataFrame
        Campaign rows with contract column names.
    extra_columns : sequence of str, default ()
        Further columns that must be present.
    conversions_above_clicks : {"allow", "clip", "reject"}, default "allow"
        See :func:`validate_campaigns`.
    max_future_days : int, optional
        See :func:`validate_campaigns`.

    Returns
    -------
    list of (Violation, numpy.ndarray or None)
        The mask (one bool per row of ``df``) is None for a rule about a column or the whole
        table (a missing column, no rows), which no choice of rows can fix.
    """
    found, _ = _collect(df, extra_columns, conversions_above_clicks, max_future_days)
    return list(zip(found.violations, found.masks, strict=True))


def _collect(
    df: pd.DataFrame,
    extra_columns: Sequence[str],
    conversions_above_clicks: str,
    max_future_days: int | None = None,
) -> tuple[_Collector, dict[str, _Parsed]]:
    """Parse the contract columns of ``df`` and collect every violation (see validate_campaigns)."""
    if not isinstance(df, pd.DataFrame):
        raise TabTuneInputError(f"expected a pandas DataFrame of campaign rows, got {type(df)!r}")
    if conversions_above_clicks not in CONVERSIONS_POLICIES:
        raise TabTuneInputError(
            f"conversions_above_clicks must be one of {list(CONVERSIONS_POLICIES)}, "
            f"got {conversions_above_clicks!r}"
        )
    if isinstance(extra_columns, str):
        extra_columns = [extra_columns]
    n = len(df)
    duplicated_names = set(df.columns[df.columns.duplicated()])
    usable = {c for c in df.columns if c not in duplicated_names}
    found = _Collector(df, usable)

    if n == 0:
        found.column_level(TABLE_COLUMN, RULE_NO_ROWS, 0)
    for name in sorted(map(str, duplicated_names)):
        found.column_level(name, RULE_DUPLICATE_COLUMN, n)
    for name in REQUIRED_COLUMNS:
        if name not in df.columns:
            found.column_level(name, RULE_MISSING_COLUMN, n)
    for name in dict.fromkeys(extra_columns):
        if name not in df.columns:
            found.column_level(name, RULE_MISSING_EXTRA_COLUMN, n)

    parsed: dict[str, _Parsed] = {}
    for name, kind in CONTRACT_COLUMNS.items():
        if name not in usable:
            continue
        column = _parse(df[name], kind)
        parsed[name] = column
        found.rows(name, RULE_MISSING_VALUE, column.missing)
        found.rows(name, _WRONG_TYPE_RULES[kind], column.invalid)
        found.rows(name, RULE_NOT_FINITE, column.nonfinite)
        if name in NON_NEGATIVE_COLUMNS:
            found.rows(name, RULE_NEGATIVE, column.valid & (column.values < 0))
        if name in POSITIVE_COLUMNS:
            found.rows(name, RULE_NOT_POSITIVE, column.valid & (column.values <= 0))
    _check_limits(parsed, found, max_future_days)

    pairs = [("clicks", "impressions", RULE_CLICKS_GT_IMPRESSIONS)]
    if conversions_above_clicks == "reject":
        pairs.insert(0, ("conversions", "clicks", RULE_CONVERSIONS_GT_CLICKS))
    for small, large, rule in pairs:
        if small in parsed and large in parsed:
            a, b = parsed[small], parsed[large]
            # Rows already flagged (missing, negative, ...) are not compared again.
            both = a.valid & b.valid & (a.values >= 0) & (b.values >= 0)
            found.rows(small, rule, both & (a.values > b.values), involved=[large])

    keys = key_columns(usable)
    if all(k in parsed for k in KEY_COLUMNS):
        ok = np.logical_and.reduce([parsed[k].valid for k in keys])
        frame = pd.DataFrame({k: _normalised(parsed[k], CONTRACT_COLUMNS[k]) for k in keys})
        frame = frame[ok]
        duplicate = frame.duplicated(keep=False)
        if duplicate.any():
            # Show the clashing rows next to each other.
            order = frame[duplicate].sort_values(keys, kind="stable").index.to_numpy()
            found.rows(", ".join(keys), RULE_DUPLICATE_KEY, _false(n), keys, order=order)
    return found, parsed


def _check_limits(
    parsed: Mapping[str, _Parsed], found: _Collector, max_future_days: int | None
) -> None:
    """The input-boundary limits (:mod:`tabtune.data.limits`): brand ids and date range."""
    if "brand_id" in parsed:
        column = parsed["brand_id"]
        text = column.values[column.valid]
        bad_values = [v for v in pd.unique(text) if brand_id_problem(v) is not None]
        if bad_values:
            mask = column.valid & column.values.isin(bad_values).to_numpy(dtype=bool)
            found.rows("brand_id", RULE_BAD_BRAND_ID, mask)
    if "date" in parsed:
        column = parsed["date"]
        days = default_max_future_days() if max_future_days is None else max_future_days
        latest = latest_allowed_date(days)
        stamps = column.values
        late = np.datetime64(latest + timedelta(days=1), "us")
        early = np.datetime64(EARLIEST_DATE, "us")
        with np.errstate(invalid="ignore"):
            found.rows("date", RULE_DATE_TOO_EARLY, column.valid & (stamps < early))
            found.rows("date", rule_date_too_late(latest, days), column.valid & (stamps >= late))


# --------------------------------------------------------------------------- mapping and I/O


def apply_column_mapping(
    df: pd.DataFrame, mapping: Mapping[str, str] | None, *, source: str | None = None
) -> pd.DataFrame:
    """Rename the user's columns onto contract names.

    Parameters
    ----------
    df : pandas.DataFrame
        The user's data.
    mapping : mapping of str to str
        Contract column name -> the user's column name, e.g.
        ``{"brand_id": "advertiser", "date": "day"}``. Identity entries are allowed.
    source : str, optional
        Where the data came from, used in the error message.

    Returns
    -------
    pandas.DataFrame
        A renamed copy (the input is not modified).

    Raises
    ------
    ContractError
        If a key is not a contract column, a mapped column is not in the data, two contract
        columns map to the same column, or the contract name is already taken by another column.
    """
    mapping = dict(mapping or {})
    available = list(map(str, df.columns))
    shown = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
    renamed_sources = {src for target, src in mapping.items() if src != target}
    violations: list[Violation] = []
    seen: dict[str, str] = {}
    for target, src in mapping.items():
        if target not in CONTRACT_COLUMNS:
            known = ", ".join(CONTRACT_COLUMNS)
            rule = f"is not a contract column (mapped from {src!r}); known: {known}"
            violations.append(Violation(str(target), rule, 0))
        elif src not in df.columns:
            rule = f"is mapped from column {src!r}, which is not in the data (columns: {shown})"
            violations.append(Violation(target, rule, 0))
        elif src in seen:
            rule = f"is mapped from column {src!r}, which is already mapped to {seen[src]!r}"
            violations.append(Violation(target, rule, 0))
        elif target in df.columns and target != src and target not in renamed_sources:
            rule = f"is mapped from column {src!r}, but the data already has a {target!r} column"
            violations.append(Violation(target, rule, 0))
        seen.setdefault(src, target)
    if violations:
        where = source or "column mapping"
        lines = [f"{where}: {len(violations)} column mapping problem(s)"]
        lines.extend(f"  - {v.describe()}" for v in violations)
        raise ContractError("\n".join(lines), violations)
    return df.rename(columns={src: target for target, src in mapping.items() if src != target})


def read_table(path: str | Path, *, string_columns: Collection[str] | None = None) -> pd.DataFrame:
    """Read a CSV file, a Parquet file or a directory of Parquet files.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.csv`` (optionally compressed, e.g. ``.csv.gz``), ``.parquet``/``.pq``, or a directory
        of Parquet files (hive partitions such as ``brand_id=007`` become string columns).
    string_columns : collection of str, optional
        CSV columns read as text, so ``"007"`` stays ``"007"`` and only an empty field counts
        as missing. Defaults to the contract's string columns; pass the user's names when a
        column mapping is in use.

    Returns
    -------
    pandas.DataFrame
        The raw rows, not yet validated.

    Raises
    ------
    TabTuneInputError
        If the path does not exist, has an unknown extension, or cannot be parsed; the message
        includes the path.
    """
    path = Path(path)
    if not path.exists():
        raise TabTuneInputError(f"{path}: no such file or directory")
    try:
        if path.is_dir():
            return _read_parquet_dir(path)
        name = path.name.lower()
        if name.endswith(_CSV_SUFFIXES):
            return _read_csv(path, STRING_COLUMNS if string_columns is None else string_columns)
        if name.endswith(_PARQUET_SUFFIXES):
            return pq.read_table(path).to_pandas()
    except TabTuneInputError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise TabTuneInputError(f"{path}: cannot read: {exc}") from exc
    raise TabTuneInputError(
        f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
        "expected .csv, .parquet, .pq or a directory of Parquet files"
    )


def _read_csv(path: Path, string_columns: Collection[str]) -> pd.DataFrame:
    header = pd.read_csv(path, nrows=0).columns
    text = set(string_columns)
    return pd.read_csv(
        path,
        dtype={c: STRING_DTYPE for c in header if c in text},
        keep_default_na=False,
        na_values={c: ([""] if c in text else _CSV_NA_VALUES) for c in header},
    )


def _read_parquet_dir(path: Path) -> pd.DataFrame:
    # Dictionary-typed partition keys keep "007" as text instead of inferring an integer.
    partitioning = ds.HivePartitioning.discover(infer_dictionary=True)
    dataset = ds.dataset(path, format="parquet", partitioning=partitioning)
    if not dataset.files:
        raise TabTuneInputError(f"{path}: directory holds no Parquet files")
    return dataset.to_table().to_pandas()


def validate_file(
    path: str | Path,
    mapping: Mapping[str, str] | None = None,
    extra_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a file, map its columns and validate it against the contract.

    Parameters
    ----------
    path : str or pathlib.Path
        See :func:`read_table`.
    mapping : mapping of str to str, optional
        Contract name -> the file's column name (see :func:`apply_column_mapping`).
    extra_columns : sequence of str, default ()
        Further columns that must be present.

    Returns
    -------
    pandas.DataFrame
        The validated, normalised rows.

    Raises
    ------
    TabTuneInputError
        If the file cannot be read.
    ContractError
        If the mapping or the rows break the contract; the message starts with the path.
    """
    mapping = dict(mapping or {})
    text_columns = {mapping.get(c, c) for c in STRING_COLUMNS}
    df = read_table(path, string_columns=text_columns)
    df = apply_column_mapping(df, mapping, source=str(path))
    return validate_campaigns(df, extra_columns=extra_columns, source=str(path))
