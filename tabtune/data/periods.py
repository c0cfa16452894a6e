"""Rows that cover a period longer than a day: refused before they are stored as its first day.

Platforms export a period's totals with its first and last day (Meta's ``Reporting starts``
and ``Reporting ends``). With one of them mapped to the contract's ``date``, a month's totals
would be stored as one day; :func:`period_rows_error` finds rows whose other end says so. A
date mapped from a column of its own (Meta's ``Day`` breakdown, the report's range beside it)
is not compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tabtune.data.contract import KEY_COLUMNS, Violation
from tabtune.data.limits import latest_allowed_date
from tabtune.data.synonyms import normalised_name
from tabtune.data.transforms import RowProblem
from tabtune.errors import ContractError

__all__ = [
    "PERIOD_COLUMN_PAIRS",
    "PERIOD_END_NAMES",
    "MONTHLY_MIN_DATES",
    "WEEKLY_MIN_DATES",
    "period_rows_error",
    "running_day_note",
    "summary_problem",
    "summary_rows",
    "weekly_beside_store_error",
    "weekly_rows_error",
]

#: Export names (as :func:`~tabtune.data.synonyms.normalised_name` writes them) of the
#: columns holding the first and the last day of a row's period, as pairs.
PERIOD_COLUMN_PAIRS = (
    ("reporting_starts", "reporting_ends"),
    ("date_start", "date_stop"),
    ("date_start", "date_end"),
    ("start_date", "end_date"),
    ("report_start_date", "report_end_date"),
    ("stats_start_date", "stats_end_date"),
)
#: Every name of a period's last day.
PERIOD_END_NAMES = tuple(dict.fromkeys(end for _, end in PERIOD_COLUMN_PAIRS))

#: The rule a row spanning several days breaks.
RULE_ONE_DAY = "must cover one day (its period's last day is another day)"


def _as_days(values: pd.Series, date_format: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = pd.to_datetime(values)
    else:
        text = values.astype("string").str.strip()
        stamps = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce")
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_localize(None)
    return stamps.dt.normalize()


def _other_end(date_source: str, columns: list[str]) -> str | None:
    """The export column that holds the other end of the period whose one end the date was
    mapped from (``Reporting starts`` -> ``Reporting ends``), or None: a date mapped from a
    column of its own (``Day``, a daily breakdown beside the report's range) is no period's."""
    mine = normalised_name(date_source)
    for start, end in PERIOD_COLUMN_PAIRS:
        if mine in (start, end):
            other = end if mine == start else start
            found = [c for c in columns if c != "date" and normalised_name(c) == other]
            if len(found) == 1:
                return found[0]
    return None


def _period_ends(
    frame: pd.DataFrame, date_source: str, date_format: str | None
) -> tuple[str, pd.Series, pd.Series, np.ndarray] | None:
    """The export column of the other end of the date's period, both ends as days, and the
    rows whose ends differ (several days); None when the date is no period's end."""
    if "date" not in frame.columns or isinstance(frame["date"], pd.DataFrame):
        return None
    other = _other_end(date_source, [str(c) for c in frame.columns])
    if other is None:
        return None
    first, last = _as_days(frame["date"], date_format), _as_days(frame[other], date_format)
    longer = (first.notna() & last.notna() & (last != first)).to_numpy(dtype=bool)
    return other, first, last, longer


def period_rows_error(
    frame: pd.DataFrame, source: str, date_source: str, date_format: str | None = None
) -> ContractError | None:
    """The refusal for rows whose date is one end of a period that ends on another day, or
    None.

    Parameters
    ----------
    frame : DataFrame
        An export's rows with the contract's ``date`` mapped.
    source : str
        The file, for the message.
    date_source : str
        The export column the date was mapped from (``data.columns.date``). When it is one end
        of a period (:data:`PERIOD_COLUMN_PAIRS`, e.g. Meta's ``Reporting starts``) and the
        export holds the other end, the two must be one day; a date of its own (a ``Day``
        breakdown, with the report's range beside it) is never compared.
    date_format : str, optional
        ``data.date_format``, which reads both columns (default ISO 8601).
    """
    ends = _period_ends(frame, date_source, date_format)
    if ends is None:
        return None
    other, first, last, longer = ends
    if not longer.any():
        return None
    count = int(longer.sum())
    row = int(longer.argmax())
    example = (
        f"date ({date_source!r}) {first.iloc[row]:%Y-%m-%d}, {other!r} {last.iloc[row]:%Y-%m-%d}"
    )
    message = (
        f"{source}: {count} row(s) cover more than one day (e.g. row {row}: {example}); "
        "tabtune stores one row per day, so a period's totals would be stored as one of its "
        "days; nothing was written\n"
        "  fix: export one row per day (Meta Ads Manager: Breakdown > By time > Day, then map "
        "data.columns.date to its day column; other platforms: segment the report by day)"
    )
    return ContractError(message, [Violation("date", RULE_ONE_DAY, count)])


#: The rule of a report's summary line (Meta's totals row of the whole period).
RULE_SUMMARY = (
    "must be a day, not the report's summary line (its period is the whole report's, beside "
    "the daily rows)"
)


def summary_rows(
    frame: pd.DataFrame, date_source: str, date_format: str | None
) -> np.ndarray | None:
    """The report's summary rows among daily rows (Meta's totals row: its period covers every
    daily row and its spend is theirs summed, to 1%), or None when there are none. The load
    refuses them as such (``data.invalid_rows: skip`` leaves them out) before :func:`period_rows_error`
    refuses other rows of several days."""
    ends = _period_ends(frame, date_source, date_format)
    if ends is None:
        return None
    _, first, last, longer = ends
    daily = (first.notna() & (last == first)).to_numpy(dtype=bool)
    if not longer.any() or first[daily].nunique() < 2:  # a summary of one day's rows is no sign
        return None
    low, high = np.minimum(first, last), np.maximum(first, last)  # 'ends' mapped too
    # the report's range covers every daily row (delivery may start after it does) ...
    whole = (low[longer] <= first[daily].min()) & (high[longer] >= first[daily].max())
    if not bool(whole.all()) or "spend" not in frame.columns:
        return None
    # ... and a summary line's spend is the daily rows' sum (a channel's 3-day row is not)
    spend = pd.to_numeric(frame["spend"], errors="coerce").to_numpy(dtype=float)
    total = float(np.nansum(spend[daily]))
    summed = np.abs(spend[longer] - total) <= 0.01 * abs(total) + 0.01
    return longer if bool(summed.all()) else None


def summary_problem(
    frame: pd.DataFrame, date_source: str, date_format: str | None
) -> RowProblem | None:
    """The report's summary line (:func:`summary_rows`) as rows the load refuses, with
    ``data.invalid_rows: skip`` (which leaves them out) as the fix; None without one."""
    summary = summary_rows(frame, date_source, date_format)
    if summary is None:
        return None
    shown = frame.iloc[np.flatnonzero(summary)[:3]][[c for c in KEY_COLUMNS if c in frame]]
    line = Violation("date", RULE_SUMMARY, int(summary.sum()), shown)
    key = "data.invalid_rows: skip (the report's summary line is not a day; the daily rows load)"
    return RowProblem(line, summary, key)


#: Distinct dates from which rows a week apart, and nothing else, are a weekly report.
WEEKLY_MIN_DATES = 4
#: Distinct dates, each the 1st of a month, that make a monthly report.
MONTHLY_MIN_DATES = 3
#: The rule rows of a weekly report break.
RULE_WEEKLY = "must be days (the rows' dates are weeks or months apart: a weekly or monthly report)"


def weekly_rows_error(
    frame: pd.DataFrame, source: str, date_source: str, date_format: str | None, notes: list[str]
) -> ContractError | None:
    """The refusal for a weekly or monthly report, or None (with a note in ``notes`` for such
    dates under a column that does not say week or month).

    A report by week (``Week``, a Monday per row) mapped to the date would store each week's
    totals as one day: the models would take a week's spend for a day's. From
    :data:`WEEKLY_MIN_DATES` distinct dates, all whole weeks apart (a week without spend
    leaves a gap of two), or :data:`MONTHLY_MIN_DATES` dates each the 1st of a month, rows
    with measures are refused when the date's export column says week (month), and from one
    such date under such a name (a nightly file of one week); under another name (a brand
    that runs on Mondays only) they load, with a note. Rows without spend
    (contexts to predict for) are not looked at.
    """
    if "date" not in frame.columns or isinstance(frame["date"], pd.DataFrame):
        return None
    if "spend" not in frame.columns:
        return None
    try:
        days = _as_days(frame["date"].drop_duplicates(), date_format)
        days = days.dropna().drop_duplicates().sort_values()
    except (ValueError, TypeError, OverflowError):  # mixed offsets, ...: the contract says
        return None
    span = f"({days.iloc[0]:%Y-%m-%d} .. {days.iloc[-1]:%Y-%m-%d})" if len(days) else ""
    gaps = days.diff().dropna()
    # under a column named for weeks (months) one date of that shape is enough
    named = normalised_name(date_source)
    monthly = len(days) >= (1 if "month" in named else MONTHLY_MIN_DATES)
    weekly = len(days) >= (1 if "week" in named else WEEKLY_MIN_DATES)
    if monthly and (days.dt.day == 1).all():
        period, shape = "month", f"the rows' {len(days)} dates are each the 1st of a month {span}"
    elif weekly and (gaps % pd.Timedelta(days=7) == pd.Timedelta(0)).all():
        period = "week"
        shape = (
            f"the rows' {len(days)} dates are whole weeks apart, every one a "
            f"{days.iloc[0].day_name()} {span}"
        )
    else:
        return None
    if period not in named:
        notes.append(
            f"{Path(source).name}: {shape}: if this is a {period}ly report, each {period}'s "
            "totals are stored as one day; export one row per day instead"
        )
        return None
    message = (
        f"{source}: {shape}, under column {date_source!r}: a {period}ly report, whose totals "
        f"would be stored as one day each (a {period}'s spend taken for a day's); nothing was "
        "written\n  fix: export one row per day (segment or break down the report by day, "
        f"not by {period})"
    )
    return ContractError(message, [Violation("date", RULE_WEEKLY, len(frame))])


def running_day_note(rows: pd.DataFrame) -> list[str]:
    """A note for rows dated today (UTC) or later: a day still running is exported partial,
    and its complete export later restates it."""
    today = pd.Timestamp(latest_allowed_date(0))
    if "date" not in rows.columns or not len(rows):
        return []
    running = rows["date"] >= today
    if not running.any():
        return []
    days = sorted({f"{d:%Y-%m-%d}" for d in rows.loc[running, "date"]})
    return [
        f"{int(running.sum()):,} row(s) dated today (UTC) or later ({', '.join(days)}): a day "
        "still running is partial; load its complete export once the day is over (the store "
        "keeps the values it holds unless data.restated_rows: replace)"
    ]


#: A brand's stored days in the :data:`DAILY_WINDOW` days before a load that make it daily.
DAILY_MIN_DAYS = 14
DAILY_WINDOW = 28
#: A weekly date's spend over the brand's median stored day's that says a week's totals.
WEEK_SPEND_RATIO = 3.0


def weekly_beside_store_error(
    rows: pd.DataFrame, history: pd.DataFrame | None
) -> ContractError | None:
    """The refusal of a brand's loaded rows that are weekly beside its daily stored days, or
    None: two or more dates whole weeks apart (no two of them closer), a brand stored with
    :data:`DAILY_MIN_DAYS` of the :data:`DAILY_WINDOW` days before them or more, and the
    loaded days' median spend :data:`WEEK_SPEND_RATIO` times its median stored day's. A weekly
    report under a column named "Day" passed :func:`weekly_rows_error` under
    :data:`WEEKLY_MIN_DATES` dates, and each week's totals were stored as one day beside the
    brand's real days (exports red-team). ``rows``: validated rows; ``history``: the stored rows
    of the brands before them (``brand_id``, ``date``, ``spend``)."""
    if history is None or not len(history) or not {"brand_id", "date", "spend"} <= set(rows):
        return None
    new = rows.groupby([rows["brand_id"].astype(str), "date"], observed=True)["spend"].sum()
    old = history.groupby([history["brand_id"].astype(str), "date"], observed=True)["spend"].sum()
    for brand, loaded in new[new > 0].groupby(level=0):
        days = pd.DatetimeIndex(loaded.index.get_level_values(1)).sort_values()
        gaps = np.diff(days.to_numpy()).astype("timedelta64[D]").astype(int)
        if len(days) < 2 or (gaps % 7).any():
            continue
        if brand not in old.index.get_level_values(0):
            continue
        stored = old.loc[brand]
        stored = stored[(stored.index < days[0]) & (stored > 0)]
        recent = stored[stored.index >= days[0] - pd.Timedelta(days=DAILY_WINDOW)]
        if len(recent) < DAILY_MIN_DAYS:
            continue
        ratio = float(loaded.median()) / float(recent.median())
        if ratio < WEEK_SPEND_RATIO:
            continue  # a brand that runs on one weekday only spends a day's worth then
        shown = ", ".join(f"{d:%Y-%m-%d}" for d in days[:4]) + (", ..." if len(days) > 4 else "")
        message = (
            f"brand {brand!r}: the load gives {len(days)} dates whole weeks apart, every one a "
            f"{days[0].day_name()} ({shown}), spending {ratio:.1f}x its median stored day, and "
            f"the store holds it day by day ({len(recent)} of the {DAILY_WINDOW} days before): "
            "a weekly report, whose totals would be stored as days beside its real days; "
            "nothing was written\n  fix: export one row per day (segment or break the report "
            "down by day, not by week)"
        )
        return ContractError(message, [Violation("date", RULE_WEEKLY, int(len(days)))])
    return None
