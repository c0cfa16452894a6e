"""Restated rows: keys the store already holds, exported again with other values.

An export of a day taken before the day was complete, or conversions an ad platform
attributed days later, bring rows whose key (brand, date, channel and the optional key
columns) the store holds already. :meth:`~tabtune.data.store.CampaignStore.append` keeps the
stored values; :func:`stored_differently` says which of those rows differ, so ``tabtune load``
reports them instead of dropping them silently, and with ``data.restated_rows: replace``
:func:`replace_restated` stores their new values (each brand's files that hold them are
rewritten with the steps of a merge, :func:`tabtune.data.compaction.restate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tabtune.data import compaction, locking
from tabtune.data.schema import key_columns
from tabtune.data.store import PARTITION_COLUMN, CampaignStore, parquet_bytes
from tabtune.data.store_check import file_may_hold
from tabtune.errors import ContractError

__all__ = [
    "RestateResult",
    "check_restated",
    "replace_restated",
    "restated_days",
    "stored_differently",
    "values_differ",
]

#: Relative tolerance under which two stored floats are the same (a text round trip of a float
#: is exact; a cent on 12 million is not within it).
RELATIVE_TOLERANCE = 1e-12


def values_differ(new: pd.Series, stored: pd.Series) -> np.ndarray:
    """Row by row, whether two aligned columns differ.

    Missing on one side only is a difference, missing on both is not; integers are compared
    exactly, other numbers to a relative tolerance of :data:`RELATIVE_TOLERANCE`, anything
    else as text.
    """
    a_missing, b_missing = new.isna().to_numpy(), stored.isna().to_numpy()
    integers = pd.api.types.is_integer_dtype(new.dtype) and pd.api.types.is_integer_dtype(
        stored.dtype
    )
    if integers:
        same = new.to_numpy(dtype=np.int64, na_value=0) == stored.to_numpy(
            dtype=np.int64, na_value=0
        )
    elif pd.api.types.is_numeric_dtype(new.dtype) and pd.api.types.is_numeric_dtype(stored.dtype):
        a = new.to_numpy(dtype=float, na_value=np.nan)
        b = stored.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            same = np.isclose(a, b, rtol=RELATIVE_TOLERANCE, atol=0.0)
    else:
        same = new.astype(str).to_numpy() == stored.astype(str).to_numpy()
    return (a_missing != b_missing) | (~a_missing & ~b_missing & ~same)


def stored_differently(store: CampaignStore, rows: pd.DataFrame) -> np.ndarray:
    """Which rows the store holds under the same key with other values.

    Parameters
    ----------
    store : CampaignStore
    rows : pandas.DataFrame
        Validated campaign rows (:func:`~tabtune.data.schema.validate_campaigns`).

    Returns
    -------
    numpy.ndarray
        One bool per row: its key is stored and a column both hold differs
        (:func:`values_differ`).
    """
    mask = np.zeros(len(rows), dtype=bool)
    schema = store.schema()
    if schema is None or not len(rows):
        return mask
    keys = [k for k in key_columns(rows.columns) if k in schema.names]
    fields = [k for k in keys if k != PARTITION_COLUMN]
    values = [c for c in rows.columns if c in schema.names and c not in keys]
    for brand, positions in rows.groupby(PARTITION_COLUMN, sort=True).indices.items():
        mine = rows.iloc[positions]
        stored = store.stored_rows(str(brand), mine, keys, values)
        if stored is None:
            continue
        typed = _as_stored(store, str(brand), mine, _file_schema(schema))
        both = pd.concat([mine[fields], typed[values]], axis=1)
        both = both.reset_index(drop=True).reset_index(names="_row")
        joined = both.merge(stored, on=fields, how="inner", suffixes=("", "_stored"))
        differs = np.zeros(len(joined), dtype=bool)
        for name in values:
            differs |= values_differ(joined[name], joined[f"{name}_stored"])
        mask[positions[joined.loc[differs, "_row"].to_numpy()]] = True
    return mask


def _file_schema(schema: pa.Schema) -> pa.Schema:
    """The store's schema as its data files hold it (no ``brand_id``)."""
    return pa.schema([f for f in schema if f.name != PARTITION_COLUMN])


def _as_stored(
    store: CampaignStore, brand: str, rows: pd.DataFrame, schema: pa.Schema
) -> pd.DataFrame:
    """``rows``' stored columns with the values the store would hold (cast to its column types), so that a
    value compares equal to what storing it gives (``1.0`` in a text column is ``"1"``); as
    they are when they cannot be cast (:func:`check_restated` refuses that for a replacement)."""
    try:
        typed = store.file_table(brand, rows, schema).to_pandas()
    except (ContractError, KeyError, pa.ArrowException):
        return rows
    typed.index = rows.index
    return typed


def check_restated(store: CampaignStore, rows: pd.DataFrame) -> None:
    """Refuse restated rows that :func:`replace_restated` could not store, before anything is
    written (a value that does not fit the store's column type).

    Raises
    ------
    ContractError
        Naming the brand, the value and the fix.
    """
    schema = store.schema()
    if schema is None or not len(rows):
        return
    for brand, group in rows.groupby(rows[PARTITION_COLUMN].astype(str), sort=True):
        try:
            store.file_table(brand, group, _file_schema(schema))
        except ContractError as exc:
            raise ContractError(
                f"{exc}. These rows are stored already with other values and "
                "data.restated_rows: replace would write them over the stored ones, but the "
                "store's column types were fixed by its first load: correct the values, or set "
                "data.restated_rows: keep to keep the stored ones. Nothing was written.",
                exc.violations,
            ) from exc


def restated_days(rows: pd.DataFrame) -> dict[str, list[str]]:
    """Brand -> the sorted days (``YYYY-MM-DD``) of ``rows`` (the restated rows)."""
    days = pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%d")
    return {
        str(brand): sorted(set(group))
        for brand, group in days.groupby(rows[PARTITION_COLUMN].astype(str), sort=True)
    }


@dataclass
class RestateResult:
    """What :func:`replace_restated` stored."""

    #: Rows whose stored values were replaced.
    rows_replaced: int = 0
    #: Brand -> the days (``YYYY-MM-DD``) of those rows.
    days: dict[str, list[str]] = field(default_factory=dict)
    #: The files written (one per brand).
    files: list[Path] = field(default_factory=list)


def replace_restated(store: CampaignStore, rows: pd.DataFrame) -> RestateResult:
    """Store the new values of the rows the store holds with other values.

    Under the store's append lock, the rows :func:`stored_differently` finds are written over
    the stored ones: per brand, the files that may hold their days are rewritten as one file
    with the new values (:func:`tabtune.data.compaction.restate`). A reader sees a brand's old
    values or its new ones, never a mix within a file, and a crash leaves one or the other
    (the next append or replacement finishes the rewrite). Rows whose key is not stored, and
    stored rows with the same values, are left alone (append the former).

    Parameters
    ----------
    store : CampaignStore
    rows : pandas.DataFrame
        Validated campaign rows (:func:`~tabtune.data.schema.validate_campaigns`) with the
        store's columns.

    Returns
    -------
    RestateResult

    Raises
    ------
    ContractError
        The rows cannot be cast to the store's file schema. Nothing is written.
    TabTuneInputError
        The rows' brands' folders are damaged (:meth:`CampaignStore.check
        <tabtune.data.store.CampaignStore.check>`). Nothing is written.
    """
    result = RestateResult()
    schema = store.schema()
    if schema is None or not len(rows):
        return result
    file_schema = _file_schema(schema)
    keys = [k for k in key_columns(rows.columns) if k in file_schema.names]
    brands = sorted(rows[PARTITION_COLUMN].astype(str).unique())
    with locking.exclusive(store.root):
        store.require_sound(brands)
        for brand in brands:  # a merge or rewrite cut short: finished (or undone) first
            compaction.finish(store.partition_dir(brand))
        changed = rows[stored_differently(store, rows)]
        by_brand = changed.groupby(changed[PARTITION_COLUMN].astype(str), sort=True)
        tables = {b: (store.file_table(b, g, file_schema), g["date"]) for b, g in by_brand}
        for brand, (table, dates) in tables.items():  # every cast checked before a write
            folder = store.partition_dir(brand)
            days = sorted({f"{d:%Y%m%d}" for d in pd.DatetimeIndex(dates)})
            files = [f for f in store.files(brand) if file_may_hold(f, days)]
            result.files.append(compaction.restate(folder, files, table, keys, parquet_bytes))
    result.rows_replaced, result.days = len(changed), restated_days(changed)
    return result
