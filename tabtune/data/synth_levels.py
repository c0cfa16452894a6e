"""The simulator's vocabulary: category levels, column lists and date/level coding.

Shared by the ground truth (:mod:`tabtune.data.synth_truth`), the parameter draws
(:mod:`tabtune.data.synth_params`) and the generator (:mod:`tabtune.data.synth_simulate`).
The model itself is described in :mod:`tabtune.data.synth`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tabtune.errors import TabTuneInputError

__all__ = [
    "AUDIENCES",
    "CHANNELS",
    "DEVICES",
    "KEY_COLUMNS",
    "N_PAIRS",
    "OBSERVATION_COLUMNS",
    "PARAMS_VERSION",
    "TRUTH_COLUMNS",
    "VERTICALS",
    "day_number",
    "iso_day",
    "level_codes",
]

CHANNELS: tuple[str, ...] = ("search", "social", "display", "video", "shopping")
AUDIENCES: tuple[str, ...] = ("prospecting", "retargeting", "lookalike", "loyal")
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
VERTICALS: tuple[str, ...] = ("retail", "travel", "finance", "gaming", "auto", "health")

KEY_COLUMNS: list[str] = ["brand_id", "date", "channel", "campaign_id", "audience", "device"]
OBSERVATION_COLUMNS: list[str] = [
    *KEY_COLUMNS,
    "vertical",
    "bid",
    "impressions",
    "clicks",
    "conversions",
    "spend",
    "revenue",
]
TRUTH_COLUMNS: list[str] = [
    "true_value_per_click",
    "true_cvr",
    "true_order_value",
    "true_ctr",
    "true_expected_impressions",
    "true_expected_clicks",
    "true_cpc",
    "true_expected_spend",
    "true_expected_revenue",
]

#: Version of the ``params`` dict layout; :class:`~tabtune.data.synth_truth.GroundTruth`
#: refuses any other.
PARAMS_VERSION = 1
#: Number of (audience, device) pairs a campaign can target.
N_PAIRS = len(AUDIENCES) * len(DEVICES)


def day_number(values: Any) -> np.ndarray:
    """Days since 1970-01-01 (int64) of dates, timestamps or date strings.

    Raises
    ------
    TabTuneInputError
        A value is missing or not a date.
    """
    stamps = pd.to_datetime(pd.Series(values) if np.ndim(values) else pd.Series([values]))
    if stamps.isna().any():
        raise TabTuneInputError("column 'date': missing or unparseable dates")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps.to_numpy().astype("datetime64[D]").astype(np.int64)


def iso_day(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (days since 1970-01-01)."""
    return str(np.datetime64(int(day), "D"))


def level_codes(values: Any, levels: tuple[str, ...], column: str) -> np.ndarray:
    """Position of each value in ``levels``.

    Raises
    ------
    TabTuneInputError
        A value is not one of ``levels`` (the message names ``column``).
    """
    codes = pd.Index(levels).get_indexer(pd.Series(values).astype("str"))
    if (codes < 0).any():
        bad = sorted(set(pd.Series(values)[codes < 0].astype("str")))[:5]
        raise TabTuneInputError(
            f"column {column!r}: unknown value(s) {bad}; expected one of {list(levels)}"
        )
    return codes
