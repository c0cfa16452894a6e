"""Notes on a brand's rows of the run date (tabtune/refresh/day_checks.py): clicks that did not
convert where the days before did, and channels the brand never used before."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tabtune.refresh.day_checks import EXPECTED_CONVERSIONS, LOOKBACK_DAYS, day_notes

DATE = dt.date(2024, 6, 1)


def _rows(days: int, clicks: int, conversions: int, channel: str = "search") -> pd.DataFrame:
    dates = pd.date_range(end=pd.Timestamp(DATE) - pd.Timedelta(days=1), periods=days)
    return pd.DataFrame(
        {
            "brand_id": "acme",
            "date": dates,
            "channel": channel,
            "spend": 50.0,
            "clicks": clicks,
            "conversions": conversions,
            "revenue": 30.0 * conversions,
        }
    )


def _today(clicks: int, conversions: int, channel: str = "search") -> pd.DataFrame:
    return _rows(1, clicks, conversions, channel).assign(date=pd.Timestamp(DATE))


def test_a_day_without_conversions_where_some_were_due_is_noted() -> None:
    history = _rows(LOOKBACK_DAYS, clicks=100, conversions=10)  # 10% of clicks convert
    (note,) = day_notes(pd.concat([history, _today(100, 0)]), DATE)
    assert "no conversion and no revenue on 2024-06-01 from 100 clicks" in note
    assert "converted 10.0% of such clicks (about 10 expected)" in note
    assert "data.restated_rows: replace" in note


def test_no_note_when_zero_is_likely_or_the_day_converted() -> None:
    history = _rows(LOOKBACK_DAYS, clicks=100, conversions=2)  # 2%: 2 expected from 100
    assert day_notes(pd.concat([history, _today(100, 0)]), DATE) == []
    assert 100 * 0.02 < EXPECTED_CONVERSIONS  # the rule the case above sits under
    busy = _rows(LOOKBACK_DAYS, clicks=100, conversions=10)
    assert day_notes(pd.concat([busy, _today(100, 3)]), DATE) == []
    assert day_notes(pd.concat([busy, _today(0, 0)]), DATE) == []  # no traffic: nothing due
    assert day_notes(busy, DATE) == []  # no row of the day
    # only the LOOKBACK_DAYS before count: an old converting period does not make a note
    old = _rows(60, clicks=100, conversions=10)
    old.loc[old["date"] >= pd.Timestamp(DATE) - pd.Timedelta(days=LOOKBACK_DAYS), "conversions"] = 0
    assert day_notes(pd.concat([old.assign(revenue=0.0), _today(100, 0)]), DATE) == []


def test_a_channel_new_to_the_brand_is_noted() -> None:
    history = _rows(LOOKBACK_DAYS, clicks=10, conversions=1)
    today = pd.concat([_today(10, 1), _today(5, 1, channel="tiktok")])
    notes = day_notes(pd.concat([history, today]), DATE)
    assert len(notes) == 1 and "first rows of channel(s) 'tiktok' on 2024-06-01" in notes[0]
    assert day_notes(pd.concat([history, _today(10, 1)]), DATE) == []
    assert day_notes(today, DATE) == []  # a brand's first day: every channel is new


def test_a_channel_that_never_tracks_conversions_expects_none() -> None:
    """Rates are each channel's: a day carried by a channel without conversion tracking is
    no outage (review)."""
    tracked = _rows(LOOKBACK_DAYS, clicks=100, conversions=10)
    untracked = _rows(LOOKBACK_DAYS, clicks=100, conversions=0, channel="display")
    history = pd.concat([tracked, untracked])
    assert day_notes(pd.concat([history, _today(200, 0, channel="display")]), DATE) == []
    (note,) = day_notes(pd.concat([history, _today(100, 0), _today(100, 0, "display")]), DATE)
    assert "from 200 clicks" in note and "(about 10 expected)" in note
