"""Input handling of the estimators: X, y and weights, column names, time order.

Tables are DataFrames with string column names or float64 arrays (columns ``x0, x1, ...``);
scikit-learn's ``validate_data`` records ``n_features_in_`` and ``feature_names_in_`` on the
estimator.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from tabtune.boosting.encoding import Table, column_values
from tabtune.errors import TabTuneInputError

__all__ = [
    "array_names",
    "check_columns_exist",
    "check_same_columns",
    "SMALL_WEIGHT_MEAN",
    "check_weight",
    "check_X",
    "check_y",
    "drop_zero_weights",
    "first_string_column",
    "time_order",
    "warn_other_groups",
]

logger = logging.getLogger("tabtune")

#: Strategies whose trees (or refitted leaves) apply to every row, its brand's or not.
_OWN_TREES = frozenset({"refit", "continue", "refit+continue", "scratch"})

#: (adapted groups, other groups) already warned about in this process.
_WARNED_GROUPS: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()


def check_X(estimator: BaseEstimator, X: Any, *, reset: bool) -> Table:
    """A DataFrame with string column names, or a float64 array (columns x0, x1, ...).

    ``reset`` records the columns on ``estimator`` (fit); otherwise X is checked against
    them (predict): an array given to a model fitted on a DataFrame is read positionally
    under the fitted names.
    """
    if isinstance(X, pd.DataFrame):
        texts = [isinstance(c, str) for c in X.columns]
        if any(texts) and not all(texts):
            other = next(c for c, text in zip(X.columns, texts, strict=True) if not text)
            named = next(c for c, text in zip(X.columns, texts, strict=True) if text)
            raise TabTuneInputError(
                f"X's column names mix text and other types ({other!r} beside {named!r}): "
                "scikit-learn reads such names as none at all, so columns could not be found "
                "by name; fix: X.columns = X.columns.astype(str)"
            )
        # fitted on an array: a frame is read by position, as scikit-learn, LightGBM and
        # XGBoost do (with scikit-learn's warning); it was refused for lacking "x0", "x1"
        unnamed = not reset and getattr(estimator, "n_features_in_", None) is not None
        if not all(texts) or (unnamed and getattr(estimator, "feature_names_in_", None) is None):
            X = X.set_axis([f"x{i}" for i in range(X.shape[1])], axis=1)
        X = _named_columns(estimator, X, reset)
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        if X.shape[0] == 0:
            raise TabTuneInputError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
            )
        if X.shape[1] == 0:
            raise TabTuneInputError(
                f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
            )
        return X
    names = getattr(estimator, "feature_names_in_", None)
    if not reset and names is not None:
        # Fitted on a DataFrame: read an array positionally under the fitted names.
        validate_data(estimator, X, reset=False, skip_check_array=True)
        array = check_array(X, dtype=None, ensure_all_finite=False)
        return pd.DataFrame(array, columns=list(names))
    try:
        return validate_data(
            estimator, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan"
        )
    except ValueError as exc:
        string_column = first_string_column(X)
        if string_column is None:
            raise
        index, value = string_column
        raise TabTuneInputError(
            f"X is a NumPy array (or a list) and its column {index} holds strings (e.g. "
            f"{value!r}); arrays must be numeric. Pass a pandas DataFrame instead (tabtune "
            "encodes string and categorical columns itself; in a Pipeline, "
            "set_output(transform='pandas') on the transformer before it), or encode column "
            f"{index} first (e.g. OrdinalEncoder)"
        ) from exc


def _named_columns(estimator: BaseEstimator, X: pd.DataFrame, reset: bool) -> pd.DataFrame:
    """X, refused when it names a column twice (narwhals' DuplicateError escaped before).
    Another order of the fitted columns stays refused, as scikit-learn refuses it."""
    twice = sorted({str(c) for c in X.columns[X.columns.duplicated()]})
    if twice:
        raise TabTuneInputError(f"X has column(s) {twice} more than once; give each one name")
    return X


def first_string_column(X: Any) -> tuple[int, str] | None:
    """The first column of an array-like that holds a string, with one such value (or None).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_columns)

    Returns
    -------
    tuple of (int, str) or None
        The column's 0-based index and its first string value.
    """
    try:
        array = np.asarray(X, dtype=object)
    except (TypeError, ValueError):  # ragged rows: not ours to explain
        return None
    if array.ndim != 2:
        return None
    for index in range(array.shape[1]):
        for value in array[:, index]:
            if isinstance(value, str | np.str_ | bytes):
                return index, str(value)
    return None


def check_y(estimator_name: str, y: Any, n_rows: int) -> np.ndarray:
    """The target as a 1-d array of ``n_rows`` values."""
    if y is None:
        raise TabTuneInputError(
            f"{estimator_name} requires y to be passed, but the target y is None."
        )
    y = column_or_1d(np.asarray(y) if not isinstance(y, pd.Series) else y.to_numpy(), warn=True)
    if y.shape[0] != n_rows:
        raise TabTuneInputError(
            f"X has {n_rows} rows but y has {y.shape[0]}: they must have the same length"
        )
    return y


SMALL_WEIGHT_MEAN = 0.1
"""Sample weights of a smaller mean (over the rows weighted > 0) are warned about."""


def check_weight(sample_weight: Any, n_rows: int) -> np.ndarray | None:
    """Sample weights as float64 (a scalar repeated), finite, non-negative, not all zero."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n_rows, float(w))
    if w.ndim != 1 or w.shape[0] != n_rows:
        raise TabTuneInputError(
            f"sample_weight has shape {w.shape}; expected ({n_rows},), one weight per row"
        )
    if not np.isfinite(w).all() or (w < 0).any():
        raise TabTuneInputError("sample_weight must hold finite, non-negative numbers")
    if not (w > 0).any():
        raise TabTuneInputError(
            "Sample weights must contain at least one non-zero number: all sample weights are zero"
        )
    mean = float(w[w > 0].mean())
    if mean < SMALL_WEIGHT_MEAN:
        warnings.warn(
            f"sample_weight averages {mean:.3g}: LightGBM and XGBoost read weights as evidence "
            "(reg_lambda, and XGBoost's min_child_weight = min_child_samples rows of weight 1, "
            "are in weight units), so weights this small shrink every leaf toward the start "
            "and XGBoost may make no split at all; fix: rescale them to mean 1 "
            "(w / w.mean()), which keeps their ratios",
            UserWarning,
            stacklevel=4,
        )
    return w


def drop_zero_weights(
    X: Table, y: np.ndarray, w: np.ndarray | None
) -> tuple[Table, np.ndarray, np.ndarray | None]:
    """``X``, ``y`` and ``w`` without the rows of weight zero (they carry no information)."""
    if w is None or (w > 0).all():
        return X, y, w
    keep = np.flatnonzero(w > 0)
    X = X.iloc[keep] if isinstance(X, pd.DataFrame) else X[keep]
    return X, y[keep], w[keep]


def array_names(n: int) -> list[str]:
    """Column names of an ``n``-column array: ``x0, x1, ...``."""
    return [f"x{i}" for i in range(n)]


def _names(X: Table) -> list[str]:
    return list(X.columns) if isinstance(X, pd.DataFrame) else array_names(X.shape[1])


def check_same_columns(X: Table, base_columns: list[str]) -> None:
    """X must have exactly the base model's columns (in any order)."""
    mine = _names(X)
    missing = [c for c in base_columns if c not in set(mine)]
    extra = [c for c in mine if c not in set(base_columns)]
    if missing or extra:
        raise TabTuneInputError(
            "X must have the base model's columns: "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected {extra}" if extra else "")
        )


def check_columns_exist(X: Table, **columns: str | None) -> None:
    """Each named column (``group_column=...``, ``time_column=...``) that is set is in X.

    The error names a column that ends in ``__<name>``: a ColumnTransformer (or another
    transformer with ``verbose_feature_names_out=True``, the default) prefixes its output
    names with the transformer's name (``remainder__brand_id``).
    """
    listed = _names(X)
    names = set(listed)
    for name, value in columns.items():
        if value is None or value in names:
            continue
        prefixed = [c for c in listed if c.endswith(f"__{value}")]
        if prefixed:
            hint = (
                f"; X has {prefixed[0]!r}: a ColumnTransformer prefixes its output names with "
                "the transformer's name. Build it with verbose_feature_names_out=False (names "
                f"as in the input), or set {name}={prefixed[0]!r}"
            )
        elif not isinstance(X, pd.DataFrame):
            hint = (
                f"; X is an array, whose columns are named x0 .. x{len(listed) - 1}: pass a "
                "DataFrame (in a Pipeline, set_output(transform='pandas') on the transformer "
                f"before it), or name the column by position ({name}='x<index>')"
            )
        else:
            hint = (
                f" (columns: {', '.join(listed[:10])}{', ...' if len(listed) > 10 else ''}); "
                "a ColumnTransformer must pass it through (remainder='passthrough' with "
                "verbose_feature_names_out=False keeps its name)"
            )
        raise TabTuneInputError(f"{name}={value!r} is not a column of X{hint}")


def time_order(X: Table, time_column: str) -> tuple[np.ndarray | None, np.ndarray]:
    """Stable time order of the rows (None when already in order) and their time keys:
    int64 nanoseconds for datetimes, float64 for numbers."""
    values = column_values(X, time_column)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        keys = series
    else:
        try:  # ISO 8601 only: "12/11/2024" was read month-first, whichever the data meant;
            # UTC: offsets that change with daylight saving order as the instants they are
            keys = pd.to_datetime(series, format="ISO8601", utc=True)
        except (TypeError, ValueError) as exc:
            raise TabTuneInputError(
                f"time_column {time_column!r} must hold dates, datetimes or numbers; text "
                f"dates must be ISO 8601 (2024-11-12), got {_first_not_iso(series)!r} "
                f"({str(exc).splitlines()[0]}); fix: convert the column first, e.g. X[{time_column!r}] = "
                f"pd.to_datetime(X[{time_column!r}], format='%d/%m/%Y') with the format your "
                "dates use"
            ) from None
    if keys.isna().any():
        raise TabTuneInputError(f"time_column {time_column!r} has missing values")
    if pd.api.types.is_datetime64_any_dtype(keys.dtype):
        naive = keys if keys.dt.tz is None else keys.dt.tz_convert("UTC").dt.tz_localize(None)
        # int64 nanoseconds whatever the column's unit (segments' recency weights read days)
        array = naive.to_numpy().astype("datetime64[ns]").view(np.int64)
    else:
        array = keys.to_numpy(dtype=np.float64)
    if keys.is_monotonic_increasing:
        return None, array
    return np.argsort(array, kind="stable"), array


def _first_not_iso(series: pd.Series) -> Any:
    """The first value pandas does not read as ISO 8601 (for a message)."""
    for value in series.dropna():
        try:
            pd.to_datetime(value, format="ISO8601")
        except (TypeError, ValueError):
            return value
    return series.dropna().iloc[0] if series.notna().any() else None


def warn_other_groups(estimator: Any, groups: Any) -> None:
    """Warn (once per process and set of groups) when a model adapted to some brands
    (``adapted_groups_``) with trees of its own predicts rows of other brands: their rows get
    the adapted trees, while under ``global`` and ``segments`` they get the base model's
    predictions. ``tabtune predict`` serves each brand its own model."""
    adapted = getattr(estimator, "adapted_groups_", None)
    if not adapted or getattr(estimator, "strategy_", None) not in _OWN_TREES:
        return
    others = sorted({str(g) for g in pd.unique(np.asarray(groups, dtype=object))} - set(adapted))
    key = (tuple(adapted), tuple(others))
    if not others or key in _WARNED_GROUPS:
        return
    _WARNED_GROUPS.add(key)
    shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    logger.warning(
        "this model was adapted to %s (strategy %s): it predicts the rows of %s with those "
        "brands' trees; predict each brand with its own model (tabtune.pipeline.model_for_brand, "
        "as tabtune predict does) or with the base model",
        ", ".join(adapted[:5]) + ("..." if len(adapted) > 5 else ""),
        estimator.strategy_,
        shown,
    )
