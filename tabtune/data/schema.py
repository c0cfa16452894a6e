"""The campaign data contract (daily grain) and its validation.

One row is one day of one brand's activity in one channel (optionally split further by
campaign, audience and device). :func:`validate_campaigns` checks a frame against the contract,
collects *every* violation and raises one :class:`~tabtune.errors.ContractError` whose message
names the column, the rule, the number of offending rows and a few example rows.

Row numbers in violations are **0-based positions in the input frame** (the first data row is
row 0). For a CSV file with a header line, the line number in the file is ``row + 2``.

On success the frame is returned normalised:

* string columns (``brand_id``, ``channel``, ...) use pandas' string dtype (``"str"``),
  values stripped of surrounding whitespace; a whole float read into one (a Parquet id
  ``7.0``) becomes its integer text (``"7"``);
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

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from tabtune.data.contract import (
    CONTRACT_COLUMNS,
    CONVERSIONS_POLICIES,
    DATE_DTYPE,
    KEY_COLUMNS,
    MAX_EXAMPLES,
    NON_NEGATIVE_COLUMNS,
    OPTIONAL_COLUMNS,
    OPTIONAL_KEY_COLUMNS,
    POSITIVE_COLUMNS,
    REQUIRED_COLUMNS,
    RULE_CLICKS_GT_IMPRESSIONS,
    RULE_CONVERSIONS_GT_CLICKS,
    RULE_DATE_TOO_EARLY,
    RULE_DUPLICATE_COLUMN,
    RULE_DUPLICATE_KEY,
    RULE_MISSING_COLUMN,
    RULE_MISSING_EXTRA_COLUMN,
    RULE_MISSING_VALUE,
    RULE_MIXED_EXTRA,
    RULE_NEGATIVE,
    RULE_NO_ROWS,
    RULE_NOT_DATE,
    RULE_NOT_FINITE,
    RULE_NOT_NUMBER,
    RULE_NOT_POSITIVE,
    RULE_NOT_WHOLE_NUMBER,
    STRING_COLUMNS,
    STRING_DTYPE,
    TABLE_COLUMN,
    Violation,
    key_columns,
    rule_date_too_late,
    sort_campaigns,
)
from tabtune.data.limits import (
    EARLIEST_DATE,
    MAX_ABS_NUMBER,
    RULE_BAD_BRAND_ID,
    RULE_TOO_LARGE,
    brand_id_problem,
    default_max_future_days,
    latest_allowed_date,
)
from tabtune.data.parse import ParsedColumn, normalised_column, parse_column
from tabtune.data.tables import CSV_SUFFIXES, apply_column_mapping, read_table
from tabtune.errors import ContractError, TabTuneInputError

# The contract, parsing and file reading live in their own modules (tabtune.data.contract,
# .parse, .tables); their public names stay importable from here.
__all__ = [
    "CONTRACT_COLUMNS",
    "CONVERSIONS_POLICIES",
    "DATE_DTYPE",
    "KEY_COLUMNS",
    "MAX_EXAMPLES",
    "OPTIONAL_COLUMNS",
    "OPTIONAL_KEY_COLUMNS",
    "REQUIRED_COLUMNS",
    "RULE_BAD_BRAND_ID",
    "RULE_CONTROL_CHARACTER",
    "RULE_TOO_LARGE",
    "RULE_CLICKS_GT_IMPRESSIONS",
    "RULE_CONVERSIONS_GT_CLICKS",
    "RULE_DATE_TOO_EARLY",
    "RULE_DUPLICATE_COLUMN",
    "RULE_DUPLICATE_KEY",
    "RULE_MISSING_COLUMN",
    "RULE_MISSING_EXTRA_COLUMN",
    "RULE_MIXED_EXTRA",
    "RULE_MISSING_VALUE",
    "RULE_NEGATIVE",
    "RULE_NO_ROWS",
    "RULE_NOT_DATE",
    "RULE_NOT_FINITE",
    "RULE_NOT_NUMBER",
    "RULE_NOT_POSITIVE",
    "RULE_NOT_WHOLE_NUMBER",
    "STRING_COLUMNS",
    "STRING_DTYPE",
    "TABLE_COLUMN",
    "Violation",
    "apply_column_mapping",
    "find_violations",
    "format_violations",
    "key_columns",
    "read_table",
    "rule_date_too_late",
    "sort_campaigns",
    "validate_campaigns",
    "validate_file",
]

_WRONG_TYPE_RULES = {
    "string": "",  # any value can be text
    "date": RULE_NOT_DATE,
    "float": RULE_NOT_NUMBER,
    "int": RULE_NOT_WHOLE_NUMBER,
}


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
        if source is not None and source.lower().endswith(CSV_SUFFIXES):
            note += "; line in the CSV file = row + 2"
        lines.append(note + ")")
    return "\n".join(lines)


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
    required: Collection[str] = tuple(REQUIRED_COLUMNS),
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
    required : collection of str, default every required contract column
        The contract columns the rows must have. Prediction inputs need the row key, not the
        measures (``spend``, ``clicks``, ...): those are then checked only when present.

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
    found, parsed = _collect(df, extra_columns, conversions_above_clicks, max_future_days, required)
    if found.violations:
        raise ContractError(format_violations(found.violations, source), found.violations)

    n = len(df)
    columns: dict[str, pd.Series] = {
        name: normalised_column(parsed[name], CONTRACT_COLUMNS[name])
        for name in CONTRACT_COLUMNS
        if name in parsed
    }
    if conversions_above_clicks == "clip" and {"conversions", "clicks"} <= set(columns):
        columns["conversions"] = np.minimum(columns["conversions"], columns["clicks"])
    for name in df.columns:
        if name not in CONTRACT_COLUMNS:
            column = df[name].reset_index(drop=True)
            # an extra column of numbers in some files, numbers as text in others: one type
            extra = name == extra_columns or name in list(extra_columns)
            mixed = extra and _mixed_text(column) is not None
            columns[name] = pd.to_numeric(column) if mixed else column
    return sort_campaigns(pd.DataFrame(columns, index=pd.RangeIndex(n)))


def find_violations(
    df: pd.DataFrame,
    *,
    extra_columns: Sequence[str] = (),
    conversions_above_clicks: str = "allow",
    max_future_days: int | None = None,
    required: Collection[str] = tuple(REQUIRED_COLUMNS),
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
    required : collection of str, default every required contract column
        See :func:`validate_campaigns`.

    Returns
    -------
    list of (Violation, numpy.ndarray or None)
        The mask (one bool per row of ``df``) is None for a rule about a column or the whole
        table (a missing column, no rows), which no choice of rows can fix.
    """
    found, _ = _collect(df, extra_columns, conversions_above_clicks, max_future_days, required)
    return list(zip(found.violations, found.masks, strict=True))


def _mixed_text(values: pd.Series) -> np.ndarray | None:
    """The rows of a column outside the contract holding text that is not a number, beside
    rows holding numbers (files that wrote it as numbers and as text, combined: Parquet could
    store neither); None when the column does not mix the two (missing cells aside)."""
    if values.dtype != object:
        return None
    number = values.map(
        lambda v: isinstance(v, int | float | np.number) and not isinstance(v, bool) and v == v
    ).to_numpy(dtype=bool)
    text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if not (number.any() and text.any()):
        return None
    return text & pd.to_numeric(values.where(text), errors="coerce").isna().to_numpy()


def _collect(
    df: pd.DataFrame,
    extra_columns: Sequence[str],
    conversions_above_clicks: str,
    max_future_days: int | None = None,
    required: Collection[str] = tuple(REQUIRED_COLUMNS),
) -> tuple[_Collector, dict[str, ParsedColumn]]:
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
    unknown = sorted(set(required) - set(REQUIRED_COLUMNS))
    if unknown or not set(KEY_COLUMNS) <= set(required):
        raise TabTuneInputError(
            f"required must hold the row key {list(KEY_COLUMNS)} and only required contract "
            f"columns ({list(REQUIRED_COLUMNS)}), got {sorted(required)}"
        )
    for name in REQUIRED_COLUMNS:
        if name in required and name not in df.columns:
            found.column_level(name, RULE_MISSING_COLUMN, n)
    for name in dict.fromkeys(extra_columns):
        if name not in df.columns:
            found.column_level(name, RULE_MISSING_EXTRA_COLUMN, n)
        elif name in usable and (mixed := _mixed_text(df[name])) is not None:
            found.rows(name, RULE_MIXED_EXTRA, mixed)  # stored: one type

    parsed: dict[str, ParsedColumn] = {}
    for name, kind in CONTRACT_COLUMNS.items():
        if name not in usable:
            continue
        column = parse_column(df[name], kind)
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
        frame = pd.DataFrame({k: normalised_column(parsed[k], CONTRACT_COLUMNS[k]) for k in keys})
        frame = frame[ok]
        duplicate = frame.duplicated(keep=False)
        if duplicate.any():
            # Show the clashing rows next to each other.
            order = frame[duplicate].sort_values(keys, kind="stable").index.to_numpy()
            found.rows(
                ", ".join(keys), RULE_DUPLICATE_KEY, np.zeros(n, dtype=bool), keys, order=order
            )
    return found, parsed


#: The text columns besides the brand id whose values must hold no control character.
_TEXT_KEYS = ("channel", "campaign_id", "audience", "device", "vertical")
#: A control character (C0 and DEL: a line break, a tab, a NUL). C1 characters (U+0080 ..
#: U+009F) are allowed: Windows-1252 text read as Latin-1 holds them for its dashes and quotes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The rule a text value with a control character breaks.
RULE_CONTROL_CHARACTER = "must not contain a control character (a line break, a tab, a NUL)"


def _check_limits(
    parsed: Mapping[str, ParsedColumn], found: _Collector, max_future_days: int | None
) -> None:
    """The input-boundary limits (:mod:`tabtune.data.limits`): brand ids, the size of
    numbers and the date range."""
    for name, column in parsed.items():
        if CONTRACT_COLUMNS.get(name) in ("float", "int"):
            with np.errstate(invalid="ignore"):
                large = column.valid & (np.abs(column.values) > MAX_ABS_NUMBER)
            found.rows(name, RULE_TOO_LARGE, large)
    if "brand_id" in parsed:
        column = parsed["brand_id"]
        text = column.values[column.valid]
        bad_values = [v for v in pd.unique(text) if brand_id_problem(v) is not None]
        if bad_values:
            mask = column.valid & column.values.isin(bad_values).to_numpy(dtype=bool)
            found.rows("brand_id", RULE_BAD_BRAND_ID, mask)
    for name in _TEXT_KEYS:  # a line break or a NUL in a channel broke every CSV output
        if name in parsed:
            column = parsed[name]
            text = column.values[column.valid]
            bad = [v for v in pd.unique(text) if isinstance(v, str) and _CONTROL.search(v)]
            if bad:
                mask = column.valid & column.values.isin(bad).to_numpy(dtype=bool)
                found.rows(name, RULE_CONTROL_CHARACTER, mask)
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


def validate_file(
    path: str | Path,
    mapping: Mapping[str, str] | None = None,
    extra_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a file, map its columns and validate it against the contract.

    Only ``mapping`` is applied; to read a user's export as ``tabtune load`` does (the
    config's transforms and policies too), use :func:`tabtune.data.load.prepare_exports`.

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
