"""The bid recommender's rules: bids in the data, reference history and guard rails.

Pure functions of :class:`~tabtune.tasks.bid.BidRecommender` (module docstring of
:mod:`tabtune.tasks.bid`: the rule): whether rows carry bids, the observed cost per click,
each context's recent bids, validation of the contexts, the candidate grid within the guard
rails (``bids.min_bid``, ``bids.max_bid``, ``bids.max_change``), which candidates meet the
targets, and the ``reason`` of each recommendation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from tabtune.config import BidConfig, TaskConfig
from tabtune.data.limits import spelling_key
from tabtune.errors import TabTuneInputError
from tabtune.features import BID_CONTEXT, GROUP_COLUMN, REFERENCE_BID_ROWS, TIME_COLUMN

__all__ = [
    "bid_reasons",
    "candidate_bids",
    "check_contexts",
    "cvr_task",
    "has_bids",
    "largest_feasible",
    "observed_cpc",
    "recent_bids",
    "target_feasible",
    "unknown_target_brands_note",
]


def has_bids(rows: pd.DataFrame) -> bool:
    """Whether ``rows`` carry bids: a ``bid`` column that is not empty (all missing)."""
    if "bid" not in rows.columns:
        return False
    return bool(pd.to_numeric(rows["bid"], errors="coerce").notna().any())


def observed_cpc(rows: pd.DataFrame) -> np.ndarray:
    """Each row's observed cost per click, ``spend / clicks`` (NaN without clicks)."""
    spend = pd.to_numeric(rows["spend"], errors="coerce").to_numpy(dtype=float)
    clicks = pd.to_numeric(rows["clicks"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(clicks > 0, spend / np.where(clicks > 0, clicks, 1.0), np.nan)


def cvr_task(bid_task: TaskConfig) -> TaskConfig:
    """The conversion-rate task that goes with a bid task: conversions / clicks, same features."""
    return TaskConfig.model_validate(
        {
            "name": f"{bid_task.name}_cvr",
            "kind": "regression",
            "description": "conversions per click in a context (for CPA targets)",
            "target": {"numerator": "conversions", "denominator": "clicks"},
            "categorical": list(bid_task.categorical),
            "numeric": list(bid_task.numeric),
            "calendar": list(bid_task.calendar),
            "aggregate_by": bid_task.aggregate_by,
        }
    )


def recent_bids(
    rows: pd.DataFrame, base: pd.DataFrame | None = None, window: int = REFERENCE_BID_ROWS
) -> pd.DataFrame | None:
    """Each context's last ``window`` bids in ``rows`` (plus ``base``'s for other brands).

    Parameters
    ----------
    rows : DataFrame
        Campaign rows; ``None`` is returned when they have no ``bid`` column.
    base : DataFrame, optional
        A previous result; its rows of brands absent from ``rows`` are kept.
    window : int, default :data:`~tabtune.features.REFERENCE_BID_ROWS`

    Returns
    -------
    DataFrame or None
        ``date``, ``bid`` and the context columns present, bids > 0 only.
    """
    if "bid" not in rows.columns:
        return base
    cols = [c for c in (*BID_CONTEXT, TIME_COLUMN) if c in rows.columns]
    keys = [c for c in cols if c in BID_CONTEXT]
    recent = rows.loc[pd.to_numeric(rows["bid"], errors="coerce") > 0, [*cols, "bid"]].copy()
    recent[keys] = recent[keys].astype(str)
    recent[TIME_COLUMN] = pd.to_datetime(recent[TIME_COLUMN])
    recent["bid"] = recent["bid"].astype(float)
    recent = (
        recent.sort_values(TIME_COLUMN, kind="stable").groupby(keys, observed=True).tail(window)
    )
    if base is not None and len(base):
        others = base[~base[GROUP_COLUMN].isin(set(recent[GROUP_COLUMN]))]
        recent = pd.concat([others, recent], ignore_index=True)
    return recent.reset_index(drop=True)


def target_feasible(
    grid: np.ndarray,
    value: np.ndarray,
    cvr: np.ndarray | None,
    roas: float | None,
    cpa: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate bid: whether it meets the ROAS target and the CPA target (module docstring).

    A target that is not set (or a CPA target without conversion rates) is met everywhere.

    Parameters
    ----------
    grid : numpy.ndarray
        Candidate bids per context.
    value, cvr : numpy.ndarray
        Predicted value per click and conversion rate (or None) at each candidate.
    roas, cpa : float or None
        The targets.

    Returns
    -------
    ok_roas, ok_cpa : numpy.ndarray
        Boolean arrays shaped like ``grid``.
    """
    tol = 1e-12
    ok_roas = np.ones_like(grid, dtype=bool)
    ok_cpa = np.ones_like(grid, dtype=bool)
    if roas is not None:
        ok_roas = value / roas >= grid * (1.0 - tol)
    if cpa is not None and cvr is not None:
        ok_cpa = cvr * cpa >= grid * (1.0 - tol)
    return ok_roas, ok_cpa


def largest_feasible(feasible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the index of the last (largest) feasible candidate, 0 when none is.

    Parameters
    ----------
    feasible : numpy.ndarray
        ``(n, m)`` booleans over sorted candidates.

    Returns
    -------
    choice : numpy.ndarray
        The chosen candidate's index per row.
    any_ok : numpy.ndarray
        Whether any candidate of the row is feasible.
    """
    m = feasible.shape[1]
    any_ok = np.asarray(feasible.any(axis=1))
    last_ok = m - 1 - np.argmax(feasible[:, ::-1], axis=1)
    return np.where(any_ok, last_ok, 0), any_ok


def check_contexts(contexts: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Validated contexts (fresh index, ``bid`` = the reference when absent) and current bids.

    Parameters
    ----------
    contexts : DataFrame
        As for :meth:`tabtune.tasks.bid.BidRecommender.recommend`.

    Returns
    -------
    frame : DataFrame
        The contexts with a fresh index; without bids, ``bid`` holds the observed cost per click.
    current : numpy.ndarray
        Each context's current bid (or observed cost per click), all > 0.

    Raises
    ------
    TabTuneInputError
        Not a DataFrame, missing columns, or a current bid that is not > 0.
    """
    if not isinstance(contexts, pd.DataFrame):
        raise TabTuneInputError(
            f"contexts must be a pandas DataFrame, got {type(contexts).__name__}"
        )
    # the task's features the contexts lack are dropped (tabtune.features.resolve_features);
    # a feature the fitted model needs is named when the model predicts
    needed = [GROUP_COLUMN, TIME_COLUMN]
    if not has_bids(contexts):
        needed += ["spend", "clicks"]
    missing = [c for c in dict.fromkeys(needed) if c not in contexts.columns]
    if missing:
        raise TabTuneInputError(
            f"contexts need column(s) {missing} (columns: {list(contexts.columns)})"
            + (
                ""
                if "bid" in contexts.columns
                else "; without a 'bid' column the observed "
                "cost per click (spend / clicks) is the reference"
            )
        )
    frame = contexts.reset_index(drop=True)
    days, local = _check_keys(frame)
    if local:  # the local day, as the history's rows are read
        frame[TIME_COLUMN] = days
    if has_bids(frame):
        current = pd.to_numeric(frame["bid"], errors="coerce").to_numpy(dtype=float)
        what = "column 'bid': the current bid"
    else:
        current = observed_cpc(frame)
        frame = frame.assign(bid=current)
        what = "observed cost per click (spend / clicks; no 'bid' column)"
    bad = np.flatnonzero(~(np.isfinite(current) & (current > 0)))
    if bad.size:
        raise TabTuneInputError(
            f"{what} must be a number > 0; {bad.size} row(s) are not (rows {bad[:5].tolist()})"
        )
    return frame, current


def _check_keys(frame: pd.DataFrame) -> tuple[pd.Series, bool]:
    """Each context's day, and whether it was read from times with a UTC offset (then as the
    local wall clock's; each context names its brand and a day: a missing brand id failed
    deep in pandas, '<' between str and float, and a missing date was bid for as an unknown
    day)."""
    no_brand = np.flatnonzero(frame[GROUP_COLUMN].isna().to_numpy())
    if no_brand.size:
        raise TabTuneInputError(
            f"column {GROUP_COLUMN!r} is empty in {no_brand.size} context(s) (rows "
            f"{no_brand[:5].tolist()}); fix: give each context its brand id"
        )
    _require_iso_text(frame[TIME_COLUMN])
    try:
        days = pd.to_datetime(frame[TIME_COLUMN], errors="coerce")
        local = isinstance(days.dtype, pd.DatetimeTZDtype)
        days = days.dt.tz_localize(None) if local else days
    except (TypeError, ValueError):  # offsets that differ (daylight saving): one by one
        days, local = pd.to_datetime(frame[TIME_COLUMN].map(_local_time)), True
    no_day = np.flatnonzero(days.isna().to_numpy())
    if no_day.size:
        shown = frame[TIME_COLUMN].iloc[no_day[:3]].tolist()
        raise TabTuneInputError(
            f"column {TIME_COLUMN!r} holds no readable date in {no_day.size} context(s) (rows "
            f"{no_day[:5].tolist()}: {shown}); fix: give each context the day it bids for"
        )
    return days, local


#: A date written day and month first in digits (``03/04/2025``, ``3.4.25``): two readings.
_DIGITS_DAY_MONTH = re.compile(r"^\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}(?:\D|$)")


def _require_iso_text(dates: pd.Series) -> None:
    """Refuse dates written as text with the day and the month first in digits: pandas read
    "03/04/2025" as March 4th whatever the contexts meant (the estimator's ``time_column``
    and the loader's files refuse or resolve the same ambiguity; a bid dated a month off is
    planned for another weekday). ISO 8601 and named months ("12 Nov 2024") pass."""
    if pd.api.types.is_datetime64_any_dtype(dates.dtype):
        return
    for value in pd.unique(dates.dropna().astype(object)):
        if isinstance(value, str) and _DIGITS_DAY_MONTH.match(value):
            raise TabTuneInputError(
                f"column {TIME_COLUMN!r} holds dates as text that are not ISO 8601 (2024-11-12), "
                f"e.g. {value!r}: '03/04/2025' could be March 4th or April 3rd; fix: convert "
                f"the column first, e.g. contexts[{TIME_COLUMN!r}] = "
                f"pd.to_datetime(contexts[{TIME_COLUMN!r}], format='%d/%m/%Y') with the format "
                "your dates use"
            )


def _local_time(value: object) -> pd.Timestamp:
    """``value`` as a naive timestamp of its local wall clock (NaT when not a date)."""
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def candidate_bids(
    current: np.ndarray, b: BidConfig, n_candidates: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted candidate bids per row (current bid included) and the range's two ends.

    Parameters
    ----------
    current : numpy.ndarray
        Each context's current bid (> 0).
    b : BidConfig
        The guard rails: ``min_bid``, ``max_bid``, ``max_change``.
    n_candidates : int
        Points of the geometric grid (>= 2); the current bid is added.

    Returns
    -------
    grid : numpy.ndarray
        ``(n, n_candidates + 1)`` candidate bids, sorted per row.
    low, high : numpy.ndarray
        The allowed range's ends per row (module docstring of :mod:`tabtune.tasks.bid`).
    """
    low = np.maximum(b.min_bid, current * (1.0 - b.max_change))
    high = np.minimum(b.max_bid, current * (1.0 + b.max_change))
    empty = low > high  # the current bid is far outside [min_bid, max_bid]
    low = np.where(empty & (current > b.max_bid), b.max_bid, low)
    high = np.where(empty & (current > b.max_bid), b.max_bid, high)
    low = np.where(empty & (current < b.min_bid), b.min_bid, low)
    high = np.where(empty & (current < b.min_bid), b.min_bid, high)
    steps = np.linspace(0.0, 1.0, n_candidates)
    grid = np.exp(np.log(low)[:, None] + steps[None, :] * np.log(high / low)[:, None])
    grid[:, 0], grid[:, -1] = low, high
    grid = np.concatenate([grid, np.clip(current, low, high)[:, None]], axis=1)
    grid.sort(axis=1)
    return grid, low, high


def bid_reasons(
    frame: pd.DataFrame,
    low: np.ndarray,
    high: np.ndarray,
    choice: np.ndarray,
    any_ok: np.ndarray,
    ok_roas: np.ndarray,
    ok_cpa: np.ndarray,
    roas: float | None,
    cpa: float | None,
    m: int,
    b: BidConfig,
    source: Callable[[str], str],
) -> list[str]:
    """What set each recommended bid (``reason``; module docstring of :mod:`tabtune.tasks.bid`).

    Parameters
    ----------
    frame : DataFrame
        The contexts (``brand_id`` is read).
    low, high : numpy.ndarray
        The allowed range per context (:func:`candidate_bids`).
    choice : numpy.ndarray
        Index of the chosen candidate per context.
    any_ok : numpy.ndarray
        Whether any candidate met the targets.
    ok_roas, ok_cpa : numpy.ndarray
        Per candidate, whether it meets each target (:func:`target_feasible`).
    roas, cpa : float or None
        The targets in force.
    m : int
        Candidates per context.
    b : BidConfig
        The guard rails.
    source : callable
        ``brand -> "brand" | "global" | "unknown"``: which model serves the brand.

    Returns
    -------
    list of str
        One reason per context.
    """
    pct = f"{100 * b.max_change:g}%"
    names = " and ".join(n for n, t in (("roas", roas), ("cpa", cpa)) if t is not None)
    target_word = f"{names} target" + ("s" if roas is not None and cpa is not None else "")
    sources = {br: source(br) for br in frame[GROUP_COLUMN].astype(str).unique()}
    reasons = []
    for i, brand in enumerate(frame[GROUP_COLUMN].astype(str)):
        if low[i] == high[i] and high[i] in (b.min_bid, b.max_bid):
            # the current bid is so far outside [min_bid, max_bid] that only one bid is allowed
            text = "clamped to max_bid" if high[i] == b.max_bid else "clamped to min_bid"
            if not any_ok[i]:  # the one allowed bid misses the target: said, not hidden
                text = f"{target_word} not reachable: {text}"
        elif not any_ok[i]:
            limit = "clamped to min_bid" if low[i] <= b.min_bid else f"floored at max change -{pct}"
            text = f"{target_word} not reachable: {limit}"
        elif choice[i] == m - 1:
            if high[i] >= b.max_bid:
                text = "clamped to max_bid"
            else:
                text = f"capped at max change +{pct}"
        else:
            nxt = choice[i] + 1
            fails = [
                n
                for n, ok, t in (("roas", ok_roas, roas), ("cpa", ok_cpa, cpa))
                if t is not None and not ok[i, nxt]
            ]
            text = " and ".join(fails) + " target" + ("s" if len(fails) > 1 else "")
        if sources[brand] == "unknown":
            text = "unknown brand: global model; " + text
        reasons.append(text)
    return reasons


def unknown_target_brands_note(bids: BidConfig, brands: Sequence[str]) -> list[str]:
    """A note naming the keys of ``bids.target_roas_by_brand`` that are no brand of
    ``brands`` (the store's), with the brand each spells in another case or spacing: such a
    brand got the default target without a word (``B001`` for ``b001``)."""
    known = {spelling_key(b): b for b in map(str, brands)}
    unknown = [k for k in bids.target_roas_by_brand if k not in set(map(str, brands))]
    if not unknown:
        return []
    shown = ", ".join(
        repr(k)
        + (f" (the store's {known[spelling_key(k)]!r}?)" if spelling_key(k) in known else "")
        for k in unknown[:10]
    )
    return [
        f"bids.target_roas_by_brand names {len(unknown)} brand(s) the store does not hold: "
        f"{shown}; they set no target (each brand without its own key gets bids.target_roas "
        f"{bids.target_roas:g}); fix: write each key as the store spells the brand"
    ]
