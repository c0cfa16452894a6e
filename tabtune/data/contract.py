"""The campaign data contract (daily grain): its columns, dtypes, rule texts and violations.

One row is one day of one brand's activity in one channel (optionally split further by
campaign, audience and device). This module says what the contract *is*; checking a frame
against it is :mod:`tabtune.data.schema`, parsing raw columns is :mod:`tabtune.data.parse`
and reading files is :mod:`tabtune.data.tables`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from tabtune.data.limits import EARLIEST_DATE, MAX_FUTURE_DAYS_ENV

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


def key_feature_problem(features: Collection[str]) -> str | None:
    """Why a task may not list one of ``features`` (its categorical and numeric lists) as a
    feature, or None. ``numeric: [date]`` overwrote the time column every holdout, fold and
    data window is taken from (a model of 1970-01-20 .. 1970-01-20, exit 0), and
    ``categorical: [brand_id]`` was dropped without a word (CLI red-team)."""
    if "date" in features:
        return (
            "'date' is the time column (it orders the rows for holdouts, folds and the model's "
            "data window), not a feature; for features of the day use calendar: [day_of_week, "
            "day_of_year, month, is_weekend]"
        )
    if "brand_id" in features:
        return (
            "'brand_id' is not a feature: the models condition on each brand's context "
            "(statistics of its own history) instead, which also serves brands new to a model; "
            "remove it"
        )
    return None


STRING_COLUMNS: tuple[str, ...] = tuple(c for c, k in CONTRACT_COLUMNS.items() if k == "string")

NON_NEGATIVE_COLUMNS: tuple[str, ...] = ("spend", "clicks", "conversions", "revenue", "impressions")
POSITIVE_COLUMNS: tuple[str, ...] = ("bid",)
#: The measures ``data.fill`` may give a value for their empty cells (exports leave a zero blank).
FILLABLE_COLUMNS: tuple[str, ...] = NON_NEGATIVE_COLUMNS

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
RULE_MIXED_EXTRA = (
    "must be numbers on every row or text on every row (other rows hold numbers; these hold "
    "text that is not one)"
)
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
RULE_CONFLICTING_FILES = "same key with different values in two files"
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


CONVERSIONS_POLICIES: tuple[str, ...] = ("allow", "clip", "reject")
"""What validation does with ``conversions > clicks`` (post-view conversions are normal in real
exports): ``allow`` keeps the rows, ``clip`` lowers conversions to clicks, ``reject`` breaks the
rule :data:`RULE_CONVERSIONS_GT_CLICKS`."""

TABLE_COLUMN = "*"
"""``Violation.column`` for rules about the whole table (e.g. no rows)."""


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
        invisible = not value.isprintable() or any(c.isspace() and c != " " for c in value)
        if invisible:  # a no-break or zero-width space would look like a plain one
            return ascii(value)
        return repr(value) if value == "" or value != value.strip() or " " in value else value
    if isinstance(value, datetime | pd.Timestamp) and not pd.isna(value):  # NaT is missing
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
