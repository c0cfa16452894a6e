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

import numpy as np
import pandas as pd

from tabtune.data.contract import Violation
from tabtune.errors import ContractError

if TYPE_CHECKING:
    from tabtune.config import DataConfig

__all__ = [
    "RULE_MIDNIGHT",
    "hourly_key",
    "in_timezone",
    "shifted_midnight_error",
    "utc_suffix_as_z",
    "wrong_zone_note",
]

#: The rule dates whose every time of day is after noon break (without ``data.timezone``).
RULE_MIDNIGHT = "must be a day, or a timestamp read in the account's time zone (data.timezone)"

#: A timestamp written with a time of day and a UTC offset ("...T23:00:00Z", "... 23:00+01:00").
_WITH_OFFSET = re.compile(
    r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE
)
_NOON = pd.Timedelta(hours=12)
#: A timestamp whose zone is written as a word: BigQuery's ``2026-11-01 00:00:00 UTC``.
_UTC_WORD = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:UTC|GMT)$", re.IGNORECASE)
_ZONE_WORD = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)


def utc_suffix_as_z(values: pd.Series) -> pd.Series:
    """Timestamps written with the word ``UTC`` (or ``GMT``) after the time of day, as
    BigQuery exports a ``TIMESTAMP``, rewritten with ISO 8601's ``Z``: the same instant, which
    the date parser and ``data.timezone`` then read like any UTC timestamp. Other values are
    returned unchanged (the same object when there is none)."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(
        values.dtype
    ):
        return values
    objects = values.astype(object)
    is_text = objects.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if not is_text.any():
        return values
    text = objects[is_text].astype("string").str.strip()
    worded = text.str.contains(_UTC_WORD, na=False).to_numpy(dtype=bool)
    if not worded.any():
        return values
    out = objects.copy()
    rewritten = text[worded].str.replace(_ZONE_WORD, "Z", regex=True)
    out.iloc[is_text.nonzero()[0][worded]] = list(rewritten)
    return out


def _one_stamp(value: Any) -> pd.Timestamp:
    """A value as a timestamp at its written wall time (offset dropped), NaT if not one (or
    outside the years a timestamp holds: a typed 3026 is refused by the contract, later)."""
    try:
        stamp = pd.Timestamp(value.strip() if isinstance(value, str) else value)
        if stamp is pd.NaT:
            return pd.NaT
        stamp = stamp.tz_localize(None) if stamp.tz is not None else stamp
        return stamp.as_unit("ns")
    except (ValueError, TypeError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        return pd.NaT


def _naive(stamps: pd.Series) -> pd.Series:
    return stamps.dt.tz_localize(None) if isinstance(stamps.dtype, pd.DatetimeTZDtype) else stamps


def _wall_times(values: pd.Series) -> pd.Series:
    """The values as naive timestamps at their written wall time (NaT where not a date).
    Text is parsed at once; values that have no time of day (no ``:``) are not parsed and
    stay NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return out
    objects = values.astype(object)
    stamps = objects.map(lambda v: isinstance(v, datetime))
    if stamps.any():
        out[stamps] = [_one_stamp(v) for v in objects[stamps]]
    text = objects[~stamps].astype("string").str.strip()
    timed = text.str.contains(":", regex=False, na=False).astype(bool)
    if timed.any():
        timed_text = text[timed]
        try:
            parsed = _naive(pd.to_datetime(timed_text, format="ISO8601", errors="coerce"))
        except (ValueError, TypeError):  # offsets that differ: one by one, at wall time
            parsed = pd.Series([_one_stamp(v) for v in timed_text], index=timed_text.index)
        out[timed_text.index] = parsed.astype("datetime64[ns]")
    return out


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
        ``zone`` (``2026-10-31T23:00:00Z`` in ``Europe/Paris`` is ``2026-11-01 00:00``). A
        timestamp written at midnight in its own offset (``2026-11-01T00:00:00-07:00``) is that
        day, whatever the zone, and is kept as written; so are values without an offset (days,
        naive timestamps) and values that are no date.
    """
    tz = ZoneInfo(zone)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        local = values.dt.tz_convert(tz).dt.tz_localize(None)
        written = values.dt.tz_localize(None)
        return local.where(written != written.dt.normalize(), written)
    bearing = _offset_bearing(values).to_numpy(dtype=bool)
    if not bearing.any():
        return values
    text = values[bearing].astype("string").str.strip()
    stamps = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    local = stamps.dt.tz_convert(tz).dt.tz_localize(None)
    written = _wall_times(values[bearing])
    at_midnight = (written == written.dt.normalize()).to_numpy(dtype=bool)
    out = values.astype(object).copy()
    converted = local.notna().to_numpy(dtype=bool) & ~at_midnight
    out.iloc[bearing.nonzero()[0][converted]] = list(local[converted])
    return out


def wrong_zone_note(values: pd.Series, zone: str, column: str) -> list[str]:
    """A note when ``data.timezone`` turns the dates' UTC times into one or two times of day
    that are not midnight there: if they are the account's midnights, the zone is another."""
    bearing = _offset_bearing(values).to_numpy(dtype=bool)
    if not bearing.any():
        return []
    local = _wall_times(in_timezone(values[bearing], zone))
    times = (local - local.dt.normalize()).dropna()
    if not len(times) or (times == pd.Timedelta(0)).any() or times.nunique() > 2:
        return []
    shown = ", ".join(sorted({_clock(t) for t in times}))
    return [
        f"column {column!r}: read in data.timezone {zone!r}, every date falls at {shown}, not "
        "at midnight: if the timestamps are the account's midnights, its time zone is another "
        "one, and rows may be stored a day off"
    ]


def _clock(delta: pd.Timedelta) -> str:
    return f"{delta.components.hours:02d}:{delta.components.minutes:02d}"


#: A time zone per whole UTC offset in hours east of UTC (standard time), for the example a
#: refusal gives: the offset a day's midnight written in UTC at ``24h - offset`` shows.
_ZONE_OF_OFFSET = {
    1: "Europe/Paris",
    2: "Europe/Athens",
    3: "Europe/Istanbul",
    4: "Asia/Dubai",
    5: "Asia/Karachi",
    6: "Asia/Dhaka",
    7: "Asia/Bangkok",
    8: "Asia/Singapore",
    9: "Asia/Tokyo",
    10: "Australia/Brisbane",
    11: "Pacific/Noumea",
}


def _example_zone(times: pd.Series) -> str | None:
    """An IANA zone whose midnight, written in UTC, shows the smallest of ``times`` (its
    standard time; the larger one is its summer time), or None for a half-hour offset."""
    latest = max(times)
    hours = 24 - latest.total_seconds() / 3600
    return _ZONE_OF_OFFSET.get(int(hours)) if float(hours).is_integer() else None


def _shifted_groups(
    values: pd.Series, stamps: pd.Series, valid: np.ndarray, brands: pd.Series | None
) -> np.ndarray:
    """The rows of the brands (all rows as one without ``brands``) whose every date is a time
    of day after noon, one or two of them: shifted midnights. Checked per brand: a file of
    several accounts in several zones has another account's times before noon."""
    keys = np.zeros(len(values), dtype=np.int64)
    if isinstance(brands, pd.Series):
        keys = pd.factorize(brands.astype(str).to_numpy())[0]
    n = int(keys.max()) + 1 if len(keys) else 0
    times = (stamps - stamps.dt.normalize()).to_numpy()
    late = valid & (times > _NOON.to_timedelta64())
    days = values.notna().to_numpy(dtype=bool) & ~valid  # some rows are days: not shifted

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(keys, weights=mask.astype(float), minlength=n)

    stamped = count(valid)
    distinct = (
        pd.Series(times[valid]).groupby(keys[valid]).nunique().reindex(range(n), fill_value=0)
    )
    shifted = (stamped > 0) & (count(days) == 0) & (count(late) == stamped)
    shifted &= distinct.to_numpy() <= 2
    return valid & shifted[keys]


def shifted_midnight_error(
    values: pd.Series,
    source: str,
    column: str,
    data: DataConfig,
    brands: pd.Series | pd.DataFrame | None = None,
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
    brands : Series, optional
        Each row's brand (a DataFrame, a name given twice, is left to the contract): the rule
        is checked per brand (a file of accounts in several zones
        passed when one account's times were before noon, and the other's days were stored a
        day early; exports red-team).
    """
    if data.timezone is not None or data.date_format is not None or data.date_parts is not None:
        return None
    stamps = _wall_times(values)
    shifted = _shifted_groups(values, stamps, stamps.notna().to_numpy(dtype=bool), brands)
    if not shifted.any():
        return None
    times = (stamps - stamps.dt.normalize())[shifted]
    row = int(shifted.argmax())
    example, stamp = values.iloc[row], stamps.iloc[row]
    written = f"{stamp:%Y-%m-%d}"
    shown = ", ".join(sorted({_clock(t) for t in times}))
    zone = _example_zone(times)
    if bool(_offset_bearing(values).any()):
        there = ""
        if zone is not None:
            local = _wall_times(in_timezone(values.iloc[[row]], zone)).iloc[0]
            there = f" (e.g. {zone!r}, where {str(example).strip()!r} falls on {local:%Y-%m-%d})"
        fix = (
            f"data.timezone: the account's time zone{there}, so each row is stored under its "
            "day there; or data.timezone: UTC to store the days as written"
        )
    else:
        fix = (
            "export the dates as days (or with their UTC offset, read by data.timezone); or, "
            "if these times are the account's own, data.timezone: UTC stores the days as "
            "written (a time without a UTC offset is never converted)"
        )
    some = isinstance(brands, pd.Series) and not shifted[values.notna().to_numpy(dtype=bool)].all()
    if some:
        assert isinstance(brands, pd.Series)
        every = sorted(brands[shifted].astype(str).unique())
        names = ", ".join(every[:5]) + (f" and {len(every) - 5} more" if len(every) > 5 else "")
        fix = (
            f"export the dates as days; or load the rows of brand(s) {names} from a file of "
            "their own, with data.timezone set to their account's time zone (one data.timezone "
            "reads one zone; the other brands' times are their own days)"
        )
    who = f" of brand(s) {names}" if some else ""
    message = (
        f"{source}: column {column!r}: every date{who} carries a time of day after noon ({shown}; "
        f"e.g. {str(example).strip()!r}), not a day: a day written as the UTC time of its "
        f"midnight in a time zone east of UTC would be stored a day early ({written}), its "
        "weekday wrong; nothing was written\n"
        f"  fix: {fix}"
    )
    return ContractError(message, [Violation("date", RULE_MIDNIGHT, int(shifted.sum()))])


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
