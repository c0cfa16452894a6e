"""XGBoost parameters it does not use: ``backend_params`` keys it would ignore in silence.

LightGBM refuses a parameter it does not know; XGBoost takes any key and says
"Parameters: { ... } are not used" only at ``verbosity >= 1`` (tabtune trains at 0). A
misspelt key (``colsample_bylevl``) or a LightGBM one (``bagging_fraction``) then did nothing
while the user believed it set (red-team of the Python API). :func:`check_used` trains one
round on four rows with the parameters under each objective tabtune uses and reads that
warning: a key is refused only when no objective uses it (``model.backend_params`` is shared
by every task: ``tweedie_variance_power`` is used by the bid task's objective, not by the
budget task's). The answer is kept per parameter set. On CUDA nothing is checked (the probe
runs on the CPU, where GPU-only keys go unused).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xgboost as xgb

from tabtune.errors import TabTuneInputError

__all__ = ["check_used", "unused_params"]

_UNUSED = re.compile(r"Parameters: \{(.*?)\} (?:are|is) not used", re.S)
#: Parameter set -> the keys XGBoost did not use.
_CHECKED: dict[str, tuple[str, ...]] = {}
#: Keys the probe leaves out: they index the features, and the probe has one.
_BY_FEATURE = ("monotone_constraints", "interaction_constraints", "feature_weights")


#: The objectives of tabtune's tasks, as XGBoost names them (multiclass with 3 classes).
_OBJECTIVES = (
    "reg:squarederror",
    "reg:absoluteerror",
    "count:poisson",
    "reg:tweedie",
    "binary:logistic",
    "multi:softprob",
)


def unused_params(native: Mapping[str, Any]) -> list[str]:
    """The keys of ``native`` XGBoost uses under none of tabtune's objectives (empty when a
    probe fails)."""
    key = repr(sorted((str(k), repr(v)) for k, v in native.items()))
    if key not in _CHECKED:
        unused: set[str] | None = None
        for objective in _OBJECTIVES:
            found = set(_probe(native, objective))
            unused = found if unused is None else unused & found
        _CHECKED[key] = tuple(sorted(unused or ()))
    return list(_CHECKED[key])


def _probe(native: Mapping[str, Any], objective: str) -> list[str]:
    drop = {*_BY_FEATURE, "eval_metric", "num_class", "objective"}
    params = {k: v for k, v in native.items() if k not in drop}
    params.update(verbosity=1, device="cpu", nthread=1, objective=objective)
    if objective.startswith("multi:"):
        params["num_class"] = 3
    data = xgb.DMatrix(np.zeros((4, 1)), label=np.array([0.0, 1.0, 0.0, 1.0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            xgb.train(params, data, num_boost_round=1)
        except xgb.core.XGBoostError:
            return []  # a value XGBoost refuses: its own error comes at the real fit
    found: list[str] = []
    for warning in caught:
        match = _UNUSED.search(str(warning.message))
        if match:
            found += re.findall(r'"([^"]+)"', match.group(1))
    return found


def check_used(native: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    """Refuse ``backend_params`` keys (``extra``) that XGBoost would not use.

    Raises
    ------
    TabTuneInputError
        Naming the keys and the fix.
    """
    if not extra or str(native.get("device", "cpu")).startswith("cuda"):
        return
    unused = sorted(k for k in unused_params(native) if k in extra)
    if unused:
        raise TabTuneInputError(
            f"backend_params sets {unused}, which xgboost does not use (misspelt, or another "
            "library's name?); see xgboost's parameter list"
        )
