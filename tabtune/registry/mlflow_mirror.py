"""Optional mirror of published versions to MLflow (``pip install tabtune[mlflow]``).

MLflow is imported only when a registry is given a tracking URI, never at import time.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Any

from tabtune.registry.layout import ModelRef

__all__ = ["MLFLOW_HINT", "log_version", "mlflow_available"]

# One logger for the whole registry package, named as before it was split into modules.
logger = logging.getLogger("tabtune.registry")

MLFLOW_HINT = "MLflow logging needs mlflow: pip install tabtune[mlflow]"


def mlflow_available() -> bool:
    """Return whether ``import mlflow`` would find the package (without importing it)."""
    name = "mlflow"
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError(MLFLOW_HINT) from exc
    return mlflow


def log_version(ref: ModelRef, manifest: dict[str, Any], uri: str, experiment: str) -> None:
    """Log one published version (manifest and files) as an MLflow run named by its id.

    The registry on disk is the source of truth: a failing MLflow mirror must not undo or fail
    a publish that already happened, so errors are logged, not raised.

    Raises
    ------
    ImportError
        MLflow is not installed.
    """
    mlflow = _import_mlflow()
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=ref.id):
            mlflow.set_tags(
                {
                    "tabtune.id": ref.id,
                    "tabtune.task": ref.task,
                    "tabtune.brand": ref.brand or "(global)",
                }
            )
            mlflow.log_dict(manifest, "manifest.json")
            mlflow.log_artifacts(str(ref.path), artifact_path="model")
    except Exception:
        logger.warning("could not log %s to MLflow at %s", ref.id, uri, exc_info=True)
