"""Channel bounds of a budget plan (tabtune.tasks.allocation.channel_bounds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabtune.errors import TabTuneInputError
from tabtune.tasks.allocation import channel_bounds


def test_default_bounds_are_recent_spend_within_the_relative_band() -> None:
    recent = pd.Series({"search": 100.0, "social": 40.0})
    channels, low, high = channel_bounds(recent, None, 0.25)
    assert channels == ["search", "social"]
    np.testing.assert_allclose(low, [75.0, 30.0])
    np.testing.assert_allclose(high, [125.0, 50.0])


def test_no_recent_spend_says_why_and_names_the_setting() -> None:
    with pytest.raises(TabTuneInputError, match=r"no channel spent .*budget\.lookback_days"):
        channel_bounds(pd.Series(dtype=float), None, 0.25)
