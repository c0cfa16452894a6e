"""The fix a refused export names: the ``data:`` key (or the change to the export) that loads
its rows, for the "fix:" line of each problem :mod:`tabtune.data.load` reports.

:func:`config_key` is the rule's own key; :func:`number_key` reads numbers as the export writes
them (thousands separators, currency, fractions); :func:`shape_key` names the shape of rows no
row policy helps with (a totals line, an empty optional column, Excel serial dates).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tabtune.data import schema
from tabtune.data.clock_times import hourly_key
from tabtune.data.contract import FILLABLE_COLUMNS, key_columns
from tabtune.data.limits import brand_id_problem
from tabtune.data.number_text import looks_dot_grouped, suggested_format
from tabtune.data.parse import PARTIAL_DATE
from tabtune.data.schema import CONTRACT_COLUMNS, Violation
from tabtune.data.store_check import MEASURE_COLUMNS
from tabtune.data.synonyms import normalised_name, synonym_in
from tabtune.data.transforms import FILL_PLACEHOLDERS

if TYPE_CHECKING:
    from tabtune.config import DataConfig

__all__ = [
    "RULE_SUBTOTAL",
    "TOTAL_NAME",
    "TOTALS_CELL",
    "config_key",
    "footer_rows",
    "number_key",
    "placeholder_measures",
    "shape_key",
    "subtotal_problems",
    "summed_rows",
]


def _platform_name(column: str, present: Sequence[str]) -> str | None:
    """The export column (not already a contract name) ad platforms name ``column`` so."""
    return synonym_in(column, [c for c in present if c not in CONTRACT_COLUMNS])


def _missing_column_key(column: str, data: DataConfig, present: Sequence[str]) -> str:
    """The fix for a required column the export lacks: a near match of its name in the export
    (other case, spaces), else the export's columns to choose from."""
    near = [c for c in present if c != column and normalised_name(c) == normalised_name(column)]
    if near:
        return (
            f"data.columns.{column}: {near[0]!r} (the export has {near[0]!r}, which differs "
            f"from {column!r} only in case or spaces)"
        )
    synonym = _platform_name(column, present)
    if synonym is not None:
        return (
            f"data.columns.{column}: {synonym!r} (ad platforms' name for it; check that the "
            "export's column means it)"
        )
    shown = ", ".join(repr(c) for c in list(present)[:15]) + (", ..." if len(present) > 15 else "")
    listed = f"; the export's columns: {shown}" if len(present) else ""
    if column == "revenue" and "conversions" in present:
        # ad exports often count conversions without their value (Meta's, without pixel values)
        return (
            f"data.columns.revenue (the export's column for it; a per-row measure){listed}; "
            "an export without revenue can value a count of conversions in a column not "
            "mapped to conversions (purchases, approved conversions): data.columns.revenue: "
            "<that column> with data.scale.revenue: <the value of one>"
        )
    if column in MEASURE_COLUMNS:  # one value on every row would pass for a real measure
        return f"data.columns.{column} (the export's column for it; a per-row measure){listed}"
    return f"data.columns.{column} (the export's column for it) or data.constants.{column}{listed}"


def config_key(
    column: str, rule: str, data: DataConfig, present: Sequence[str] | None = None
) -> str:
    """The config key that governs a contract violation, for the "fix:" line of a message.

    Parameters
    ----------
    column, rule : str
        Of the :class:`~tabtune.data.schema.Violation`.
    data : DataConfig
    present : sequence of str, optional
        The export's columns (after the mapping): a missing column's fix names a near match
        among them, or lists them.

    Returns
    -------
    str
        E.g. ``"data.columns.spend (export column 'Cost')"`` for a missing column, or
        ``"data.invalid_rows (skip leaves these rows out)"`` for bad values.
    """
    if rule == schema.RULE_CONVERSIONS_GT_CLICKS:
        return "data.conversions_above_clicks (allow or clip)"
    if rule == schema.RULE_MISSING_EXTRA_COLUMN:
        return f"data.extra_columns (or map it: data.rename.<export column>: {column})"
    if rule == schema.RULE_MIXED_EXTRA:
        return (
            f"the export: write {column!r} as plain numbers on every row (a placeholder such "
            "as '--' as an empty cell), or leave the column out (data.extra_columns, data.drop)"
        )
    if rule == schema.RULE_MISSING_COLUMN:
        if column == "date":
            synonym = _platform_name("date", present or [])
            named = (
                f"data.columns.date: {synonym!r} (ad platforms' name for it), or "
                if synonym
                else ""
            )
            return f"{named}data.columns.date, data.date_parts or data.rename"
        return _missing_column_key(column, data, list(present or []))
    if rule == schema.RULE_DUPLICATE_KEY:
        return (
            "data.columns (map campaign_id, audience or device so each row has its own key) "
            "or the export"
        )
    if rule == schema.RULE_BAD_BRAND_ID:
        return (
            "rename the brand in the export (each brand is kept in a folder of its name: "
            "'Acme US-CA' for 'Acme US/CA')"
            + (
                ""
                if data.invalid_rows == "skip"
                else ", or data.invalid_rows: skip to leave it out"
            )
        )
    if column == "date" and rule == schema.RULE_NOT_DATE:
        return "data.date_format (e.g. '%d-%m-%Y') or data.date_parts"
    where = f" (export column {data.columns[column]!r})" if column in data.columns else ""
    if rule == schema.RULE_MISSING_VALUE and column in FILLABLE_COLUMNS:
        return (
            f"data.fill: {{{column}: 0}} when the export leaves a zero empty, else the "
            f"export's rows{where}"
            # an outcome left empty is not skipped (placeholder_measures): not offered
            + (
                ""
                if data.invalid_rows == "skip" or column in _OUTCOMES
                else ", or data.invalid_rows: skip"
            )
        )
    if data.invalid_rows == "skip":  # already skipping: every row broke a rule
        return _fix_values(column, rule, where)
    return f"the export's rows{where}, or data.invalid_rows: skip to leave them out"


_TOTALS_KEY = (
    "data.invalid_rows: skip (the report's totals or footer lines are not campaign data; skipped rows "
    "are listed)"
)


#: A totals or footer cell: "Total", "Totals", "Grand total", "Total: Account" (never
#: "TotalEnergies"), a footer's label alone ("Report Time:", "Date Range:", "Group By:") or a
#: copyright line ("©2025 Microsoft Corporation. All rights reserved.").
TOTALS_CELL = re.compile(
    r"^\s*(?:(?:grand\s+)?totals?\b|[a-z][a-z ]{0,30}:\s*$|©|\(c\)\s*\d{4}|"
    r"copyright\s+(?:©|\(c\)|\d{4})|.*all rights reserved)",
    re.IGNORECASE,
)


def footer_rows(frame: pd.DataFrame) -> np.ndarray:
    """Which rows are a report's totals or footer lines: the first cell, the date's or the
    brand's is one (:data:`TOTALS_CELL`), and the date cell holds no day. No format or
    mapping would read such a row, and it is not campaign data."""
    if not len(frame.columns):
        return np.zeros(len(frame), dtype=bool)
    names = list(dict.fromkeys([frame.columns[0], "date", "brand_id"]))
    cells = [
        frame[n].astype(str).str.match(TOTALS_CELL).to_numpy(dtype=bool)
        for n in names
        if n in frame.columns and not isinstance(frame[n], pd.DataFrame)
    ]
    if not cells:
        return np.zeros(len(frame), dtype=bool)
    footer = np.logical_or.reduce(cells)
    if "date" in frame.columns and not isinstance(frame["date"], pd.DataFrame):
        day = frame["date"].astype(str)  # a day written in the date cell: a campaign row
        dated = day.str.contains(r"\d", regex=True) & ~day.str.match(TOTALS_CELL)
        footer &= ~dated.to_numpy(dtype=bool)
    return footer


#: A name that starts with the word "Total" and goes on ("Total Wine & More"): a brand or a
#: campaign, not a totals label.
TOTAL_NAME = re.compile(r"^\s*totals?\s+\w", re.IGNORECASE)
#: A whole cell that labels a sum of other rows: "Total", "Subtotal", "Grand total",
#: "Total: Search" (never "Total Wine & More").
_SUBTOTAL_CELL = re.compile(r"^\s*(?:grand\s+|sub-?\s*)?totals?\s*(?::.*)?$", re.IGNORECASE)
#: The rule a dated totals row breaks.
RULE_SUBTOTAL = "must not be a totals row (the sum of other rows: stored, it counts them twice)"


def subtotal_problems(
    frame: pd.DataFrame, flagged: np.ndarray
) -> list[tuple[Violation, np.ndarray, str]]:
    """Dated rows whose channel, campaign, audience or device cell labels a sum of the other
    rows ("Total"): a report's subtotal per day, read as one more channel (:func:`footer_rows`
    finds the undated totals lines). Rows ``flagged`` already are left out."""
    found = []
    for column in ("channel", "campaign_id", "audience", "device"):
        if column not in frame.columns or isinstance(frame[column], pd.DataFrame):
            continue
        cells = frame[column].astype(str)
        mask = cells.str.match(_SUBTOTAL_CELL).to_numpy(dtype=bool) & ~flagged
        if mask.any():
            keys = [c for c in ("brand_id", "date", column) if c in frame.columns]
            examples = frame.loc[mask, keys].head(5)
            examples.index.name = "row"
            violation = Violation(column, RULE_SUBTOTAL, int(mask.sum()), examples)
            found.append((violation, mask, _TOTALS_KEY))
            flagged = flagged | mask
    mask = summed_rows(frame, flagged)
    if mask.any():
        names = [c for c in ("channel", "campaign_id", "audience", "device") if c in frame]
        keys = [c for c in ("brand_id", "date", *names, "spend") if c in frame.columns]
        examples = frame.loc[mask, keys].head(5)
        examples.index.name = "row"
        column = names[-1] if names else "spend"
        found.append(
            (Violation(column, RULE_SUBTOTAL, int(mask.sum()), examples), mask, _TOTALS_KEY)
        )
    return found


#: The measures a subtotal row sums (:func:`summed_rows`): every one it gives (a row of a day's
#: budget split 100 / 50 / 50 whose clicks happened to add up was taken for a subtotal; review).
_SUMMED = ("spend", "clicks", "impressions", "conversions", "revenue")
#: Measures a row must give (not empty) to be compared: spend, clicks and one more.
_SUMMED_AT_LEAST = 3
#: Clicks a row needs to be taken for a subtotal by its numbers.
_SUBTOTAL_MIN_CLICKS = 10


def summed_rows(frame: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """Rows whose spend, clicks, impressions, conversions and revenue (those given, three at
    least, spend and clicks among them) each equal the sum of the other
    rows of their brand and day (or of their brand, day and channel: a channel's subtotal), two
    or more of them with spend: a subtotal however it is labelled ("All campaigns",
    "Gesamtergebnis"), which :func:`subtotal_problems`' names missed and the store counted
    twice (exports red-team). Levels of subtotals are peeled one pass at a time (a channel's,
    then the day's over the campaigns left). Spend may differ by half a cent per row (rounded
    cells); counts must be equal, and the row needs :data:`_SUBTOTAL_MIN_CLICKS` clicks. Rows
    ``flagged`` are left out."""
    out = np.zeros(len(frame), dtype=bool)
    present = [m for m in _SUMMED if m in frame.columns and isinstance(frame[m], pd.Series)]
    keys = [k for k in ("brand_id", "date", "channel") if k in frame.columns]
    if len(present) < _SUMMED_AT_LEAST or not {"spend", "clicks"} <= set(present):
        return out
    if keys[:2] != ["brand_id", "date"]:
        return out
    if any(isinstance(frame[k], pd.DataFrame) for k in keys):
        return out
    values = {m: pd.to_numeric(frame[m], errors="coerce").to_numpy(dtype=float) for m in present}
    levels = [keys[:2]] + ([keys] if len(keys) == 3 else [])
    groups = [
        frame.groupby(k, sort=False, dropna=False, observed=True).ngroup().to_numpy()
        for k in levels
    ]
    for _ in range(3):  # a channel's subtotals, then the day's, ...
        found = np.zeros(len(frame), dtype=bool)
        for codes in groups:
            found |= _sums_of_the_rest(values, codes, ~(flagged | out))
        if not found.any():
            break
        out |= found
    return out


def _sums_of_the_rest(
    values: dict[str, np.ndarray], codes: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """Rows ``keep`` whose every measure equals the sum of the other ``keep`` rows of their
    group (``codes``), two or more with spend (:func:`summed_rows`)."""

    def per_group(weights: np.ndarray) -> np.ndarray:  # each row's group sum of ``weights``
        return np.bincount(codes, weights=np.where(keep, weights, 0.0))[codes]

    spend = values["spend"]
    size = per_group(np.ones(len(codes)))
    summed = keep & (spend > 0) & (per_group((spend > 0).astype(float)) >= 3)
    summed &= values["clicks"] >= _SUBTOTAL_MIN_CLICKS  # a few clicks at cents add up by chance
    compared = np.zeros(len(codes))
    for m, own in values.items():
        rest = per_group(np.nan_to_num(own)) - np.nan_to_num(own)
        money = m in ("spend", "revenue")  # rounded cells: half a cent per row; counts exact
        tolerance = 1e-9 * np.abs(rest) + (0.005 * size if money else 1e-9)
        given = np.isfinite(own)  # an empty cell (a blank conversions) is not compared
        summed &= ~given | (np.abs(own - rest) <= tolerance)
        compared += given
    return summed & (compared >= _SUMMED_AT_LEAST)


def _footer_examples(violation: Violation) -> bool:
    """Whether every refused row is shown and its value is a totals or footer cell (a date
    column read with a format holds the rows' dates by then; the examples keep the text)."""
    examples, column = violation.examples, violation.column
    if examples is None or column not in examples.columns or len(examples) != violation.count:
        return False
    return bool(len(examples) and examples[column].astype(str).str.match(TOTALS_CELL).all())


def _totals_line(frame: pd.DataFrame, mask: np.ndarray | None) -> bool:
    """Whether every row of ``mask`` is a report's totals or footer line (:func:`footer_rows`)."""
    if mask is None or not mask.any():
        return False
    return bool(footer_rows(frame.loc[mask]).all())


#: Refused values :func:`number_key` looks at, at most.
_LOOKED_AT = 2_000


def number_key(
    violation: Violation, data: DataConfig, frame: pd.DataFrame, mask: np.ndarray | None
) -> str | None:
    """The ``data:`` key that reads numbers as the export writes them, when the refused
    values show one: thousands separators or currency (``$1,234.50``), or fractions of a
    whole-number column (``round``). The refused rows' values are looked at (up to
    :data:`_LOOKED_AT`), not only the examples shown, so that one key reads them all. None
    otherwise: skipping such rows would drop the largest amounts or every fractional one."""
    column, examples = violation.column, violation.examples
    if mask is not None and column in frame.columns and not isinstance(frame[column], pd.DataFrame):
        values = frame.loc[mask, column].head(_LOOKED_AT).tolist()
    elif examples is not None and column in examples.columns:
        values = examples[column].tolist()
    else:
        return None
    if violation.rule in (schema.RULE_NOT_NUMBER, schema.RULE_NOT_WHOLE_NUMBER):
        # a '--', 'n/a' or 'Total' (no digit) beside "1,234.50" does not hide the key that
        # reads the amounts
        keys = suggested_format(values, column, data)
        numeric = [v for v in values if any(ch.isdigit() for ch in str(v))]
        if keys is None and numeric and len(numeric) < len(values):
            keys = suggested_format(numeric, column, data)
        if keys is not None:
            return f"{keys} (numbers as the export writes them)"
    if violation.rule == schema.RULE_NOT_WHOLE_NUMBER and looks_dot_grouped(values):
        if data.thousands is None:  # 1.500 clicks: fifteen hundred, not 1.5 to round
            return "data.thousands: '.' (numbers as the export writes them: 1.500 is 1500)"
        return None
    if violation.rule == schema.RULE_NOT_WHOLE_NUMBER and column not in data.round:
        numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        if numbers.notna().all() and (numbers >= 0).all():
            listed = [*data.round, column]
            return f"data.round: {listed} (rounds fractions such as {numbers.iloc[0]:g})"
    return None


def _fix_values(column: str, rule: str, where: str) -> str:
    """The fix for values that ``invalid_rows: skip`` cannot help with (every row is bad)."""
    if rule == schema.RULE_NOT_NUMBER:
        return (
            f"the export's values of {column!r}{where}: plain numbers such as 1234.5, without a "
            "currency symbol or thousands separator (data.scale only converts units, such as "
            "micros)"
        )
    return f"the export's values of {column!r}{where}"


#: An id Excel wrote in scientific notation (``2.38512E+16``): its last digits are gone.
_SCIENTIFIC_ID = re.compile(r"^\s*\d(?:\.\d+)?[eE]\+\d+\s*$")


def _rounded_ids_key(frame: pd.DataFrame, mask: np.ndarray | None) -> str | None:
    """The fix when the duplicate rows' ids are in scientific notation: an export opened and
    saved in Excel, whose long ids (Meta's campaign ids) lost their last digits and so became
    one id (exports red-team)."""
    rows = frame if mask is None else frame.loc[mask]
    for column in ("campaign_id", "audience", "device"):
        if column in rows.columns and isinstance(rows[column], pd.Series):
            cells = rows[column].dropna().astype(str)
            if len(cells) and cells.str.match(_SCIENTIFIC_ID).mean() > 0.5:
                return (
                    f"the export: its {column} values are in scientific notation "
                    f"({cells.iloc[0].strip()!r}): Excel rounded long ids, so different ones "
                    "became one; export the file again without opening it in Excel (or import "
                    "the column as text), or map another id column"
                )
    return None


def _numbers_as_text(values: pd.Series) -> bool:
    """Whether a column holds numbers, also as an export writes them ("$1.00", "0.00%",
    "1,234", "--")."""
    if pd.api.types.is_numeric_dtype(values):
        return True
    text = values.dropna().astype(str).str.replace(r"[\s$€£%,]", "", regex=True)
    text = text[~text.isin(FILL_PLACEHOLDERS | {""})]
    return bool(len(text)) and bool(pd.to_numeric(text, errors="coerce").notna().all())


def _distinguishing_column_key(
    frame: pd.DataFrame, mask: np.ndarray | None, data: DataConfig
) -> str | None:
    """The fix naming the export columns not in the key whose values differ between rows of
    one key: what the duplicates are split by (an ad group, a keyword), which the rows need
    aggregated or mapped; the generic fix said "map campaign_id" where it was mapped already
    (exports red-team)."""
    keys = key_columns(list(frame.columns))
    if mask is None or not mask.any() or not keys:
        return None
    rows = frame.loc[mask]
    if any(isinstance(rows[k], pd.DataFrame) for k in keys):
        return None
    measures = set(schema.CONTRACT_COLUMNS) - set(keys)
    others = [
        c
        for c in rows.columns
        if c not in keys
        and c not in measures
        and isinstance(rows[c], pd.Series)
        and not _numbers_as_text(rows[c])  # an "Avg. CPC" ("$1.00", "0.00%") is no breakdown
        and not str(c).startswith("Unnamed:")  # a row number pandas named
    ]
    groups = rows.groupby(keys, dropna=False, observed=True, sort=False)
    spread = {c: int(groups[c].nunique().max()) for c in others}
    alone = {c: bool((groups[c].nunique() == groups.size()).all()) for c in others}
    # first the columns that tell every row of a key apart (a keyword, an ad group)
    differ = sorted((c for c in others if spread[c] > 1), key=lambda c: (not alone[c], spread[c]))
    if not differ:
        return None
    free = [k for k in ("campaign_id", "audience", "device") if k not in frame.columns]
    mapped = (
        f"map {differ[0]!r} as {' or '.join(free)}: data.columns.{free[0]}: {differ[0]!r}"
        if free
        else ""
    )
    shown = ", ".join(map(repr, differ[:3]))
    return (
        f"the export splits each key's rows by {shown} (not part of the key, which is "
        f"{', '.join(keys)}): {mapped + ', or ' if mapped else ''}export them summed by the "
        "key's columns (without that breakdown)"
    )


def _brand_id_key(violation: Violation, data: DataConfig) -> str | None:
    """The fix of a brand id refused for a slash, '=' or '..', with that brand renamed (the
    example was always 'Acme US-CA' for 'Acme US/CA', whatever the brand)."""
    rule = violation.rule
    if rule == schema.RULE_BAD_BRAND_ID and violation.examples is not None:
        named = [str(v) for v in violation.examples.get("brand_id", []) if isinstance(v, str)]
        bad = next((v for v in named if brand_id_problem(v) is not None), None)
        # the example was another brand's ('Acme US/CA' for 'Nike US/CA')
        fixed = None if bad is None else re.sub(r"^\.+", "", re.sub(r"[/\\=]|\.\.", "-", bad))
        if bad is not None and fixed and fixed != bad and brand_id_problem(fixed) is None:
            return (
                f"rename the brand in the export (each brand is kept in a folder of its name: "
                f"{fixed!r} for {bad!r})"
                + (
                    ""
                    if data.invalid_rows == "skip"
                    else ", or data.invalid_rows: skip to leave it out"
                )
            )
    return None


def _bid_placeholder_key(violation: Violation, data: DataConfig) -> str | None:
    """The fix of a ``bid`` column of placeholders (Google Ads' "Max. CPC" of a campaign on
    automated bidding) that keeps every row; None for other refusals."""
    column, rule = violation.column, violation.rule
    if column == "bid" and rule in (schema.RULE_NOT_NUMBER, schema.RULE_MISSING_VALUE):
        examples = violation.examples
        values = pd.Series([] if examples is None or column not in examples else examples[column])
        if rule == schema.RULE_MISSING_VALUE or _placeholders(values).all():
            # Google Ads' "Max. CPC" of a campaign on automated bidding: no bid to give
            name = data.columns.get("bid", "bid")
            how = (
                f"remove bid: {name!r} from data.columns"
                if "bid" in data.columns
                else f"data.drop: [{name!r}]"
            )
            return (
                f"{how}: every row is kept (campaigns on automated bidding have no "
                "max CPC; without a bid column, bids are planned as target CPCs on the observed "
                "cost per click), or load such campaigns' rows from an export without the "
                "column; data.invalid_rows: skip would leave their rows and spend out"
            )
    return None


def shape_key(
    violation: Violation, mask: np.ndarray | None, frame: pd.DataFrame, data: DataConfig
) -> str | None:
    """The fix when the refused rows have a shape no row policy helps with: the report's
    totals line, an optional column left empty, a file with no data row, dates written as
    Excel serial numbers. None otherwise (the rule's own key stands)."""
    column, rule = violation.column, violation.rule
    if rule == schema.RULE_DUPLICATE_KEY:
        exact = int(frame.duplicated(keep=False).sum()) if len(frame) else 0
        if exact and exact == violation.count:  # the same rows twice, in every column
            return (
                "the export: its rows are repeated exactly, in every column (a file pasted or "
                "exported twice); remove the copies (pandas: df.drop_duplicates())"
            )
        return (
            hourly_key(violation.examples)
            or _hour_column_key(frame)
            or _rounded_ids_key(frame, mask)
            or _distinguishing_column_key(frame, mask, data)
        )
    if rule == schema.RULE_NO_ROWS:
        if data.skip_lines:
            return (
                f"data.skip_lines: {data.skip_lines} left no data row (it applies to every CSV "
                "of the load: load files with and without a title separately)"
            )
        return "the export: it has a header and no data row (export a date range with data)"
    if data.invalid_rows == "reject" and (_totals_line(frame, mask) or _footer_examples(violation)):
        return _TOTALS_KEY
    if mask is not None and mask.all() and len(mask) and rule == schema.RULE_MISSING_VALUE:
        if column in schema.OPTIONAL_COLUMNS:
            name = data.columns.get(column, column)
            return (
                f"data.drop: [{name!r}] (every value is empty; an optional column can be left out)"
            )
    if (key := _brand_id_key(violation, data) or _bid_placeholder_key(violation, data)) is not None:
        return key
    if (
        rule in (schema.RULE_NOT_NUMBER, schema.RULE_NOT_WHOLE_NUMBER)
        and column in FILLABLE_COLUMNS
    ):
        examples = violation.examples
        values = [] if examples is None or column not in examples else examples[column].tolist()
        if values and all(str(v).strip() in FILL_PLACEHOLDERS for v in values):
            return f"data.fill: {{{column}: 0}} ('--' is how the export writes none)"
    if rule.startswith("must be a date"):  # RULE_NOT_DATE, or with data.date_format
        examples = violation.examples
        values = [] if examples is None or column not in examples else examples[column].tolist()
        texts = [str(v) for v in values]
        if texts and all(PARTIAL_DATE.match(v) for v in texts):
            return (
                f"the export's dates: {texts[0].strip()!r} is a month or a year, not a day "
                "(rows of a longer period would be stored as its first day); export one row "
                "per day (a daily breakdown, e.g. segment or break down by day)"
            )
        serial = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        if len(serial) and serial.notna().all() and serial.between(20_000, 80_000).all():
            day = (pd.Timestamp("1899-12-30") + pd.Timedelta(days=int(serial.iloc[0]))).date()
            return (
                f"the export's dates: they are Excel serial day numbers ({int(serial.iloc[0])} "
                f"is {day}); format the column as dates before exporting "
                f"({data.date_format or 'YYYY-MM-DD'}, as data.date_format reads them)"
            )
        fits = [f for f in _DATE_FORMATS if f != data.date_format and _reads_all(texts, f)]
        if fits:
            either = " or ".join(repr(f) for f in fits[:2])
            both = " (both read them: day or month first?)" if len(fits) > 1 else ""
            return f"data.date_format: {either} (dates as the export writes them{both})"
    return None


def _hour_column_key(frame: pd.DataFrame) -> str | None:
    """The fix for duplicate keys in an export segmented by hour in a column of its own
    (Google Ads' ``Hour of day``), or None."""
    named = [c for c in frame.columns if re.search(r"\bhours?\b", str(c).lower().replace("_", " "))]
    hours = [c for c in named if _hours_of_day(frame[c])]
    if not hours:
        return None
    return (
        f"the export's rows are per hour (column {hours[0]!r}): tabtune stores one row per day "
        "and key; export a daily report (segment by day, not by hour), or sum each day's hours "
        "before loading"
    )


def _hours_of_day(values: pd.Series | pd.DataFrame) -> bool:
    """Whether a column holds hours of the day (0-23, or HH:MM) and more than one of them
    (not 'Watch hours' or a 'Happy hour' campaign's name)."""
    if isinstance(values, pd.DataFrame):
        return False
    text = values.dropna().astype(str).str.strip()
    clock = text.str.fullmatch(r"(?:[01]?\d|2[0-3])(?::[0-5]\d(?::[0-5]\d)?)?")
    return bool(len(text)) and bool(clock.all()) and text.nunique() > 1


#: Date formats exports write, tried on refused dates to suggest ``data.date_format``.
_DATE_FORMATS = (
    "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y.%m.%d",
    "%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%a, %b %d, %Y", "%A, %B %d, %Y",
    "%d/%m/%y", "%m/%d/%y", "%d.%m.%y", "%Y%m%d",
)  # fmt: skip


def _reads_all(texts: list[str], fmt: str) -> bool:
    """Whether ``fmt`` reads every one of ``texts`` (stripped) as a date."""
    stamps = pd.to_datetime(pd.Series([t.strip() for t in texts]), format=fmt, errors="coerce")
    return bool(len(stamps)) and bool(stamps.notna().all())


_MEASURE_RULES = (schema.RULE_MISSING_VALUE, schema.RULE_NOT_NUMBER, schema.RULE_NOT_WHOLE_NUMBER)
#: Outcome measures an export leaves empty (or '--') on a day without any.
_OUTCOMES = ("conversions", "revenue")


def placeholder_measures(found: list, frame: pd.DataFrame) -> bool:
    """Whether some refused rows that break no other rule leave an outcome (``conversions``,
    ``revenue``) empty or write it as a placeholder (``--``): an export's days without any,
    which ``data.fill`` reads as 0. Skipping them (``invalid_rows: skip``) would keep only
    the days with some, and double a brand's apparent return. (A missing spend or click
    count is skipped as unknown.) So does a ``bid`` of ``--`` (a campaign on automated
    bidding): skipped, whole channels went with their spend."""
    for violation, mask, _ in found:  # a bid of '--': a campaign on automated bidding
        if violation.column == "bid" and mask is not None and "bid" in frame:
            if violation.rule in _MEASURE_RULES and _placeholders(frame.loc[mask, "bid"]).any():
                return True  # skipped, whole channels left with their spend (new-user red-team)
    other = np.zeros(len(frame), dtype=bool)  # rows that break a rule about something else
    for violation, mask, _ in found:
        if mask is not None and not (
            violation.rule in _MEASURE_RULES and violation.column in FILLABLE_COLUMNS
        ):
            other |= mask
    for violation, mask, _ in found:
        column = violation.column
        if mask is None or violation.rule not in _MEASURE_RULES or column not in frame:
            continue
        rows = mask & ~other
        if column not in _OUTCOMES or not rows.any():
            continue
        if _placeholders(frame.loc[rows, column]).any():
            return True  # one such day is enough: skipping would drop it (review: .all())
    return False


def _placeholders(values: pd.Series) -> pd.Series:
    """Which cells are empty or a placeholder (``--``)."""
    return values.map(lambda v: pd.isna(v) or str(v).strip() in {"", *FILL_PLACEHOLDERS})
