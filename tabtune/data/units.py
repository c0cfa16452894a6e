"""Amounts in another unit than money, or than each other (micros, cents): what ``load`` notes
and ``tabtune check`` reports, before models learn from them and bids follow."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tabtune.data.contract import KEY_COLUMNS, OPTIONAL_KEY_COLUMNS, Violation
from tabtune.errors import ContractError

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.config import DataConfig

__all__ = [
    "MAX_COST_PER_CLICK",
    "REVENUE_SPEND_RATIO",
    "BID_UNIT_JUMP",
    "SPEND_SPIKE_RATIO",
    "bid_unit_jump",
    "currency_notes",
    "money_unit_notes",
    "spend_spike_notes",
    "unscaled_micros_error",
]

#: A median cost per click above this is rare money (a $0.10 click is 100,000 micros), though
#: currencies of small units (VND, IDR, IRR, LBP) reach it for dear clicks: the note says so.
MAX_COST_PER_CLICK = 100_000.0
#: A median revenue / spend outside [1 / this, this] has one of the two in another unit.
REVENUE_SPEND_RATIO = 10_000.0
#: An export column whose name says its amounts are in micros (Google Ads' ``cost_micros``,
#: ``Cost (micros)``).
_MICROS_NAME = re.compile(r"(?i:(?<![a-z])micros(?![a-z]))|(?<=[a-z])Micros(?![a-z])")
#: The rule a money column mapped from such a column without a scale breaks.
RULE_MICROS = "must be money: its export column's name says micros and data.scale has no factor"


def unscaled_micros_error(data: DataConfig, source: str) -> ContractError | None:
    """The refusal of a money column (``spend``, ``revenue``, ``bid``) mapped from an export
    column whose name says micros (``cost_micros``) without a ``data.scale`` factor for it, or
    None. Loaded as money, every cost per click was a million times too high and a note
    only said so after the rows were stored (exports red-team); ``data.scale: {spend: 1}``
    keeps a column that holds money despite its name."""
    named = {
        target: str(src)
        for target, src in data.columns.items()
        if target in ("spend", "revenue", "bid")
        and target not in data.scale
        and _MICROS_NAME.search(str(src))
    }
    if not named:
        return None
    shown = ", ".join(f"{t} (from {s!r})" for t, s in named.items())
    factors = ", ".join(f"{t}: 0.000001" for t in named)
    message = (
        f"{source}: {shown}: the export's column name says micros (millionths of the currency), "
        "and data.scale has no factor for it: stored as money, every amount would be a million "
        "times too large (bids and budgets would follow); nothing was written\n"
        f"  fix: data.scale: {{{factors}}} (a factor of 1 keeps a column that holds money "
        "despite its name)"
    )
    return ContractError(message, [Violation(t, RULE_MICROS, 0) for t in named])


def money_unit_notes(rows: pd.DataFrame) -> list[str]:
    """Brands whose amounts look like another unit than each other or than money: a median
    cost per click above :data:`MAX_COST_PER_CLICK` (spend in micros), or a median revenue /
    spend beyond :data:`REVENUE_SPEND_RATIO` either way (one of the two in micros). The
    models would learn from them as they are, and bids would follow.

    Parameters
    ----------
    rows : DataFrame
        Campaign rows (``brand_id``, ``spend``, ``clicks``, ``revenue``).
    """
    if not {"brand_id", "spend", "clicks", "revenue"} <= set(rows.columns) or not len(rows):
        return []
    notes = []
    paid = rows[(rows["clicks"] > 0).to_numpy() & (rows["spend"] > 0).to_numpy()]
    cpc = (paid["spend"] / paid["clicks"]).groupby(paid["brand_id"], observed=True).median()
    odd = cpc[cpc > MAX_COST_PER_CLICK]
    if len(odd):
        shown = ", ".join(f"{b} ({v:,.0f})" for b, v in list(odd.items())[:5])
        notes.append(
            f"{len(odd)} brand(s) pay more than {MAX_COST_PER_CLICK:,.0f} per click (median "
            f"spend / clicks: {shown}): spend in micros? Bids would follow it; if so, scale it "
            "when loading (data.scale: {spend: 0.000001}) into a new store (in a currency of "
            "small units such as VND or IDR, such clicks may be real: then nothing to do)"
        )
    both = rows[(rows["spend"] > 0).to_numpy() & (rows["revenue"] > 0).to_numpy()]
    roas = (both["revenue"] / both["spend"]).groupby(both["brand_id"], observed=True).median()
    odd = roas[(roas > REVENUE_SPEND_RATIO) | (roas < 1.0 / REVENUE_SPEND_RATIO)]
    if len(odd):
        shown = ", ".join(f"{b} ({v:.3g})" for b, v in list(odd.items())[:5])
        notes.append(
            f"{len(odd)} brand(s) have revenue / spend {REVENUE_SPEND_RATIO:,.0f}x or more "
            f"away from 1 (median: {shown}): revenue or spend in another unit (micros, cents)? "
            "Scale the column when loading (data.scale) into a new store"
        )
    return notes


#: A brand's channel spending this many times its median day or more on one day is noted.
SPEND_SPIKE_RATIO = 20.0
#: Days with spend a channel needs before its median day says what a spike is.
SPEND_SPIKE_MIN_DAYS = 7


def spend_spike_notes(rows: pd.DataFrame, history: pd.DataFrame | None = None) -> list[str]:
    """Days a brand's channel spent :data:`SPEND_SPIKE_RATIO` times its median day or more
    (among its days with spend, from :data:`SPEND_SPIKE_MIN_DAYS` of them): one row in
    another unit or a typo, which a budget plan takes for the channel's recent spend (a total
    and a split inflated by it) and the models learn from. A sale day rarely reaches it.

    Parameters
    ----------
    rows : DataFrame
        Campaign rows (``brand_id``, ``date``, ``channel``, ``spend``).
    history : DataFrame, optional
        Stored rows of the same brands (a load's new rows are then compared with them too:
        one nightly day is enough); only days of ``rows`` are named, and a stored day that
        ``rows`` holds again counts once, as loaded.
    """
    columns = ["brand_id", "date", "channel", "spend"]
    if not set(columns) <= set(rows.columns) or not len(rows):
        return []
    keys = ["brand_id", "channel"]
    new = rows[columns]
    if history is not None and len(history):
        seen = pd.MultiIndex.from_frame(new[["brand_id", "date"]].astype({"brand_id": str}))
        old = history[columns]
        again = pd.MultiIndex.from_frame(old[["brand_id", "date"]].astype({"brand_id": str}))
        new = pd.concat([old[~again.isin(seen)], new], ignore_index=True)
    daily = new.groupby([*keys, "date"], observed=True, sort=True)["spend"].sum()
    daily = daily[daily > 0]
    if not len(daily):
        return []
    grouped = daily.groupby(level=keys, observed=True)
    median = grouped.transform("median")
    enough = grouped.transform("size") >= SPEND_SPIKE_MIN_DAYS
    spikes = daily[enough & (daily >= SPEND_SPIKE_RATIO * median)]
    if history is not None and len(spikes):  # the loaded days only
        loaded = pd.MultiIndex.from_frame(rows[[*keys, "date"]].astype({"brand_id": str}))
        spikes = spikes[spikes.index.map(lambda k: (str(k[0]), *k[1:])).isin(loaded)]
    if not len(spikes):
        return []
    shown = ", ".join(
        f"{b} {c} {pd.Timestamp(d):%Y-%m-%d}: {v:,.4g} against {median[(b, c, d)]:,.4g}"
        for (b, c, d), v in list(spikes.items())[:3]
    )
    return [
        f"{len(spikes)} day(s) of a brand's channel spent {SPEND_SPIKE_RATIO:.0f}x its median "
        f"day or more ({shown}{', ...' if len(spikes) > 3 else ''}): a spend in another unit, "
        "or a typo? Budget plans take it for the channel's recent spend (their total and "
        "split) and the models learn from it; if it is wrong, correct the export's rows and "
        "load them again (data.restated_rows: replace)"
    ]


#: A brand's bid context whose loaded bids are this many times its stored ones (or less than
#: the inverse) changed unit (micros: 10^6, thousandths): the load is refused. (Cents, 100x,
#: are named by ``tabtune check``: a bid raised from a floor of 0.01 to 1.00 is real.)
BID_UNIT_JUMP = 1000.0


def bid_unit_jump(rows: pd.DataFrame, history: pd.DataFrame | None) -> str | None:
    """Why a load's bids look like another unit than the brand's stored ones, or None: a
    brand's channel whose median loaded bid is :data:`BID_UNIT_JUMP` times its median over
    the stored days (from :data:`SPEND_SPIKE_MIN_DAYS` of them), or less than the inverse.
    One night's bids in micros sent every bid of the next day to ``bids.max_bid``.

    Parameters
    ----------
    rows : DataFrame
        The load's campaign rows (``brand_id``, ``channel``, ``date``, ``bid``).
    history : DataFrame or None
        The brands' stored rows of the days before (``bid`` too).
    """
    if history is None or not len(history) or "bid" not in rows.columns:
        return None
    if "bid" not in history.columns:
        return None
    # per bid context (a campaign that bids 9.00 beside five at 0.08 is no unit change)
    context = [*KEY_COLUMNS, *OPTIONAL_KEY_COLUMNS]  # a row's key but its day: its context
    keys = [c for c in context if c != "date" and c in rows.columns and c in history.columns]
    old = history[history["bid"] > 0]
    held = old.groupby(keys, observed=True)["date"].nunique()
    before = old.groupby(keys, observed=True)["bid"].median()[held >= SPEND_SPIKE_MIN_DAYS]
    new = rows[rows["bid"] > 0].groupby(keys, observed=True)["bid"].median()
    both = pd.concat([new.rename("new"), before.rename("old")], axis=1, join="inner")
    ratio = both["new"] / both["old"]
    jumps = ratio[(ratio >= BID_UNIT_JUMP) | (ratio <= 1.0 / BID_UNIT_JUMP)]
    if not len(jumps):
        return None
    key, r = next(iter(jumps.items()))
    factor = 10.0 ** -round(float(np.log10(r)))
    shown = " ".join(map(str, key if isinstance(key, tuple) else (key,)))
    return (
        f"{len(jumps)} bid context(s) have bids {BID_UNIT_JUMP:.0f}x or more away from their "
        f"stored ones (e.g. {shown}: median {both.loc[key, 'new']:.4g} against "
        f"{both.loc[key, 'old']:.4g} stored): another unit (micros); bids would be recommended "
        "from them (every bid at bids.max_bid); nothing was written\n  fix: scale the column "
        f"when loading (data.scale: {{bid: {factor:g}}}) or correct the export; if the stored "
        "bids are the ones in another unit (`tabtune check` names them), load into a new store"
    )


def currency_notes(frame: pd.DataFrame, columns: list[str], source: str) -> list[str]:
    """Notes when a column among ``columns`` (those not stored) whose name says currency holds
    several currency codes (three capital letters: EUR, USD): a brand with several is named
    (its amounts add up unlike things); several across brands are noted (pooled in one
    global model beside absolute bid limits)."""
    notes = []
    for column in columns:
        if "currency" not in str(column).lower() or isinstance(frame[column], pd.DataFrame):
            continue
        codes = frame[column].astype("string").str.strip()
        is_code = codes.str.fullmatch(r"[A-Z]{3}").fillna(False).to_numpy(dtype=bool)
        if not is_code.any():
            continue
        found = sorted(codes[is_code].unique())
        if len(found) < 2:
            continue
        mixed = []
        if "brand_id" in frame.columns and not isinstance(frame["brand_id"], pd.DataFrame):
            per_brand = codes[is_code].groupby(frame["brand_id"][is_code]).nunique()
            mixed = sorted(map(str, per_brand[per_brand > 1].index))
        shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
        if mixed:
            notes.append(
                f"{source}: column {column!r}: brand(s) {', '.join(mixed[:5])} hold amounts in "
                f"several currencies ({shown}), added up as one; convert them to one currency "
                "before loading"
            )
        else:
            notes.append(
                f"{source}: column {column!r}: the brands' amounts are in {len(found)} "
                f"currencies ({shown}), pooled in one global model beside absolute bid limits "
                "(bids.max_bid); a store per currency keeps them apart (data.store), or "
                f"data.drop: [{column!r}] leaves this note out"
            )
    return notes
