"""Dates written with a time of day: the day a timestamp is stored under.

tabtune stores one row per calendar day, the day as the export writes it. A warehouse or API
that writes each day as a timestamp in UTC writes the account's midnight as the evening before
(Paris's 1 November begins at ``2026-10-31T23:00:00Z``), so every row would be stored a day
early, its weekday wrong. :func:`shifted_midnight_error` refuses such dates unless
``data.timezone`` says how to read them; :func:`in_timezone` converts timestamps with a UTC
offset into that zone before the day is taken; :func:`hourly_key` names an hourly export among
duplicate keys.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from tabtune.data.contract import Violation
from tabtune.errors import ContractError

if TYPE_CHECKING:
    from tabtune.config import DataConfig

__all__ = ["RULE_MIDNIGHT", "hourly_key", "in_timezone", "shifted_midnight_error"]

#: The rule dates whose every time of day is after noon break (without ``data.timezone``).
RULE_MIDNIGHT = "must be a day, or a timestamp read in the account's time zone (data.timezone)"

#: A timestamp written with a time of day and a UTC offset ("...T23:00:00Z", "... 23:00+01:00").
_WITH_OFFSET = re.compile(
    r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE
)
_NOON = pd.Timedelta(hours=12)


def _one_stamp(value: Any) -> pd.Timestamp:
    """A value as a timestamp at its written wall time (offset dropped), NaT if not one."""
    if isinstance(value, datetime | pd.Timestamp):
        stamp = pd.Timestamp(value)
    elif isinstance(value, str):
        try:
            stamp = pd.Timestamp(value.strip())
        except (ValueError, TypeError, OverflowError):
            return pd.NaT
    else:
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tz is not None else stamp


def _wall_times(values: pd.Series) -> pd.Series:
    """The values as naive timestamps at their written wall time (NaT where not a date)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    return pd.Series([_one_stamp(v) for v in values], index=values.index, dtype="datetime64[ns]")


def _offset_bearing(values: pd.Series) -> pd.Series:
    """Which values carry a UTC offset: text ending in ``Z``/``+01:00``, or a zoned dtype."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.notna()
    if pd.api.types.is_datetime64_dtype(values.dtype) or pd.api.types.is_numeric_dtype(
        values.dtype
    ):
        return pd.Series(False, index=values.index)
    text = values.astype("string").str.strip()
    return text.str.contains(_WITH_OFFSET, na=False).astype(bool)


def in_timezone(values: pd.Series, zone: str) -> pd.Series:
    """``data.timezone``: each timestamp with a UTC offset as its wall time in ``zone``.

    Parameters
    ----------
    values : Series
        The export's date column, before it is parsed (text, or timestamps).
    zone : str
        An IANA time zone (``Europe/Paris``).

    Returns
    -------
    Series
        ``values`` with every offset-bearing timestamp replaced by its naive wall time in
        ``zone`` (``2026-10-31T23:00:00Z`` in ``Europe/Paris`` is ``2026-11-01 00:00``); values
        without an offset (days, naive timestamps) and values that are no date unchanged.
    """
    tz = ZoneInfo(zone)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(tz).dt.tz_localize(None)
    bearing = _offset_bearing(values).to_numpy(dtype=bool)
    if not bearing.any():
        return values
    text = values[bearing].astype("string").str.strip()
    stamps = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    local = stamps.dt.tz_convert(tz).dt.tz_localize(None)
    out = values.astype(object).copy()
    converted = local.notna().to_numpy(dtype=bool)
    out.iloc[bearing.nonzero()[0][converted]] = list(local[converted])
    return out


def shifted_midnight_error(
    values: pd.Series, source: str, column: str, data: DataConfig
) -> ContractError | None:
    """The refusal for dates whose every time of day is after noon, or None.

    One or two times of day after noon on every row (two: summer and winter time) is how a
    day is written as the UTC time of its midnight in a zone east of UTC: stored as the day
    written, every row would land a day early. Hourly rows (times on both sides of noon) and
    days at midnight pass; so does everything once ``data.timezone``, ``data.date_format`` or
    ``data.date_parts`` says how the dates are read.

    Parameters
    ----------
    values : Series
        The contract's ``date`` column after the transforms (text or timestamps).
    source, column : str
        The file and the export's date column, for the message.
    data : DataConfig
    """
    if data.timezone is not None or data.date_format is not None or data.date_parts is not None:
        return None
    stamps = _wall_times(values)
    valid = stamps.notna().to_numpy(dtype=bool)
    if not valid.any():
        return None
    times = (stamps - stamps.dt.normalize())[valid]
    if not ((times > _NOON).all() and times.nunique() <= 2):
        return None
    row = int(valid.argmax())
    example, stamp = values.iloc[row], stamps.iloc[row]
    written = f"{stamp:%Y-%m-%d}"
    shown = ", ".join(
        sorted({f"{t.components.hours:02d}:{t.components.minutes:02d}" for t in times})
    )
    if bool(_offset_bearing(values).any()):
        there = in_timezone(values.iloc[[row]], "Europe/Paris").iloc[0]
        fix = (
            f"data.timezone: the account's time zone (e.g. 'Europe/Paris', where "
            f"{str(example).strip()!r} falls on {_wall_times(pd.Series([there])).iloc[0]:%Y-%m-%d}"
            "), so each row is stored under its day there; or data.timezone: UTC to store the "
            "days as written"
        )
    else:
        fix = (
            "export the dates as days (or with their UTC offset, read by data.timezone); or, "
            "if these times are the account's own, data.timezone: UTC stores the days as "
            "written (a time without a UTC offset is never converted)"
        )
    message = (
        f"{source}: column {column!r}: every date carries a time of day after noon ({shown}; "
        f"e.g. {str(example).strip()!r}), not a day: a day written as the UTC time of its "
        f"midnight in a time zone east of UTC would be stored a day early ({written}), its "
        "weekday wrong; nothing was written\n"
        f"  fix: {fix}"
    )
    return ContractError(message, [Violation("date", RULE_MIDNIGHT, int(valid.sum()))])


def hourly_key(examples: pd.DataFrame | None) -> str | None:
    """The fix for duplicate keys whose rows differ by the time of day of their date (an
    hourly export), or None."""
    if examples is None or "date" not in examples.columns:
        return None
    stamps = _wall_times(examples["date"]).dropna()
    if len(stamps) < 2:
        return None
    days = stamps.dt.normalize()
    if not (stamps != days).any() or days.nunique() == stamps.nunique():
        return None
    return (
        "the export's rows are per hour (their dates differ only by the time of day): tabtune "
        "stores one row per day and key; export a daily report (segment by day, not by hour), "
        "or sum each day's hours before loading"
    )
