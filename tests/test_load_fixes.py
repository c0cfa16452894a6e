"""Tests of tabtune/data/load_fixes.py beyond the loads of tests/test_load.py: subtotal rows
found by their numbers (:func:`summed_rows`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabtune.cli import EXIT_OK
from tabtune.data.load_fixes import summed_rows
from tabtune.data.store import CampaignStore
from tests.conftest import assert_refused, run_cli


def _brute_force(frame: pd.DataFrame) -> np.ndarray:
    """Each row against the sum of the other rows of its brand and day, one by one."""
    out = np.zeros(len(frame), dtype=bool)
    for i in range(len(frame)):
        row = frame.iloc[i]
        day = frame[(frame["brand_id"] == row["brand_id"]) & (frame["date"] == row["date"])]
        others = day.drop(index=frame.index[i])
        if (others["spend"] > 0).sum() < 2 or row["spend"] <= 0 or row["clicks"] < 10:
            continue
        out[i] = (
            abs(row["spend"] - others["spend"].sum()) <= 0.005 * len(day) + 1e-9
            and row["clicks"] == others["clicks"].sum()
            and row["impressions"] == others["impressions"].sum()
        )
    return out


def test_summed_rows_against_a_brute_force_reading_of_the_rule() -> None:
    rng = np.random.default_rng(7)
    parts = []
    for brand in ("a", "b"):
        for day in pd.date_range("2026-10-01", periods=4).strftime("%Y-%m-%d"):
            n = int(rng.integers(1, 5))
            rows = pd.DataFrame(
                {
                    "brand_id": brand,
                    "date": day,
                    "campaign_id": [f"c{i}" for i in range(n)],
                    "spend": rng.integers(100, 9_000, n) / 100,
                    "clicks": rng.integers(5, 60, n),
                    "impressions": rng.integers(100, 2_000, n),
                }
            )
            if n >= 2 and rng.random() < 0.6:  # a subtotal, its spend rounded to the cent
                total = rows[["spend", "clicks", "impressions"]].sum()
                total["spend"] = round(total["spend"] + 0.004, 2)
                rows.loc[n] = [brand, day, "All", *total]
            parts.append(rows)
    frame = pd.concat(parts, ignore_index=True)
    # a coincidence of the kind the click floor is for: 1.00 = 0.49 + 0.50, 2 = 1 + 1 clicks
    frame.loc[len(frame)] = ["b", "2026-10-09", "x", 1.00, 2, 30]
    frame.loc[len(frame)] = ["b", "2026-10-09", "y", 0.49, 1, 10]
    frame.loc[len(frame)] = ["b", "2026-10-09", "z", 0.50, 1, 20]
    found = summed_rows(frame, np.zeros(len(frame), dtype=bool))
    np.testing.assert_array_equal(found, _brute_force(frame))
    assert found.sum() >= 3 and set(frame.loc[found, "campaign_id"]) == {"All"}
    flagged = found.copy()  # rows already refused otherwise are not looked at again
    assert not summed_rows(frame, flagged).any()


def _refused_load(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    rows: pd.DataFrame,
    *needles: str,
    **data: object,
) -> Path:
    """Write ``rows`` as export.csv and a config of ``data:`` keys in ``tmp_path`` (the
    working folder), and assert that ``load`` refuses it, saying ``needles``; the config."""
    rows.to_csv(tmp_path / "export.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"store": "store", **data}}))
    assert_refused(capsys, tmp_path, ["--config", str(config), "load", "export.csv"], *needles)
    return config


def test_an_unlabelled_subtotal_row_is_refused_then_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A per-day "All campaigns" (or German "Gesamtergebnis") row was stored as one more
    campaign: the brand's spend counted twice (exports red-team)."""
    monkeypatch.chdir(tmp_path)
    rows = pd.DataFrame(
        {
            "brand_id": "acme",
            "date": ["2026-10-01"] * 3 + ["2026-10-02"] * 3,
            "channel": "search",
            "campaign_id": ["C1", "C2", "Gesamtergebnis"] * 2,
            "spend": [21.33, 215.01, 236.34, 10.0, 20.5, 30.5],
            "clicks": [34, 117, 151, 12, 14, 26],
            "impressions": [408, 2691, 3099, 200, 300, 500],
            "conversions": [1, 2, 3, 0, 1, 1],
            "revenue": [10.0, 20.0, 30.0, 0.0, 5.0, 5.0],
        }
    )
    config = _refused_load(
        capsys,
        tmp_path,
        rows,
        "column 'campaign_id': must not be a totals row (the sum of other rows",
        "campaign_id=Gesamtergebnis spend=236.34",
        "fix: data.invalid_rows: skip",
    )
    config.write_text(yaml.safe_dump({"data": {"store": "store", "invalid_rows": "skip"}}))
    code, out = run_cli(capsys, "--config", str(config), "load", "export.csv")
    assert code == EXIT_OK, out
    assert CampaignStore("store").read()["spend"].sum() == pytest.approx(21.33 + 215.01 + 30.5)


@pytest.mark.parametrize(
    ("campaigns", "extra", "fix"),
    [
        # rows split by an unmapped column: the fix said "map campaign_id", mapped already
        (
            ["C1", "C1", "C2", "C2"],
            {
                "Avg. CPC": [0.5, 0.4, 0.55, 0.45],
                "CTR": ["0.00%", "1.50%", "0.00%", "0.00%"],  # numbers as text
                "Ad Group": ["AG1", "AG2", "AG1", "AG2"],
            },
            "the export splits each key's rows by 'Ad Group' (not part of the key, which is "
            "brand_id, date, channel, campaign_id): map 'Ad Group' as audience or device",
        ),
        # long ids Excel wrote in scientific notation: different campaigns became one
        (
            ["2.38512E+16", "2.38512E+16", "2.38512E+16", "2.38512E+16"],
            {},
            "its campaign_id values are in scientific notation ('2.38512E+16'): Excel rounded",
        ),
    ],
)
def test_duplicate_keys_name_what_splits_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, campaigns, extra, fix
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = pd.DataFrame(
        {
            "brand_id": "acme",
            "date": ["2026-10-01", "2026-10-01", "2026-10-02", "2026-10-02"],
            "channel": "search",
            "campaign_id": campaigns,
            "spend": [1.0, 2.0, 3.0, 4.0],
            "clicks": [1, 2, 3, 4],
            "conversions": 0,
            "revenue": 0.0,
            **extra,
        }
    )
    _refused_load(capsys, tmp_path, rows, fix)


def test_a_bid_column_of_placeholders_names_the_fix_that_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Google Ads' "Max. CPC" is '--' for campaigns on automated bidding: the fix offered was
    data.invalid_rows: skip, which left their rows and spend out (exports red-team)."""
    monkeypatch.chdir(tmp_path)
    rows = pd.DataFrame(
        {
            "brand_id": "acme",
            "date": ["2026-10-01", "2026-10-01"],
            "channel": "search",
            "campaign_id": ["manual", "smart"],
            "spend": [10.0, 20.0],
            "clicks": [5, 8],
            "conversions": 0,
            "revenue": 0.0,
            "Max. CPC": ["1.20", "--"],
        }
    )
    config = _refused_load(
        capsys,
        tmp_path,
        rows,
        "fix: remove bid: 'Max. CPC' from data.columns: every row is kept",
        "data.invalid_rows: skip would leave their rows and spend out",
        columns={"bid": "Max. CPC"},
    )
    # skip is no way out: whole channels on automated bidding went, with their spend
    _refused_load(
        capsys,
        tmp_path,
        rows,
        "data.invalid_rows: skip would leave their rows and spend out",
        columns={"bid": "Max. CPC"},
        invalid_rows="skip",
    )
    assert not (tmp_path / "store").exists()
    config.write_text(yaml.safe_dump({"data": {"store": "store"}}))  # as the fix says
    code, out = run_cli(capsys, "--config", str(config), "load", "export.csv")
    assert code == EXIT_OK, out
    assert len(CampaignStore("store").read()) == 2


def test_subtotals_of_channels_and_of_the_day_are_found_level_by_level() -> None:
    rows = [
        ("search", "A", 10.00, 20, 200),
        ("search", "B", 5.50, 11, 90),
        ("display", "C", 3.25, 12, 900),
        ("display", "D", 1.75, 13, 600),
        ("search", "Search campaigns", 15.50, 31, 290),  # a channel's subtotal
        ("display", "Display campaigns", 5.00, 25, 1500),
        ("All", "All campaigns", 20.50, 56, 1790),  # the day's, over the campaigns
    ]
    frame = pd.DataFrame(
        [("acme", "2026-10-01", *r) for r in rows],
        columns=["brand_id", "date", "channel", "campaign_id", "spend", "clicks", "impressions"],
    )
    found = summed_rows(frame, np.zeros(len(frame), dtype=bool))
    assert frame.loc[found, "campaign_id"].tolist() == [r[1] for r in rows[4:]]


def test_a_brand_id_with_a_slash_gets_its_own_renamed_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The fix's example was always 'Acme US-CA' for 'Acme US/CA', whatever the brand."""
    monkeypatch.chdir(tmp_path)
    rows = pd.DataFrame(
        {
            "brand_id": ["Nike US/CA", "Nike US/CA"],
            "date": ["2026-10-01", "2026-10-02"],
            "channel": "search",
            "spend": [10.0, 20.0],
            "clicks": [5, 8],
            "conversions": 0,
            "revenue": 0.0,
        }
    )
    _refused_load(
        capsys,
        tmp_path,
        rows,
        "a folder of its name: 'Nike US-CA' for 'Nike US/CA'), or data.invalid_rows: skip",
    )


def test_a_campaign_whose_delivery_adds_up_but_not_its_results_is_no_subtotal() -> None:
    # daily budgets of 100 / 50 / 50 whose clicks (and impressions) happened to add up: the
    # biggest campaign was refused as a subtotal, and the fix offered dropped it (review)
    frame = pd.DataFrame(
        {
            "brand_id": "acme",
            "date": "2026-10-01",
            "channel": "search",
            "campaign_id": ["brand_terms", "generic", "competitor"],
            "spend": [100.0, 50.0, 50.0],
            "clicks": [100, 45, 55],
            "impressions": [1000, 400, 600],
            "conversions": [4, 1, 2],
            "revenue": [200.0, 40.0, 90.0],
        }
    )
    none = np.zeros(len(frame), dtype=bool)
    assert not summed_rows(frame, none).any()
    assert not summed_rows(frame.drop(columns="impressions"), none).any()  # too few measures
    subtotal = frame.assign(conversions=[3, 1, 2], revenue=[130.0, 40.0, 90.0])
    assert summed_rows(subtotal, none).tolist() == [True, False, False]
    # without impressions (an optional column), or with the subtotal's conversions blank,
    # it is found all the same (review: both were let through)
    assert summed_rows(subtotal.drop(columns="impressions"), none).tolist()[0]
    blank = subtotal.astype({"conversions": float})
    blank.loc[0, "conversions"] = np.nan
    assert summed_rows(blank, none).tolist()[0]
    assert not summed_rows(blank[["brand_id", "date", "spend", "clicks"]], none).any()


def test_an_empty_outcome_is_not_offered_a_skip_that_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The fix for empty conversions offered data.invalid_rows: skip, which then refused the
    same rows (skipping them would keep only the days with conversions; new-user red-team)."""
    monkeypatch.chdir(tmp_path)
    rows = pd.DataFrame(
        {
            "brand_id": "acme",
            "date": ["2026-10-01", "2026-10-02"],
            "channel": "search",
            "spend": [10.0, 20.0],
            "clicks": [5, 8],
            "conversions": [1, None],
            "revenue": [3.0, 0.0],
        }
    )
    _refused_load(capsys, tmp_path, rows, "fix: data.fill: {conversions: 0} when the export")
    code, out = run_cli(capsys, "--config", str(tmp_path / "c.yaml"), "load", "export.csv")
    assert code != EXIT_OK and "invalid_rows: skip" not in out, out
