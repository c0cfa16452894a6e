"""The feature schema: which columns are model features, their kinds and frozen vocabularies.

A :class:`FeatureSchema` is learnt once, at pretraining, and then inherited by every model
adapted from it. It turns a table into the float matrix both backends consume:

- numeric columns are copied as float64 (missing values become NaN);
- categorical columns (object, pandas ``str`` and ``category`` dtypes) become stable integer
  codes into a vocabulary frozen at pretraining, stored as floats; a missing value or a level
  the vocabulary does not know becomes NaN, which both libraries route as *missing*.

Because the libraries only ever see integer codes, LightGBM never builds a
``pandas_categorical`` mapping that a brand's frame could silently replace, and XGBoost never
sees a category level it was not told about.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from tabtune.errors import TabTuneInputError

__all__ = [
    "FeatureSchema",
    "MatrixOrder",
    "Table",
    "column_values",
    "is_categorical_dtype",
    "json_scalar",
    "table_columns",
]

#: A table: a pandas DataFrame, or a 2-D float array whose columns are named ``x0, x1, ...``.
Table: TypeAlias = pd.DataFrame | np.ndarray

#: Memory layout of an encoded matrix: column-major (``"F"``) or row-major (``"C"``).
MatrixOrder: TypeAlias = Literal["C", "F"]

NUMERIC = "numeric"
CATEGORICAL = "categorical"


def table_columns(X: Table) -> list[str]:
    """Column names of a table (``x0, x1, ...`` for an array)."""
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(X.shape[1])]


def column_values(X: Table, name: str) -> pd.Series | np.ndarray:
    """One column of a table, by name, without copying."""
    if isinstance(X, pd.DataFrame):
        return X[name]
    return X[:, int(name[1:])]


def is_categorical_dtype(dtype: Any) -> bool:
    """True for the dtypes tabtune treats as categorical: object, string and category."""
    if isinstance(dtype, pd.CategoricalDtype):
        return True
    if pd.api.types.is_bool_dtype(dtype):
        return False
    return pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)


def _is_datetime_like(dtype: Any) -> bool:
    return (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    )


def json_scalar(value: Any, column: str) -> str | int | float | bool:
    """A vocabulary entry as a JSON scalar (numpy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    raise TabTuneInputError(
        f"categorical column {column!r} holds a value of type {type(value).__name__} "
        f"({value!r}); categories must be strings or numbers"
    )


#: What ``pandas.api.types.infer_dtype`` calls an object column that holds numbers only.
_NUMBER_KINDS = frozenset({"integer", "floating", "mixed-integer-float", "decimal"})


def holds_numbers_only(series: pd.Series) -> bool:
    """Whether an ``object`` column holds numbers only (besides missing values), e.g. read
    from JSON or holding ``None`` or ``Decimal``: a numeric column, not a categorical one."""
    if not pd.api.types.is_object_dtype(series.dtype):
        return False
    return pd.api.types.infer_dtype(series, skipna=True) in _NUMBER_KINDS


def _holds_flags_only(series: pd.Series) -> bool:
    """Whether an ``object`` column holds True/False only (besides missing values): a bool
    column that went through an object frame (``X.iloc[0].to_frame().T``)."""
    if not pd.api.types.is_object_dtype(series.dtype):
        return False
    return pd.api.types.infer_dtype(series, skipna=True) == "boolean"


#: Marks "no twin" (None can be a known value).
_MISSING = object()

logger = logging.getLogger("tabtune")


def same_text_twins(unknown: Sequence[Any], known: Sequence[Any]) -> list[tuple[Any, Any]]:
    """Pairs (given, known) of values that differ in type only (``7`` and ``"7"``): a given
    value that no known one equals but one reads the same as text."""
    if not len(unknown) or not len(known):
        return []
    by_text: dict[str, Any] = {}
    for value in known:
        by_text.setdefault(_as_text(value), value)
    pairs = []
    for value in unknown:
        twin = by_text.get(_as_text(value), _MISSING)
        if twin is not _MISSING and type(twin) is not type(value) and _converts(value, twin):
            pairs.append((value, twin))
    return pairs


def _converts(value: Any, twin: Any) -> bool:
    """Whether the conversion :func:`type_twin_error` suggests turns ``value`` into ``twin``
    (``1`` into ``"01"`` it does not: those are left as unseen)."""
    try:
        if isinstance(twin, str):
            whole = isinstance(value, float | np.floating) and float(value).is_integer()
            return str(value) == twin or (whole and str(int(value)) == twin)
        return type(twin)(value) == twin
    except (TypeError, ValueError, OverflowError):
        return False


def _as_text(value: Any) -> str:
    """``value`` as text, a number as its shortest decimal (``1.0``, ``1`` and ``"1"`` all
    read ``"1"``: ids read as floats after a blank cell in a CSV)."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    text = value.strip() if isinstance(value, str) else None
    try:
        number = float(text if text is not None else value)
    except (TypeError, ValueError):
        return str(value)
    if text is not None and text.lstrip("+-").isdigit():
        return str(int(text))  # exact, beyond 2**53 too
    if not np.isfinite(number):
        return str(value)
    return str(int(number)) if number.is_integer() else repr(number)


#: (column, given, known) spelling twins already warned about in this process.
_SPELLING_WARNED: set[tuple[str, str, str]] = set()


def warn_spelling_twins(name: str, unknown: Sequence[Any], known: Sequence[Any]) -> None:
    """Warn (once per process) about given text levels the model does not know that differ
    from one it knows only in case or spaces (``Search`` for ``search``): they are predicted
    as unseen levels, which a typing difference rarely means."""
    folded: dict[str, str] = {}
    for value in known:
        if isinstance(value, str):
            folded.setdefault(" ".join(value.split()).casefold(), value)
    for value in unknown:
        if not isinstance(value, str):
            continue
        twin = folded.get(" ".join(value.split()).casefold())
        if twin is not None and (name, value, twin) not in _SPELLING_WARNED:
            _SPELLING_WARNED.add((name, value, twin))
            logger.warning(
                "column %r: %r is not a level the model learnt, which knows %r (another case or "
                "spacing): its rows are predicted as an unseen level; if they mean the same, "
                "spell them %r (e.g. X[%r] = X[%r].replace({%r: %r}))",
                name, value, twin, twin, name, name, value, twin,
            )  # fmt: skip


def type_twin_error(name: str, pairs: list[tuple[Any, Any]]) -> TabTuneInputError:
    """The error for values that match the model's only as text (:func:`same_text_twins`)."""
    given, known = pairs[0]
    to = "str" if isinstance(known, str) else type(known).__name__
    if isinstance(known, str) and isinstance(given, float | np.floating) and str(given) != known:
        to = '"Int64").astype(str'  # 7.0 as text is "7.0", not the "7" the model knows
    return TabTuneInputError(
        f"column {name!r} holds {given!r} ({type(given).__name__}) where the model knows "
        f"{known!r} ({type(known).__name__}); {len(pairs)} value(s) differ from the model's "
        f"in type only and would be read as unseen. Convert the column, e.g. "
        f"X[{name!r}] = X[{name!r}].astype({to})"
    )


#: Columns already warned about by :func:`_note_decimal_text` in this process.
_DECIMAL_TEXT_WARNED: set[str] = set()


def _note_decimal_text(name: str, levels: Sequence[Any]) -> None:
    """Warn when every level of a text column is a number and some have decimals: a measure
    read as text (``read_csv(dtype=str)``) becomes a categorical feature, one level per
    value. Whole numbers are left alone: codes and ids are often written that way."""
    if name in _DECIMAL_TEXT_WARNED or len(levels) < 2:
        return
    if not all(isinstance(v, str) for v in levels):
        return
    numbers = pd.to_numeric(pd.Series(levels), errors="coerce")
    if numbers.notna().all() and (numbers % 1 != 0).any():
        _DECIMAL_TEXT_WARNED.add(name)  # once per process and column
        logger.warning(
            "column %r holds text that reads as numbers (%r, ...): it is a categorical "
            "feature with %d levels; if it is a measure, convert it first "
            "(X[%r] = pd.to_numeric(X[%r]))",
            name, levels[0], len(levels), name, name,
        )  # fmt: skip


def _sorted_levels(levels: Sequence[Any]) -> list[Any]:
    # Sort within each type so that mixed object columns still get a deterministic order.
    return sorted(levels, key=lambda v: (type(v).__name__, v))


@dataclass(frozen=True)
class FeatureSchema:
    """Model features in order, their kinds, and the frozen category vocabularies.

    Parameters
    ----------
    columns : tuple of str
        Raw model feature columns, in model order.
    vocabularies : dict
        ``column -> tuple of levels`` for every categorical column; a level's code is its
        position. Columns not in this mapping are numeric.
    """

    columns: tuple[str, ...]
    vocabularies: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_table(cls, X: Table, exclude: Sequence[str] = ()) -> FeatureSchema:
        """Learn the schema of a table.

        Parameters
        ----------
        X : DataFrame or ndarray
            The pretraining table.
        exclude : sequence of str
            Columns that are not raw model features (the group and time columns).

        Returns
        -------
        FeatureSchema

        Raises
        ------
        TabTuneInputError
            On datetime-like feature columns or unusable category values.
        """
        excluded = set(exclude)
        columns = [c for c in table_columns(X) if c not in excluded]
        if not columns:
            raise TabTuneInputError(
                "X has no feature columns besides "
                f"{sorted(excluded)}; at least 1 feature is required"
            )
        if not isinstance(X, pd.DataFrame):
            return cls(tuple(columns))
        vocabularies: dict[str, tuple[Any, ...]] = {}
        for name in columns:
            series = X[name]
            dtype = series.dtype
            if _is_datetime_like(dtype):
                raise TabTuneInputError(
                    f"column {name!r} has dtype {dtype}; datetime columns other than "
                    "time_column are not model features: derive numeric features from it "
                    "(day of week, days since start, ...) or pass it as time_column"
                )
            if isinstance(dtype, pd.CategoricalDtype):
                levels = list(dtype.categories)
            elif holds_numbers_only(series):
                continue  # numbers in an object column (JSON, None, Decimal): numeric
            elif is_categorical_dtype(dtype):
                levels = _sorted_levels(list(series.dropna().unique()))
                _note_decimal_text(name, levels)
            else:
                if pd.api.types.is_complex_dtype(dtype):
                    raise TabTuneInputError(f"column {name!r}: complex data is not supported")
                continue
            vocabularies[name] = tuple(json_scalar(v, name) for v in levels)
        return cls(tuple(columns), vocabularies)

    # -- properties ---------------------------------------------------------------------
    @property
    def categorical_indices(self) -> list[int]:
        """Positions of the categorical columns."""
        return [i for i, c in enumerate(self.columns) if c in self.vocabularies]

    def kind(self, column: str) -> str:
        """``"categorical"`` or ``"numeric"``."""
        return CATEGORICAL if column in self.vocabularies else NUMERIC

    # -- encoding -----------------------------------------------------------------------
    def encode(
        self,
        X: Table,
        rows: np.ndarray | slice | None = None,
        n_extra: int = 0,
        order: MatrixOrder = "F",
        columns: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Encode (a subset of rows of) a table into a float64 matrix.

        Parameters
        ----------
        X : DataFrame or ndarray
            Must hold every schema column (extra columns are ignored).
        rows : ndarray of int, slice or None
            Rows to take, in this order; None takes all rows as they are.
        n_extra : int
            Extra trailing columns to allocate (left uninitialised) for the caller to fill,
            e.g. brand-context features.
        order : {"F", "C"}
            Memory layout of the result.
        columns : mapping, optional
            :meth:`encode_columns` of ``X``, when the caller already has them (encoding
            several row subsets of one table encodes its columns once).

        Returns
        -------
        ndarray of shape (n_rows, n_columns + n_extra)

        Raises
        ------
        TabTuneInputError
            When a column is missing, or a numeric column holds non-numbers or infinities.
        """
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.columns if c not in X.columns]
            if missing:
                raise TabTuneInputError(
                    f"X lacks the feature columns {missing} of the model's schema"
                )
            n_total = len(X)
        else:
            n_total = X.shape[0]
        if rows is None:
            n = n_total
        elif isinstance(rows, slice):
            n = len(range(n_total)[rows])
        else:
            n = len(rows)
        out = np.empty((n, len(self.columns) + n_extra), dtype=np.float64, order=order)
        for j, name in enumerate(self.columns):
            column = self.encode_column(X, name) if columns is None else columns[name]
            if rows is None or isinstance(rows, slice):
                out[:, j] = column if rows is None else column[rows]
            elif order == "F":
                np.take(column, rows, out=out[:, j])  # gather straight into place
            else:
                out[:, j] = column[rows]
        return out

    def encode_columns(self, X: Table) -> dict[str, np.ndarray]:
        """Every schema column encoded as in :meth:`encode`, one float64 array each.

        Float64 numeric columns are returned as (read-only) views, not copies.
        """
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.columns if c not in X.columns]
            if missing:
                raise TabTuneInputError(
                    f"X lacks the feature columns {missing} of the model's schema"
                )
        return {name: self.encode_column(X, name) for name in self.columns}

    def encode_column(self, X: Table, name: str) -> np.ndarray:
        """One schema column of all rows, encoded as in :meth:`encode` (float64)."""
        vocabulary = self.vocabularies.get(name)
        values = column_values(X, name)
        if vocabulary is None:
            return _numeric_values(values, name)
        return _category_codes(values, vocabulary, name, self.vocabulary_indexes[name])

    @cached_property
    def vocabulary_indexes(self) -> dict[str, pd.Index]:
        """Each categorical column's vocabulary as a ``pandas.Index`` (a level's position is
        its code), built once: encoding a few rows would otherwise rebuild it every time."""
        return {name: pd.Index(levels) for name, levels in self.vocabularies.items()}

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "columns": [
                {"name": c, "kind": self.kind(c)}
                | ({"categories": list(self.vocabularies[c])} if c in self.vocabularies else {})
                for c in self.columns
            ]
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        """Inverse of :meth:`to_dict`."""
        columns = tuple(str(c["name"]) for c in data["columns"])
        vocabularies = {
            str(c["name"]): tuple(c["categories"])
            for c in data["columns"]
            if c["kind"] == CATEGORICAL
        }
        return cls(columns, vocabularies)


def _numeric_values(values: pd.Series | np.ndarray, name: str) -> np.ndarray:
    try:
        if isinstance(values, pd.Series):
            if holds_numbers_only(values):
                values = pd.to_numeric(values)
            elif _holds_flags_only(values):  # a bool column taken through an object frame
                values = values.where(values.notna(), np.nan).astype(np.float64)
            elif is_categorical_dtype(values.dtype):
                raise TypeError("categorical")
            array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TabTuneInputError(
            f"column {name!r} is numeric in the model's schema but holds non-numeric values "
            f"(dtype {getattr(values, 'dtype', type(values))})"
        ) from exc
    if np.isinf(array).any():
        raise TabTuneInputError(
            f"column {name!r} contains infinite values; replace them by NaN (missing) or "
            "finite numbers"
        )
    return array


def _category_codes(
    values: pd.Series | np.ndarray,
    vocabulary: tuple[Any, ...],
    name: str,
    index: pd.Index | None = None,
) -> np.ndarray:
    """Codes into ``vocabulary`` as float64; missing and unknown levels become NaN.

    ``index``: ``pd.Index(vocabulary)``, when the caller keeps it.
    """
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    dtype = values.dtype
    if values.isna().all():  # no value at all (read_csv types an empty column float64)
        return np.full(len(values), np.nan)
    if (
        vocabulary
        and all(isinstance(v, str) for v in vocabulary)
        and not (is_categorical_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
    ):
        raise TabTuneInputError(
            f"column {name!r} is categorical (string levels) in the model's schema but has "
            f"dtype {dtype}"
        )
    index = pd.Index(vocabulary) if index is None else index
    if isinstance(dtype, pd.CategoricalDtype):
        # Map the (few) categories, then index the codes: no per-row hashing.
        level_codes = index.get_indexer(dtype.categories)
        raw = values.cat.codes.to_numpy()
        used = np.zeros(len(level_codes), dtype=bool)
        used[raw[raw >= 0]] = True  # categories no row holds do not matter
        unseen = list(dtype.categories[(level_codes < 0) & used])
        twins = same_text_twins(unseen, vocabulary)
        if twins:
            raise type_twin_error(name, twins)
        warn_spelling_twins(name, unseen, vocabulary)
        lookup = np.append(level_codes, -1)  # code -1 (missing) -> -1
        codes = lookup[raw]
    else:
        raw, uniques = pd.factorize(values, use_na_sentinel=True)
        found = index.get_indexer(uniques)
        unseen = list(uniques[found < 0])
        twins = same_text_twins(unseen, vocabulary)
        if twins:
            raise type_twin_error(name, twins)
        warn_spelling_twins(name, unseen, vocabulary)
        lookup = np.append(found, -1)
        codes = lookup[raw]
    result = codes.astype(np.float64)
    result[codes < 0] = np.nan
    return result
