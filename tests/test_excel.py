"""Excel workbooks as exports (tabtune.data.excel): read as the same rows as the CSV export."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabtune.config import DataConfig
from tabtune.data.load import prepare_exports
from tabtune.errors import TabTuneInputError

pytest.importorskip("openpyxl")


def _export() -> pd.DataFrame:
    days = pd.date_range("2024-01-01", periods=6)
    return pd.DataFrame(
        {
            "brand_id": ["007"] * 3 + ["acme"] * 3,
            "date": [d.strftime("%Y-%m-%d") for d in days],
            "channel": "search",
            "spend": [19.22, 5.0, 7.5, 1.0, 2.0, 3.0],
            "clicks": [10, 20, 30, 1, 2, 3],
            "conversions": [1, 2, 3, 0, 1, 0],
            "revenue": [20.0, 40.0, 60.0, 0.0, 5.0, 0.0],
        }
    )


def test_a_workbook_reads_as_its_csv_twin(tmp_path: Path) -> None:
    _export().to_csv(tmp_path / "a.csv", index=False)
    with pd.ExcelWriter(tmp_path / "a.xlsx") as writer:
        _export().head(2).to_excel(writer, sheet_name="Summary", index=False)
        _export().to_excel(writer, sheet_name="Daily", index=False)

    from_csv, _ = prepare_exports([tmp_path / "a.csv"], DataConfig())
    from_excel, _ = prepare_exports([tmp_path / "a.xlsx"], DataConfig(sheet="Daily"))
    by_position, _ = prepare_exports([tmp_path / "a.xlsx"], DataConfig(sheet=1))

    pd.testing.assert_frame_equal(from_excel, from_csv)  # "007" stays text
    pd.testing.assert_frame_equal(by_position, from_csv)


def test_a_missing_sheet_lists_the_workbooks(tmp_path: Path) -> None:
    _export().to_excel(tmp_path / "a.xlsx", sheet_name="Daily", index=False)
    with pytest.raises(
        TabTuneInputError, match=r"no sheet 'Report'; the workbook's sheets are \['Daily'\]"
    ):
        prepare_exports([tmp_path / "a.xlsx"], DataConfig(sheet="Report"))


def test_a_title_above_the_header_names_skip_lines(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Campaign performance report"])
    sheet.append(["January 1, 2024 - January 6, 2024"])
    sheet.append(list(_export().columns))
    for row in _export().itertuples(index=False):
        sheet.append(list(row))
    book.save(tmp_path / "t.xlsx")

    with pytest.raises(TabTuneInputError, match=r"fix: data.skip_lines: 2 \(rows above"):
        prepare_exports([tmp_path / "t.xlsx"], DataConfig())
    rows, _ = prepare_exports([tmp_path / "t.xlsx"], DataConfig(skip_lines=2))
    _export().to_csv(tmp_path / "a.csv", index=False)
    pd.testing.assert_frame_equal(rows, prepare_exports([tmp_path / "a.csv"], DataConfig())[0])
