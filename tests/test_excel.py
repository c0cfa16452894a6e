"""Excel workbooks as exports (tabtune.data.excel): read as the same rows as the CSV export."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabtune.config import DataConfig
from tabtune.data.load import prepare_exports
from tabtune.errors import ContractError, TabTuneInputError

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


def _workbook(
    path: Path, rows: list[list[object]], title: str = "Daily", hidden_first: bool = False
):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    if hidden_first:
        sheet.title = "meta"
        sheet.append(["exported_by", "bot"])
        sheet.sheet_state = "hidden"
        sheet = book.create_sheet(title)
    else:
        sheet.title = title
    for row in rows:
        sheet.append(row)
    book.save(path)


HEADER = ["brand_id", "date", "channel", "spend", "clicks", "conversions", "revenue"]


def test_blank_rows_hidden_sheets_and_na_brands(tmp_path: Path) -> None:
    # a blank row between blocks crashed the refusal (NaT); a hidden first sheet was read;
    # "NA" (North America) became a missing brand
    rows = [HEADER, ["NA", "2024-01-01", "search", 1.5, 3, 1, 4.0], [], [None] * 7]
    rows.append(["NA", "2024-01-02", "search", 2.5, 4, 0, 0.0])
    _workbook(tmp_path / "a.xlsx", rows, hidden_first=True)

    got, _ = prepare_exports([tmp_path / "a.xlsx"], DataConfig())

    assert got["brand_id"].tolist() == ["NA", "NA"] and got["spend"].tolist() == [1.5, 2.5]


def test_a_repeated_header_name_is_refused(tmp_path: Path) -> None:
    _workbook(tmp_path / "d.xlsx", [[*HEADER, "clicks"], ["a", "2024-01-01", "s", 1, 2, 0, 0, 9]])
    with pytest.raises(TabTuneInputError, match=r"\['clicks'\] appear more than once"):
        prepare_exports([tmp_path / "d.xlsx"], DataConfig())


def test_date_cells_need_no_date_format(tmp_path: Path) -> None:
    import datetime as dt

    _workbook(tmp_path / "d.xlsx", [HEADER, ["a", dt.datetime(2024, 1, 2), "s", 1, 2, 0, 0]])
    # the config's format is for the CSV twin's text dates; date cells are dates already
    got, _ = prepare_exports([tmp_path / "d.xlsx"], DataConfig(date_format="%d/%m/%Y"))
    assert got["date"].tolist() == [pd.Timestamp("2024-01-02")]


def test_formula_cells_without_a_saved_result_are_refused(tmp_path: Path) -> None:
    # openpyxl saves no result: the cells were refused as missing, with data.fill as the fix,
    # which stored zeros (exports red-team); a formula with a result (Excel's) is only noted
    rows = [
        HEADER,
        ["a", "2024-01-01", "s", "=2.5*2", 2, 0, 0],
        ["a", "2024-01-02", "s", 1, 2, 0, 0],
    ]
    _workbook(tmp_path / "f.xlsx", rows)
    with pytest.raises(TabTuneInputError) as caught:
        prepare_exports([tmp_path / "f.xlsx"], DataConfig(fill={"spend": 0}))
    said = str(caught.value)
    assert "formula cells without a saved result (1 of 'spend')" in said
    assert "open the workbook in Excel (or LibreOffice) and save it" in said


def test_sheet_names_that_look_like_numbers_and_office_lock_files(tmp_path: Path) -> None:
    _workbook(tmp_path / "y.xlsx", [HEADER, ["a", "2024-01-01", "s", 1, 2, 0, 0]], title="2024")
    with pytest.raises(TabTuneInputError, match='quote it: data.sheet: "2024"'):
        prepare_exports([tmp_path / "y.xlsx"], DataConfig(sheet=2024))
    assert len(prepare_exports([tmp_path / "y.xlsx"], DataConfig(sheet="2024"))[0]) == 1

    (tmp_path / "~$y.xlsx").write_bytes(b"owner file Office leaves beside an open workbook")
    assert len(prepare_exports([tmp_path], DataConfig(sheet="2024"))[0]) == 1
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(TabTuneInputError, match=r"save the workbook as .xlsx or CSV"):
        prepare_exports([tmp_path / "old.xls"], DataConfig())


def test_number_cells_stay_numbers_whatever_the_separator(tmp_path: Path) -> None:
    # read as text under thousands: "." the cell 0.125 became "0.125", then 125
    _workbook(tmp_path / "n.xlsx", [HEADER, ["a", "2024-01-01", "s", 0.125, 2, 0, 1.234]])
    rows, _ = prepare_exports([tmp_path / "n.xlsx"], DataConfig(thousands=".", currency=["€"]))
    assert rows[["spend", "revenue"]].iloc[0].tolist() == [0.125, 1.234]


def test_sheet_positions_count_visible_sheets(tmp_path: Path) -> None:
    _workbook(
        tmp_path / "h.xlsx", [HEADER, ["a", "2024-01-01", "s", 1, 2, 0, 0]], hidden_first=True
    )
    import openpyxl

    book = openpyxl.load_workbook(tmp_path / "h.xlsx")
    book.create_sheet("Weekly").append(HEADER)
    book["Weekly"].append(["b", "2024-01-01", "s", 1, 2, 0, 0])
    book.save(tmp_path / "h.xlsx")

    second, _ = prepare_exports([tmp_path / "h.xlsx"], DataConfig(sheet=1))
    assert second["brand_id"].tolist() == ["b"]  # hidden "meta" is not counted


def test_an_encrypted_or_legacy_workbook_names_the_fix(tmp_path: Path) -> None:
    # Excel stores a password-protected workbook (and a legacy .xls) as an OLE compound
    # file: its first eight bytes are the compound-file signature, not a zip's.
    (tmp_path / "locked.xlsx").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 504)
    (tmp_path / "broken.xlsx").write_bytes(b"not a workbook at all")
    with pytest.raises(TabTuneInputError, match="password-protected") as caught:
        prepare_exports([tmp_path / "locked.xlsx"], DataConfig())
    assert "remove the password" in str(caught.value)
    with pytest.raises(TabTuneInputError, match="cannot read as an Excel workbook") as caught:
        prepare_exports([tmp_path / "broken.xlsx"], DataConfig())
    assert "password" not in str(caught.value)


def test_missing_columns_on_a_summary_sheet_name_the_other_sheets(tmp_path: Path) -> None:
    """A workbook whose first sheet is a summary: "7 required columns missing" named neither
    the sheet read nor the 'Daily' sheet that holds the rows (red-team M4)."""
    with pd.ExcelWriter(tmp_path / "a.xlsx") as writer:
        pd.DataFrame({"Report": ["Acme Nov"], "Total spend": [123.0]}).to_excel(
            writer, sheet_name="Summary", index=False
        )
        _export().to_excel(writer, sheet_name="Daily", index=False)
    with pytest.raises(ContractError) as refused:
        prepare_exports([tmp_path / "a.xlsx"], DataConfig())
    assert "the workbook's sheet 'Summary' was read; it also has 'Daily'" in str(refused.value)
    assert "data.sheet: 'Daily' reads another" in str(refused.value)
    # a mapping that names the Daily sheet's columns: the same hint (new-user red-team)
    mapped = DataConfig(columns={"brand_id": "Account", "spend": "Total spend"})
    with pytest.raises(ContractError) as refused:
        prepare_exports([tmp_path / "a.xlsx"], mapped)
    assert "is mapped from column 'Account', which is not in the data" in str(refused.value)
    assert "data.sheet: 'Daily' reads another" in str(refused.value)
    rows, _ = prepare_exports([tmp_path / "a.xlsx"], DataConfig(sheet="Daily"))
    assert len(rows) == 6


def test_sheets_with_the_same_columns_are_refused_or_read_together(tmp_path: Path) -> None:
    """A workbook with one sheet per account: only the first was read, the others' rows were
    dropped without a word (exports red-team). Unasked, it is refused; ``sheet: "*"`` reads
    every sheet with those columns, and a summary sheet with other columns is left out."""
    export = _export()
    with pd.ExcelWriter(tmp_path / "a.xlsx") as writer:
        pd.DataFrame({"Report": ["Nov"], "Total": [1.0]}).to_excel(
            writer, sheet_name="Summary", index=False
        )
        export.head(3).to_excel(writer, sheet_name="Acme", index=False)
        export.tail(3).to_excel(writer, sheet_name="Globex", index=False)
    with pd.ExcelWriter(tmp_path / "b.xlsx") as writer:
        export.head(3).to_excel(writer, sheet_name="Acme", index=False)
        export.tail(3).to_excel(writer, sheet_name="Globex", index=False)
    with pytest.raises(TabTuneInputError, match=r"sheet\(s\) 'Globex' have the columns of 'Acme'"):
        prepare_exports([tmp_path / "b.xlsx"], DataConfig())
    _export().to_csv(tmp_path / "a.csv", index=False)
    oracle, _ = prepare_exports([tmp_path / "a.csv"], DataConfig())
    for book in ("a.xlsx", "b.xlsx"):
        rows, summary = prepare_exports([tmp_path / book], DataConfig(sheet="*"))
        pd.testing.assert_frame_equal(rows, oracle)
    assert not any("not read" in n for n in summary.notes)  # b.xlsx: every sheet read
    rows, summary = prepare_exports([tmp_path / "a.xlsx"], DataConfig(sheet="*"))
    assert any(
        "sheets read: Acme, Globex; not read (other columns): Summary" in n for n in summary.notes
    )
    one, _ = prepare_exports([tmp_path / "b.xlsx"], DataConfig(sheet="Acme"))  # asked: one
    assert len(one) == 3


def test_date_cells_beside_text_dates_are_refused_as_a_spreadsheet_swap(tmp_path: Path) -> None:
    """A day-first CSV opened in a month-first spreadsheet: 05/12/2024 became a date cell
    (May 12), 13/11/2024 stayed text; the date cells were refused as 'must be a date in the
    format' (or skipped under skip), which said nothing of why (exports red-team)."""
    import datetime as dt

    _workbook(
        tmp_path / "m.xlsx",
        [
            HEADER,
            ["a", dt.datetime(2024, 5, 12), "s", 1, 2, 0, 0],
            ["a", "13/11/2024", "s", 1, 2, 0, 0],
        ],
    )
    for policy in ("reject", "skip"):
        with pytest.raises(ContractError, match="mixes 1 date cells") as caught:
            prepare_exports(
                [tmp_path / "m.xlsx"], DataConfig(date_format="%d/%m/%Y", invalid_rows=policy)
            )
        assert "may have day and month swapped" in str(caught.value)
    # date cells beside a totals line: no swap (review); the line is refused as before
    _workbook(
        tmp_path / "t.xlsx",
        [
            HEADER,
            ["a", dt.datetime(2024, 5, 12), "s", 1, 2, 0, 0],
            ["Total", "Total", "", 1, 2, 0, 0],
        ],
    )
    with pytest.raises(ContractError) as caught:
        prepare_exports([tmp_path / "t.xlsx"], DataConfig(date_format="%d/%m/%Y"))
    assert "swapped" not in str(caught.value)


def test_a_formula_with_its_saved_result_beside_a_blank_cell_is_read(tmp_path: Path) -> None:
    # the refusal counted the column's empty cells, not the formula cells': a workbook Excel
    # saved (results stored) with one blank cell elsewhere was refused (review)
    import re
    import zipfile

    import openpyxl

    from tabtune.data.tables import read_table

    path = tmp_path / "saved.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["brand_id", "date", "channel", "spend", "clicks", "conversions", "revenue"])
    sheet.append(["a", "2024-01-01", "s", 5, 2, 1, "=2*5"])
    sheet.append(["a", "2024-01-02", "s", 1, 2, 0, None])  # no revenue: left blank
    book.save(path)
    with zipfile.ZipFile(path) as z:  # the result Excel stores beside the formula
        files = {n: z.read(n) for n in z.namelist()}
    xml = files["xl/worksheets/sheet1.xml"].decode()
    files["xl/worksheets/sheet1.xml"] = re.sub(
        r"<f>2\*5</f>(<v\s*/>|<v></v>)?", "<f>2*5</f><v>10</v>", xml
    ).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    rows = read_table(path)
    assert rows["revenue"].iloc[0] == 10 and pd.isna(rows["revenue"].iloc[1])
    assert any("1 cell(s) of 'revenue' are formulas" in n for n in rows.attrs["notes"])


def _rewritten(path: Path, edit) -> None:
    import zipfile

    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files["xl/worksheets/sheet1.xml"] = edit(files["xl/worksheets/sheet1.xml"].decode()).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)


def test_a_saved_empty_result_is_blank_and_a_short_dimension_hides_no_formula(
    tmp_path: Path,
) -> None:
    # '=IFERROR(D3/F3,"")' saved as an empty text was called "without a saved result", and a
    # <dimension ref="A1"> (streaming writers) hid every formula from the check (review)
    import re

    import openpyxl

    from tabtune.data.tables import read_table

    header = ["brand_id", "date", "channel", "spend", "clicks", "conversions", "revenue", "cpa"]
    book = openpyxl.Workbook()
    book.active.append(header)
    book.active.append(["a", "2024-01-01", "s", 5, 2, 1, 3.0, "=D2/F2"])
    book.active.append(["a", "2024-01-02", "s", 1, 2, 0, 0.0, '=IFERROR(D3/F3,"")'])
    saved = tmp_path / "saved.xlsx"
    book.save(saved)
    _rewritten(
        saved,
        lambda xml: re.sub(
            r'<c r="H3"([^>]*)>(<f>.*?</f>)(<v\s*/>|<v></v>)?',
            r'<c r="H3" t="str"\1>\2<v></v>',
            re.sub(r"<f>D2/F2</f>(<v\s*/>|<v></v>)?", "<f>D2/F2</f><v>5</v>", xml),
        ),
    )
    assert read_table(saved)["cpa"].iloc[0] == 5
    unsaved = tmp_path / "unsaved.xlsx"
    book.save(unsaved)
    _rewritten(
        unsaved, lambda xml: re.sub(r'<dimension ref="[^"]*"\s*/>', '<dimension ref="A1"/>', xml)
    )
    with pytest.raises(TabTuneInputError, match=r"without a saved result \(2 of 'cpa'\)"):
        read_table(unsaved)
