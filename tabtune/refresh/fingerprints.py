"""Checksums of the rows a brand version learned: whether tonight's rows are those rows.

A version's manifest keeps ``rows_fingerprint`` (:func:`rows_fingerprint` of the brand's model
inputs when it was fitted) and ``data_window``. :func:`learned_rows_changed` compares the
brand's rows of those days now with them: a champion whose learned rows were restated (or
completed by rows loaded late) is refitted without waiting for ``refresh.refit_every_days``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tabtune.features import TIME_COLUMN, TaskData

__all__ = ["RESTATED_REFIT_NOTE", "learned_rows_changed", "rows_fingerprint"]

#: A champion refitted because the rows of the days it learned changed.
RESTATED_REFIT_NOTE = (
    "refitted tonight: rows of the days the champion learned changed since it learned them "
    "(restated values, or rows loaded late for those days)"
)


def rows_fingerprint(data: TaskData) -> str:
    """A checksum of a brand's model inputs (features, target, weights): equal when a
    version learnt the very rows the brand has now, values included."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(data.X, index=False).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(data.y, dtype=np.float64).tobytes())
    if data.weight is not None:
        digest.update(np.ascontiguousarray(data.weight, dtype=np.float64).tobytes())
    return digest.hexdigest()


def learned_rows_changed(manifest: Mapping[str, Any], data: TaskData) -> bool:
    """Whether the brand's rows of the days a version learned (up to the newest day of its
    ``data_window``) differ from the rows it learned (``rows_fingerprint``): values restated
    since (``data.restated_rows: replace``), or rows loaded late for those days. False for a
    version without a checksum."""
    fingerprint = manifest.get("rows_fingerprint")
    window = manifest.get("data_window") or [None, None]
    if fingerprint is None or window[-1] is None:
        return False
    upto = (pd.to_datetime(data.X[TIME_COLUMN]) <= pd.Timestamp(str(window[-1]))).to_numpy()
    return rows_fingerprint(data.take(upto)) != fingerprint
