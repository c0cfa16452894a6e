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

__all__ = [
    "FINGERPRINT_VERSION",
    "RESTATED_REFIT_NOTE",
    "current_fingerprint",
    "learned_rows_changed",
    "rows_fingerprint",
]

#: A champion refitted because the rows of the days it learned changed.
RESTATED_REFIT_NOTE = (
    "refitted tonight: rows of the days the champion learned changed since it learned them "
    "(restated values, or rows loaded late for those days)"
)


#: The version of :func:`rows_fingerprint`'s inputs, its prefix: a checksum of another version
#: (the features computed another way: reference bids before their per-context sums) tells
#: nothing about restated rows. Checksums without a prefix are version 1.
FINGERPRINT_VERSION = 2


def rows_fingerprint(data: TaskData) -> str:
    """A checksum of a brand's model inputs (features, target, weights): equal when a
    version learnt the very rows the brand has now, values included (``v2:<sha256>``)."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(data.X, index=False).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(data.y, dtype=np.float64).tobytes())
    if data.weight is not None:
        digest.update(np.ascontiguousarray(data.weight, dtype=np.float64).tobytes())
    return f"v{FINGERPRINT_VERSION}:{digest.hexdigest()}"


def current_fingerprint(manifest: Mapping[str, Any]) -> str | None:
    """The manifest's ``rows_fingerprint`` when it is of this version, else None (unknown)."""
    value = manifest.get("rows_fingerprint")
    prefix = f"v{FINGERPRINT_VERSION}:"
    return value if isinstance(value, str) and value.startswith(prefix) else None


def learned_rows_changed(manifest: Mapping[str, Any], data: TaskData) -> bool:
    """Whether the brand's rows of the days a version learned (up to the newest day of its
    ``data_window``) differ from the rows it learned (``rows_fingerprint``): values restated
    since (``data.restated_rows: replace``), or rows loaded late for those days. False for a
    version without a checksum of this version (:data:`FINGERPRINT_VERSION`)."""
    fingerprint = current_fingerprint(manifest)
    window = manifest.get("data_window") or [None, None]
    if fingerprint is None or window[-1] is None:
        return False
    upto = (pd.to_datetime(data.X[TIME_COLUMN]) <= pd.Timestamp(str(window[-1]))).to_numpy()
    return rows_fingerprint(data.take(upto)) != fingerprint
