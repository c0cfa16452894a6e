"""Tests of tabtune/data/periods.py beside the loads of tests/test_load.py: a weekly report
given for a brand the store holds day by day (:func:`weekly_beside_store_error`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tabtune.cli import EXIT_OK
from tabtune.data.periods import weekly_beside_store_error
from tabtune.data.store import CampaignStore
from tests.conftest import assert_refused, run_cli


def _days(start: str, n: int, spend: float, step: int = 1) -> pd.DataFrame:
    dates = pd.date_range(start, periods=n, freq=f"{step}D")
    return pd.DataFrame(
        {
            "brand_id": "acme",
            "date": dates.strftime("%Y-%m-%d"),
            "channel": "search",
            "spend": spend,
            "clicks": 20,
            "conversions": 1,
            "revenue": 3 * spend,
        }
    )


def test_a_weekly_report_beside_a_daily_brand_is_refused(tmp_path: Path, capsys) -> None:
    """Three Mondays of weekly totals under a column named "Day" (fewer than the dates the
    file alone needs) were stored as days beside the brand's real ones (exports red-team)."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"store": str(tmp_path / "store")}}))
    _days("2026-09-01", 60, 100.0).to_csv(tmp_path / "daily.csv", index=False)
    code, out = run_cli(capsys, "--config", str(config), "load", str(tmp_path / "daily.csv"))
    assert code == EXIT_OK, out
    _days("2026-11-02", 3, 700.0, step=7).to_csv(tmp_path / "weekly.csv", index=False)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", str(tmp_path / "weekly.csv")],
        "brand 'acme': the load gives 3 dates whole weeks apart, every one a Monday",
        "spending 7.0x its median stored day",
        "fix: export one row per day",
    )
    # the next days of the same brand, and a brand that runs on Mondays only, load
    _days("2026-10-30", 3, 100.0).to_csv(tmp_path / "next.csv", index=False)
    code, out = run_cli(capsys, "--config", str(config), "load", str(tmp_path / "next.csv"))
    assert code == EXIT_OK, out
    assert len(CampaignStore(tmp_path / "store").read()) == 62


def test_weekly_beside_store_against_its_rule() -> None:
    history = _days("2026-09-01", 60, 100.0)
    history["date"] = pd.to_datetime(history["date"])
    rng = np.random.default_rng(3)
    for step, n, spend, stored_days in [
        (7, 3, 700.0, 60),  # weekly totals of a daily brand: refused
        (7, 3, 120.0, 60),  # a brand's Mondays at a day's spend: kept
        (1, 5, 700.0, 60),  # consecutive days (a spike): kept (noted as spikes elsewhere)
        (7, 1, 700.0, 60),  # one date: a nightly file
        (7, 3, 700.0, 10),  # a brand stored on 10 days only: not daily
        (14, 2, 700.0, 60),  # two weeks apart (a week without spend)
    ]:
        rows = _days("2026-11-02", n, spend, step=step)
        rows["date"] = pd.to_datetime(rows["date"])
        stored = history.iloc[-stored_days:] if stored_days < 60 else history
        stored = stored.sample(frac=1.0, random_state=int(rng.integers(100)))  # any order
        refused = weekly_beside_store_error(rows, stored) is not None
        expected = step % 7 == 0 and n >= 2 and spend >= 300.0 and stored_days >= 14
        expected = expected and len(stored[stored["date"] >= pd.Timestamp("2026-10-05")]) >= 14
        assert refused == expected, (step, n, spend, stored_days)
