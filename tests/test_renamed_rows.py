"""A campaign or channel renamed between two overlapping exports: its stored days came again
under the new name and counted twice, without a word (exports red-team)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tabtune.data.renamed_rows import MIN_CLICKS, renamed_pairs
from tabtune.data.store import CampaignStore
from tests.test_store import snapshot


def _export(
    campaign: str, start: str, days: int, clicks: int = 50, **extra: object
) -> pd.DataFrame:
    """A rolling export: one campaign's rows, the same numbers every day."""
    return pd.DataFrame(
        {
            "Account": "Acme",
            "Day": pd.date_range(start, periods=days).strftime("%Y-%m-%d"),
            "Network": extra.get("channel", "Search"),
            "Campaign": campaign,
            "Cost": 100.0,
            "Clicks": clicks,
            "Conversions": 2,
            "Revenue": 400.0,
        }
    )


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    columns = {
        "brand_id": "Account",
        "date": "Day",
        "channel": "Network",
        "campaign_id": "Campaign",
        "spend": "Cost",
        "clicks": "Clicks",
        "conversions": "Conversions",
        "revenue": "Revenue",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"data": {"store": "store", "columns": columns}}))
    return path


def _load(capsys: pytest.CaptureFixture[str], config: Path, *files: str) -> tuple[int, str]:
    code = main(["--config", str(config), "load", *files])
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_a_renamed_campaign_in_a_later_load_is_refused_and_the_store_kept(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _export("Brand - Exact", "2026-11-01", 3).to_csv("week1.csv", index=False)
    _export("Brand Exact", "2026-11-02", 3).to_csv("week2.csv", index=False)
    assert _load(capsys, config, "week1.csv")[0] == EXIT_OK
    before = snapshot(tmp_path / "store")
    code, out = _load(capsys, config, "week2.csv")
    assert code == EXIT_BAD_INPUT
    assert "2 row(s) repeat rows of the store for the same brand and day under another name" in out
    assert "Acme 2026-11-02: channel='Search', campaign_id='Brand Exact' as" in out
    assert "campaign_id='Brand - Exact'" in out and "fix: if the campaign or channel was" in out
    assert snapshot(tmp_path / "store") == before
    assert CampaignStore("store").read()["spend"].sum() == pytest.approx(300.0)


def test_a_renamed_channel_between_two_files_of_one_load_is_refused(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _export("Brand", "2026-11-01", 3).to_csv("week1.csv", index=False)
    _export("Brand", "2026-11-02", 3, channel="Search Network").to_csv("week2.csv", index=False)
    code, out = _load(capsys, config, "week1.csv", "week2.csv")
    assert code == EXIT_BAD_INPUT
    assert "week2.csv: 2 row(s) repeat rows of an earlier file of this load" in out
    assert "channel='Search Network', campaign_id='Brand' as channel='Search'" in out
    assert not (tmp_path / "store").exists()


def test_new_campaigns_beside_stored_ones_load(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a rename: the older campaign is still in the new export (a new campaign with the
    same numbers beside it), or the numbers differ, or there are too few clicks to tell."""
    _export("A", "2026-11-01", 3).to_csv("week1.csv", index=False)
    assert _load(capsys, config, "week1.csv")[0] == EXIT_OK
    both = pd.concat([_export("A", "2026-11-02", 3), _export("B", "2026-11-02", 3)])
    both.to_csv("week2.csv", index=False)
    assert _load(capsys, config, "week2.csv")[0] == EXIT_OK
    other = _export("C", "2026-11-01", 4).assign(Cost=99.0)
    other.to_csv("week3.csv", index=False)
    assert _load(capsys, config, "week3.csv")[0] == EXIT_OK
    few = _export("D", "2026-11-01", 1, clicks=MIN_CLICKS - 1)
    few.to_csv("d1.csv", index=False)
    _export("E", "2026-11-01", 1, clicks=MIN_CLICKS - 1).to_csv("d2.csv", index=False)
    assert _load(capsys, config, "d1.csv")[0] == EXIT_OK
    assert _load(capsys, config, "d2.csv")[0] == EXIT_OK
    stored = CampaignStore("store").read()
    assert sorted(stored["campaign_id"].unique()) == ["A", "B", "C", "D", "E"]


def test_one_days_coincidence_is_not_a_rename(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A late channel from another platform whose one row matched a budget-capped campaign of
    the store (5.00 spend, 12 clicks) was refused as a rename (review): a rename repeats the
    name's rows on every day both exports hold."""
    _export("Remarketing small", "2026-11-01", 1, clicks=12).to_csv("google.csv", index=False)
    assert _load(capsys, config, "google.csv")[0] == EXIT_OK
    late = _export("Retargeting test", "2026-11-01", 1, clicks=12, channel="facebook")
    late.to_csv("meta.csv", index=False)
    assert _load(capsys, config, "meta.csv")[0] == EXIT_OK


def test_renamed_pairs_against_a_brute_force_reading_of_the_rule() -> None:
    """Every pair of rows checked by hand: same brand and day, every delivery measure equal, another
    name, the older name absent from the newer rows and the newer name from the older ones."""
    day = pd.Timestamp("2026-11-02")

    def rows(*items: tuple[str, str, float, int]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"brand_id": b, "date": d, "channel": ch, "spend": s, "clicks": c}
                for b, ch, s, c in items
                for d in (day, day + pd.Timedelta(days=1))  # a rename holds on every day
            ]
        )

    older = rows(("a", "x", 10.0, 20), ("a", "y", 5.0, 30), ("b", "x", 10.0, 20))
    newer = rows(("a", "z", 10.0, 20), ("a", "y", 5.0, 30), ("b", "w", 7.0, 20))
    expected = []
    for o in older.itertuples():
        for n in newer.itertuples():
            same = (o.brand_id, o.spend, o.clicks) == (n.brand_id, n.spend, n.clicks)
            gone = o.channel not in set(newer.loc[newer.brand_id == o.brand_id, "channel"])
            fresh = n.channel not in set(older.loc[older.brand_id == n.brand_id, "channel"])
            if same and o.channel != n.channel and gone and fresh:
                expected.append((o.brand_id, o.channel, n.channel))
    pairs = renamed_pairs(older, newer)
    got = list(zip(pairs["brand_id"], pairs["channel_older"], pairs["channel_newer"], strict=True))
    assert sorted(set(got)) == sorted(set(expected)) == [("a", "x", "z")] and len(got) == 2
    assert not len(renamed_pairs(older.iloc[::2], newer.iloc[::2]))  # one day: no signature


def test_a_rename_whose_conversions_were_restated_is_refused(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # late attribution: the newer export gives the overlap days more conversions and revenue;
    # every measure had to be equal, so the renamed campaign's days counted twice in silence
    _export("Black Friday", "2026-11-01", 5).to_csv("first.csv", index=False)
    later = _export("BF 2026", "2026-11-03", 5)
    later[["Conversions", "Revenue"]] = [3, 425.0]
    later.to_csv("later.csv", index=False)
    assert _load(capsys, config, "first.csv")[0] == EXIT_OK
    before = snapshot(tmp_path / "store")
    code, out = _load(capsys, config, "later.csv")
    assert code == EXIT_BAD_INPUT and "3 row(s) repeat rows of the store" in out
    assert "the same spend, clicks (conversions and revenue may have been restated" in out
    assert snapshot(tmp_path / "store") == before
