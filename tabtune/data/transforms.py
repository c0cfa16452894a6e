"""Declarative transforms of a user's export, applied before the column mapping and the contract.

The config's ``data:`` section (:class:`tabtune.config.DataConfig`) names them; there is no code
in the YAML. In order:

1. ``rename: {export name: new name}``;
2. ``drop: [names]`` (e.g. the export's own ``revenue`` when ``post_click_sales_amount`` is
   mapped to revenue);
3. ``constants: {column: value}`` (every row is channel ``facebook``);
   then ``thousands``, ``currency`` and ``round`` for the numeric columns
   (:mod:`tabtune.data.number_text`), and ``scale``;
4. ``date_parts: {year, month, day}`` (a column each, month numbers or English names such as
   ``January``/``Jan``; ``year`` may be the year itself when the export has none), or
   ``date_format: "%d-%m-%Y"`` for the column mapped to ``date`` (``columns.date``, else
   ``date``).

A config key that names a column the export lacks is refused with
:class:`~tabtune.errors.ContractError` naming the key; values that cannot become a date are
returned as row problems (:class:`RowProblem`), so the caller can refuse or skip them with the
contract's own violations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tabtune.data.clock_times import in_timezone, utc_suffix_as_z, wrong_zone_note
from tabtune.data.number_text import plain_numbers
from tabtune.data.schema import DATE_DTYPE, MAX_EXAMPLES, Violation
from tabtune.data.synonyms import normalised_name
from tabtune.errors import ContractError

if TYPE_CHECKING:  # pragma: no cover - the config imports the data layer, not the reverse
    from tabtune.config import DataConfig

__all__ = [
    "MONTHS",
    "RULE_ONE_YEAR",
    "RowProblem",
    "Transformed",
    "apply_transforms",
    "date_column_of",
    "refuse_monthly_days",
]

_MONTH_NAMES = (
    "january february march april may june july august september october november december"
).split()
MONTHS: dict[str, int] = {
    **{name: i + 1 for i, name in enumerate(_MONTH_NAMES)},
    **{name[:3]: i + 1 for i, name in enumerate(_MONTH_NAMES)},
    "sept": 9,
}
"""Lower-case English month names and abbreviations -> month number."""


@dataclass(frozen=True)
class RowProblem:
    """Rows a transform or the contract refuses, with the config key that governs them.

    Parameters
    ----------
    violation : Violation
        Column, rule, count and example rows (0-based positions in the export file).
    mask : numpy.ndarray
        One bool per row of the export: True where the row breaks the rule.
    key : str
        The config key to change (e.g. ``"data.date_format"``).
    """

    violation: Violation
    mask: np.ndarray = field(repr=False)
    key: str


@dataclass
class Transformed:
    """An export after the transforms: the frame and the rows whose values could not be used."""

    frame: pd.DataFrame
    problems: list[RowProblem] = field(default_factory=list)
    #: What the transforms changed that the load should say (e.g. rows rounded).
    notes: list[str] = field(default_factory=list)


def date_column_of(data: DataConfig) -> str:
    """The export's column that holds the date (after ``rename``): ``columns.date`` or ``date``."""
    return data.columns.get("date", "date")


def _refuse(source: str, key: str, column: str, rule: str) -> ContractError:
    violation = Violation(column, rule, 0)
    return ContractError(
        f"{source}: {violation.describe()}\n  fix: change {key} in the config", [violation]
    )


def _examples(df: pd.DataFrame, columns: Sequence[str], mask: np.ndarray) -> pd.DataFrame:
    shown = np.flatnonzero(mask)[:MAX_EXAMPLES]
    examples = df.iloc[shown][list(columns)].copy()
    examples.index = pd.Index(shown, dtype="int64", name="row")
    return examples


def _rename_drop_constants(df: pd.DataFrame, data: DataConfig, source: str) -> pd.DataFrame:
    for old, new in data.rename.items():
        if old not in df.columns:
            raise _refuse(source, f"data.rename.{old}", old, f"is not in the export ({_shown(df)})")
        if new in df.columns and new not in data.rename:
            raise _refuse(
                source,
                f"data.rename.{old}",
                new,
                "already exists in the export; drop it first (data.drop) or pick another name",
            )
    out = df.rename(columns=dict(data.rename))
    missing = [c for c in data.drop if c not in out.columns]
    if missing:
        raise _refuse(
            source, "data.drop", ", ".join(missing), f"is not in the export ({_shown(out)})"
        )
    out = out.drop(columns=list(data.drop))
    for name, value in data.constants.items():
        if name in out.columns:
            raise _refuse(
                source,
                f"data.constants.{name}",
                name,
                "is already a column of the export; drop it (data.drop) to use the constant",
            )
        out[name] = value
    return out


def _shown(df: pd.DataFrame) -> str:
    names = list(map(str, df.columns))
    return "columns: " + ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")


def _whole_numbers(raw: pd.Series) -> np.ndarray:
    numbers = pd.to_numeric(raw.astype("str").str.strip(), errors="coerce").to_numpy(
        float, copy=True
    )
    with np.errstate(invalid="ignore"):
        numbers[numbers != np.trunc(numbers)] = np.nan
    return numbers


def _months(raw: pd.Series) -> np.ndarray:
    numbers = _whole_numbers(raw)
    names = raw.astype("str").str.strip().str.lower().str.rstrip(".").map(MONTHS)
    named = names.to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(numbers), named, numbers)


#: The rule rows across New Year break under a constant ``data.date_parts.year``.
RULE_ONE_YEAR = "must not span New Year under one constant year (data.date_parts.year)"


def _from_parts(df: pd.DataFrame, data: DataConfig, source: str) -> Transformed:
    parts = data.date_parts
    assert parts is not None
    named = {"year": parts.year, "month": parts.month, "day": parts.day}
    columns = [c for c in named.values() if isinstance(c, str)]
    for part, column in named.items():
        if isinstance(column, str) and column not in df.columns:
            raise _refuse(
                source,
                f"data.date_parts.{part}",
                column,
                f"is not in the export ({_shown(df)})",
            )
    if "date" in df.columns:
        raise _refuse(
            source,
            "data.date_parts",
            "date",
            "is already a column of the export; drop or rename it to build the date from parts",
        )
    n = len(df)
    year = np.full(n, float(parts.year)) if isinstance(parts.year, int) else None
    if year is None:
        year = _whole_numbers(df[parts.year])
    frame = pd.DataFrame(
        {"year": year, "month": _months(df[parts.month]), "day": _whole_numbers(df[parts.day])}
    )
    months = set(frame["month"].dropna().astype(int))
    # December and January without the summer between them: rows across New Year (in any
    # order: newest first too), not a year's report from January to December
    if isinstance(parts.year, int) and {1, 12} <= months and not {5, 6, 7, 8} & months:
        # a report across New Year: its January rows would be stored 11 months back
        violation = Violation("date", RULE_ONE_YEAR, n)
        raise ContractError(
            f"{source}: data.date_parts.year: {parts.year} is one year for rows whose months run "
            "from December into January (the January rows would be stored 11 months before "
            "the December ones); nothing was written\n  fix: map the export's year column "
            "(data.date_parts.year: <column>), or load each year's rows with its own year (so "
            "too for one year's rows without May to August)",
            [violation],
        )
    stamps = pd.to_datetime(frame, errors="coerce")
    bad = stamps.isna().to_numpy()
    out = df.drop(columns=list(dict.fromkeys(columns)))
    out.insert(0, "date", stamps.astype(DATE_DTYPE))
    problems = []
    if bad.any():
        rule = "must be a valid date from year/month/day (month a number or an English name)"
        violation = Violation(
            ", ".join(dict.fromkeys(columns)), rule, int(bad.sum()), _examples(df, columns, bad)
        )
        problems.append(RowProblem(violation, bad, "data.date_parts"))
    return Transformed(out, problems)


def _with_format(df: pd.DataFrame, data: DataConfig, source: str) -> Transformed:
    fmt = data.date_format
    assert fmt is not None
    column = date_column_of(data)
    if column not in df.columns:
        key = "data.columns.date" if "date" in data.columns else "data.date_format"
        raise _refuse(source, key, column, f"is not in the export ({_shown(df)})")
    raw = df[column]
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        # dates already (an Excel date cell, a Parquet date): the format is for text
        out = df.copy()
        out[column] = raw.dt.tz_localize(None) if raw.dt.tz is not None else raw
        return Transformed(out)
    _refuse_mixed_date_cells(raw, column, fmt, source)
    text = raw.astype("str").str.strip()
    empty = raw.isna().to_numpy() | (text == "").to_numpy()
    stamps = pd.to_datetime(text.where(~empty), format=fmt, errors="coerce")
    bad = stamps.isna().to_numpy() & ~empty
    if bad.any():
        _refuse_swapped(df, column, fmt, text.where(~empty), bad, source)
    refuse_monthly_days(stamps, fmt, column, source)  # the rows it reads ('Total' aside)
    out = df.copy()
    out[column] = stamps.astype(DATE_DTYPE)
    problems = []
    if bad.any():
        violation = Violation(
            column,
            f"must be a date in the format {fmt!r}",
            int(bad.sum()),
            _examples(df, [column], bad),
        )
        problems.append(RowProblem(violation, bad, "data.date_format"))
    return Transformed(out, problems)


def _refuse_mixed_date_cells(raw: pd.Series, column: str, fmt: str, source: str) -> None:
    """Refuse a workbook's date column that mixes date cells with text dates: Excel turns
    day-first text it can read month first into dates (05/12 as May 12) and leaves the rest
    as text (13/11), so the date cells may be day and month swapped; neither reading, nor
    skipping one kind (a biased part of the days), would be right."""
    if raw.dtype != object:
        return
    cells = raw.map(lambda v: isinstance(v, dt.date)).to_numpy(dtype=bool)
    text = raw.map(lambda v: isinstance(v, str) and bool(v.strip())).to_numpy(dtype=bool)
    if not (cells.any() and text.any()):
        return
    # text dates only: a 'Total' line beside date cells is no sign of a swap
    other = _swapped(fmt) or fmt
    strings = raw.where(text).astype("string").str.strip()
    text = text & (
        pd.to_datetime(strings, format=fmt, errors="coerce").notna()
        | pd.to_datetime(strings, format=other, errors="coerce").notna()
    ).to_numpy(dtype=bool)
    if not text.any():
        return
    example = next(v for v, c in zip(raw, cells, strict=True) if c)
    shown = next(v for v, t in zip(raw, text, strict=True) if t)
    raise ContractError(
        f"{source}: column {column!r} mixes {int(cells.sum()):,} date cells (e.g. "
        f"{pd.Timestamp(example):%Y-%m-%d}) with {int(text.sum()):,} dates written as text (e.g. "
        f"{shown!r}, read with data.date_format {fmt!r}): a spreadsheet turns day-first text it "
        "can read month first into dates (05/12 as May 12) and leaves the rest as text, so the "
        "date cells may have day and month swapped; nothing was written\n"
        "  fix: export the report again without opening it in a spreadsheet (or format the "
        "column as text before saving), so that every date is written the same way",
        [Violation(column, f"must be a date in the format {fmt!r}", int(cells.sum()))],
    )


def _swapped(fmt: str) -> str | None:
    """``fmt`` with its day (``%d``) and month (``%m``) swapped; None without both."""
    if "%d" not in fmt or "%m" not in fmt:
        return None
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _refuse_swapped(
    df: pd.DataFrame, column: str, fmt: str, text: pd.Series, bad: np.ndarray, source: str
) -> None:
    """Refuse a ``date_format`` whose day and month are the wrong way round.

    When the format fails on some rows and the day/month-swapped one reads every row the
    format reads *and* some it fails on (cells neither reads, like a ``Total`` line, aside),
    the rows it does read are (almost surely) dates with day and month swapped: each has a day of 12 or less, and would be stored wrong. This
    holds whatever ``invalid_rows`` says, since skipping the failing rows would keep the wrong
    dates of the others.

    Raises
    ------
    ContractError
        Naming ``data.date_format``, the share of rows the format fails on and the format that
        fits.
    """
    other = _swapped(fmt)
    if other is None:
        return
    fits = pd.to_datetime(text, format=other, errors="coerce").notna().to_numpy()
    dated = text.notna().to_numpy()
    reads = dated & ~bad
    rescued = bad & fits  # a cell neither format reads ('Total', 'n/a') does not count
    if not reads.any() or not fits[reads].all() or not rescued.any():
        return
    count, total = int(bad.sum()), int(dated.sum())
    violation = Violation(
        column,
        f"must be a date in the format {fmt!r} (data.date_format), which fails on {count} of "
        f"{total} dated rows ({count / total:.0%}) while {other!r} (day and month swapped) "
        f"reads every row it reads and {int(rescued.sum())} of those it fails on",
        count,
        _examples(df, [column], bad),
    )
    raise ContractError(
        f"{source}: {violation.describe()}\n  the rows {fmt!r} does read have a day of 12 or "
        "less and would be stored with day and month swapped (data.invalid_rows: skip would "
        "keep them); nothing was written\n"
        f"  fix: data.date_format: {other!r} in the config",
        [violation],
    )


#: Distinct days the day/month check needs: two days a month apart may be a backfill.
MONTHLY_CHECK_DAYS = 3


def _median_gap_days(days: np.ndarray) -> float:
    if len(days) < MONTHLY_CHECK_DAYS:
        return float("nan")
    return float(np.median(np.diff(days).astype(np.int64)))


def refuse_monthly_days(dates: pd.Series, fmt: str | None, column: str, source: str) -> None:
    """Refuse dates read with a ``date_format`` whose day and month are the wrong way round
    for every row: every day 12 or less, so both readings hold (01/12 .. 07/12 as January 12
    .. July 12). Read so, the days lie a month or more apart; swapped, they are consecutive
    days, as a daily export's are. It takes :data:`MONTHLY_CHECK_DAYS` distinct days (two
    days a month apart may be a backfill); :func:`~tabtune.data.load.prepare_exports` checks a
    load's files together too (a folder of nightly files).

    Raises
    ------
    ContractError
        Naming both readings and the format that fits.
    """
    other = None if fmt is None else _swapped(fmt)
    stamps = pd.to_datetime(dates).dropna()
    if other is None or not len(stamps) or (stamps.dt.day > 12).any():
        return
    monthly = bool((stamps.dt.day == 1).all())  # a monthly report's shape too
    if monthly and "month" in normalised_name(column):
        return  # the load refuses it as a monthly report (swapped, it passed as days in a row)
    days = np.unique(stamps.to_numpy(dtype="datetime64[D]"))
    as_read = pd.DatetimeIndex(days)
    swapped = pd.to_datetime(
        {"year": as_read.year, "month": as_read.day, "day": as_read.month}
    ).sort_values()
    swapped_days = swapped.to_numpy(dtype="datetime64[D]")
    if not (_median_gap_days(swapped_days) == 1 and _median_gap_days(days) >= 28):
        return
    violation = Violation(
        column, f"must be a date in the format {fmt!r} (data.date_format)", len(stamps)
    )
    if monthly:  # month-first days of January, or a day-first monthly report: both fit
        raise ContractError(
            f"{source}: column {column!r}: read with data.date_format {fmt!r}, every date is the "
            f"1st of a month ({as_read.min():%Y-%m-%d} .. {as_read.max():%Y-%m-%d}): a monthly "
            f"report, or days in a row written the other way round ({other!r} reads them as "
            f"{swapped.min():%Y-%m-%d} .. {swapped.max():%Y-%m-%d}); nothing was written\n"
            f"  fix: if the rows are days in a row, data.date_format: {other!r} in the config; "
            "if it is a monthly report, export one row per day (a daily breakdown)",
            [violation],
        )
    raise ContractError(
        f"{source}: column {column!r}: read with data.date_format {fmt!r}, its days lie a month "
        f"or more apart ({as_read.min():%Y-%m-%d} .. {as_read.max():%Y-%m-%d}), while {other!r} "
        f"(day and month swapped) reads them as consecutive days ({swapped.min():%Y-%m-%d} .. "
        f"{swapped.max():%Y-%m-%d}): every day is 12 or less, so both formats read every row; "
        "nothing was written\n"
        f"  fix: if the rows are days in a row, data.date_format: {other!r} in the config; if "
        "they really are a month apart, write their dates as YYYY-MM-DD and leave "
        "data.date_format out",
        [violation],
    )


#: A load's days read with ``date_format`` this close (days) to the store's newest day once
#: day and month are swapped, and a month or more from it as read, are refused as swapped.
SWAP_NEAR_DAYS = 7


def refuse_swapped_beside_store(
    rows: pd.DataFrame,
    fmt: str | None,
    newest: Callable[[str], pd.Timestamp | None],
    source: str = "the exports",
) -> None:
    """Refuse a brand's loaded days that ``date_format`` reads a month or more away from the
    brand's newest stored day while the day/month-swapped format reads them next to it
    (within :data:`SWAP_NEAR_DAYS`): a nightly one-day file of a US export read as
    ``%d/%m/%Y`` (12/05 is May 12 the night after December 4). Within one load
    :func:`refuse_monthly_days` needs three days; beside the store one day tells. Every day
    must be 12 or less (both formats read every row), and a year-first format is never
    taken for swapped; ``newest`` gives a brand's newest stored day (None: not stored) and is
    only called then.

    Raises
    ------
    ContractError
        Naming both readings, the brand's newest day and the format that fits.
    """
    other = None if fmt is None else _swapped(fmt)
    if fmt is None or other is None or _year_first(fmt):
        return  # no day and month, or a year first (YYYY-MM-DD is never written year-day-month)
    stamps = pd.to_datetime(rows["date"]).dropna()
    if not len(stamps) or (stamps.dt.day > 12).any():
        return
    for brand, when in stamps.groupby(rows.loc[stamps.index, "brand_id"].astype(str)):
        last = newest(str(brand))
        if last is None:
            continue
        days = pd.DatetimeIndex(np.unique(when.to_numpy(dtype="datetime64[D]")))
        swapped = pd.DatetimeIndex(
            pd.to_datetime({"year": days.year, "month": days.day, "day": days.month})
        )
        read_gap = int(np.abs((days - last).days).min())
        if read_gap >= 28 and int(np.abs((swapped - last).days).max()) <= SWAP_NEAR_DAYS:
            raise _swapped_beside(source, fmt, other, str(brand), days, swapped, last)


def _year_first(fmt: str) -> bool:
    """Whether ``fmt`` writes the year before the day and the month (``%Y-%m-%d``)."""
    year = min((i for i in (fmt.find("%Y"), fmt.find("%y")) if i >= 0), default=len(fmt))
    return year < min(fmt.find("%d"), fmt.find("%m"))


def _swapped_beside(
    source: str,
    fmt: str,
    other: str,
    brand: str,
    days: pd.DatetimeIndex,
    swapped: pd.DatetimeIndex,
    last: pd.Timestamp,
) -> ContractError:
    """The refusal of :func:`refuse_swapped_beside_store`."""
    more = ", ..." if len(days) > 3 else ""
    shown = ", ".join(f"{d:%Y-%m-%d}" for d in days[:3]) + more
    turned = ", ".join(f"{d:%Y-%m-%d}" for d in swapped.sort_values()[:3]) + more
    gap = int(np.abs((days - last).days).min())
    return ContractError(
        f"{source}: column 'date': read with data.date_format {fmt!r}, brand {brand!r}'s days "
        f"({shown}) lie {gap} days or more from its newest stored day ({last:%Y-%m-%d}), while "
        f"{other!r} (day and month swapped) reads them next to it ({turned}): every day is 12 "
        "or less, so both formats read every row; nothing was written\n"
        f"  fix: if these are the days after the stored ones, data.date_format: {other!r} in "
        "the config (check the stored days too: `tabtune check`); if they really are a "
        "backfill of those days, write this file's dates as YYYY-MM-DD and load it with a "
        "copy of the config without data.date_format",
        [Violation("date", f"must be a date in the format {fmt!r} (data.date_format)", len(days))],
    )


def apply_transforms(df: pd.DataFrame, data: DataConfig, *, source: str = "export") -> Transformed:
    """Apply the config's transforms to an export, before its columns are mapped: ``rename``,
    ``drop``, ``constants``, ``thousands``/``currency``/``round``, ``fill``, ``scale``, then
    ``date_parts``, ``date_format`` or ``timezone``.

    Parameters
    ----------
    df : pandas.DataFrame
        The export as read (its own column names). Not modified.
    data : DataConfig
        The config's ``data:`` section.
    source : str, default "export"
        Where the rows came from (a path), for messages.

    Returns
    -------
    Transformed
        The transformed frame (same rows, same order) and the rows whose date could not be
        built or parsed (their date is missing in the frame).

    Raises
    ------
    ContractError
        A key names a column the export lacks, or a new column would replace one it has; the
        message names the key to change.
    """
    out, notes = plain_numbers(_rename_drop_constants(df, data, source), data)
    out, filled = _filled(out, data, source)
    notes.extend(filled)
    out = _scaled(out, data, source)
    if data.date_parts is not None:
        done = _from_parts(out, data, source)
    elif data.date_format is not None:
        done = _with_format(out, data, source)
    elif list(out.columns).count(date_column_of(data)) != 1:
        done = Transformed(out)
    elif data.timezone is not None:
        out = out.copy()  # the day each timestamp with a UTC offset falls on in the zone
        column = date_column_of(data)
        out[column] = utc_suffix_as_z(out[column])
        notes.extend(wrong_zone_note(out[column], data.timezone, column))
        out[column] = in_timezone(out[column], data.timezone)
        done = Transformed(out)
    else:
        column = date_column_of(data)
        worded = utc_suffix_as_z(out[column])
        if worded is not out[column]:
            out = out.copy()
            out[column] = worded
        done = Transformed(out)
    done.notes.extend(notes)
    return done


#: Cells ``data.fill`` fills besides empty ones: the placeholders exports write for "none".
FILL_PLACEHOLDERS = frozenset({"--", "-"})


def _filled(df: pd.DataFrame, data: DataConfig, source: str) -> tuple[pd.DataFrame, list[str]]:
    """``data.fill``: the empty (or ``--``) cells of each named measure's export column set to
    its value, with a note of how many were filled."""
    if not data.fill:
        return df, []
    out, notes = df.copy(), []
    for name, value in data.fill.items():
        column = data.columns.get(name, name)
        if column not in out.columns:
            raise _refuse(
                source, f"data.fill.{name}", column, f"is not in the export ({_shown(out)})"
            )
        cells = out[column]
        text = cells.astype("string").str.strip()
        empty = (
            cells.isna().to_numpy() | text.isin(FILL_PLACEHOLDERS | {""}).fillna(True).to_numpy()
        )
        if empty.any():
            values = cells.astype(object)
            values[empty] = value
            out[column] = values
            every = " (every value of the column: check that the export holds this measure)"
            notes.append(
                f"{int(empty.sum()):,} empty or '--' value(s) of {column!r} set to {value:g} "
                f"(data.fill.{name}){every if empty.all() else ''}"
            )
    return out, notes


def _scaled(df: pd.DataFrame, data: DataConfig, source: str) -> pd.DataFrame:
    """``data.scale``: each named contract column's export column times its factor.

    Only values that read as numbers are scaled; the others are left as they are, so the
    contract refuses them (naming the column) instead of losing them.
    """
    if not data.scale:
        return df
    out = df.copy()
    for name, factor in data.scale.items():
        column = data.columns.get(name, name)
        if column not in out.columns:
            raise _refuse(
                source, f"data.scale.{name}", column, f"is not in the export ({_shown(out)})"
            )
        numbers = pd.to_numeric(out[column], errors="coerce")
        readable = numbers.notna() | out[column].isna()
        if readable.all():
            out[column] = numbers.astype(float) * factor
        else:
            values = out[column].astype(object)
            values[readable] = numbers[readable].astype(float) * factor
            out[column] = values
    return out
