"""Segment offsets: a brand's nested categorical segments, each at its own shrunk level.

Strategy ``segments`` serves a brand with the base model's trees as they are and its level
offset (as ``global``), then splits the brand's rows by its categorical columns nested in
schema order (say ``channel``, then ``channel | audience``, then ``channel | audience |
device``). At each depth every segment gets an offset on the link scale relative to the
previous depth's prediction, shrunk by a random-effects (DerSimonian-Laird) estimate of how
much the segments of that depth really differ (:func:`fit_segment_offsets`). A row is served
with the offset of its deepest segment seen in training (:meth:`SegmentOffsets.lookup`; an
unseen segment falls back to its parent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabtune.boosting.encoding import FeatureSchema

__all__ = [
    "MAX_SEGMENT_LEVELS",
    "SEGMENT_HALF_LIFE_DAYS",
    "SegmentOffsets",
    "fit_segment_offsets",
    "recency_weights",
    "segment_codes",
    "segment_columns",
    "variance_power",
]

#: Categorical columns with more levels than this do not split a brand into segments.
MAX_SEGMENT_LEVELS = 64
#: Half-life of a row's weight in the segment estimate, in days before the brand's newest
#: row: a segment's level drifts (a channel's bid strategy, its audience), so recent rows say
#: more about it than old ones (docs/transfer-experiments.md: 60 days against none and 180).
SEGMENT_HALF_LIFE_DAYS = 60.0
_NS_PER_DAY = 86_400e9
#: Code of a missing (or unknown) category in a segment key.
MISSING = -1
_TINY = 1e-12


@dataclass(frozen=True, eq=False)
class SegmentOffsets:
    """One brand's segment offsets, depth by depth.

    Parameters
    ----------
    columns : tuple of str
        The segment columns, in schema order: depth ``d`` splits by the first ``d``.
    keys : tuple of ndarray
        Per depth ``d`` (1..len(columns)): int64 array of shape (m_d, d), the category codes
        of each stored segment (:data:`MISSING` for a missing category).
    values : tuple of ndarray
        Per depth: float64 array of shape (m_d,), each segment's total offset on the link
        scale (its own step plus its parents'; the brand's level offset not included).
        Segments whose step is 0 are not stored: they take their parent's offset anyway.
    """

    columns: tuple[str, ...]
    keys: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]

    @property
    def is_empty(self) -> bool:
        """Whether no segment has an offset (every row gets 0)."""
        return not any(len(v) for v in self.values)

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Each row's offset: the one of its deepest stored segment (0 when none).

        Parameters
        ----------
        codes : ndarray of shape (n, len(columns))
            The rows' category codes of :attr:`columns` (:func:`segment_codes`).
        """
        codes = np.asarray(codes, dtype=np.int64).reshape(len(codes), len(self.columns))
        out = np.zeros(len(codes))
        for depth, (keys, values) in enumerate(zip(self.keys, self.values, strict=True), 1):
            if not len(values) or not len(codes):
                continue
            found = _rows_in(keys, codes[:, :depth])
            hit = found >= 0
            out[hit] = values[found[hit]]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (floats round-trip exactly through ``json``)."""
        return {
            "columns": list(self.columns),
            "depths": [
                {"keys": k.tolist(), "values": v.tolist()}
                for k, v in zip(self.keys, self.values, strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentOffsets:
        """Inverse of :meth:`to_dict`."""
        columns = tuple(str(c) for c in data["columns"])
        depths = list(data["depths"])
        if len(depths) != len(columns):
            raise ValueError("segment offsets need one depth per segment column")
        keys = tuple(
            np.asarray(d["keys"], dtype=np.int64).reshape(-1, i + 1) for i, d in enumerate(depths)
        )
        values = tuple(np.asarray(d["values"], dtype=np.float64) for d in depths)
        if any(len(k) != len(v) for k, v in zip(keys, values, strict=True)):
            raise ValueError("segment offsets need one value per segment key")
        return cls(columns, keys, values)


def _rows_in(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Position of each of ``rows`` among the rows of ``table`` (-1: not there)."""
    both = np.vstack([table, rows])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    slot = np.full(int(inverse.max()) + 1, -1, dtype=np.int64)
    slot[inverse[: len(table)]] = np.arange(len(table))
    return slot[inverse[len(table) :]]


def segment_columns(schema: FeatureSchema) -> tuple[str, ...]:
    """The columns that split a brand into segments: the schema's categorical columns with
    2..:data:`MAX_SEGMENT_LEVELS` levels, in schema order."""
    return tuple(
        name
        for name in schema.columns
        if name in schema.vocabularies and 2 <= len(schema.vocabularies[name]) <= MAX_SEGMENT_LEVELS
    )


def segment_codes(
    matrix: np.ndarray | pd.DataFrame,
    schema_columns: Sequence[str],
    columns: Sequence[str],
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """The category codes of ``columns`` in an encoded matrix, as segment keys.

    Parameters
    ----------
    matrix : ndarray or DataFrame
        Encoded rows: a matrix whose first columns are ``schema_columns``, or (backends that
        predict from columns) a DataFrame with a column per name.
    schema_columns : sequence of str
    columns : sequence of str
        The segment columns.
    rows : ndarray of int, optional
        Rows to take (default: all).

    Returns
    -------
    ndarray of int64, shape (n, len(columns))
        NaN codes (missing or unknown categories) as :data:`MISSING`.
    """
    if isinstance(matrix, pd.DataFrame):
        values = [np.asarray(matrix[name], dtype=np.float64) for name in columns]
    else:
        values = [matrix[:, list(schema_columns).index(name)] for name in columns]
    if rows is not None:
        values = [v[rows] for v in values]
    n = len(values[0]) if values else (len(matrix) if rows is None else len(rows))
    out = np.full((n, len(columns)), MISSING, dtype=np.int64)
    for j, v in enumerate(values):
        known = ~np.isnan(v)
        out[known, j] = v[known].astype(np.int64)
    return out


def recency_weights(times: np.ndarray | None) -> np.ndarray | None:
    """``0.5 ** (age / SEGMENT_HALF_LIFE_DAYS)`` per row, ``age`` its days before the newest
    of ``times`` (int64 nanoseconds, as :func:`~tabtune.estimators.inputs.time_order` gives
    datetimes); None (no weighting) without times or for numeric (float) time keys."""
    if times is None or not len(times) or not np.issubdtype(np.asarray(times).dtype, np.integer):
        return None
    keys = np.asarray(times, dtype=np.int64)
    age_days = (keys.max() - keys).astype(np.float64) / _NS_PER_DAY
    return np.asarray(0.5 ** (age_days / SEGMENT_HALF_LIFE_DAYS), dtype=np.float64)


def variance_power(objective: str, extra: Mapping[str, Any]) -> float:
    """The variance power ``p`` (Var y = phi mu^p / w) of a log-link objective: 1 for
    Poisson, ``tweedie_variance_power`` of the backend parameters for Tweedie (default 1.5,
    as in LightGBM and XGBoost)."""
    if objective == "poisson":
        return 1.0
    return float(extra.get("tweedie_variance_power", 1.5))


def _dersimonian_laird(r: np.ndarray, se2: np.ndarray, ok: np.ndarray) -> float:
    """DerSimonian-Laird between-segment variance ``tau2`` of effects ``r`` with sampling
    variances ``se2`` (segments where ``ok``; 0 with fewer than two)."""
    m = int(np.count_nonzero(ok))
    if m < 2:
        return 0.0
    wi = np.where(ok, 1.0 / np.maximum(se2, _TINY), 0.0)
    s1, s2 = float(np.sum(wi)), float(np.sum(wi**2))
    rbar = float(np.sum(wi * r)) / s1
    q = float(np.sum(wi * (r - rbar) ** 2))
    denominator = s1 - s2 / s1
    if denominator <= 0:
        return 0.0
    return max(0.0, (q - (m - 1)) / denominator)


def _depth_step(
    link: str,
    y: np.ndarray,
    mu: np.ndarray,
    w: np.ndarray,
    inverse: np.ndarray,
    known: np.ndarray,
    p: float,
) -> np.ndarray:
    """Each segment's shrunk step at one depth (see :func:`fit_segment_offsets`); segments
    not ``known`` (a missing category) get none and do not count in ``tau2``."""
    m = len(known)
    n = len(y)
    if link == "log":
        mu = np.maximum(mu, _TINY)
        phi = float(np.sum(w * (y - mu) ** 2 / mu**p)) / max(n - 1, 1)
        observed = np.bincount(inverse, weights=w * y, minlength=m)
        expected = np.bincount(inverse, weights=w * mu, minlength=m)
        spread = np.bincount(inverse, weights=w * mu**p, minlength=m)
        ok = (observed > 0) & (expected > 0) & known
        r = np.where(ok, np.log(np.where(ok, observed, 1.0) / np.where(ok, expected, 1.0)), 0.0)
        se2 = phi * spread / np.maximum(expected, _TINY) ** 2
    else:
        sigma2 = float(np.sum(w * (y - mu) ** 2)) / max(n - 1, 1)
        total = np.bincount(inverse, weights=w, minlength=m)
        residual = np.bincount(inverse, weights=w * (y - mu), minlength=m)
        ok = (total > 0) & known
        r = np.where(ok, residual / np.where(ok, total, 1.0), 0.0)
        se2 = sigma2 / np.maximum(total, _TINY)
    tau2 = _dersimonian_laird(r, se2, ok)
    if tau2 <= 0.0:
        return np.zeros(m)
    return np.where(ok, r * tau2 / (tau2 + se2), 0.0)


def fit_segment_offsets(
    link: str,
    y: np.ndarray,
    prediction: np.ndarray,
    weight: np.ndarray | None,
    codes: np.ndarray,
    columns: Sequence[str],
    power: float = 1.5,
) -> SegmentOffsets:
    """Nested segment offsets of one brand's rows, each depth shrunk by DerSimonian-Laird.

    At depth ``d`` the rows are split by their first ``d`` segment columns; with ``mu`` the
    prediction so far (``prediction`` with the offsets of the depths above), each segment
    ``s`` gets, on a log link (Tweedie power ``p``), ``r_s = log(sum w y / sum w mu)`` with
    sampling variance ``se2_s = phi sum(w mu^p) / (sum w mu)^2``, where ``phi = sum(w (y -
    mu)^2 / mu^p) / (n - 1)``; on an identity link ``r_s = sum w (y - mu) / sum w`` with
    ``se2_s = sigma2 / sum w``, ``sigma2 = sum(w (y - mu)^2) / (n - 1)``. The between-segment
    variance ``tau2 = max(0, (Q - (m - 1)) / (S1 - S2 / S1))`` (DerSimonian-Laird, weights
    ``1 / se2``, over the ``m`` segments with positive sums) shrinks each step to ``r_s tau2 /
    (tau2 + se2_s)``: 0 when the segments differ no more than their noise (or ``m < 2``).
    A segment whose category at that depth is missing gets no step and does not count: its
    rows keep their parent's offset, as rows of a category unknown at serving do (both are
    :data:`MISSING` in the codes).

    Parameters
    ----------
    link : {"log", "identity"}
        The objective's link (:func:`~tabtune.transfer.context.objective_link`).
    y : ndarray
    prediction : ndarray
        Predictions on the rows before any segment offset (the base's, with the brand's
        level offset), on the response scale.
    weight : ndarray or None
    codes : ndarray of shape (n, len(columns))
        The rows' segment codes (:func:`segment_codes`).
    columns : sequence of str
        The segment columns, in nesting order.
    power : float, default 1.5
        Variance power of a log link (:func:`variance_power`).

    Returns
    -------
    SegmentOffsets
    """
    if link not in ("log", "identity"):
        raise ValueError(f"segment offsets need a log or identity link, not {link!r}")
    y = np.asarray(y, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.int64).reshape(len(y), len(columns))
    total = np.zeros(len(y))
    keys: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for depth in range(1, len(columns) + 1):
        if not len(y):
            keys.append(np.empty((0, depth), dtype=np.int64))
            values.append(np.empty(0))
            continue
        unique, inverse = np.unique(codes[:, :depth], axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        mu = prediction * np.exp(total) if link == "log" else prediction + total
        # A missing category gets no segment of its own: its rows keep their parent's
        # offset, as an unknown category (the same code at serving) does.
        known = unique[:, depth - 1] != MISSING
        step = _depth_step(link, y, mu, w, inverse, known, power)
        parent = np.zeros(len(unique))
        parent[inverse] = total
        total = total + step[inverse]
        moved = step != 0.0
        keys.append(unique[moved])
        values.append(parent[moved] + step[moved])
    return SegmentOffsets(tuple(columns), tuple(keys), tuple(values))
