"""tabtune: pretrain a global gradient-boosted model, adapt it per brand, decide bids and budgets.

Heavy optional dependencies (CuPy, Dask, MLflow, matplotlib) are never imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["TabTuneClassifier", "TabTuneRegressor", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.estimators import TabTuneClassifier, TabTuneRegressor


def __getattr__(name: str) -> Any:
    # Lazy so that `import tabtune` (and `tabtune --help`) stays fast.
    if name in ("TabTuneRegressor", "TabTuneClassifier"):
        from tabtune import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'tabtune' has no attribute {name!r}")
