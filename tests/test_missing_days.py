"""Tests of tabtune/refresh/missing_days.py: a day no brand has rows of (a skipped night)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from tabtune.data.store import CampaignStore
from tabtune.refresh.missing_days import missing_day_notes


def _store(tmp_path: Path, days: list[dt.date]) -> CampaignStore:
    rows = pd.DataFrame(
        {
            "brand_id": "acme",
            "date": pd.to_datetime(days),
            "channel": "search",
            "spend": 10.0,
            "clicks": 5,
            "conversions": 1,
            "revenue": 20.0,
        }
    )
    store = CampaignStore(tmp_path / "store")
    store.append(rows)
    return store


def _gap_notes(store: CampaignStore, date: dt.date, runs: Path | None = None) -> list[str]:
    notes = missing_day_notes(store, date, None, "bid", runs)
    return [n for n in notes if "never loaded" in n]


def test_a_skipped_day_is_named_but_not_weekends_nor_nights_that_ran(tmp_path: Path) -> None:
    start, run = dt.date(2024, 4, 1), dt.date(2024, 4, 19)  # Monday .. a Friday
    every = [start + dt.timedelta(days=i) for i in range((run - start).days + 1)]
    skipped = dt.date(2024, 4, 17)  # a Wednesday: its file never loaded
    (note,) = _gap_notes(_store(tmp_path / "a", [d for d in every if d != skipped]), run)
    assert "no row dated 2024-04-17, while it holds the same weekday" in note
    assert "tabtune load FILE" in note
    # a store of weekdays only: its weekends are no gap (review: named every weeknight)
    weekdays = [d for d in every if d.weekday() < 5]
    assert _gap_notes(_store(tmp_path / "b", weekdays), run) == []
    # a night that ran on the day (no rows then either) is no skipped night
    from tabtune.report import run_dir_for

    runs = tmp_path / "runs"
    run_dir_for(runs, skipped.isoformat(), "bid").mkdir(parents=True)
    (run_dir_for(runs, skipped.isoformat(), "bid") / "state.json").write_text("{}")
    store = _store(tmp_path / "c", [d for d in every if d != skipped])
    assert _gap_notes(store, run, runs) == []
