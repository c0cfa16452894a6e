"""Dates written with a time of day (tabtune/data/clock_times.py): UTC midnights of a zone
east of UTC are refused unless ``data.timezone`` reads them, that key stores each timestamp
under its day in the zone, and an hourly export is named among duplicate keys."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabtune.cli import EXIT_OK
from tabtune.config import ConfigError, load_config
from tabtune.data.clock_times import hourly_key, in_timezone
from tabtune.data.store import CampaignStore
from tests.conftest import assert_refused, run_cli

REPO = Path(__file__).resolve().parents[1]


def _export(dates: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "brand_id": "acme",
            "date": dates,
            "channel": "search",
            "spend": 10.0,
            "clicks": 5,
            "conversions": 1,
            "revenue": 20.0,
        }
    )


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(ws: Path, **data: object) -> str:
    path = ws / "c.yaml"
    cfg = {
        "data": {"store": "store", **data},
        "tasks": {"bid": str(REPO / "configs/tasks/bid.yaml")},
    }
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


#: Paris's days 2026-06-29 .. 2026-07-01 (summer time, UTC+2) and 2026-10-31 .. 2026-11-02
#: (winter time, UTC+1), each written as the UTC time of its midnight.
UTC_MIDNIGHTS = [
    "2026-06-28T22:00:00Z",
    "2026-06-29T22:00:00Z",
    "2026-06-30T22:00:00Z",
    "2026-10-30T23:00:00Z",
    "2026-10-31T23:00:00Z",
    "2026-11-01T23:00:00+00:00",
]
PARIS_DAYS = ["2026-06-29", "2026-06-30", "2026-07-01", "2026-10-31", "2026-11-01", "2026-11-02"]


def _stored_days() -> list[str]:
    rows = CampaignStore("store").read()
    return sorted(pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%d"))


def test_utc_midnights_are_refused_and_read_in_the_accounts_zone(ws: Path, capsys) -> None:
    """Stored as written, each of Paris's days landed a day early, its weekday wrong."""
    _export(UTC_MIDNIGHTS).to_csv("a.csv", index=False)
    assert_refused(
        capsys,
        ws,
        ["--config", _config(ws), "load", "a.csv"],
        "every date carries a time of day after noon (22:00, 23:00",
        "stored a day early",
        "data.timezone",
        "'2026-06-28T22:00:00Z' falls on 2026-06-29",
    )
    code, out = run_cli(capsys, "--config", _config(ws, timezone="Europe/Paris"), "load", "a.csv")
    assert code == EXIT_OK, out
    assert _stored_days() == PARIS_DAYS


def test_utc_midnights_of_one_account_among_others_are_refused(ws: Path, capsys) -> None:
    """A file of two accounts in two zones: New York's midnights (04:00Z) are before noon,
    which let Paris's rows through, stored a day early (exports red-team)."""
    paris = _export(UTC_MIDNIGHTS)
    nyc = _export([f"{d}T04:00:00Z" for d in PARIS_DAYS]).assign(brand_id="nyc")
    pd.concat([paris, nyc]).to_csv("a.csv", index=False)
    assert_refused(
        capsys,
        ws,
        ["--config", _config(ws), "load", "a.csv"],
        "every date of brand(s) acme carries a time of day after noon (22:00, 23:00",
        "load the rows of brand(s) acme from a file of their own, with data.timezone",
    )
    nyc.to_csv("b.csv", index=False)  # the other account alone: its days as written
    code, out = run_cli(capsys, "--config", _config(ws), "load", "b.csv")
    assert code == EXIT_OK, out
    assert _stored_days() == PARIS_DAYS


def test_utc_stores_the_days_as_written(ws: Path, capsys) -> None:
    _export(UTC_MIDNIGHTS).to_csv("a.csv", index=False)
    code, out = run_cli(capsys, "--config", _config(ws, timezone="UTC"), "load", "a.csv")
    assert code == EXIT_OK, out
    assert _stored_days() == sorted(d[:10] for d in UTC_MIDNIGHTS)


def test_a_zoned_parquet_column_is_refused_then_converted(ws: Path, capsys) -> None:
    stamps = pd.to_datetime(pd.Series(UTC_MIDNIGHTS), format="ISO8601", utc=True)
    _export(list(stamps)).assign(date=stamps).to_parquet("a.parquet")
    assert_refused(capsys, ws, ["--config", _config(ws), "load", "a.parquet"], "data.timezone")
    code, out = run_cli(
        capsys, "--config", _config(ws, timezone="Europe/Paris"), "load", "a.parquet"
    )
    assert code == EXIT_OK, out
    assert _stored_days() == PARIS_DAYS


def test_naive_evening_times_name_the_key_that_keeps_them(ws: Path, capsys) -> None:
    _export(["2026-11-01 23:00:00", "2026-11-02 23:00:00"]).to_csv("a.csv", index=False)
    assert_refused(
        capsys,
        ws,
        ["--config", _config(ws), "load", "a.csv"],
        "data.timezone: UTC stores the days as written",
    )
    code, out = run_cli(capsys, "--config", _config(ws, timezone="UTC"), "load", "a.csv")
    assert code == EXIT_OK, out
    assert _stored_days() == ["2026-11-01", "2026-11-02"]


@pytest.mark.parametrize(
    "dates",
    [
        ["2026-11-01 00:00:00", "2026-11-02 00:00:00"],  # midnights
        ["2026-11-01T05:00:00Z", "2026-11-02T05:00:00Z"],  # New York's midnights: same day
        ["2026-11-01 12:00", "2026-11-02 12:00"],  # noon: no zone moves it a day
        ["2026-11-01 09:15", "2026-11-02 18:40"],  # a time on each side of noon
        ["2026-11-01", "2026-11-02"],  # days
    ],
)
def test_days_and_morning_times_load_as_written(ws: Path, capsys, dates: list[str]) -> None:
    _export(dates).to_csv("a.csv", index=False)
    code, out = run_cli(capsys, "--config", _config(ws), "load", "a.csv")
    assert code == EXIT_OK, out
    assert _stored_days() == ["2026-11-01", "2026-11-02"]


def test_an_hourly_export_is_named(ws: Path, capsys) -> None:
    hours = [f"2026-11-01 {h:02d}:00" for h in range(9, 12)]
    _export(hours).to_csv("a.csv", index=False)
    assert_refused(
        capsys,
        ws,
        ["--config", _config(ws), "load", "a.csv"],
        "duplicate rows for the same key",
        "the export's rows are per hour",
        "export a daily report",
    )


def test_hourly_key_needs_two_times_of_one_day() -> None:
    days = pd.DataFrame({"date": ["2026-11-01", "2026-11-01"]})
    assert hourly_key(days) is None  # a plain duplicate: the mapping's fix stands
    one_each = pd.DataFrame({"date": ["2026-11-01 09:00", "2026-11-02 09:00"]})
    assert hourly_key(one_each) is None
    assert hourly_key(pd.DataFrame({"date": ["2026-11-01 09:00", "2026-11-01 10:00"]}))


def test_in_timezone_agrees_with_pandas() -> None:
    """Against pandas' own conversion, value by value; no offset, no change."""
    values = pd.Series([*UTC_MIDNIGHTS, "2026-11-01", "2026-11-01 23:00", "n/a", None])
    got = in_timezone(values, "America/New_York")
    for raw, out in zip(values, got, strict=True):
        if isinstance(raw, str) and raw.endswith(("Z", "+00:00")):
            want = pd.Timestamp(raw).tz_convert("America/New_York").tz_localize(None)
            assert out == want
        else:
            assert out is raw or out == raw


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"timezone": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
        ({"timezone": "../etc/passwd"}, "unknown time zone"),
        ({"timezone": "UTC", "date_format": "%Y-%m-%d"}, "timezone reads ISO 8601"),
    ],
)
def test_config_refuses_a_bad_timezone(ws: Path, data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        load_config(_config(ws, **data))


def test_a_mistyped_year_is_refused_by_the_contract_not_a_crash(ws: Path, capsys) -> None:
    """'3026' overflowed a nanosecond timestamp in the time-of-day check (review)."""
    _export(["3026-11-02", "2026-11-01 23:00"]).to_csv("a.csv", index=False)
    assert_refused(
        capsys, ws, ["--config", _config(ws), "load", "a.csv"], "must not be after", "3026-11-02"
    )


def test_the_example_zone_is_one_the_times_point_at(ws: Path, capsys) -> None:
    """15:00Z is Tokyo's midnight: the example zone used to be Paris, where it is the same
    day (review)."""
    _export(["2026-10-31T15:00:00Z", "2026-11-01T15:00:00Z"]).to_csv("a.csv", index=False)
    assert_refused(
        capsys,
        ws,
        ["--config", _config(ws), "load", "a.csv"],
        "'Asia/Tokyo', where '2026-10-31T15:00:00Z' falls on 2026-11-01",
    )


def test_a_midnight_written_with_its_own_offset_keeps_its_day(ws: Path, capsys) -> None:
    """'2026-11-01T00:00:00+09:00' is 1 November whatever data.timezone says (review)."""
    _export(["2026-11-01T00:00:00.000+09:00", "2026-11-02T00:00:00.000+09:00"]).to_csv(
        "a.csv", index=False
    )
    code, out = run_cli(capsys, "--config", _config(ws, timezone="Europe/Paris"), "load", "a.csv")
    assert code == EXIT_OK, out
    assert _stored_days() == ["2026-11-01", "2026-11-02"]


def test_a_zone_that_does_not_give_midnights_is_noted(ws: Path, capsys) -> None:
    _export(["2026-10-31T15:00:00Z", "2026-11-01T15:00:00Z"]).to_csv("a.csv", index=False)
    code, out = run_cli(capsys, "--config", _config(ws, timezone="Europe/Paris"), "load", "a.csv")
    assert code == EXIT_OK, out
    flat = " ".join(out.split())
    assert (
        "read in data.timezone 'Europe/Paris', every date falls at 16:00, not at midnight" in flat
    )


def test_bigquery_utc_timestamps_are_read_like_iso_ones(ws: Path, capsys) -> None:
    """BigQuery writes a TIMESTAMP as '2026-11-01 00:00:00 UTC': refused as no date before;
    now the same instant as '...Z', midnights refused east of UTC and read by data.timezone."""
    worded = [
        s.replace("T", " ").replace("Z", " UTC").replace("+00:00", " UTC") for s in UTC_MIDNIGHTS
    ]
    _export(worded).to_csv("a.csv", index=False)
    assert_refused(capsys, ws, ["--config", _config(ws), "load", "a.csv"], "time of day after noon")
    code, out = run_cli(capsys, "--config", _config(ws, timezone="Europe/Paris"), "load", "a.csv")
    assert code == EXIT_OK, out
    assert _stored_days() == PARIS_DAYS
    days = ["2026-11-01 00:00:00 UTC", "2026-11-02 00:00:00.000000 utc", "2026-11-03 00:00 GMT"]
    _export(days).to_csv("b.csv", index=False)
    code, out = run_cli(capsys, "--config", _config(ws), "load", "b.csv")
    assert code == EXIT_OK, out
    assert _stored_days()[-3:] == ["2026-11-01", "2026-11-02", "2026-11-03"]
