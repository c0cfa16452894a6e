"""Rows that repeat another export's rows under a new name: a campaign or channel renamed
between two overlapping exports.

A rolling export (the last 7 days, every night) written after a campaign was renamed gives
the days already stored again under the new name. Their row keys are new, so nothing else
stops them, and those days would count twice. The signature is narrow, so that distinct
campaigns are never taken for renamed ones: on the same brand and day, a row of the new export
and a row of the older source (the store, or an earlier file of the same load) with the same
numbers in every measure (spend, clicks, ...; at least :data:`MIN_CLICKS` clicks and some
spend), where the older row's name appears nowhere in the brand's new rows and the new row's
name nowhere in the brand's older rows of those days, on :data:`MIN_DAYS` days or more for the
same two names. Only the delivery measures (:data:`MATCHED`) must be equal: conversions and
revenue are what a later export restates (late attribution), and requiring them equal let a
renamed campaign's restated days count twice in silence (exports red-team).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tabtune.data.contract import key_columns
from tabtune.data.schema import MAX_EXAMPLES, Violation
from tabtune.data.store import CampaignStore
from tabtune.errors import ContractError

__all__ = [
    "MATCHED",
    "MEASURES",
    "MIN_CLICKS",
    "MIN_DAYS",
    "RULE_RENAMED",
    "refuse_renamed_across_files",
    "refuse_renamed_beside_store",
    "renamed_pairs",
    "renamed_rows_error",
]

#: The measures an export carries (shown in the refusal).
MEASURES = ("spend", "clicks", "impressions", "conversions", "revenue")
#: The measures whose values must all be equal (those present): what was delivered, which a
#: later export does not restate; conversions and revenue may differ.
MATCHED = ("spend", "clicks", "impressions")
#: Clicks a row needs for equal numbers to be a signature (a few clicks at the same cost can
#: happen to two campaigns).
MIN_CLICKS = 10
#: Days on which a pair of names must match (one day can be a coincidence).
MIN_DAYS = 2
#: The rule such rows break.
RULE_RENAMED = "must not repeat an older export's rows of the same day under another name"


def _names(keys: list[str]) -> list[str]:
    """The key columns that name a row (all but the brand and the date)."""
    return [k for k in keys if k not in ("brand_id", "date")]


def renamed_pairs(
    older: pd.DataFrame,
    newer: pd.DataFrame,
    *,
    all_older: pd.DataFrame | None = None,
    all_newer: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Pairs of an ``older`` and a ``newer`` row that look like one row renamed.

    Both frames hold campaign rows of the same key columns (``brand_id``, ``date``, ...).
    ``all_older`` / ``all_newer`` (default: the frames themselves) are where a name is looked
    for: every row of the newer export, not only those of the days both hold. Returns one row
    per pair: ``brand_id``, ``date``, the measures, and each name column twice
    (``<name>_older``, ``<name>_newer``); empty when none.
    """
    all_older = older if all_older is None else all_older
    all_newer = newer if all_newer is None else all_newer
    keys = [k for k in key_columns(newer.columns) if k in older.columns]
    names = _names(keys)
    measures = [m for m in MATCHED if m in older.columns and m in newer.columns]
    if not names or "spend" not in measures or "clicks" not in measures:
        return pd.DataFrame()
    older, newer = _informative(older, measures), _informative(newer, measures)
    if not len(older) or not len(newer):
        return pd.DataFrame()
    pairs = older[[*keys, *measures]].merge(
        newer[[*keys, *measures]], on=["brand_id", "date", *measures], suffixes=("_older", "_newer")
    )
    if not len(pairs):
        return pairs
    older_names = pairs[[f"{n}_older" for n in names]].to_numpy()
    newer_names = pairs[[f"{n}_newer" for n in names]].to_numpy()
    renamed = (older_names != newer_names).any(axis=1)
    gone = ~_present(pairs, names, "_older", all_newer)  # the older name: not in the new rows
    fresh = ~_present(pairs, names, "_newer", all_older)  # the new name: not in the older rows
    pairs = pairs[renamed & gone & fresh].reset_index(drop=True)
    # a rename repeats the name's rows on every day both exports hold: one day's match is a
    # coincidence two budget-capped campaigns can make, not a signature
    both = ["brand_id", *(f"{n}{side}" for side in ("_older", "_newer") for n in names)]
    days = pairs.groupby(both, dropna=False)["date"].transform("nunique")
    return pairs[(days >= MIN_DAYS).to_numpy()].reset_index(drop=True)


def _informative(rows: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    """Rows whose numbers can be a signature: some spend and :data:`MIN_CLICKS` clicks."""
    keep = (rows["spend"] > 0) & (rows["clicks"] >= MIN_CLICKS)
    return rows[keep.to_numpy()].dropna(subset=measures)


def _present(pairs: pd.DataFrame, names: list[str], side: str, rows: pd.DataFrame) -> np.ndarray:
    """Whether each pair's names of ``side`` are a name the brand's ``rows`` hold."""
    held = rows[["brand_id", *names]].drop_duplicates().assign(_held=True)
    looked = pairs[["brand_id", *(f"{n}{side}" for n in names)]].copy()
    looked.columns = ["brand_id", *names]
    for name in names:  # the same dtype on both sides of the merge
        looked[name] = looked[name].astype(held[name].dtype)
    found = looked.merge(held, on=["brand_id", *names], how="left")["_held"]
    return found.fillna(False).to_numpy(dtype=bool)


def renamed_rows_error(pairs: pd.DataFrame, older: str, source: str) -> ContractError:
    """The refusal of ``pairs`` (:func:`renamed_pairs`), whose older rows come from ``older``
    (``"the store"``, a file's path) and the newer ones from ``source``."""
    names = [c[: -len("_older")] for c in pairs.columns if c.endswith("_older")]
    measures = [m for m in MATCHED if m in pairs.columns]
    lines = [
        f"{source}: {len(pairs)} row(s) repeat rows of {older} for the same brand and day under "
        f"another name, with the same {', '.join(measures)} (conversions and revenue may have "
        "been restated since); a campaign or channel renamed between two overlapping exports "
        "would count those days twice. Nothing was written"
    ]
    for row in pairs.head(MAX_EXAMPLES).itertuples(index=False):
        values = row._asdict()
        new = ", ".join(f"{n}={values[f'{n}_newer']!r}" for n in names)
        old = ", ".join(f"{n}={values[f'{n}_older']!r}" for n in names)
        numbers = ", ".join(f"{m}={values[m]:g}" for m in measures)
        lines.append(
            f"  - {values['brand_id']} {values['date']:%Y-%m-%d}: {new} as {old} ({numbers})"
        )
    if len(pairs) > MAX_EXAMPLES:
        lines.append(f"  ... and {len(pairs) - MAX_EXAMPLES} more")
    lines.append(
        "  fix: if the campaign or channel was renamed, write its name as before in the newer "
        "export (or load only the days not yet loaded) so that each day counts once; rows "
        "that really are other campaigns have other numbers"
    )
    column = ", ".join(names)
    return ContractError("\n".join(lines), [Violation(column, RULE_RENAMED, len(pairs))])


def refuse_renamed_across_files(
    frame: pd.DataFrame, origin: np.ndarray, files: Sequence[object]
) -> None:
    """Refuse rows of a later file of one load that repeat an earlier file's rows under
    another name (:func:`renamed_pairs` of each earlier file's rows against a later one's, on
    the brand days both hold)."""
    if len(files) < 2 or not len(frame):
        return
    days = frame[["brand_id", "date"]].assign(_file=origin)
    shared = days.groupby(["brand_id", "date"], observed=True)["_file"].transform("nunique") > 1
    if not shared.any():
        return
    part, where = frame[shared.to_numpy()], origin[shared.to_numpy()]
    for later in np.unique(where)[1:]:
        pairs = renamed_pairs(
            part[where < later],
            part[where == later],
            all_older=frame[origin < later],
            all_newer=frame[origin == later],
        )
        if len(pairs):
            raise renamed_rows_error(pairs, "an earlier file of this load", str(files[later]))


def refuse_renamed_beside_store(
    store: CampaignStore, rows: pd.DataFrame, known: np.ndarray | None = None
) -> None:
    """Refuse new rows (keys the store does not hold: ``~known``, read when not given) that
    repeat the store's rows of the same brand and day under another name
    (:func:`renamed_pairs`)."""
    keys = key_columns(rows.columns)
    measures = [m for m in MATCHED if m in rows.columns]
    if not _names(keys) or "spend" not in measures or "clicks" not in measures:
        return
    new = rows[~(store.already_stored(rows) if known is None else known)]
    by_brand = dict(tuple(rows.groupby("brand_id", sort=True, observed=True)))
    found = []
    for brand, part in new.groupby("brand_id", sort=True, observed=True):
        stored = store.stored_rows(str(brand), part, keys, measures)
        if stored is None:
            continue
        stored.insert(
            0, "brand_id", pd.Series(brand, index=stored.index, dtype=part["brand_id"].dtype)
        )
        pairs = renamed_pairs(stored, part, all_newer=by_brand[brand])
        if len(pairs):
            found.append(pairs)
    if found:
        raise renamed_rows_error(pd.concat(found, ignore_index=True), "the store", "the exports")
