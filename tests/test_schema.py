"""Tests for the campaign data contract (tabtune.data.schema)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabtune.data import schema
from tabtune.data.schema import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    Violation,
    apply_column_mapping,
    read_table,
    validate_campaigns,
    validate_file,
)
from tabtune.errors import ContractError, TabTuneInputError


def campaign_frame(n: int = 6) -> pd.DataFrame:
    """A valid frame with every optional column, deliberately unsorted."""
    brands = ["b2", "007", "b2", "007", "b2", "007"][:n]
    days = ["2024-01-02", "2024-01-01", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-03"]
    return pd.DataFrame(
        {
            "brand_id": brands,
            "date": days[:n],
            "channel": ["search"] * n,
            "spend": [10.0, 12.5, 0.0, 3, 7, 1][:n],
            "clicks": [5, 6, 0, 2, 3, 1][:n],
            "conversions": [1, 2, 0, 0, 3, 1][:n],
            "revenue": [20.0, 30, 0, 0, 9.5, 2][:n],
            "campaign_id": ["c1"] * n,
            "bid": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0][:n],
            "impressions": [100, 80, 0, 40, 30, 10][:n],
            "geo": ["fr", "de", "fr", "de", "fr", "de"][:n],
        }
    )


def _rules(error: ContractError) -> set[tuple[str, str]]:
    return {(v.column, v.rule) for v in error.violations}


def test_contract_tables() -> None:
    assert list(REQUIRED_COLUMNS) == [
        "brand_id",
        "date",
        "channel",
        "spend",
        "clicks",
        "conversions",
        "revenue",
    ]
    assert set(OPTIONAL_COLUMNS) == {
        "campaign_id",
        "audience",
        "device",
        "vertical",
        "bid",
        "impressions",
    }
    assert set(REQUIRED_COLUMNS.values()) | set(OPTIONAL_COLUMNS.values()) == {
        "string",
        "date",
        "float",
        "int",
    }


def test_valid_frame_is_normalised() -> None:
    raw = campaign_frame()
    raw.loc[0, "brand_id"] = "  b2 "  # stripped
    raw["date"] = raw["date"].astype(object)
    raw.loc[1, "date"] = pd.Timestamp("2024-01-01 15:30")  # normalised to midnight
    raw["clicks"] = raw["clicks"].astype(float)  # integral floats become int64

    out = validate_campaigns(raw)

    assert out["brand_id"].dtype == "str"
    assert out["channel"].dtype == "str"
    assert out["date"].dtype == "datetime64[us]"
    assert out["clicks"].dtype == "int64"
    assert out["impressions"].dtype == "int64"
    assert out["spend"].dtype == "float64"
    assert out["bid"].dtype == "float64"
    assert (out["date"] == out["date"].dt.normalize()).all()
    assert list(out["brand_id"]) == ["007", "007", "007", "b2", "b2", "b2"]
    assert list(out["date"].dt.day) == [1, 2, 3, 1, 2, 3]
    assert isinstance(out.index, pd.RangeIndex)
    # Required, then optional, then extra columns; extras untouched.
    assert list(out.columns) == [*REQUIRED_COLUMNS, "campaign_id", "bid", "impressions", "geo"]
    assert out["geo"].tolist() == ["de", "de", "de", "fr", "fr", "fr"]


def test_timezone_aware_dates_keep_their_wall_clock_day() -> None:
    raw = campaign_frame(2)
    raw["date"] = pd.to_datetime(["2024-01-02 23:30", "2024-01-01 00:10"]).tz_localize(
        "America/New_York"
    )
    out = validate_campaigns(raw)
    assert out["date"].dt.tz is None
    assert sorted(out["date"].dt.day) == [1, 2]


def _drop(column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.drop(columns=column)


def _set(column: str, value: object, row: int = 2) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df[column] = df[column].astype(object)
        df.loc[row, column] = value
        return df

    return change


def _duplicate(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df.iloc[[3]]], ignore_index=True)


BAD_FRAMES = {
    "missing column": (_drop("revenue"), "revenue", schema.RULE_MISSING_COLUMN, None),
    "text in spend": (_set("spend", "abc"), "spend", schema.RULE_NOT_NUMBER, 2),
    "unparseable date": (_set("date", "2024-13-45"), "date", schema.RULE_NOT_DATE, 2),
    "ambiguous date": (_set("date", "03/01/2024"), "date", schema.RULE_NOT_DATE, 2),
    "numeric date": (lambda df: df.assign(date=20240101), "date", schema.RULE_NOT_DATE, 0),
    "negative spend": (_set("spend", -5.0), "spend", schema.RULE_NEGATIVE, 2),
    "negative clicks": (_set("clicks", -1), "clicks", schema.RULE_NEGATIVE, 2),
    "fractional clicks": (_set("clicks", 2.5), "clicks", schema.RULE_NOT_WHOLE_NUMBER, 2),
    "text in clicks": (_set("clicks", "many"), "clicks", schema.RULE_NOT_WHOLE_NUMBER, 2),
    "zero bid": (_set("bid", 0.0), "bid", schema.RULE_NOT_POSITIVE, 2),
    "negative bid": (_set("bid", -1.0), "bid", schema.RULE_NOT_POSITIVE, 2),
    "clicks > impressions": (
        _set("impressions", 1, row=0),
        "clicks",
        schema.RULE_CLICKS_GT_IMPRESSIONS,
        0,
    ),
    "NaN brand_id": (_set("brand_id", np.nan), "brand_id", schema.RULE_MISSING_VALUE, 2),
    "None channel": (_set("channel", None), "channel", schema.RULE_MISSING_VALUE, 2),
    "blank brand_id": (_set("brand_id", "   "), "brand_id", schema.RULE_MISSING_VALUE, 2),
    "NaN revenue": (_set("revenue", np.nan), "revenue", schema.RULE_MISSING_VALUE, 2),
    "inf revenue": (_set("revenue", np.inf), "revenue", schema.RULE_NOT_FINITE, 2),
    "-inf spend": (_set("spend", -np.inf), "spend", schema.RULE_NOT_FINITE, 2),
    "bool spend": (lambda df: df.assign(spend=True), "spend", schema.RULE_NOT_NUMBER, 0),
    # a sentinel far beyond any account: inf once the models cast it to 32-bit floats
    "1e300 revenue": (_set("revenue", 1e300), "revenue", schema.RULE_TOO_LARGE, 2),
    "-2e15 spend": (_set("spend", -2e15), "spend", schema.RULE_TOO_LARGE, 2),
    "2e15 impressions": (_set("impressions", 2 * 10**15), "impressions", schema.RULE_TOO_LARGE, 2),
    "duplicates": (
        _duplicate,
        "brand_id, date, channel, campaign_id",
        schema.RULE_DUPLICATE_KEY,
        3,
    ),
    "empty frame": (lambda df: df.iloc[0:0], schema.TABLE_COLUMN, schema.RULE_NO_ROWS, None),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES), ids=list(BAD_FRAMES))
def test_each_rule_rejects_a_bad_frame(case: str) -> None:
    change, column, rule, row = BAD_FRAMES[case]
    bad = change(campaign_frame())

    with pytest.raises(ContractError) as caught:
        validate_campaigns(bad, source="data/x.csv")

    error = caught.value
    assert (column, rule) in _rules(error)
    message = str(error)
    assert message.startswith("data/x.csv: ")
    assert rule in message
    if column != schema.TABLE_COLUMN:
        assert column in message
    if row is not None:
        (violation,) = [v for v in error.violations if (v.column, v.rule) == (column, rule)]
        assert row in violation.examples.index
        assert violation.examples.index.name == "row"
        assert f"row {row}:" in message


def test_numbers_up_to_the_limit_are_valid() -> None:
    df = campaign_frame()
    df.loc[2, "impressions"] = 10**15  # exactly the limit (MAX_ABS_NUMBER) is allowed
    df.loc[2, "spend"] = 1e15

    validate_campaigns(df)


def test_conversions_above_clicks_is_a_policy() -> None:
    """Post-view conversions exceed clicks in real exports: allowed by default (DESIGN.md),
    clipped to the clicks, or refused with the rule that names the column and the row."""
    bad = _set("conversions", 99)(campaign_frame())
    clicks = int(bad.loc[2, "clicks"])
    allowed = validate_campaigns(bad)
    assert (allowed["conversions"] == 99).sum() == 1
    clipped = validate_campaigns(bad, conversions_above_clicks="clip")
    assert (clipped["conversions"] <= clipped["clicks"]).all()
    assert (clipped["conversions"] == 99).sum() == 0 and clicks in set(clipped["clicks"])
    with pytest.raises(ContractError) as caught:
        validate_campaigns(bad, source="data/x.csv", conversions_above_clicks="reject")
    assert ("conversions", schema.RULE_CONVERSIONS_GT_CLICKS) in _rules(caught.value)
    (violation,) = caught.value.violations
    assert 2 in violation.examples.index and "row 2:" in str(caught.value)
    with pytest.raises(TabTuneInputError, match="conversions_above_clicks"):
        validate_campaigns(bad, conversions_above_clicks="maybe")


def test_find_violations_gives_the_rows_of_each_rule() -> None:
    bad = campaign_frame()
    bad.loc[[1, 4], "spend"] = [-5.0, -2.0]
    found = schema.find_violations(bad.drop(columns="revenue"))
    by_rule = {(v.column, v.rule): mask for v, mask in found}
    assert by_rule[("revenue", schema.RULE_MISSING_COLUMN)] is None
    assert list(np.flatnonzero(by_rule[("spend", schema.RULE_NEGATIVE)])) == [1, 4]


def test_message_names_column_rule_count_and_examples() -> None:
    bad = campaign_frame()
    bad.loc[[1, 2, 4], "spend"] = [-5.0, -1.0, -2.0]
    with pytest.raises(ContractError) as caught:
        validate_campaigns(bad, source="data/x.csv")
    lines = str(caught.value).splitlines()
    assert lines[0] == "data/x.csv: 1 contract violation"
    assert lines[1] == "  - column 'spend': must be >= 0 (3 rows), e.g."
    assert lines[2] == "      row 1: brand_id=007 date=2024-01-01 channel=search spend=-5.0"
    assert "CSV file = row + 2" in lines[-1]
    (violation,) = caught.value.violations
    assert violation.count == 3
    assert list(violation.examples.index) == [1, 2, 4]
    assert violation.describe() in str(caught.value).replace("\n  ", "\n")


def test_examples_are_capped_at_five_rows() -> None:
    bad = pd.concat([campaign_frame()] * 3, ignore_index=True)
    bad["brand_id"] = [f"b{i}" for i in range(len(bad))]
    bad["spend"] = -1.0
    with pytest.raises(ContractError) as caught:
        validate_campaigns(bad)
    (violation,) = caught.value.violations
    assert violation.count == 18
    assert len(violation.examples) == 5


def test_all_violations_are_reported_together() -> None:
    bad = campaign_frame().drop(columns="channel")
    bad["spend"] = bad["spend"].astype(object)
    bad.loc[0, "spend"] = "abc"
    bad.loc[1, "clicks"] = -3
    bad.loc[2, "revenue"] = np.inf
    bad.loc[3, "date"] = "not a date"

    with pytest.raises(ContractError) as caught:
        validate_campaigns(bad, extra_columns=["geo", "weather"])

    assert _rules(caught.value) == {
        ("channel", schema.RULE_MISSING_COLUMN),
        ("weather", schema.RULE_MISSING_EXTRA_COLUMN),
        ("spend", schema.RULE_NOT_NUMBER),
        ("clicks", schema.RULE_NEGATIVE),
        ("revenue", schema.RULE_NOT_FINITE),
        ("date", schema.RULE_NOT_DATE),
    }
    assert str(caught.value).startswith("campaign data: 6 contract violations")


def test_duplicate_key_includes_optional_key_columns() -> None:
    frame = campaign_frame(2).assign(brand_id="b1", date="2024-01-01")
    frame["device"] = ["mobile", "desktop"]
    assert len(validate_campaigns(frame)) == 2  # same day, different device: fine
    frame["device"] = ["mobile", " mobile"]  # equal once stripped
    with pytest.raises(ContractError, match="duplicate rows for the same key"):
        validate_campaigns(frame)


def test_violation_is_a_frozen_value() -> None:
    violation = Violation("spend", schema.RULE_NEGATIVE, 3)
    with pytest.raises(AttributeError):
        violation.count = 4  # type: ignore[misc]
    assert violation == Violation("spend", schema.RULE_NEGATIVE, 3)
    assert violation.describe() == "column 'spend': must be >= 0"


def test_input_is_not_mutated() -> None:
    raw = campaign_frame()
    raw.loc[0, "brand_id"] = " b2 "
    raw.index = [10, 11, 12, 13, 14, 15]
    snapshot = raw.copy(deep=True)
    validate_campaigns(raw)
    pd.testing.assert_frame_equal(raw, snapshot)

    bad = raw.assign(spend=-1.0)
    snapshot = bad.copy(deep=True)
    with pytest.raises(ContractError):
        validate_campaigns(bad)
    pd.testing.assert_frame_equal(bad, snapshot)


def test_non_frame_input_is_rejected() -> None:
    with pytest.raises(TabTuneInputError, match="DataFrame"):
        validate_campaigns([{"brand_id": "b1"}])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- column mapping


def test_column_mapping_renames_user_columns() -> None:
    user = campaign_frame().rename(columns={"brand_id": "advertiser", "date": "day"})
    mapped = apply_column_mapping(user, {"brand_id": "advertiser", "date": "day", "spend": "spend"})
    assert "advertiser" in user.columns  # input untouched
    assert {"brand_id", "date"} <= set(mapped.columns)
    assert "advertiser" not in mapped.columns
    validate_campaigns(mapped)


def test_column_mapping_names_a_missing_source_column() -> None:
    with pytest.raises(ContractError) as caught:
        apply_column_mapping(campaign_frame(), {"brand_id": "advertiser"})
    assert "brand_id" in str(caught.value)
    assert "advertiser" in str(caught.value)
    assert caught.value.violations[0].column == "brand_id"


@pytest.mark.parametrize(
    "mapping",
    [
        {"not_a_column": "geo"},
        {"audience": "geo", "vertical": "geo"},  # one column mapped twice
        {"channel": "geo"},  # 'channel' already exists and is not renamed away
    ],
)
def test_column_mapping_rejects_bad_mappings(mapping: dict[str, str]) -> None:
    with pytest.raises(ContractError):
        apply_column_mapping(campaign_frame(), mapping)


def test_column_mapping_can_swap_names() -> None:
    frame = campaign_frame().rename(columns={"channel": "audience"}).assign(channel="x")
    mapped = apply_column_mapping(frame, {"channel": "audience", "audience": "channel"})
    assert set(mapped["audience"]) == {"x"}
    assert set(mapped["channel"]) == {"search"}


# --------------------------------------------------------------------------- files


def test_csv_round_trip_keeps_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.csv"
    frame = campaign_frame()
    frame["campaign_id"] = "0042"
    frame.loc[0, "channel"] = "NA"  # a real value, not missing, in a string column
    frame.to_csv(path, index=False)

    out = validate_file(path)

    assert set(out["brand_id"]) == {"007", "b2"}
    assert set(out["campaign_id"]) == {"0042"}
    assert "NA" in set(out["channel"])
    pd.testing.assert_frame_equal(out, validate_campaigns(frame))


def test_validate_file_with_mapping_keeps_mapped_ids_as_text(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    campaign_frame().rename(columns={"brand_id": "advertiser", "date": "day"}).to_csv(
        path, index=False
    )
    out = validate_file(path, mapping={"brand_id": "advertiser", "date": "day"})
    assert set(out["brand_id"]) == {"007", "b2"}


def test_validate_file_reports_the_path_and_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    frame = campaign_frame()
    frame.loc[4, "spend"] = -1
    frame.to_csv(path, index=False)
    with pytest.raises(ContractError) as caught:
        validate_file(path, extra_columns=["geo"])
    message = str(caught.value)
    assert message.startswith(f"{path}: 1 contract violation")
    assert "row 4:" in message


def test_parquet_file_and_directory(tmp_path: Path) -> None:
    frame = validate_campaigns(campaign_frame())
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    pd.testing.assert_frame_equal(validate_file(tmp_path / "one.parquet"), frame)

    folder = tmp_path / "parts"
    for brand, rows in frame.groupby("brand_id"):
        part = folder / f"brand_id={brand}"
        part.mkdir(parents=True)
        rows.drop(columns="brand_id").to_parquet(part / "part-0.pq", index=False)
    out = validate_file(folder)
    assert set(out["brand_id"]) == {"007", "b2"}  # the partition value stays text
    pd.testing.assert_frame_equal(out[frame.columns], frame)


@pytest.mark.parametrize("name", ["missing.csv", "data.xlsx"])
def test_read_table_errors_name_the_path(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".xlsx"):
        path.write_bytes(b"not really excel")
    with pytest.raises(TabTuneInputError, match=name):
        read_table(path)


def test_read_table_wraps_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 garbage")
    with pytest.raises(TabTuneInputError, match="broken.parquet"):
        read_table(path)


# --------------------------------------------------------------------------- properties

_texts = st.text(alphabet="abcXYZ019-_ ", min_size=1, max_size=6).filter(lambda s: s.strip())


@st.composite
def valid_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 12))
    brands = draw(st.lists(_texts, min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 400), min_size=n, max_size=n, unique=True))
    clicks = draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n))
    conversions = [draw(st.integers(0, c)) for c in clicks]
    money = st.floats(0, 1e7, allow_nan=False, allow_infinity=False)
    return pd.DataFrame(
        {
            "brand_id": brands,
            "date": pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D"),
            "channel": draw(st.lists(_texts, min_size=n, max_size=n)),
            "spend": draw(st.lists(money, min_size=n, max_size=n)),
            "clicks": clicks,
            "conversions": conversions,
            "revenue": draw(st.lists(money, min_size=n, max_size=n)),
        }
    )


_fast = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(valid_frames())
def test_property_valid_frames_validate(frame: pd.DataFrame) -> None:
    out = validate_campaigns(frame)
    assert len(out) == len(frame)
    assert out["spend"].sum() == pytest.approx(frame["spend"].sum())
    keys = list(zip(out["brand_id"], out["date"], strict=True))
    assert keys == sorted(keys)
    # Validating the normalised output again is a no-op.
    pd.testing.assert_frame_equal(validate_campaigns(out), out)


@_fast
@given(
    valid_frames(),
    st.sampled_from(["spend", "clicks", "conversions", "revenue"]),
    st.data(),
)
def test_property_negatives_are_rejected(
    frame: pd.DataFrame, column: str, data: st.DataObject
) -> None:
    row = data.draw(st.integers(0, len(frame) - 1))
    value = -data.draw(st.integers(1, 1000))
    frame[column] = frame[column].astype("float64")
    frame.loc[row, column] = float(value)
    with pytest.raises(ContractError) as caught:
        validate_campaigns(frame)
    negative = [v for v in caught.value.violations if v.rule == schema.RULE_NEGATIVE]
    assert [v.column for v in negative] == [column]
    assert list(negative[0].examples.index) == [row]


def test_required_narrows_the_required_columns_to_the_row_key() -> None:
    """Prediction inputs (``required=KEY_COLUMNS``): the measures are checked only when present."""
    contexts = campaign_frame().drop(columns=["spend", "clicks", "conversions", "revenue"])
    out = validate_campaigns(contexts, required=schema.KEY_COLUMNS, conversions_above_clicks="clip")
    assert len(out) == 6 and "spend" not in out.columns
    with pytest.raises(ContractError) as exc:
        validate_campaigns(contexts)
    assert ("spend", schema.RULE_MISSING_COLUMN) in _rules(exc.value)
    bad = campaign_frame().drop(columns=["clicks"]).assign(spend=-1.0)
    with pytest.raises(ContractError) as exc:
        validate_campaigns(bad, required=schema.KEY_COLUMNS)
    assert _rules(exc.value) == {("spend", schema.RULE_NEGATIVE)}
    with pytest.raises(TabTuneInputError, match="row key"):
        validate_campaigns(contexts, required=["brand_id", "date"])


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    """pandas would read the second ``clicks`` as ``clicks.1``, which load then leaves out."""
    path = tmp_path / "dup.csv.gz"
    frame = campaign_frame().drop(columns="geo")
    frame.insert(len(frame.columns), "clicks ", 1)  # names are exact: not a repeat
    frame.to_csv(path, index=False)
    assert "clicks " in read_table(path).columns
    frame.insert(len(frame.columns), "dup", 99)
    frame.to_csv(path, index=False, header=[*frame.columns[:-1], "clicks"])
    with pytest.raises(ContractError) as exc:
        read_table(path)
    message = str(exc.value)
    assert str(path) in message
    assert (
        "column 'clicks': column name appears more than once (columns 5, 12 of the header)"
        in message
    )
    assert "fix: rename or remove the extra column" in message
    assert _rules(exc.value) == {("clicks", schema.RULE_DUPLICATE_COLUMN)}


def test_whole_float_ids_read_as_their_integer_text() -> None:
    """A Parquet export's float id 7.0 is the CSV's "7" (one brand, not two)."""
    frame = campaign_frame(4).assign(
        brand_id=[7.0, 8.0, 7.5, 7.0], campaign_id=[1.0, 2.0, 3.0, np.nan]
    )
    with pytest.raises(ContractError) as exc:
        validate_campaigns(frame)
    assert _rules(exc.value) == {("campaign_id", schema.RULE_MISSING_VALUE)}
    out = validate_campaigns(frame.assign(campaign_id=[1.0, 2.0, 3.0, 4.0]))
    assert sorted(out["brand_id"].unique()) == ["7", "7.5", "8"]
    assert sorted(out["campaign_id"]) == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("sep", "needles"),
    [
        (";", ["looks semicolon-separated", "sep=';', decimal=','"]),
        ("\t", ["looks tab-separated", "sep='\\t')"]),
    ],
)
def test_a_semicolon_or_tab_separated_csv_says_so(tmp_path: Path, sep: str, needles) -> None:
    path = tmp_path / "export.csv"
    campaign_frame().to_csv(path, index=False, sep=sep)
    with pytest.raises(TabTuneInputError) as exc:
        read_table(path)
    message = str(exc.value)
    assert str(path) in message and "fix: save it comma-separated" in message
    for needle in needles:
        assert needle in message
    assert "nothing was written" in message
    one_column = tmp_path / "one.csv"
    pd.DataFrame({"brand_id": ["a;b"]}).to_csv(one_column, index=False)
    assert list(read_table(one_column).columns) == ["brand_id"]  # only the header counts


@pytest.mark.parametrize(
    ("encoding", "text", "needles", "given"),
    [("latin-1", "Café", ["not UTF-8 text (Latin-1", "encoding='cp1252'"], "cp1252"),
     # Windows-1252's dashes and quotes: read as Latin-1 they became control characters
     ("cp1252", "Men’s – Café", ["not UTF-8 text", "encoding='cp1252'"], "cp1252"),
     ("utf-16", "Café", ["the file is UTF-16 text", "encoding='utf-16'"], "utf-16")],
)  # fmt: skip
def test_a_csv_that_is_not_utf8_names_its_encoding(
    tmp_path: Path, encoding: str, text: str, needles, given: str
) -> None:
    path = tmp_path / "export.csv"
    campaign_frame().assign(brand_id=text).to_csv(path, index=False, encoding=encoding)
    with pytest.raises(TabTuneInputError) as exc:
        read_table(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: the file is") and "nothing was written" in message
    for needle in needles:
        assert needle in message
    fixed = tmp_path / "fixed.csv"
    pd.read_csv(path, encoding=given).to_csv(fixed, index=False)  # the fix, as given
    assert set(read_table(fixed)["brand_id"]) == {text}
    name = read_table(fixed)["brand_id"].iloc[0]  # stays text the contract accepts
    assert validate_campaigns(campaign_frame().head(1).assign(campaign_id=name)).shape[0] == 1


def test_excels_unicode_text_is_converted_in_one_step(tmp_path: Path) -> None:
    # Excel's "Unicode text": UTF-16 and tab-separated; the fix converted only the encoding
    path = tmp_path / "export.csv"
    campaign_frame().to_csv(path, index=False, sep="\t", encoding="utf-16")
    with pytest.raises(TabTuneInputError) as exc:
        read_table(path)
    assert "encoding='utf-16', sep='\\t')" in str(exc.value)
    fixed = tmp_path / "fixed.csv"
    pd.read_csv(path, encoding="utf-16", sep="\t").to_csv(fixed, index=False)  # as given
    got = read_table(fixed)
    assert list(got.columns) == list(campaign_frame().columns)
    assert len(got) == len(campaign_frame())


def test_unicode_text_below_title_lines_is_converted_in_one_step(tmp_path: Path) -> None:
    """Google Ads' "Excel CSV" is UTF-16, tab-separated and below two title lines: the
    suggested conversion had no sep (its first line has no tab) and no skiprows (review M6)."""
    path = tmp_path / "export.csv"
    body = "Campaign report\nAll time\n" + campaign_frame().to_csv(index=False, sep="\t")
    path.write_bytes(body.encode("utf-16"))
    with pytest.raises(TabTuneInputError) as exc:
        read_table(path)
    assert "encoding='utf-16', sep='\\t', skiprows=2)" in str(exc.value)
    fixed = tmp_path / "fixed.csv"
    pd.read_csv(path, encoding="utf-16", sep="\t", skiprows=2).to_csv(fixed, index=False)
    assert len(read_table(fixed)) == len(campaign_frame())


def test_a_semicolon_file_below_title_lines_gets_its_conversion(tmp_path: Path) -> None:
    """Title lines above a ';'-separated header with decimal commas: the comma split of the
    data lines made the header look like a title (skip_lines off by one; review M5)."""
    path = tmp_path / "export.csv"
    body = campaign_frame().to_csv(index=False, sep=";", decimal=",")
    path.write_text("Campaign report\nAll time\n\n" + body)
    with pytest.raises(TabTuneInputError) as exc:
        read_table(path)
    assert "sep=';', skiprows=3, decimal=','" in str(exc.value)
    fixed = tmp_path / "fixed.csv"
    pd.read_csv(path, sep=";", skiprows=3, decimal=",").to_csv(fixed, index=False)
    assert len(read_table(fixed)) == len(campaign_frame())


def test_many_title_lines_above_a_short_report_are_counted(tmp_path: Path) -> None:
    """Seven title lines and a blank one above three rows (a short Microsoft Ads report): the
    one-field titles outnumbered the rows, and pandas' "Expected 1 fields" was shown (M5)."""
    path = tmp_path / "export.csv"
    titles = "".join(f"Report line {i}\n" for i in range(7)) + "\n"
    path.write_text(titles + campaign_frame().head(3).to_csv(index=False))
    with pytest.raises(TabTuneInputError, match=r"fix: data.skip_lines: 8"):
        read_table(path)
    assert len(read_table(path, skip_lines=8)) == 3


def test_a_workbook_named_csv_is_named_as_a_workbook(tmp_path: Path) -> None:
    """An .xlsx renamed .csv was called Latin-1 text, with a conversion that cannot work."""
    pytest.importorskip("openpyxl")
    campaign_frame().to_excel(tmp_path / "book.xlsx", index=False)
    (tmp_path / "book.csv").write_bytes((tmp_path / "book.xlsx").read_bytes())
    with pytest.raises(TabTuneInputError, match=r"a zip archive \(an Excel .xlsx workbook"):
        read_table(tmp_path / "book.csv")


def test_unicode_text_with_thousands_commas_and_skip_lines_names_the_encoding(
    tmp_path: Path,
) -> None:
    """With data.skip_lines set, a title with a comma and amounts like 3,604, pandas failed to
    tokenize the UTF-16 bytes first: the message blamed an unquoted comma on a line the file
    does not have, and the conversion had no sep (new-user red-team)."""
    path = tmp_path / "export.csv"
    frame = campaign_frame().astype({"spend": str})
    frame["spend"] = "3,604"
    body = "Campaign report\nJanuary 1, 2025 - June 30, 2025\n" + frame.to_csv(
        index=False, sep="\t"
    )
    path.write_bytes(body.encode("utf-16"))
    with pytest.raises(TabTuneInputError) as exc:
        read_table(path, skip_lines=2)
    assert "it starts with a UTF-16 byte order mark" in str(exc.value)
    assert "encoding='utf-16', sep='\\t', skiprows=2)" in str(exc.value)


@pytest.mark.parametrize(
    ("name", "encoding"),
    [("export.csv", "utf-32"), ("export.csv.gz", "utf-16"), ("export.csv.zip", "utf-16")],
)
def test_the_byte_order_mark_is_named_in_utf32_and_compressed_files(
    tmp_path: Path, name: str, encoding: str
) -> None:
    """UTF-32 text was called UTF-16 (its mark begins with UTF-16's); a compressed file's
    mark was not looked for. The conversion named must read the file."""
    import gzip
    import zipfile

    text = campaign_frame().to_csv(index=False, sep="\t").encode(encoding)
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text))
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("export.csv", text)
    else:
        path.write_bytes(text)
    with pytest.raises(TabTuneInputError) as exc:
        read_table(path)
    assert f"it starts with a {encoding.upper()} byte order mark" in str(exc.value)
    assert f"encoding='{encoding}', sep='\\t')" in str(exc.value)
    fixed = pd.read_csv(path, encoding=encoding, sep="\t")  # the fix the message names
    assert len(fixed) == len(campaign_frame())
