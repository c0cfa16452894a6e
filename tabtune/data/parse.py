"""Parsing raw campaign columns into the contract's kinds, with per-row problem masks.

:func:`parse_column` turns one raw column (text, numbers, dates, mixed objects) into a
:class:`ParsedColumn` whose masks say which rows are missing, of the wrong kind or not finite;
:func:`normalised_column` gives the normalised values :func:`tabtune.data.schema.validate_campaigns`
returns.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from tabtune.data.contract import DATE_DTYPE, STRING_DTYPE

# Text that means "no value" in numeric and date columns. String columns only treat an empty
# string as missing, so a brand called "NA" survives.
_NA_TOKENS = frozenset(
    {"", "nan", "-nan", "na", "n/a", "#n/a", "null", "none", "<na>", "nat", "#na"}
)
_INT64_LIMIT = 2.0**63


@dataclass
class ParsedColumn:
    """A contract column parsed into its kind, with per-row masks."""

    values: Any  # ndarray (numbers, dates) or Series (strings)
    missing: np.ndarray
    invalid: np.ndarray  # present but not of the column's kind
    nonfinite: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """Rows that are present, of the column's kind and finite."""
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


def _whole_floats_as_integers(raw: pd.Series) -> pd.Series:
    """A float column with its whole values as integer text: ``7.0`` -> ``"7"``.

    An id read from Parquet as a float (a spreadsheet's numbers) then names the same brand as
    the CSV's ``7``; other values keep their text (``7.5``), missing ones stay missing.
    """
    values = raw.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (values == np.trunc(values)) & (np.abs(values) < 2**53)
    text = raw.astype(object).where(~whole)
    text[whole] = [str(int(v)) for v in values[whole]]
    return text


def nfc_text(raw: pd.Series) -> pd.Series:
    """Text values in Unicode normal form C (composed): ``"Cafe\u0301"`` -> ``"Caf\u00e9"``.

    The same name typed on two systems may arrive composed or decomposed; in form C both are
    one brand (or channel, ...). Applied to a user's files on the way in only
    (:func:`tabtune.data.load.prepare_exports`), never to the store's rows, so that ids stored
    before keep reading as they were written. Values that are not text are kept as they are.

    Parameters
    ----------
    raw : pandas.Series

    Returns
    -------
    pandas.Series
        Same index and dtype (an object column of mixed values stays mixed).
    """
    if isinstance(raw.dtype, pd.StringDtype):
        return raw.str.normalize("NFC")
    if raw.dtype == object:
        return raw.map(lambda v: unicodedata.normalize("NFC", v) if isinstance(v, str) else v)
    return raw


def _parse_string(raw: pd.Series) -> ParsedColumn:
    if pd.api.types.is_float_dtype(raw.dtype):
        raw = _whole_floats_as_integers(raw)
    text, missing = _stripped_text(raw)
    n = len(raw)
    return ParsedColumn(text.where(~missing), missing, _false(n), _false(n))


def _parse_number(raw: pd.Series, *, whole: bool) -> ParsedColumn:
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
    return ParsedColumn(values, missing, invalid, nonfinite)


def _parse_date(raw: pd.Series) -> ParsedColumn:
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
        return ParsedColumn(
            np.full(n, np.datetime64("NaT"), DATE_DTYPE), missing, ~missing, _false(n)
        )
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
    return ParsedColumn(values, missing, invalid & ~missing, _false(n))


def _naive_timestamp(value: Any) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, OverflowError):
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tz is not None else stamp


#: A year, or a year and month, alone ("2026", "2026-12", "2026/12", "2026 12"): ISO 8601 reads them as
#: the period's first day, which would store a month's totals as the 1st.
PARTIAL_DATE = re.compile(r"^\s*\d{4}(?:[-/. ]\d{1,2})?\s*$")


def _parse_iso_dates(text: pd.Series) -> pd.Series:
    """Parse ISO 8601 strings to naive timestamps; unparseable ones become NaT, as do a year or
    a year and month alone (:data:`PARTIAL_DATE`: not a day)."""
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except (ValueError, TypeError, OverflowError):
        # Mixed UTC offsets cannot share one dtype; parse one by one, keeping wall time.
        parsed = pd.Series([_parse_one_iso(v) for v in text], index=text.index, dtype=DATE_DTYPE)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    parsed = parsed.astype(DATE_DTYPE)
    short = (text.str.len() <= 7).fillna(False).to_numpy(dtype=bool)  # "2026-12" at most
    if short.any():
        partial = np.zeros(len(text), dtype=bool)
        partial[short] = text[short].str.match(PARTIAL_DATE.pattern, na=False).to_numpy(bool)
        parsed = parsed.mask(partial)
    return parsed


def _parse_one_iso(value: Any) -> pd.Timestamp:
    if not isinstance(value, str):
        return pd.NaT
    try:
        return _naive_timestamp(pd.to_datetime(value, format="ISO8601"))
    except (ValueError, TypeError, OverflowError):
        return pd.NaT


def parse_column(raw: pd.Series, kind: str) -> ParsedColumn:
    """Parse one raw column as the contract kind ``kind``.

    Parameters
    ----------
    raw : pandas.Series
        The column as read (any dtype).
    kind : {"string", "date", "float", "int"}
        The contract kind (a value of :data:`~tabtune.data.contract.CONTRACT_COLUMNS`).

    Returns
    -------
    ParsedColumn
        The parsed values and the masks of missing, invalid and non-finite rows.
    """
    if kind == "string":
        return _parse_string(raw)
    if kind == "date":
        return _parse_date(raw)
    return _parse_number(raw, whole=kind == "int")


def normalised_column(parsed: ParsedColumn, kind: str) -> pd.Series:
    """The parsed values as a normalised column (see :mod:`tabtune.data.schema`).

    Parameters
    ----------
    parsed : ParsedColumn
        From :func:`parse_column` with the same ``kind``.
    kind : {"string", "date", "float", "int"}
        The contract kind.

    Returns
    -------
    pandas.Series
        ``str``, ``datetime64[us]``, ``int64`` or ``float64`` values with a fresh index.
    """
    if kind == "string":
        return parsed.values.reset_index(drop=True).astype(STRING_DTYPE)
    if kind == "date":
        return pd.Series(parsed.values, dtype=DATE_DTYPE)
    if kind == "int":
        return pd.Series(parsed.values.astype(np.int64), dtype="int64")
    return pd.Series(parsed.values, dtype="float64")


def check_date_format(value: str) -> str:
    """A strptime format that round-trips a date with its year, month and day."""
    probe = datetime(2024, 11, 23)
    try:
        again = datetime.strptime(probe.strftime(value), value)
    except ValueError:
        again = None
    if again is None or again.date() != probe.date():
        raise ValueError(
            f"{value!r} is not a date format with a year, a month and a day "
            "(strptime codes, e.g. '%d-%m-%Y' for 23-11-2024, '%d/%m/%Y', '%m/%d/%y', '%d %b %Y')"
        )
    return value
