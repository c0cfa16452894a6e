"""Optional mirror of published versions to MLflow (``pip install tabtune[mlflow]``).

MLflow is imported only when a registry is given a tracking URI, never at import time.
"""

from __future__ import annotations

import logging
from typing import Any

from tabtune.optional import optional_import, require
from tabtune.registry.layout import ModelRef

__all__ = ["MLFLOW_PURPOSE", "log_version", "require_mlflow"]

# One logger for the whole registry package, named as before it was split into modules.
logger = logging.getLogger("tabtune.registry")

MLFLOW_PURPOSE = "MLflow logging"


def require_mlflow() -> None:
    """Fail now, with the install hint, when MLflow is not installed (without importing it)."""
    require("mlflow", extra="mlflow", purpose=MLFLOW_PURPOSE)


def log_version(ref: ModelRef, manifest: dict[str, Any], uri: str, experiment: str) -> None:
    """Log one published version (manifest and files) as an MLflow run named by its id.

    The registry on disk is the source of truth: a failing MLflow mirror must not undo or fail
    a publish that already happened, so errors are logged, not raised.

    Raises
    ------
    ImportError
        MLflow is not installed.
    """
    mlflow = optional_import("mlflow", extra="mlflow", purpose=MLFLOW_PURPOSE)
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
