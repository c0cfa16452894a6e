"""Tests for the Parquet campaign store (tabtune.data.store)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tabtune.data.schema import validate_campaigns
from tabtune.data.store import (
    AppendResult,
    CampaignStore,
    atomic_write_bytes,
    atomic_write_parquet,
)
from tabtune.errors import ContractError, TabTuneInputError

BRANDS = ["007", "b-01", "acme corp"]


def campaigns(days: int = 5, start: str = "2024-01-01", brands: list[str] = BRANDS) -> pd.DataFrame:
    """``days`` days x 2 channels for each brand, with optional and extra columns."""
    rng = np.random.default_rng(0)
    dates = pd.date_range(start, periods=days, freq="D")
    rows = [(b, d, c) for b in brands for d in dates for c in ("search", "social")]
    n = len(rows)
    clicks = rng.integers(0, 50, n)
    return pd.DataFrame(
        {
            "brand_id": [r[0] for r in rows],
            "date": [r[1] for r in rows],
            "channel": [r[2] for r in rows],
            "spend": rng.uniform(0, 100, n).round(2),
            "clicks": clicks,
            "conversions": rng.integers(0, clicks + 1),
            "revenue": rng.uniform(0, 300, n),
            "bid": rng.uniform(0.1, 2, n),
            "impressions": clicks * 10,
            "geo": rng.choice(["fr", "de"], n),
        }
    )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) with its bytes."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> CampaignStore:
    return CampaignStore(tmp_path / "campaigns")


@pytest.fixture
def filled(store: CampaignStore) -> CampaignStore:
    store.append(campaigns(), extra_columns=["geo"])
    return store


def test_round_trip_values_and_dtypes(store: CampaignStore) -> None:
    frame = campaigns()
    result = store.append(frame, extra_columns=["geo"])

    assert isinstance(result, AppendResult)
    assert result.rows_written == len(frame)
    assert result.rows_skipped == 0
    assert result.brands == sorted(BRANDS)
    assert len(result.files) == len(BRANDS)
    assert all(f.exists() and f.parent.parent == store.root for f in result.files)

    out = store.read()
    pd.testing.assert_frame_equal(out, validate_campaigns(frame))
    assert out["brand_id"].dtype == "str"  # not dictionary/categorical
    assert out["date"].dtype == "datetime64[us]"


def test_layout_is_hive_partitioned(filled: CampaignStore) -> None:
    folders = sorted(p.name for p in filled.root.iterdir() if p.is_dir())
    assert folders == ["brand_id=007", "brand_id=acme%20corp", "brand_id=b-01"]
    (name,) = [p.name for p in (filled.root / "brand_id=007").iterdir()]
    assert name.startswith("part-20240101-20240105-") and name.endswith(".parquet")
    assert len(name) == len("part-20240101-20240105-12345678.parquet")
    # A plain pyarrow reader with the store's partitioning sees the same brands.
    table = filled.dataset().to_table()
    assert sorted(set(table.column("brand_id").to_pylist())) == sorted(BRANDS)


def test_metadata_helpers(filled: CampaignStore, store: CampaignStore) -> None:
    assert filled.exists()
    assert filled.brands() == sorted(BRANDS)
    assert filled.row_counts() == {b: 10 for b in sorted(BRANDS)}
    assert filled.date_range() == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-05"))
    filled.append(campaigns(days=2, start="2024-02-01", brands=["007"]), extra_columns=["geo"])
    assert filled.date_range("007") == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-02"))
    assert filled.date_range("b-01")[1] == pd.Timestamp("2024-01-05")
    assert filled.row_counts()["007"] == 14
    with pytest.raises(TabTuneInputError, match="nobody"):
        filled.date_range("nobody")


def test_brand_filter(filled: CampaignStore) -> None:
    one = filled.read("007")
    assert set(one["brand_id"]) == {"007"}
    assert len(one) == 10
    two = filled.read(["acme corp", "007"])
    assert list(dict.fromkeys(two["brand_id"])) == ["007", "acme corp"]
    expected = validate_campaigns(campaigns())
    expected = expected[expected["brand_id"].isin(["007", "acme corp"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(two, expected)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-02", "2024-01-04"),
        (dt.date(2024, 1, 2), dt.datetime(2024, 1, 4, 18, 0)),
        (pd.Timestamp("2024-01-02"), np.datetime64("2024-01-04")),
    ],
)
def test_date_filter_is_inclusive(filled: CampaignStore, start: object, end: object) -> None:
    out = filled.read("b-01", start=start, end=end)
    assert sorted(out["date"].dt.day.unique()) == [2, 3, 4]
    assert len(out) == 6
    assert len(filled.read(start="2024-01-05")) == 6  # one day, all brands
    assert len(filled.read(end="2024-01-01")) == 6


def test_bad_date_arguments(filled: CampaignStore) -> None:
    with pytest.raises(TabTuneInputError, match="after"):
        filled.read(start="2024-01-05", end="2024-01-01")
    with pytest.raises(TabTuneInputError, match="not an ISO date"):
        filled.read(start="yesterday-ish")
    # text pandas would guess (2024 -> 2024-01-01; month or day first) is refused, not guessed
    for vague in ("2024", "01/03/2024", "Jan 3 2024"):
        with pytest.raises(TabTuneInputError, match="not an ISO date"):
            filled.read(end=vague)


def test_column_selection(filled: CampaignStore) -> None:
    out = filled.read("007", columns=["spend", "date"])
    assert list(out.columns) == ["spend", "date"]
    assert out["date"].is_monotonic_increasing
    with pytest.raises(TabTuneInputError, match="nope"):
        filled.read(columns=["nope"])


def test_unknown_brand_gives_empty_frame_with_columns(filled: CampaignStore) -> None:
    out = filled.read("nobody")
    full = filled.read()
    assert out.empty
    assert list(out.columns) == list(full.columns)
    assert (out.dtypes == full.dtypes).all()
    assert filled.read("007", start="2030-01-01").empty


def test_empty_store_is_a_clear_error(store: CampaignStore) -> None:
    assert not store.exists()
    assert store.brands() == []
    assert store.row_counts() == {}
    for call in (store.read, store.date_range):
        with pytest.raises(TabTuneInputError, match="tabtune synth"):
            call()


def test_appending_the_same_days_twice_changes_nothing(filled: CampaignStore) -> None:
    before = snapshot(filled.root)
    again = filled.append(campaigns(), extra_columns=["geo"])
    assert again.rows_written == 0
    assert again.rows_skipped == len(campaigns())
    assert again.files == []
    assert snapshot(filled.root) == before


def test_overlapping_append_writes_only_new_days(filled: CampaignStore) -> None:
    result = filled.append(campaigns(days=7), extra_columns=["geo"])  # days 1-5 stored
    assert result.rows_skipped == 30
    assert result.rows_written == 12
    assert all("-20240106-20240107-" in f.name for f in result.files)
    # Stored days keep their stored values; only days 6-7 come from the new frame.
    week = campaigns(days=7)
    expected = pd.concat([campaigns(), week[week["date"] > "2024-01-05"]], ignore_index=True)
    pd.testing.assert_frame_equal(filled.read(), validate_campaigns(expected))


def test_on_existing_error_names_brand_and_dates(filled: CampaignStore) -> None:
    before = snapshot(filled.root)
    late = campaigns(days=2, start="2024-01-05", brands=["007"])
    with pytest.raises(TabTuneInputError) as caught:
        filled.append(late, extra_columns=["geo"], on_existing="error")
    assert "'007'" in str(caught.value)
    assert "2024-01-05" in str(caught.value)
    assert "2024-01-06" not in str(caught.value)
    assert snapshot(filled.root) == before
    with pytest.raises(TabTuneInputError, match="on_existing"):
        filled.append(late, on_existing="replace")  # type: ignore[arg-type]


@pytest.mark.parametrize("fresh", [True, False])
def test_invalid_frame_writes_nothing(store: CampaignStore, fresh: bool) -> None:
    if not fresh:
        store.append(campaigns(), extra_columns=["geo"])
    before = snapshot(store.root)
    bad = campaigns(start="2024-03-01")
    bad.loc[7, "spend"] = -1.0
    with pytest.raises(ContractError, match="spend"):
        store.append(bad)
    assert snapshot(store.root) == before
    assert store.root.exists() == (not fresh)


@pytest.mark.parametrize("brand", ["a/b", "x=y", ".hidden", "tab\there"])
def test_unsafe_brand_ids_are_rejected(store: CampaignStore, brand: str) -> None:
    frame = campaigns(days=1, brands=["ok", brand])
    with pytest.raises(ContractError, match="brand"):
        store.append(frame)
    assert not store.root.exists()


def test_brand_ids_round_trip_exactly(store: CampaignStore) -> None:
    odd = ["007", "b-01", "x+y", "50%", "é_brand", "NA"]
    store.append(campaigns(days=1, brands=odd))
    assert store.brands() == sorted(odd)
    assert sorted(store.read()["brand_id"].unique()) == sorted(odd)
    assert set(store.read("50%")["brand_id"]) == {"50%"}


def test_appended_columns_must_match_the_store(filled: CampaignStore) -> None:
    before = snapshot(filled.root)
    with pytest.raises(ContractError, match="geo"):
        filled.append(campaigns(start="2024-02-01").drop(columns="geo"))
    assert snapshot(filled.root) == before


def test_leftover_temporary_files_are_ignored(filled: CampaignStore) -> None:
    expected = filled.read()
    part = filled.root / "brand_id=007"
    (part / ".tmp-part-crashed.parquet").write_bytes(b"half a parquet file")
    (part / "_tmp-other").write_bytes(b"junk")
    (filled.root / "brand_id=ghost").mkdir()
    (filled.root / "brand_id=ghost" / ".tmp-only.parquet").write_bytes(b"junk")

    pd.testing.assert_frame_equal(filled.read(), expected)
    pd.testing.assert_frame_equal(filled.read("007"), expected[expected["brand_id"] == "007"])
    assert filled.brands() == sorted(BRANDS)
    assert filled.row_counts()["007"] == 10
    # pyarrow.dataset's own discovery skips them too (names starting with "." or "_").
    plain = ds.dataset(filled.root, format="parquet", partitioning="hive")
    assert plain.count_rows() == len(expected)


def test_atomic_write_helpers(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"
    atomic_write_bytes(target, b"one")
    digest = atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert len(digest) == 64
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temp left behind

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[5, 6])
    atomic_write_parquet(frame, tmp_path / "t.parquet")
    back = pq.read_table(tmp_path / "t.parquet").to_pandas()
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))


def test_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_reading_one_brand_lists_only_its_folder(store: CampaignStore, monkeypatch) -> None:
    """A night reads each brand: listing every brand's folder per read would make a night of
    N brands cost N^2 folder listings (measured: 29 ms per brand's load at 200 brands, 84 ms
    at 1,000)."""
    many = [f"brand{i:02d}" for i in range(40)]
    store.append(campaigns(days=3, brands=many), extra_columns=["geo"])
    listed: list[str] = []
    data_files = CampaignStore._data_files

    def counting(folder):
        listed.append(folder.name)
        return data_files(folder)

    monkeypatch.setattr(CampaignStore, "_data_files", staticmethod(counting))
    rows = store.read(brands=["brand17"])
    assert set(rows["brand_id"]) == {"brand17"} and len(rows) == 6
    # its own folder and the first brand's (the schema), never the other 38
    assert set(listed) <= {store.partition_dir("brand17").name, store.partition_dir("brand00").name}
    assert store.schema() == CampaignStore(store.root).schema()  # the same schema as before
    assert store.schema().names[0] == "brand_id"


def _spy_datasets(monkeypatch) -> list[list[str]]:
    """Record the files of every ``pyarrow.dataset.dataset`` the store opens."""
    opened: list[list[str]] = []
    real = ds.dataset

    def spy(source, *args, **kwargs):
        opened.append([Path(f).name for f in source] if isinstance(source, list) else [source])
        return real(source, *args, **kwargs)

    monkeypatch.setattr("tabtune.data.store.ds.dataset", spy)
    return opened


def test_appending_a_new_day_reads_no_stored_file(filled: CampaignStore, monkeypatch) -> None:
    opened = _spy_datasets(monkeypatch)
    result = filled.append(campaigns(days=1, start="2024-01-06"), extra_columns=["geo"])
    assert result.rows_written == 6 and result.rows_skipped == 0
    assert opened == []  # no stored file's name says it holds 2024-01-06


def test_appending_stored_days_reads_only_the_files_that_hold_them(
    filled: CampaignStore, monkeypatch
) -> None:
    filled.append(campaigns(days=2, start="2024-01-06"), extra_columns=["geo"])
    opened = _spy_datasets(monkeypatch)
    again = filled.append(campaigns(days=1, start="2024-01-07"), extra_columns=["geo"])
    assert (again.rows_written, again.rows_skipped) == (0, 6)
    assert len(opened) == len(BRANDS)
    assert all(len(files) == 1 and "-20240106-20240107-" in files[0] for files in opened)
    early = filled.append(campaigns(days=1, start="2024-01-03"), extra_columns=["geo"])
    assert (early.rows_written, early.rows_skipped) == (0, 6)


def test_a_brand_check_lists_the_store_once_until_it_changes(
    filled: CampaignStore, monkeypatch
) -> None:
    import tabtune.data.store_check as store_check

    listed = []
    real = store_check.os.scandir

    def spy(path):
        listed.append(Path(path))
        return real(path)

    monkeypatch.setattr(store_check.os, "scandir", spy)
    settled = time.time_ns() - 10 * store_check._SETTLE_NS  # as if written a while ago
    os.utime(filled.root, ns=(settled, settled))
    for _ in range(3):
        assert filled.check(["b-01"]) == [] and filled.check(["acme corp"]) == []
    assert listed == [filled.root]
    # A second folder of a brand, made after the listing, is still found.
    twin = filled.root / "brand_id=b%2D01"
    twin.mkdir()
    for f in filled.partition_dir("b-01").iterdir():
        (twin / f.name).write_bytes(f.read_bytes())
    later = settled + store_check._SETTLE_NS  # another settled time: the folder changed
    os.utime(filled.root, ns=(later, later))
    assert any("a second folder for brand 'b-01'" in p for p in filled.check(["b-01"]))
    assert len(listed) == 2


def test_reading_a_brand_lists_the_store_once_until_it_changes(
    filled: CampaignStore, monkeypatch
) -> None:
    """The schema's first file is found from the cached listing of the brand folders: a night
    that reads each of N brands does not list (and stat) the N folders on every read."""
    import tabtune.data.store_check as store_check

    root_listed = []
    real_scandir, real_iterdir = store_check.os.scandir, Path.iterdir

    def scandir(path):
        if Path(path) == filled.root:
            root_listed.append(Path(path))
        return real_scandir(path)

    def iterdir(self):
        if self == filled.root:
            root_listed.append(self)
        return real_iterdir(self)

    monkeypatch.setattr(store_check.os, "scandir", scandir)
    monkeypatch.setattr(Path, "iterdir", iterdir)
    settled = time.time_ns() - 10 * store_check._SETTLE_NS  # as if written a while ago
    os.utime(filled.root, ns=(settled, settled))
    for brand in ["b-01", "acme corp", "b-01"]:
        assert set(filled.read(brands=[brand])["brand_id"]) == {brand}
    assert root_listed == [filled.root]


def test_a_store_path_that_is_a_file_is_named_so(tmp_path: Path) -> None:
    # "empty or does not exist" for a data.store that is a file (tune/predict red-team)
    (tmp_path / "rows.parquet").write_text("x")
    with pytest.raises(TabTuneInputError, match=r"rows.parquet \(data.store\) is a file"):
        CampaignStore(tmp_path / "rows.parquet").date_range()


def test_a_stray_file_in_the_store_is_warned_about_once(
    filled: CampaignStore, caplog: pytest.LogCaptureFixture
) -> None:
    # a notes.txt beside the brand folders: the same WARNING 2x in validate, 6x in check
    (filled.root / "notes.txt").write_text("hi")
    with caplog.at_level("WARNING", logger="tabtune"):
        for _ in range(3):
            filled.check()
    assert caplog.text.count("notes.txt: not part of the campaign store") == 1, caplog.text
