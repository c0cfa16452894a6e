"""Reading campaign tables (CSV, Parquet, a directory of Parquet files) and mapping columns.

The rows read here are raw; :func:`tabtune.data.schema.validate_campaigns` checks them.
"""

from __future__ import annotations

import bz2
import collections
import csv
import gzip
import itertools
import lzma
import re
import warnings
import zipfile
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tabtune.data.contract import (
    CONTRACT_COLUMNS,
    RULE_DUPLICATE_COLUMN,
    STRING_COLUMNS,
    STRING_DTYPE,
    Violation,
)
from tabtune.data.excel import EXCEL_SUFFIXES, OLE_MAGIC, read_excel
from tabtune.data.number_text import dot_grouped_amounts
from tabtune.errors import ContractError, TabTuneInputError

_CSV_NA_VALUES = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def apply_column_mapping(
    df: pd.DataFrame, mapping: Mapping[str, str] | None, *, source: str | None = None
) -> pd.DataFrame:
    """Rename the user's columns onto contract names.

    Parameters
    ----------
    df : pandas.DataFrame
        The user's data.
    mapping : mapping of str to str
        Contract column name -> the user's column name, e.g.
        ``{"brand_id": "advertiser", "date": "day"}``. Identity entries are allowed.
    source : str, optional
        Where the data came from, used in the error message.

    Returns
    -------
    pandas.DataFrame
        A renamed copy (the input is not modified).

    Raises
    ------
    ContractError
        If a key is not a contract column, a mapped column is not in the data, two contract
        columns map to the same column, or the contract name is already taken by another column.
    """
    mapping = dict(mapping or {})
    available = list(map(str, df.columns))
    # quoted, so that a column name's stray spaces show
    shown = ", ".join(map(repr, available[:20])) + (", ..." if len(available) > 20 else "")
    renamed_sources = {src for target, src in mapping.items() if src != target}
    violations: list[Violation] = []
    seen: dict[str, str] = {}
    for target, src in mapping.items():
        if target not in CONTRACT_COLUMNS:
            known = ", ".join(CONTRACT_COLUMNS)
            rule = f"is not a contract column (mapped from {src!r}); known: {known}"
            violations.append(Violation(str(target), rule, 0))
        elif src not in df.columns:
            rule = f"is mapped from column {src!r}, which is not in the data (columns: {shown})"
            padded = [c for c in available if c.strip() == str(src).strip()]
            if padded:  # a header cell written "Account " or " Day"
                rule += (
                    f"; the export's {padded[0]!r} has spaces around its name: write it so in "
                    "the config, or remove them from the export's header"
                )
            violations.append(Violation(target, rule, 0))
        elif src in seen:
            rule = f"is mapped from column {src!r}, which is already mapped to {seen[src]!r}"
            violations.append(Violation(target, rule, 0))
        elif target in df.columns and target != src and target not in renamed_sources:
            rule = f"is mapped from column {src!r}, but the data already has a {target!r} column"
            violations.append(Violation(target, rule, 0))
        seen.setdefault(src, target)
    if violations:
        where = source or "column mapping"
        lines = [f"{where}: {len(violations)} column mapping problem(s)"]
        lines.extend(f"  - {v.describe()}" for v in violations)
        raise ContractError("\n".join(lines), violations)
    return df.rename(columns={src: target for target, src in mapping.items() if src != target})


def read_table(
    path: str | Path,
    *,
    string_columns: Collection[str] | None = None,
    skip_lines: int = 0,
    sheet: str | int | None = None,
    number_text: NumberText | None = None,
) -> pd.DataFrame:
    """Read a CSV file, a Parquet file or a directory of Parquet files.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.csv`` (optionally compressed, e.g. ``.csv.gz``), ``.parquet``/``.pq``, or a directory
        of Parquet files (hive partitions such as ``brand_id=007`` become string columns).
    string_columns : collection of str, optional
        CSV columns read as text, so ``"007"`` stays ``"007"`` and only an empty field counts
        as missing. Defaults to the contract's string columns; pass the user's names when a
        column mapping is in use.
    skip_lines : int, default 0
        CSV lines (or sheet rows) before the header (a report's title and date range),
        skipped.
    sheet : str or int, optional
        The sheet of an Excel workbook (``.xlsx``, ``.xlsm``: :mod:`tabtune.data.excel`;
        ``"*"``: every sheet with the same columns; not given: the first visible one).
    number_text : NumberText, optional
        Numeric CSV columns kept as written (a workbook's number cells stay numbers).

    Returns
    -------
    pandas.DataFrame
        The raw rows, not yet validated.

    Raises
    ------
    TabTuneInputError
        If the path does not exist, has an unknown extension, or cannot be parsed; the message
        includes the path.
    """
    path = Path(path)
    if not path.exists():
        raise TabTuneInputError(f"{path}: no such file or directory")
    name = path.name.lower()
    try:
        if path.is_dir():
            return _read_parquet_dir(path)
        if name.endswith(CSV_SUFFIXES):
            columns = STRING_COLUMNS if string_columns is None else string_columns
            return _read_csv(path, columns, skip_lines, number_text)
        frame = _read_typed(path, name, string_columns, skip_lines, sheet)
        if frame is not None:
            money = [] if number_text is None else list(number_text.money)
            _refuse_dot_grouped_amounts(path, frame, money)  # text cells only
            return frame
    except TabTuneInputError:
        raise
    except UnicodeDecodeError as exc:
        raise TabTuneInputError(_not_utf8(path, exc)) from None
    except pd.errors.EmptyDataError as exc:
        if skip_lines:
            raise TabTuneInputError(
                f"{path}: nothing is left to read after data.skip_lines: {skip_lines} lines "
                "(it applies to every CSV file of the load). fix: data.skip_lines, or load the "
                "files with and without a title separately; nothing was written"
            ) from exc
        raise TabTuneInputError(f"{path}: the file is empty; nothing was written") from exc
    except pd.errors.ParserError as exc:
        raise TabTuneInputError(_parser_error(path, skip_lines, exc)) from exc
    except (EOFError, zipfile.BadZipFile, lzma.LZMAError, zlib.error) as exc:
        raise TabTuneInputError(_damaged_archive(path, exc)) from None
    except (OSError, ValueError, pa.ArrowException) as exc:
        if isinstance(exc, OSError) and name.endswith(_COMPRESSED_CSV):
            raise TabTuneInputError(_damaged_archive(path, exc)) from None
        raise TabTuneInputError(f"{path}: cannot read: {exc}") from exc
    raise TabTuneInputError(
        f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
        "expected .csv, .parquet, .pq, .xlsx or a directory of Parquet files"
    )


def _read_typed(
    path: Path,
    name: str,
    string_columns: Collection[str] | None,
    skip_lines: int,
    sheet: str | int | None,
) -> pd.DataFrame | None:
    """A Parquet file or an Excel workbook (``name``: its lower-case file name); None for
    another type."""
    if name.endswith(_PARQUET_SUFFIXES):
        return _widened(pq.read_table(path).to_pandas())
    if name.endswith(EXCEL_SUFFIXES):
        columns = STRING_COLUMNS if string_columns is None else string_columns
        return read_excel(path, columns, skip_lines, sheet, _CSV_NA_VALUES)
    return None


#: CSV suffixes of a compressed file (a cut-off download fails inside the decompressor).
_COMPRESSED_CSV = tuple(suffix for suffix in CSV_SUFFIXES if suffix != ".csv")


def _damaged_archive(path: Path, exc: BaseException) -> str:
    """The message for a compressed CSV file that ends early or is damaged."""
    return (
        f"{path}: the compressed file is incomplete or damaged ({type(exc).__name__}: {exc}); "
        "an interrupted download or copy leaves such a file. fix: download or export it "
        "again (check that it opens with an archive tool); nothing was written"
    )


def _parser_error(path: Path, skip_lines: int, exc: Exception) -> str:
    """The message for a CSV pandas cannot tokenize: title lines above the header, a value
    with an unquoted comma (more fields than the header), or pandas' own words."""
    title = _title_lines(path, skip_lines)
    if title is not None:
        return title
    fields = _FIELDS_ERROR.search(str(exc))
    if fields is not None and int(fields[3]) > int(fields[1]):
        return _extra_fields(path, f"line {fields[2]}", fields[0])
    return f"{path}: cannot read: {exc}"


#: pandas' message for a line with more fields than the header.
_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _extra_fields(path: Path, where: str, detail: str = "") -> str:
    """The message for CSV lines with more fields than the header."""
    shown = f" ({detail})" if detail else ""
    return (
        f"{path}: {where} has more fields than the header{shown}: a value with an unquoted "
        "comma, such as 1,234.56 written without quotes, splits into two columns and shifts "
        "the others (or the line ends with a comma the header lacks); nothing was written. "
        "fix: export with quoted values or without thousands separators (then "
        "data.thousands is not needed), or save it as CSV UTF-8 from a spreadsheet"
    )


#: The first bytes of files that are not text, and what they are.
_NOT_TEXT = {
    b"PK\x03\x04": "a zip archive (an Excel .xlsx workbook is one)",
    OLE_MAGIC: "an OLE file (a legacy .xls or a password-protected workbook)",
}


def _unicode_bom(start: bytes) -> str | None:
    """``"utf-32"`` or ``"utf-16"`` when ``start`` begins with its byte order mark (UTF-32's
    little-endian mark begins with UTF-16's, so it is looked for first), else None."""
    if start[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return "utf-32"
    if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    return None


def _first_bytes(path: Path, count: int) -> bytes:
    """The first ``count`` bytes of the file's text: decompressed for the suffixes of
    :data:`_OPENERS` and ``.zip`` (its first member); b"" when they cannot be read (the reader
    then says why)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if not names:
                    return b""
                with archive.open(names[0]) as handle:
                    return handle.read(count)
        with _OPENERS.get(suffix, open)(path, "rb") as handle:
            return handle.read(count)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile):
        return b""


def _legacy_encoding(start: bytes) -> str:
    """Windows-1252 when it reads ``start`` (its dashes, quotes and euro sign are control
    characters under Latin-1), else Latin-1 (which reads any byte)."""
    try:
        start.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def _not_utf8(path: Path, exc: UnicodeDecodeError | None) -> str:
    """The message for a CSV file that is not UTF-8 text, with the encoding to convert from
    (or the workbook it is: an .xlsx is a zip, a legacy .xls or encrypted one an OLE file).
    ``exc`` None: a UTF-16 byte order mark, found before reading."""
    start = _first_bytes(path, 4096)
    kind = next((k for magic, k in _NOT_TEXT.items() if start.startswith(magic)), None)
    if kind is not None:
        return (
            f"{path}: the file is {kind}, not CSV text, though its name ends in .csv. fix: "
            "give it its own suffix (.xlsx for a workbook; a zip holding one CSV loads as "
            ".csv.zip), or save it as CSV UTF-8; nothing was written"
        )
    unicode = _unicode_bom(start)
    failed = b"" if exc is None else bytes(exc.object)  # the part that did not read
    encoding = unicode or _legacy_encoding(start + failed)
    what = (
        f"{unicode.upper()} text"
        if unicode
        else "not UTF-8 text (Latin-1 / Windows-1252, probably)"
    )
    # Excel's "Unicode text" is UTF-16 *and* tab-separated, often below a report's title
    # lines (Google Ads): say all of it in one conversion
    lines = start.decode(encoding, errors="ignore").lstrip("\ufeff").splitlines()[:-1] or [""]
    tabbed = [i for i, line in enumerate(lines) if "\t" in line]
    sep = ""
    first = lines[tabbed[0]].count("\t") if tabbed else 0
    even = first >= 2 and all(lines[i].count("\t") == first for i in tabbed[:3])
    if tabbed and (even or all("," not in lines[i] for i in tabbed[:3])):
        sep = ", sep='\\t'" + (f", skiprows={tabbed[0]}" if tabbed[0] else "")
    where = (
        f"it starts with a {str(unicode).upper()} byte order mark"
        if exc is None
        else f"byte {exc.object[exc.start : exc.start + 1]!r} at position {exc.start} is not UTF-8"
    )
    return (
        f"{path}: the file is {what}: {where}, and tabtune reads CSV files as UTF-8. fix: save it as UTF-8 "
        f"(Excel: 'CSV UTF-8'), e.g. with pandas: pd.read_csv({str(path)!r}, "
        f"encoding={encoding!r}{sep}).to_csv('fixed.csv', index=False), then load that file; "
        "nothing was written"
    )


def _read_csv(
    path: Path,
    string_columns: Collection[str],
    skip_lines: int = 0,
    number_text: NumberText | None = None,
) -> pd.DataFrame:
    if _unicode_bom(_first_bytes(path, 4)):  # pandas may fail to tokenize first
        raise TabTuneInputError(_not_utf8(path, None))
    _refuse_separator_line(path, skip_lines)
    _refuse_repeated_names(path, skip_lines)
    header = pd.read_csv(path, nrows=0, skiprows=skip_lines).columns
    _refuse_other_separators(path, header)
    if len(header) == 1:  # one column: a one-line title that pandas took for the header?
        title = _title_lines(path, skip_lines)
        if title is not None:
            raise TabTuneInputError(title)
    text = set(string_columns)
    numbers = NumberText() if number_text is None else number_text
    # amounts checked for dots grouping thousands are read as written (1.000 is not 1.0)
    as_text_anyway = text | (set(numbers.always) & set(header))
    as_text = as_text_anyway | (set(numbers.money) & set(header))

    def read(columns: list[str] | None = None, index_col: Any = None) -> pd.DataFrame:
        return pd.read_csv(
            path,
            skiprows=skip_lines,
            usecols=columns,
            index_col=index_col,
            dtype={c: STRING_DTYPE for c in header if c in as_text or columns is not None},
            keep_default_na=False,
            na_values={c: ([""] if c in text else _CSV_NA_VALUES) for c in header},
        )

    frame = read()
    index_col = None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took the first column as an index
        if not _every_line_ends_empty(path, skip_lines, len(header)):
            raise TabTuneInputError(_extra_fields(path, "a data line"))
        # every line ends with a comma the header lacks: pandas' remedy reads it as meant
        # (the "loss of data" it warns of is that empty last field)
        index_col = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = read(index_col=index_col)
    # a count column read with fractions: read it again as written ("1.500" is not 1.5)
    again = [
        c
        for c in numbers.when_fractional
        if c in frame.columns
        and c not in as_text
        and pd.api.types.is_float_dtype(frame[c].dtype)
        and bool((frame[c].dropna() % 1 != 0).any())
    ]
    if again:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame[again] = read(again, index_col=index_col)[again]
    _refuse_dot_grouped_amounts(path, frame, list(numbers.money))
    for column in as_text - as_text_anyway:  # amounts read as text for the check only:
        values = frame[column]  # numbers again when they all are, as a reader gives them
        parsed = pd.to_numeric(values, errors="coerce")
        if int(parsed.notna().sum()) == int(values.notna().sum()):
            frame[column] = parsed
    return _without_trailing_empty_rows(frame)


def _without_trailing_empty_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows before the file's trailing rows of empty cells only (``,,,,,,`` lines, as a
    spreadsheet saved as CSV writes them), with a note; the rows before keep their positions,
    so that messages still count lines right."""
    filled = frame.notna().any(axis=1).to_numpy()
    if not len(frame) or filled[-1] or not filled.any():
        return frame
    last = int(np.flatnonzero(filled)[-1])
    out = frame.iloc[: last + 1].copy()
    out.attrs["notes"] = [
        *frame.attrs.get("notes", []),
        f"{len(frame) - last - 1:,} empty row(s) at the end of the file (cells without values, "
        "as a spreadsheet saved as CSV writes them) skipped",
    ]
    return out


def _every_line_ends_empty(path: Path, skip_lines: int, n_header: int) -> bool:
    """Whether every data line of a CSV has one field more than its header and that field is
    empty (a comma at the end of each line): read as meant without it. A longer line of
    another shape (an unquoted comma in a value) is not."""
    opener = _OPENERS.get(path.suffix.lower(), open)
    with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
        lines = itertools.islice(csv.reader(handle), skip_lines + 1, None)
        return all(len(f) == n_header + 1 and f[-1] == "" for f in lines if any(f))


def _as_written(value: Any) -> str:
    """A cell as text: a whole number without ``.0`` (980, not 980.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _refuse_dot_grouped_amounts(path: Path, frame: pd.DataFrame, money: list[str]) -> None:
    """Refuse amounts a number reader takes for decimals: thousands grouped by dots
    (``1.250`` or ``1.000`` beside ``980``, :func:`~tabtune.data.number_text.dot_grouped_amounts`)
    would be stored as 1.25 or 1. The columns' text (a CSV reads them as written; a workbook's
    or Parquet file's text cells) is looked at in the values that read as numbers once their
    currency symbols are off; number cells are numbers already."""
    for column in [c for c in money if c in frame.columns]:
        if pd.api.types.is_numeric_dtype(frame[column].dtype):
            continue
        values = frame[column].dropna()
        if not isinstance(values.dtype, pd.StringDtype):  # a workbook's text and number cells
            values = values.map(_as_written)
        values = values.astype("string").str.strip()
        if not values.str.contains(".", regex=False).any():
            continue  # no dot: nothing a reader could take for decimals
        cores = values.str.replace(r"^[^\d+\-]+|[^\d]+$", "", regex=True)
        grouped = dot_grouped_amounts(cores[cores.str.fullmatch(r"[-+]?[\d.]+")])
        if grouped:
            shown = ", ".join(repr(v) for v in grouped[:3])
            raise TabTuneInputError(
                f"{path}: column {column!r}: its amounts look grouped by dots ({shown}): a "
                f"number reader would store {grouped[0]!r} as {float(grouped[0]):g}; nothing "
                "was written. fix: data.thousands: '.' (and data.currency for a currency "
                "symbol); if they are amounts with three decimals (e.g. dinars), "
                "data.thousands: ',' reads the dot as the decimal point"
            )


@dataclass(frozen=True)
class NumberText:
    """Numeric columns (the export's names) a CSV reader keeps as written: ``always`` (a
    thousands separator or currency is configured: ``"1.234"`` must not become 1.234), or
    ``when_fractional`` (counts: read as numbers, and again as text only when a value has a
    fraction, so that ``1.500`` clicks is shown as written). Their missing-value tokens are
    the numbers' (``N/A``, ``-``), not the text columns' (only an empty cell)."""

    always: tuple[str, ...] = ()
    when_fractional: tuple[str, ...] = ()
    #: Amounts read as numbers whose fractions are checked for dots grouping thousands.
    money: tuple[str, ...] = ()


#: Readers of the compressed CSV files pandas reads (by suffix), for :func:`_title_lines`.
_OPENERS: dict[str, Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _shape(lines: list[str], separator: str) -> tuple[int, int, int]:
    """(lines of the commonest width after the first, that width, the first line with it)."""
    rows = list(csv.reader(lines, delimiter=separator))
    counts = [len(row) for row in rows]
    wide = collections.Counter(n for n in counts[1:] if n >= 2)  # a title is one field
    if len(counts) < 3 or not wide:
        return 0, 0, 0
    width, count = wide.most_common(1)[0]
    first = next(i for i, n in enumerate(counts) if n == width)
    return count, width, first


def _title_lines(path: Path, skip_lines: int, sample: int = 50) -> str | None:
    """The message for a CSV whose header comes after lines of another shape (a report's
    title and date range, as ad platforms write them): how many to skip, or None when the
    file does not look like that.

    The header is taken to be the first line with as many fields as most of the lines after
    it (at least two), among the first ``sample`` lines, split by the separator (comma,
    semicolon or tab) that gives most lines one width; a file separated by another than a
    comma gets the conversion that reads it (separator, title lines, decimal comma).
    """
    opener = _OPENERS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
            lines = list(itertools.islice(handle, sample))
    except (OSError, UnicodeDecodeError, EOFError, lzma.LZMAError):
        return None
    try:
        shapes = {sep: _shape(lines, sep) for sep in (",", ";", "\t")}
    except csv.Error:
        return None
    separator = max(shapes, key=lambda sep: shapes[sep][0])
    count, width, first = shapes[separator]
    if not count or (separator == "," and first == skip_lines):
        return None
    rows = list(csv.reader(lines[: first + 1], delimiter=separator))
    before = ", ".join(repr(separator.join(row))[:60] for row in rows[:first][:3])
    header = separator.join(rows[first])
    header = header if len(header) <= 60 else header[:57] + "..."
    if separator != ",":
        word, code = _SEPARATORS[separator]
        decimal = ", decimal=','" if separator == ";" else ""
        return (
            f"{path}: the file looks {word}-separated, its header ({header!r}, line "
            f"{first + 1}) after {first} line(s) of another shape ({before}), and tabtune "
            "reads comma-separated CSV files. fix: save it comma-separated, e.g. with pandas: "
            f"pd.read_csv({str(path)!r}, sep={code}, skiprows={first}{decimal})"
            ".to_csv('fixed.csv', index=False), then load that file; nothing was written"
        )
    return (
        f"{path}: its header ({header!r}, line {first + 1}) comes after {first} line(s) of "
        f"another shape ({before}): a report title? fix: data.skip_lines: {first} "
        "(lines before the header, skipped); nothing was written"
    )


_SEPARATORS = {";": ("semicolon", "';'"), "\t": ("tab", "'\\t'")}


def _refuse_separator_line(path: Path, skip_lines: int) -> None:
    """Refuse a CSV whose first line is a spreadsheet's ``sep=;`` hint (Excel writes and
    reads it), naming the fix: skip it, and for another separator than the comma, save the
    file comma-separated."""
    first = _first_bytes(path, 16).decode("utf-8-sig", errors="replace").splitlines()
    hint = re.fullmatch(r"sep=(.)", first[0]) if first and not skip_lines else None
    if hint is None:
        return
    separator = hint.group(1)
    if separator == ",":
        fix = "data.skip_lines: 1 (the line is a spreadsheet's hint; the rows are comma-separated)"
    else:
        word, code = _SEPARATORS.get(separator, (repr(separator), repr(separator)))
        fix = (
            f"save it comma-separated, e.g. with pandas: pd.read_csv({str(path)!r}, "
            f"sep={code}, skiprows=1).to_csv('fixed.csv', index=False), then load that file"
        )
    raise TabTuneInputError(
        f"{path}: its first line is {first[0]!r}, a spreadsheet's separator hint, not the "
        f"header. fix: {fix}; nothing was written"
    )


def _refuse_other_separators(path: Path, header: pd.Index) -> None:
    """Refuse a file whose one column's name holds a ``;`` or a tab: not comma-separated.

    Read as commas, such a file is one column, and the contract would list every required
    column as missing without saying why.
    """
    if len(header) != 1:
        return
    name = str(header[0])
    for separator, (word, code) in _SEPARATORS.items():
        if separator not in name:
            continue
        shown = name if len(name) <= 60 else name[:57] + "..."
        decimal, why = "", ""
        if separator == ";":  # ';' files usually write 1,5 for 1.5
            decimal = ", decimal=','"
            why = " (decimal=',' reads 1,5 as 1.5; leave it out if the numbers use a point)"
        raise TabTuneInputError(
            f"{path}: the header reads as one column, {shown!r}: the file looks "
            f"{word}-separated, and tabtune reads comma-separated CSV files. fix: save it "
            f"comma-separated, e.g. with pandas: pd.read_csv({str(path)!r}, sep={code}{decimal})"
            f".to_csv('fixed.csv', index=False){why}, then load that file; nothing was written"
        )


def _refuse_repeated_names(path: Path, skip_lines: int = 0) -> None:
    """Refuse a CSV header that names a column twice.

    pandas would read the second ``clicks`` as ``clicks.1``, which is then not stored: one of
    the two columns would vanish with only a note. Names are compared as the contract compares
    them, exactly (a column name is not stripped or case-folded anywhere).
    """
    raw = pd.read_csv(
        path, header=None, nrows=1, dtype=str, keep_default_na=False, skiprows=skip_lines
    )
    names = [str(v) for v in raw.iloc[0]] if len(raw) else []
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        if name:  # pandas names empty header cells "Unnamed: N" itself
            positions.setdefault(name, []).append(i)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if not repeated:
        return
    lines = [f"{path}: {len(repeated)} column name(s) appear more than once in the header"]
    for name, where in repeated.items():
        at = ", ".join(map(str, where))
        lines.append(f"  - column {name!r}: {RULE_DUPLICATE_COLUMN} (columns {at} of the header)")
    lines.append(
        "  fix: rename or remove the extra column(s) in the export (only one of them could be "
        "read); nothing was written"
    )
    violations = [Violation(name, RULE_DUPLICATE_COLUMN, len(w)) for name, w in repeated.items()]
    raise ContractError("\n".join(lines), violations)


def _read_parquet_dir(path: Path) -> pd.DataFrame:
    # Dictionary-typed partition keys keep "007" as text instead of inferring an integer.
    partitioning = ds.HivePartitioning.discover(infer_dictionary=True)
    dataset = ds.dataset(path, format="parquet", partitioning=partitioning)
    if not dataset.files:
        raise TabTuneInputError(f"{path}: directory holds no Parquet files")
    return _widened(dataset.to_table().to_pandas())


def _widened(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its 32-bit float columns as the decimals they were written from.

    A Parquet export with ``float`` (32-bit) columns holds 19.22 as 19.219999313354492 once
    widened bit for bit: the same row loaded from the CSV export would then differ from it
    (two files "disagree", a stored row counts as restated). A 32-bit float carries about 7
    significant digits, so its shortest decimal that reads back as the same 32-bit value
    (``str(numpy.float32)``) is what the exporter wrote, within what the file can hold.
    """
    columns = [c for c in df.columns if str(df[c].dtype) in ("float32", "Float32")]
    if not columns:
        return df
    out = df.copy()
    for column in columns:  # nullable Float32 too: its missing values read as NaN
        values = out[column].to_numpy(dtype=np.float32, na_value=np.nan)
        out[column] = values.astype(str).astype(np.float64)
    return out
