"""Checks of a store's files and of what an append may bring (tabtune.data.store_check)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tabtune.data.store import CampaignStore
from tabtune.data.store_check import reconcile_schema
from tabtune.errors import ContractError


def _rows(day: str, **extra: object) -> pd.DataFrame:
    return pd.DataFrame(
        [{"brand_id": "acme", "date": pd.Timestamp(day), "channel": "search", "spend": 1.0,
          "clicks": 2, "conversions": 0, "revenue": 0.0, **extra}]
    )  # fmt: skip


def test_an_append_with_other_columns_names_them_and_the_fix(tmp_path: Path) -> None:
    store = CampaignStore(tmp_path / "s")
    store.append(_rows("2024-01-01"))
    files = sorted(p.name for p in (tmp_path / "s").rglob("*.parquet"))
    with pytest.raises(ContractError) as info:
        store.append(_rows("2024-01-02", vertical="retail"), extra_columns=["vertical"])
    message = str(info.value)
    assert "not in the store ['vertical']" in message and "nothing was written" in message
    assert "leave ['vertical'] out" in message and "new data.store" in message
    assert sorted(p.name for p in (tmp_path / "s").rglob("*.parquet")) == files
    other = CampaignStore(tmp_path / "with_bids")
    other.append(_rows("2024-01-01", bid=0.5))
    with pytest.raises(ContractError, match=r"missing \['bid'\].*map \['bid'\]"):
        other.append(_rows("2024-01-02"))


def test_reconcile_schema_casts_what_it_can() -> None:
    stored = pa.schema([("spend", pa.float64()), ("clicks", pa.int64())])
    new = pa.schema([("spend", pa.int64()), ("clicks", pa.int32())])
    assert reconcile_schema(new, stored, Path("s")) is stored
    listed = pa.schema([("spend", pa.list_(pa.int64())), ("clicks", pa.int64())])
    with pytest.raises(ContractError, match="'spend' is list<item: int64> but the store holds"):
        reconcile_schema(listed, stored, Path("s"))


def test_a_dry_run_and_an_already_stored_load_refuse_new_columns_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import yaml

    from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, main

    monkeypatch.chdir(tmp_path)
    _rows("2024-01-01").to_csv("day1.csv", index=False)
    _rows("2024-01-02").to_csv("day2.csv", index=False)
    Path("c.yaml").write_text(yaml.safe_dump({"data": {"store": "store"}}))
    Path("v.yaml").write_text(
        yaml.safe_dump({"data": {"store": "store", "constants": {"vertical": "retail"}}})
    )
    assert main(["-c", "c.yaml", "load", "day1.csv"]) == EXIT_OK
    files = sorted(p.name for p in Path("store").rglob("*.parquet"))
    capsys.readouterr()
    for argv in (["day2.csv", "--dry-run"], ["day1.csv"]):  # new rows / every row stored
        assert main(["-c", "v.yaml", "load", *argv]) == EXIT_BAD_INPUT
        err = " ".join(capsys.readouterr().err.split())
        assert "not in the store ['vertical']" in err, err
    assert sorted(p.name for p in Path("store").rglob("*.parquet")) == files


def test_column_fixes_name_data_drop_and_no_constant_for_a_measure() -> None:
    stored = pa.schema([("spend", pa.float64()), ("bid", pa.float64()), ("channel", pa.string())])
    new = pa.schema([("spend", pa.float64()), ("campaign_id", pa.string())])
    with pytest.raises(ContractError) as caught:
        reconcile_schema(new, stored, Path("s"))
    message = str(caught.value)
    assert "not in the store ['campaign_id']" in message and "data.drop" in message
    assert "map ['channel'] (data.columns.<name>, or data.constants.<name>" in message
    assert "map ['bid'] to the export's column" in message
    assert "per-row measure cannot be a constant" in message


@pytest.mark.parametrize("hours", [0, 13])
def test_a_file_whose_dates_are_not_its_names_days_is_a_problem(tmp_path: Path, hours: int) -> None:
    """A file written by hand named for two days but holding four months passed validate, and
    the next append stored its rows again (appends look for stored rows by the files' names);
    so did dates with a time of day, which date filters then dropped (decision-API red-team)."""
    import hashlib

    store = CampaignStore(tmp_path / "store")
    store.append(pd.concat([_rows("2024-01-01"), _rows("2024-01-02")], ignore_index=True))
    assert store.check() == []
    folder = store.partition_dir(str(_rows("2024-01-01")["brand_id"].iloc[0]))
    stamp = pd.Timestamp("2024-03-01") + pd.Timedelta(hours=hours)
    frame = _rows("2024-03-01").drop(columns="brand_id").assign(date=stamp)
    name = "part-20240101-20240102"
    if hours:  # named for its day, but at 13:00
        name = "part-20240301-20240301"
    raw = tmp_path / "hand.parquet"
    frame.astype({"date": "datetime64[us]"}).to_parquet(raw, index=False)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    raw.rename(folder / f"{name}-{digest}.parquet")
    problems = CampaignStore(tmp_path / "store").check()
    assert any("holds rows dated" in p and "a file written by hand" in p for p in problems)
