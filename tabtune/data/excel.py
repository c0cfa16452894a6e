"""Excel workbooks (``.xlsx``, ``.xlsm``) as exports: the first sheet, or ``data.sheet``.

Agencies often receive a platform's report as a workbook. It is read with pandas and openpyxl
(the ``excel`` extra, imported only when a workbook is read), as a CSV export is: the export's
text columns as text (``007`` stays ``007``), ``data.skip_lines`` rows above the header
skipped. Date cells arrive as dates, numbers as numbers. A sheet whose header row is a title
(one filled cell above rows of many) is refused naming the ``skip_lines`` that reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from pathlib import Path

import pandas as pd

from tabtune.errors import TabTuneInputError
from tabtune.optional import OptionalDependencyError, optional_import

__all__ = ["EXCEL_SUFFIXES", "read_excel"]

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def read_excel(
    path: Path, string_columns: Collection[str], skip_lines: int = 0, sheet: str | int = 0
) -> pd.DataFrame:
    """The rows of one sheet of a workbook, not yet validated.

    Parameters
    ----------
    path : pathlib.Path
    string_columns : collection of str
        Columns read as text.
    skip_lines : int, default 0
        Rows above the header, skipped.
    sheet : str or int, default 0
        The sheet's name, or its 0-based position.

    Raises
    ------
    TabTuneInputError
        No such sheet (the message lists the workbook's), a title above the header, nothing
        left after ``skip_lines``, or openpyxl missing (the message names the extra).
    """
    try:
        optional_import("openpyxl", extra="excel", purpose="reading Excel workbooks")
    except OptionalDependencyError as exc:
        raise TabTuneInputError(
            f"{path}: {exc} (or save the sheet as CSV); nothing was written"
        ) from exc
    try:
        return _read_sheet(path, string_columns, skip_lines, sheet)
    except TabTuneInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip, XML and openpyxl errors of a bad workbook
        raise TabTuneInputError(
            f"{path}: cannot read as an Excel workbook ({type(exc).__name__}: {exc}); "
            "nothing was written"
        ) from exc


def _read_sheet(
    path: Path, string_columns: Collection[str], skip_lines: int, sheet: str | int
) -> pd.DataFrame:
    with pd.ExcelFile(path, engine="openpyxl") as book:
        names = list(book.sheet_names)
        if (isinstance(sheet, str) and sheet not in names) or (
            isinstance(sheet, int) and not 0 <= sheet < len(names)
        ):
            raise TabTuneInputError(
                f"{path}: no sheet {sheet!r}; the workbook's sheets are {names}. fix: "
                "data.sheet (a name, or a 0-based position); nothing was written"
            )
        top = pd.read_excel(book, sheet_name=sheet, header=None, nrows=50, dtype=object)
        title = _title_rows(top, skip_lines)
        if title is not None:
            raise TabTuneInputError(f"{path}: {title}; nothing was written")
        header = pd.read_excel(book, sheet_name=sheet, skiprows=skip_lines, nrows=0).columns
        text = set(string_columns)
        return pd.read_excel(
            book, sheet_name=sheet, skiprows=skip_lines, dtype={c: str for c in header if c in text}
        )


def _title_rows(top: pd.DataFrame, skip_lines: int) -> str | None:
    """Why the header row ``skip_lines`` of a sheet is a title (one or two filled cells above
    rows of many), with the fix; None when it looks like a header."""
    filled = top.notna().sum(axis=1).tolist()
    if len(filled) <= skip_lines + 1:
        return (
            None
            if len(filled) > skip_lines
            else f"nothing is left after data.skip_lines: {skip_lines}"
        )
    width = Counter(filled[skip_lines + 1 :]).most_common(1)[0][0]
    if width < 2 or filled[skip_lines] * 2 > width:
        return None
    first = next((i for i, n in enumerate(filled) if i >= skip_lines and n * 2 > width), None)
    if first is None:
        return None
    cells = [v for v in top.iloc[skip_lines:first].to_numpy().ravel() if pd.notna(v)]
    shown = ", ".join(repr(str(v))[:60] for v in cells[:3])
    return (
        f"its header (row {first + 1}) comes after {first - skip_lines} row(s) of a title "
        f"({shown}). fix: data.skip_lines: {first} (rows above the header, skipped)"
    )
