"""Optional mirror of published versions to MLflow (``pip install tabtune[mlflow]``).

MLflow is imported only when a registry is given a tracking URI, never at import time.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
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


#: MLflow's HTTP settings for the mirror, unless the environment sets them: an unreachable
#: server blocked each publish for about four minutes of retries.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


@contextmanager
def _quick_http() -> Iterator[None]:
    """:data:`_HTTP_DEFAULTS` in the environment while the mirror logs (values already set
    are kept)."""
    added = {k: v for k, v in _HTTP_DEFAULTS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def log_version(ref: ModelRef, manifest: dict[str, Any], uri: str, experiment: str) -> None:
    """Log one published version (manifest and files) as an MLflow run named by its id.

    It goes through an ``MlflowClient`` of its own: the process's tracking URI, experiment and
    active run (a caller's own MLflow run) are left as they are. The registry on disk is the
    source of truth: a failing MLflow mirror must not undo or fail a publish that already
    happened, so errors are logged (one line; the traceback at DEBUG), not raised.

    Raises
    ------
    ImportError
        MLflow is not installed.
    """
    mlflow = optional_import("mlflow", extra="mlflow", purpose=MLFLOW_PURPOSE)
    run_id = None
    try:
        with _quick_http():
            client = mlflow.MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(experiment)
            exp_id = (
                found.experiment_id if found is not None else client.create_experiment(experiment)
            )
            tags = {
                "tabtune.id": ref.id,
                "tabtune.task": ref.task,
                "tabtune.brand": ref.brand or "(global)",
            }
            run_id = client.create_run(exp_id, run_name=ref.id, tags=tags).info.run_id
            client.log_dict(run_id, manifest, "manifest.json")
            client.log_artifacts(run_id, str(ref.path), artifact_path="model")
            client.set_terminated(run_id)
    except Exception as exc:  # noqa: BLE001 - the mirror never fails a publish
        logger.warning(
            "could not log %s to MLflow at %s: %s: %s", ref.id, uri, type(exc).__name__, exc
        )
        logger.debug("MLflow mirror error", exc_info=True)
        if run_id is not None:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, status="FAILED")
