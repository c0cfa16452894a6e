"""The export files a load reads: paths and folders of CSV, Parquet and Excel files
(:func:`export_files`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tabtune.data.excel import EXCEL_SUFFIXES
from tabtune.data.tables import CSV_SUFFIXES
from tabtune.errors import TabTuneInputError

__all__ = ["EXPORT_SUFFIXES", "export_files"]

#: The file names a load reads (a folder's other files are named, not read).
EXPORT_SUFFIXES = (*CSV_SUFFIXES, ".parquet", ".pq", *EXCEL_SUFFIXES)


def _hidden(relative: Path) -> bool:
    """A hidden file or folder (a name starting with ``.``: e.g. the ``._export.csv`` a Mac
    copy leaves beside each file), or the ``~$book.xlsx`` lock file Office leaves beside an
    open workbook, which a folder's listing skips."""
    return any(part.startswith((".", "~$")) for part in relative.parts)


def export_files(
    paths: Sequence[str | Path] | str | Path, notes: list[str] | None = None
) -> list[Path]:
    """The CSV/Parquet/Excel files named by ``paths`` (one path, or a sequence of them: a
    single string is one path, not a sequence of one-letter ones); a folder gives its files
    (recursively, sorted, hidden ones left out: :func:`_hidden`). A folder's other files
    (``.tsv``, ``.txt``, a ``.zip`` not named ``.csv.zip``) are named in ``notes``, when
    given: they are not read.

    Raises
    ------
    TabTuneInputError
        A path does not exist, has an unknown type, or a folder holds no CSV/Parquet file.
    """
    files: list[Path] = []
    for raw in [paths] if isinstance(paths, str | os.PathLike) else paths:
        path = Path(raw)
        if not path.exists():
            raise TabTuneInputError(f"{path}: no such file or directory")
        if path.is_dir():
            listed = sorted(
                p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path))
            )
            found = [p for p in listed if p.name.lower().endswith(EXPORT_SUFFIXES)]
            if not found:
                raise TabTuneInputError(f"{path}: folder holds no CSV or Parquet file")
            files.extend(found)
            others = [  # a writer's markers (Spark's _SUCCESS, _metadata) are not exports
                str(p.relative_to(path))
                for p in listed
                if p not in found and not p.name.startswith("_")
            ]
            if others and notes is not None:
                shown = ", ".join(others[:8]) + (", ..." if len(others) > 8 else "")
                notes.append(
                    f"{path}: {len(others)} file(s) not read (not .csv, .csv.gz/.bz2/.xz/.zip/.zst, "
                    f".parquet, .pq, .xlsx or .xlsm): {shown}; convert or rename those that "
                    "hold exports"
                )
        elif path.name.lower().endswith(EXPORT_SUFFIXES):
            files.append(path)
        else:
            raise TabTuneInputError(
                f"{path}: unsupported file type; expected .csv (optionally compressed), "
                ".parquet or .pq, .xlsx or .xlsm, or a folder of them"
                + (
                    " (save the workbook as .xlsx or CSV)"
                    if path.suffix.lower() in (".xls", ".xlsb", ".ods", ".numbers")
                    else " (a zip holding one CSV loads when named .csv.zip)"
                    if path.suffix.lower() == ".zip"
                    else ""
                )
            )
    return list(dict.fromkeys(files))
