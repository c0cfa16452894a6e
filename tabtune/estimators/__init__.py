"""``TabTuneRegressor`` and ``TabTuneClassifier``: the scikit-learn layer.

These classes validate parameters and inputs, then call :mod:`tabtune.transfer` (pretraining
and adaptation) and :mod:`tabtune.boosting` (backends, encoding, model files). They do not
know how a library stores a category or a tree.

Modules
-------
:mod:`~tabtune.estimators.inputs`
    input handling: X, y and weights, column names, time order.
:mod:`~tabtune.estimators.importance`
    gain importance: ``feature_importances_`` per input column, ``context_importances_`` per
    brand-context feature.
:mod:`~tabtune.estimators.persistence`
    saved estimators: the manifest and the native model file.
:mod:`~tabtune.estimators.base`
    the shared estimator: parameters and their constraints, the steps of ``fit``,
    prediction, save and load.
:mod:`~tabtune.estimators.docs`
    the parameter documentation, with the table's defaults.
:mod:`~tabtune.estimators.classes`
    :class:`TabTuneRegressor`, :class:`TabTuneClassifier` and :func:`load`.
"""

from __future__ import annotations

from tabtune.estimators.base import (
    EARLY_STOPPING_WEIGHT_REASON,
    PARAMETER_CONSTRAINTS,
    expected_failed_checks,
    repeat_params,
)
from tabtune.estimators.classes import TabTuneClassifier, TabTuneRegressor, load
from tabtune.estimators.persistence import FORMAT_VERSION

__all__ = [
    "EARLY_STOPPING_WEIGHT_REASON",
    "FORMAT_VERSION",
    "PARAMETER_CONSTRAINTS",
    "TabTuneClassifier",
    "TabTuneRegressor",
    "expected_failed_checks",
    "load",
    "repeat_params",
]
