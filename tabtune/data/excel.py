"""Excel workbooks (``.xlsx``, ``.xlsm``) as exports: the first sheet, or ``data.sheet``.

Agencies often receive a platform's report as a workbook. It is read with pandas and openpyxl
(the ``excel`` extra, imported only when a workbook is read), as a CSV export is: the export's
text columns as text (``007`` stays ``007``), ``data.skip_lines`` rows above the header
skipped. Date cells arrive as dates, numbers as numbers. A sheet whose header row is a title
(one filled cell above rows of many) is refused naming the ``skip_lines`` that reads it.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from tabtune.errors import TabTuneInputError
from tabtune.optional import OptionalDependencyError, optional_import

__all__ = ["EXCEL_SUFFIXES", "OLE_MAGIC", "read_excel"]

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def read_excel(
    path: Path,
    string_columns: Collection[str],
    skip_lines: int = 0,
    sheet: str | int | None = None,
    na_values: Collection[str] = ("",),
) -> pd.DataFrame:
    """The rows of one sheet of a workbook (or of several), not yet validated.

    Parameters
    ----------
    path : pathlib.Path
    string_columns : collection of str
        Columns read as text.
    skip_lines : int, default 0
        Rows above the header, skipped.
    sheet : str or int, optional
        The sheet's name, or its 0-based position (0 is the first visible sheet), or
        :data:`EVERY_SHEET` (``"*"``): every visible sheet with the same columns. Not given:
        the first visible sheet, refused when other sheets have its columns.
    na_values : collection of str
        Cell texts that are missing in the other (numeric) columns, as for a CSV.

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
        return _read_sheets(path, string_columns, skip_lines, sheet, na_values)
    except TabTuneInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip, XML and openpyxl errors of a bad workbook
        if _is_compound_file(path):
            raise TabTuneInputError(
                f"{path}: not an .xlsx zip but an OLE compound file: a password-protected "
                "workbook (Excel encrypts those), or a legacy .xls renamed; open it in Excel, "
                "remove the password (File > Info > Protect Workbook) or save it as .xlsx or "
                "CSV UTF-8, and load that file; nothing was written"
            ) from exc
        raise TabTuneInputError(
            f"{path}: cannot read as an Excel workbook ({type(exc).__name__}: {exc}); "
            "nothing was written"
        ) from exc


#: The first bytes of an OLE compound file (legacy .xls, and every encrypted workbook).
OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")


def _is_compound_file(path: Path) -> bool:
    """Whether ``path`` starts as an OLE compound file does."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(OLE_MAGIC)) == OLE_MAGIC
    except OSError:
        return False


#: ``data.sheet`` for every visible sheet with the same columns (Excel never names one ``*``).
EVERY_SHEET = "*"


def _read_sheets(
    path: Path,
    string_columns: Collection[str],
    skip_lines: int,
    sheet: str | int | None,
    na_values: Collection[str],
) -> pd.DataFrame:
    """:func:`_read_sheet` of the sheet asked for; with :data:`EVERY_SHEET`, of every visible
    sheet with the columns most of them share (one frame, the others named in a note); not
    asked (None), the first visible sheet, refused when others share its columns (their rows
    would not be loaded)."""
    with pd.ExcelFile(path, engine="openpyxl") as book:
        visible = _visible(book)
        headers = {n: _header(book, n, skip_lines) for n in visible}
    if sheet != EVERY_SHEET:
        rows = _read_sheet(
            path, string_columns, skip_lines, 0 if sheet is None else sheet, na_values
        )
        name = rows.attrs["sheets"][0]
        same = [n for n in visible if n != name and headers[n] and headers[n] == headers.get(name)]
        if sheet is None and same:
            shown = ", ".join(repr(n) for n in same)
            raise TabTuneInputError(
                f"{path}: sheet(s) {shown} have the columns of {name!r}, the only sheet read: "
                f'their rows would not be loaded. fix: data.sheet: "{EVERY_SHEET}" (every sheet '
                f"with these columns), or data.sheet: {name!r} (that sheet only); nothing was "
                "written"
            )
        return rows
    groups: dict[tuple[str, ...], list[str]] = {}
    for n in visible:
        if headers[n]:
            groups.setdefault(headers[n], []).append(n)
    if not groups:
        raise TabTuneInputError(f"{path}: no sheet has a header row; nothing was written")
    chosen = max(groups.values(), key=len)
    parts = [_read_sheet(path, string_columns, skip_lines, n, na_values) for n in chosen]
    rows = pd.concat(parts, ignore_index=True)
    rows.attrs["sheets"] = (", ".join(chosen), [n for n in visible if n not in chosen])
    rows.attrs["notes"] = [note for part in parts for note in part.attrs["notes"]] + [
        f"sheets read: {', '.join(chosen)}"
        + (
            f"; not read (other columns): {', '.join(n for n in visible if n not in chosen)}"
            if len(chosen) < len(visible)
            else ""
        )
    ]
    return rows


def _visible(book: pd.ExcelFile) -> list[str]:
    """The sheets a user sees, in order (every sheet when none is marked visible)."""
    names = [str(n) for n in book.sheet_names]
    return [ws.title for ws in book.book.worksheets if ws.sheet_state == "visible"] or names


def _header(book: pd.ExcelFile, name: str, skip_lines: int) -> tuple[str, ...]:
    """A sheet's column names after ``skip_lines`` (empty: no header or no data row)."""
    top = pd.read_excel(
        book, sheet_name=name, header=None, skiprows=skip_lines, nrows=2, dtype=object
    )
    if len(top) < 2:
        return ()
    return tuple(str(v).strip() for v in top.iloc[0] if pd.notna(v))


def _read_sheet(
    path: Path,
    string_columns: Collection[str],
    skip_lines: int,
    sheet: str | int,
    na_values: Collection[str],
) -> pd.DataFrame:
    with pd.ExcelFile(path, engine="openpyxl") as book:
        name = _sheet_name(path, book, sheet)
        sheet_names = list(book.sheet_names)
        top = pd.read_excel(book, sheet_name=name, header=None, nrows=50, dtype=object)
        title = _title_rows(top, skip_lines)
        if title is not None:
            raise TabTuneInputError(f"{path}: {title}; nothing was written")
        if len(top) > skip_lines:
            _refuse_repeated(path, [str(v) for v in top.iloc[skip_lines] if pd.notna(v)])
        header = pd.read_excel(book, sheet_name=name, skiprows=skip_lines, nrows=0).columns
        text = set(string_columns)
        rows = pd.read_excel(
            book,
            sheet_name=name,
            skiprows=skip_lines,
            dtype={c: str for c in header if c in text},
            # as a CSV is read: "NA" is a brand (North America), only an empty cell is missing
            keep_default_na=False,
            na_values={c: ([""] if c in text else list(na_values)) for c in header},
        )
    formulas, unsaved = _formula_counts(path, name, skip_lines, list(header))
    # empty rows between blocks of a sheet are layout, as blank lines of a CSV are
    rows = rows.dropna(how="all").reset_index(drop=True)
    if unsaved:  # refused by the missing values, with data.fill as the fix: zeros stored
        shown = ", ".join(f"{n:,} of {c!r}" for c, n in unsaved.items())
        raise TabTuneInputError(
            f"{path}: sheet {name!r}: formula cells without a saved result ({shown}): the "
            "workbook was written by a program that does not compute formulas, so their values "
            "are not in the file. fix: open the workbook in Excel (or LibreOffice) and save it, "
            "then load it again; nothing was written"
        )
    # the sheet read and the others, for a refusal of missing columns (another sheet holds them?)
    rows.attrs["sheets"] = (str(name), [str(s) for s in sheet_names if str(s) != str(name)])
    rows.attrs["notes"] = [
        f"sheet {name!r}: {n:,} cell(s) of {column!r} are formulas, read as the results the "
        "workbook saved (Excel saves them; a workbook written by another program may hold 0 "
        "or nothing there: open and save it in Excel first)"
        for column, n in formulas.items()
    ]
    return rows


def _sheet_name(path: Path, book: pd.ExcelFile, sheet: str | int) -> str:
    """The sheet to read: ``sheet`` by name (hidden ones too), or by 0-based position among
    the sheets a user sees (hidden ones skipped: the default, 0, is the first visible)."""
    names = [str(n) for n in book.sheet_names]
    visible = _visible(book)
    if isinstance(sheet, int) and 0 <= sheet < len(visible):
        return visible[sheet]  # positions count the sheets a user sees
    if isinstance(sheet, str) and sheet in names:
        return sheet
    hint = ""
    if isinstance(sheet, int) and str(sheet) in names:
        hint = f' (for the sheet named {sheet}, quote it: data.sheet: "{sheet}")'
    raise TabTuneInputError(
        f"{path}: no sheet {sheet!r}; the workbook's sheets are {names}. fix: data.sheet (a "
        f"name, or a 0-based position){hint}; nothing was written"
    )


def _refuse_repeated(path: Path, names: list[str]) -> None:
    """Refuse a header naming a column twice (pandas would keep ``clicks.1``), as a CSV's."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TabTuneInputError(
            f"{path}: column name(s) {repeated} appear more than once in the header: one of "
            "each would vanish. fix: rename or remove the repeated column in the workbook; "
            "nothing was written"
        )


def _has_formulas(path: Path) -> bool:
    """Whether any worksheet of the workbook holds a formula (an ``<f>`` element of its XML),
    read from the zip in chunks; True when that cannot be told."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                    continue
                with archive.open(name) as sheet:
                    tail = b""
                    while chunk := sheet.read(1 << 20):
                        if re.search(rb"<f[ >/]", tail + chunk):
                            return True
                        tail = chunk[-4:]
    except (OSError, zipfile.BadZipFile):
        return True
    return False


def _formula_counts(
    path: Path, sheet: str, skip_lines: int, header: list[Any]
) -> tuple[dict[str, int], dict[str, int]]:
    """Header name -> the number of its cells below the header that hold a formula (read
    from the formulas, not the saved results pandas reads), and -> those of them whose saved
    result is missing (a workbook written by a program that does not compute formulas)."""
    if not _has_formulas(path):  # the common case, read from the zip without a cell walk
        return {}, {}
    openpyxl = optional_import("openpyxl", extra="excel", purpose="reading Excel workbooks")
    book = openpyxl.load_workbook(path, read_only=True, data_only=False, keep_links=False)
    saved = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    counts: dict[str, int] = {}
    unsaved: dict[str, int] = {}
    try:
        for workbook in (book, saved):  # a declared <dimension> of A1 hid every cell after it
            workbook[sheet].reset_dimensions()
        rows = book[sheet].iter_rows(min_row=skip_lines + 2, max_col=len(header))
        results = saved[sheet].iter_rows(min_row=skip_lines + 2, max_col=len(header))
        for row, result in zip(rows, results, strict=False):
            for index, (cell, value) in enumerate(zip(row, result, strict=False)):
                if getattr(cell, "data_type", None) == "f":
                    name = str(header[index])
                    counts[name] = counts.get(name, 0) + 1
                    # a result saved as an empty text ('=IFERROR(...,"")') is a blank cell
                    empty_text = getattr(value, "data_type", None) in ("s", "str")
                    if getattr(value, "value", None) is None and not empty_text:
                        unsaved[name] = unsaved.get(name, 0) + 1
    finally:
        book.close()
        saved.close()
    return counts, unsaved


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
    shown = ", ".join(repr(str(v))[:60] for v in cells[:3]) or "empty"
    return (
        f"its header (row {first + 1}) comes after {first - skip_lines} row(s) of a title "
        f"({shown}). fix: data.skip_lines: {first} (rows above the header, skipped)"
    )
