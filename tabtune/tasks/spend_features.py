"""Spend features and bid-identified response curves of the budget task (compatibility path).

The trailing spend features moved below :mod:`tabtune.features` to :mod:`tabtune.spend_features`
and the bid-identified Hill curves to :mod:`tabtune.tasks.response`; this module re-exports both
so that ``tabtune.tasks.spend_features`` keeps working.
"""

from __future__ import annotations

from tabtune.spend_features import (
    LONG_WINDOW_DAYS,
    MIN_DAYS,
    SPEND_FEATURE_COLUMNS,
    WINDOW_DAYS,
    add_spend_features,
    spend_state,
)
from tabtune.tasks.response import (
    BID_REFERENCE_COLUMNS,
    COMBO_COLUMNS,
    HILL_K_GRID,
    HILL_R_GRID,
    MIN_FIT_DAYS,
    HillResponse,
    bid_index,
    hill_log_likelihood,
    spend_elasticity,
)

__all__ = [
    "BID_REFERENCE_COLUMNS",
    "COMBO_COLUMNS",
    "HILL_K_GRID",
    "HILL_R_GRID",
    "LONG_WINDOW_DAYS",
    "MIN_DAYS",
    "MIN_FIT_DAYS",
    "SPEND_FEATURE_COLUMNS",
    "WINDOW_DAYS",
    "HillResponse",
    "add_spend_features",
    "bid_index",
    "hill_log_likelihood",
    "spend_elasticity",
    "spend_state",
]
