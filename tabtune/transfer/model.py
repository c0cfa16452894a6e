"""Rows of a fit call, the fitted model, and the rows encoded part by part for a model.

:class:`Rows` are the encoded-ready rows a fit call receives, :class:`FittedModel` a booster
with what it needs to encode rows for it (schema, brand context), and :class:`FitEncoding`
encodes the rows of one fit call part by part (training rows, holdout rows, all rows) with
their brand-context columns, for pretraining and adaptation alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabtune.boosting.base import Backend, BoosterParams, Layout, Matrix, Session, SessionOptions
from tabtune.boosting.encoding import FeatureSchema, Table
from tabtune.evaluation import holdout_split
from tabtune.transfer.context import (
    BrandContext,
    apply_offset,
    context_targets,
    group_ordinals,
    level_offset,
    objective_link,
    row_keys,
)
from tabtune.transfer.segments import (
    SegmentOffsets,
    fit_segment_offsets,
    recency_weights,
    segment_codes,
    segment_columns,
    variance_power,
)

__all__ = [
    "EncodedPart",
    "FitEncoding",
    "FittedModel",
    "Rows",
    "level_values",
    "padded_params",
]


@dataclass
class Rows:
    """The rows of one fit call.

    Parameters
    ----------
    X : DataFrame or ndarray
        The table, in the caller's row order.
    y : ndarray of float64
        Target; class index (0..K-1) for classifiers.
    weight : ndarray or None
        Positive sample weights (zero-weight rows already removed), or None.
    order : ndarray of int or None
        Time order of the rows (oldest first); None when the given order is the time order.
    groups : Series, ndarray or None
        The group column's values (brand ids), in the caller's row order.
    times : ndarray or None
        Sortable time keys (e.g. int64 nanoseconds) in the caller's row order, when a time
        column is known: the holdout then never splits the rows of one timestamp.
    """

    X: Table
    y: np.ndarray
    weight: np.ndarray | None = None
    order: np.ndarray | None = None
    groups: pd.Series | np.ndarray | None = None
    times: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def sorted_times(self) -> np.ndarray | None:
        """The rows' time keys in time order, or None when no time column is known."""
        if self.times is None:
            return None
        return self.times if self.order is None else self.times[self.order]

    def split(self, validation_fraction: float) -> int | None:
        """Training rows before the holdout (see :func:`~tabtune.evaluation.holdout_split`)."""
        return holdout_split(len(self), validation_fraction, self.sorted_times())

    def positions(self, start: int, stop: int) -> np.ndarray | slice:
        """Row positions of the ``start:stop`` slice of the time-ordered rows."""
        if self.order is None:
            return slice(start, stop)
        return self.order[start:stop]


@dataclass
class FittedModel:
    """A booster with everything needed to encode rows for it.

    Parameters
    ----------
    backend : Backend
    booster : object
        The native booster (never modified after creation).
    schema : FeatureSchema
    context : BrandContext or None
        Context specification and the stored per-brand table.
    params : BoosterParams
        Parameters the model's (base) trees were grown with; ``refit`` reuses them.

    Attributes
    ----------
    derived : dict
        What backend sessions derived from ``booster`` alone, kept for the next session
        (see :meth:`session`); tied to the booster object, so replacing ``booster`` voids it.
    """

    backend: Backend
    booster: Any
    schema: FeatureSchema
    context: BrandContext | None
    params: BoosterParams
    #: What sessions derived from ``booster`` alone (see :meth:`Backend.session`).
    derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def session(self, options: SessionOptions | None = None) -> Session:
        """A backend :class:`~tabtune.boosting.base.Session` of fits that start from this model.

        What it derives from the booster alone is kept on this model for later sessions.
        """
        return self.backend.session(self.booster, self.layout, self.derived, options=options)

    @property
    def layout(self) -> Layout:
        """Feature names (schema, then context) and categorical positions."""
        extra = () if self.context is None else self.context.feature_names
        return Layout((*self.schema.columns, *extra), tuple(self.schema.categorical_indices))

    def encode(self, X: Table, groups: Any = None) -> np.ndarray | pd.DataFrame:
        """Model inputs for X, with context features from the stored table.

        ``groups`` holds the group column's values (None: every group unknown). The result
        is a matrix, or a DataFrame of columns (no copy of float64 features) for backends
        that predict from columns.
        """
        context = self.context
        n_extra = 0 if context is None else context.n_features
        if self.backend.columnar_predict:
            columns = self.schema.encode_columns(X)
            if context is not None:
                levels = None if context.level_column is None else columns[context.level_column]
                values = self._context_features(len(next(iter(columns.values()))), groups, levels)
                columns.update(zip(context.feature_names, values.T, strict=True))
            return pd.DataFrame(columns, copy=False)
        matrix = self.schema.encode(X, None, n_extra=n_extra, order=self.backend.matrix_order)
        if context is not None:
            levels = level_values(context, self.schema, matrix)
            matrix[:, len(self.schema.columns) :] = self._context_features(
                matrix.shape[0], groups, levels
            )
        return matrix

    def _context_features(self, n: int, groups: Any, levels: np.ndarray | None) -> np.ndarray:
        assert self.context is not None
        if groups is None:
            return self.context.features_at(np.full(n, -1, dtype=np.intp), levels)
        return self.context.features(groups, levels)

    def predict(
        self, matrix: np.ndarray | pd.DataFrame, device: str = "cpu", groups: Any = None
    ) -> np.ndarray:
        """Response-scale predictions on encoded inputs (see :meth:`encode`).

        ``groups`` (the rows' group ids) applies the stored level offsets of brands served
        by the base trees as they are, and the segment offsets of their rows' segments
        (strategy ``segments``; looked up by the categorical codes in ``matrix``); without it
        no offset is applied.
        """
        prediction = np.asarray(
            self.backend.predict(self.booster, matrix, self.layout, device=device)
        )
        if self.context is None or groups is None:
            return prediction
        offsets = self.context.offsets_of(groups)
        segmented = self.context.segments_of(groups)
        if offsets is None and not segmented:
            return prediction
        total = np.zeros(len(prediction)) if offsets is None else np.array(offsets, dtype=float)
        for i, rows in segmented.items():
            segments = self.context.segments[i][1]
            codes = segment_codes(matrix, self.schema.columns, segments.columns, rows)
            total[rows] += segments.lookup(codes)
        return apply_offset(self.params.objective, prediction, total)


def level_values(
    context: BrandContext, schema: FeatureSchema, matrix: np.ndarray
) -> np.ndarray | None:
    """The level column's codes in an encoded ``matrix`` (None without a level column)."""
    if context.level_column is None:
        return None
    return matrix[:, schema.columns.index(context.level_column)]


@dataclass
class EncodedPart:
    """Encoded rows of one part of a fit (training rows, holdout rows or all rows)."""

    matrix: Matrix
    codes: np.ndarray | None
    #: Positions of the part's rows among the fit's rows (None: all rows, as given).
    positions: np.ndarray | slice | None = None


class FitEncoding:
    """The rows of one fit call, encoded part by part for a model layout."""

    def __init__(
        self,
        model: FittedModel,
        rows: Rows,
        n_classes: int,
        rng: np.random.Generator,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.rows = rows
        self.n_classes = n_classes
        self.rng = rng
        #: Seed of the rows' random keys (:func:`~tabtune.transfer.context.row_keys`), which
        #: deal the out-of-fold context's folds and dropout.
        self.seed = seed
        self._keys: np.ndarray | None = None
        self.codes: np.ndarray | None = None
        self.uniques: list[Any] = []
        if model.context is not None:
            codes, uniques = pd.factorize(pd.Series(rows.groups))
            self.codes = np.asarray(codes, dtype=np.int64)
            self.uniques = list(uniques)
        self._columns: dict[str, np.ndarray] | None = None

    def time_part(self, start: int, stop: int) -> EncodedPart:
        """Encode the ``start:stop`` slice of the time-ordered rows."""
        return self.part(self.rows.positions(start, stop), slice(start, stop))

    def part(
        self, positions: np.ndarray | slice | None, time_rows: slice | np.ndarray | None = None
    ) -> EncodedPart:
        """Encode the rows at ``positions`` (None: all rows, as given); ``time_rows`` says
        where they stand in time order (known for all rows)."""
        if positions is None:
            order = self.rows.order
            if order is None:
                time_rows = slice(0, len(self.rows))
            else:
                time_rows = np.empty(len(order), dtype=np.int64)
                time_rows[order] = np.arange(len(order))
        context = self.model.context
        if self._columns is None:  # every part takes its rows from the same encoded columns
            self._columns = self.model.schema.encode_columns(self.rows.X)
        matrix = self.model.schema.encode(
            self.rows.X,
            positions,
            n_extra=0 if context is None else context.n_features,
            order=self.model.backend.matrix_order,
            columns=self._columns,
        )
        return EncodedPart(
            Matrix(
                matrix,
                _take(self.rows.y, positions),
                _take(self.rows.weight, positions),
                rows=time_rows,
            ),
            _take(self.codes, positions),
            positions,
        )

    def _levels(self, part: EncodedPart) -> np.ndarray | None:
        assert self.model.context is not None
        return level_values(self.model.context, self.model.schema, part.matrix.X)

    def table(self, part: EncodedPart) -> BrandContext:
        """Context table learnt from the rows of ``part`` (its groups only)."""
        assert self.model.context is not None and part.codes is not None
        assert part.matrix.y is not None  # a fit's rows always have a target
        return self.model.context.with_table(
            part.codes,
            self.uniques,
            context_targets(part.matrix.y, self.n_classes),
            part.matrix.weight,
            self._levels(part),
        )

    def fill_out_of_fold(
        self, part: EncodedPart, dropout: float = 0.0, short_history: float = 0.0
    ) -> None:
        """Context columns of training rows, out of fold (see
        :meth:`~tabtune.transfer.context.BrandContext.out_of_fold`)."""
        context = self.model.context
        if context is None:
            return
        assert part.codes is not None and part.matrix.y is not None
        part.matrix.X[:, len(self.model.schema.columns) :] = context.out_of_fold(
            part.codes,
            len(self.uniques),
            context_targets(part.matrix.y, self.n_classes),
            part.matrix.weight,
            self._levels(part),
            self.keys() if part.positions is None else self.keys()[part.positions],
            dropout=dropout,
            short_history=short_history,
        )

    def keys(self) -> np.ndarray:
        """The rows' random keys (:func:`~tabtune.transfer.context.row_keys`), in the
        caller's row order."""
        if self._keys is None:
            assert self.codes is not None
            ordinals = group_ordinals(self.codes, self.rows.order)
            self._keys = row_keys(self.codes, self.uniques, ordinals, self.seed)
        return self._keys

    def offsets(self, part: EncodedPart, prediction: np.ndarray) -> np.ndarray | None:
        """Level offset of each group (by code) from the rows of ``part`` and the base's
        predictions on them (see :func:`level_offset`); None without a brand context."""
        context = self.model.context
        if context is None or part.codes is None:
            return None
        out = np.zeros(len(self.uniques))
        y, w = part.matrix.y, part.matrix.weight
        assert y is not None  # a fit's rows always have a target
        for code in np.unique(part.codes[part.codes >= 0]):
            at = part.codes == code
            out[code] = level_offset(
                self.model.params.objective,
                y[at],
                prediction[at],
                None if w is None else w[at],
            )
        return out

    def segments(
        self, part: EncodedPart, prediction: np.ndarray
    ) -> list[SegmentOffsets | None] | None:
        """Segment offsets of each group (by code) from the rows of ``part`` and predictions
        on them with the groups' level offsets (see
        :func:`~tabtune.transfer.segments.fit_segment_offsets`), each row's weight times its
        recency (:func:`~tabtune.transfer.segments.recency_weights`, per group); None for a
        group without rows, and None without a brand context or for objectives without a
        link."""
        model = self.model
        link = objective_link(model.params.objective)
        if model.context is None or part.codes is None or link is None:
            return None
        columns = segment_columns(model.schema)
        power = variance_power(model.params.objective, model.params.extra)
        y, w = part.matrix.y, part.matrix.weight
        assert y is not None  # a fit's rows always have a target
        out: list[SegmentOffsets | None] = [None] * len(self.uniques)
        times = self.rows.times
        if times is not None and part.positions is not None:
            times = times[part.positions]
        for code in np.unique(part.codes[part.codes >= 0]):
            at = np.flatnonzero(part.codes == code)
            codes = segment_codes(part.matrix.X, model.schema.columns, columns, at)
            weight = None if w is None else w[at]
            recency = recency_weights(None if times is None else times[at])
            if recency is not None:
                weight = recency if weight is None else weight * recency
            out[code] = fit_segment_offsets(
                link, y[at], prediction[at], weight, codes, columns, power
            )
        return out

    def segment_offsets(
        self, part: EncodedPart, segments: list[SegmentOffsets | None] | None
    ) -> np.ndarray | None:
        """Each row of ``part``'s segment offset (see :meth:`segments`; None: none)."""
        if segments is None or part.codes is None:
            return None
        out = np.zeros(len(part.codes))
        for code in np.unique(part.codes[part.codes >= 0]):
            found = segments[code] if code < len(segments) else None
            if found is None or found.is_empty:
                continue
            at = np.flatnonzero(part.codes == code)
            codes = segment_codes(part.matrix.X, self.model.schema.columns, found.columns, at)
            out[at] = found.lookup(codes)
        return out

    def fill_from_table(self, part: EncodedPart, table: BrandContext) -> None:
        """Context columns looked up in ``table``, as at serving time."""
        if self.model.context is None:
            return
        assert part.codes is not None
        table_pos = np.append(table.positions_of(self.uniques), -1)
        part.matrix.X[:, len(self.model.schema.columns) :] = table.features_at(
            table_pos[part.codes], self._levels(part)
        )


def _take(values: np.ndarray | None, rows: np.ndarray | slice | None) -> np.ndarray | None:
    """``values`` at ``rows`` (None: all of them; no values: None)."""
    if values is None or rows is None:
        return values
    return values[rows]


def padded_params(params: BoosterParams, layout: Layout) -> BoosterParams:
    """Monotone constraints (given per schema column) padded with 0 for context features."""
    constraints = params.monotone_constraints
    if constraints is None or len(constraints) == len(layout.names):
        return params
    return params.replace(
        monotone_constraints=tuple(constraints) + (0,) * (len(layout.names) - len(constraints))
    )
