"""Rows that cover a period longer than a day: refused before they are stored as its first day.

Platforms export a period's totals with its first and last day (Meta's ``Reporting starts``
and ``Reporting ends``). Mapped to the contract's ``date``, the first day alone would store a
month's totals as one day; :func:`period_rows_error` finds rows whose last-day column says
otherwise.
"""

from __future__ import annotations

import pandas as pd

from tabtune.data.contract import Violation
from tabtune.data.synonyms import normalised_name
from tabtune.errors import ContractError

__all__ = ["PERIOD_END_NAMES", "period_rows_error"]

#: Export names (as :func:`~tabtune.data.synonyms.normalised_name` writes them) of the column
#: holding the last day of a row's period.
PERIOD_END_NAMES = (
    "reporting_ends",
    "date_stop",
    "date_end",
    "end_date",
    "report_end_date",
    "stats_end_date",
)

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


def period_rows_error(
    frame: pd.DataFrame, source: str, date_format: str | None = None
) -> ContractError | None:
    """The refusal for rows whose period ends on another day than their ``date``, or None.

    Parameters
    ----------
    frame : DataFrame
        An export's rows with the contract's ``date`` mapped; an unmapped column named as a
        period's last day (:data:`PERIOD_END_NAMES`) is compared with it.
    source : str
        The file, for the message.
    date_format : str, optional
        ``data.date_format``, which reads both columns (default ISO 8601).
    """
    if "date" not in frame.columns:
        return None
    ends = [c for c in frame.columns if c != "date" and normalised_name(c) in PERIOD_END_NAMES]
    if len(ends) != 1 or isinstance(frame["date"], pd.DataFrame):
        return None
    end = ends[0]
    first, last = _as_days(frame["date"], date_format), _as_days(frame[end], date_format)
    longer = (first.notna() & last.notna() & (last != first)).to_numpy(dtype=bool)
    if not longer.any():
        return None
    count = int(longer.sum())
    row = int(longer.argmax())
    example = f"date {first.iloc[row]:%Y-%m-%d} to {end!r} {last.iloc[row]:%Y-%m-%d}"
    message = (
        f"{source}: {count} row(s) cover more than one day (e.g. row {row}: {example}); "
        "tabtune stores one row per day, so a period's totals would be stored as its first "
        "day; nothing was written\n"
        "  fix: export one row per day (Meta Ads Manager: Breakdown > By time > Day; other "
        f"platforms: segment the report by day), or, if {end!r} means something else, "
        f"data.drop: [{end!r}]"
    )
    return ContractError(message, [Violation("date", RULE_ONE_DAY, count)])
