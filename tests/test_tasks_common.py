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
