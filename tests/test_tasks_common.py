"""Shared pieces of the decision tasks (tabtune.tasks.common)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tabtune.errors import TabTuneInputError
from tabtune.tasks.common import as_timestamp


@pytest.mark.parametrize(
    "value",
    ["2025-11-05", " 2025-11-05 ", "2025-11-05T13:30", dt.date(2025, 11, 5),
     dt.datetime(2025, 11, 5, 13), pd.Timestamp("2025-11-05 13:30", tz="UTC")],
)  # fmt: skip
def test_as_timestamp_takes_iso_dates_and_date_objects(value) -> None:
    assert as_timestamp(value, "--date") == pd.Timestamp("2025-11-05")


@pytest.mark.parametrize("value", ["05/11/2025", "31/10/2025", "Nov 5 2025", "20251105x"])
def test_as_timestamp_refuses_what_it_would_have_to_guess(value: str) -> None:
    with pytest.raises(TabTuneInputError, match=r"--date: .* is not an ISO date; write it as"):
        as_timestamp(value, "--date")
    with pytest.raises(TabTuneInputError, match="not a date"):
        as_timestamp(None, "--date")


def test_history_rows_before_the_earliest_date_are_left_out(caplog) -> None:
    """A store loaded before the 1995 rule may hold a 1970-01-01 row: refused in the history,
    it stopped every brand's budget plan (review)."""
    from tabtune.data.synth import simulate
    from tabtune.tasks.common import prepare_rows

    rows = simulate(n_brands=2, n_days=10, seed=1).observations
    old = rows.head(1).assign(date=pd.Timestamp("1970-01-01"))
    with caplog.at_level("WARNING", logger="tabtune"):
        got = prepare_rows(pd.concat([old, rows], ignore_index=True))
    assert len(got) == len(rows) and got["date"].min() > pd.Timestamp("1995-01-01")
    assert "1 row(s) dated before 1995-01-01" in caplog.text
