"""Saved estimators: the manifest (``manifest.json``) and the native model file.

A model directory holds the backend's native model file (LightGBM ``model.txt``, XGBoost
``model.ubj``) and a JSON manifest with everything else: the estimator's parameters, the
booster parameters, the feature schema, the brand context and the fitted attributes. No
pickle is involved; the model file's checksum is verified on reading.

A model adapted from a base that lies in the same model registry is stored as what it adds to
the base: its trees as ``model.delta.json.gz`` instead of the native file (format 3,
:mod:`tabtune.estimators.deltas`), and its brand-context table as an overlay on the base's
(format 4, :mod:`tabtune.estimators.context_overlay`); both are rebuilt from the base
(checksum verified) on reading.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabtune import __version__
from tabtune.boosting.base import BoosterParams, get_backend, write_model_dir
from tabtune.boosting.encoding import FeatureSchema
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.estimators.deltas import DELTA_FILE, encode_context, encode_delta, read_full_model
from tabtune.transfer import BrandContext, FittedModel

__all__ = [
    "DELTA_FORMAT",
    "FORMAT_VERSION",
    "FULL_FORMAT",
    "OVERLAY_FORMAT_VERSION",
    "SEGMENTS_FORMAT_VERSION",
    "READABLE_FORMATS",
    "estimator_manifest",
    "model_from_manifest",
    "read_estimator",
    "saved_params",
    "write_estimator",
]

#: Newest version of the saved-model layout: 5, a model whose brand-context table holds
#: segment offsets (strategy ``segments``; a reader of format 4 would ignore them and serve
#: other predictions, so it must refuse the model). Format 4: a brand-context table stored as
#: an overlay on its base's (:mod:`tabtune.estimators.context_overlay`), its trees as a delta
#: (``model.delta.json.gz``, :mod:`tabtune.estimators.deltas`) or whole.
FORMAT_VERSION = 5
#: The layout of a full model (``manifest.json`` + native model file), written as before.
FULL_FORMAT = 2
#: The layout of a model whose trees are stored as a delta on its base, its context whole.
DELTA_FORMAT = 3
#: The layout of a model whose brand context is stored as an overlay on its base's table.
OVERLAY_FORMAT_VERSION = 4
#: The layout of a model whose brand-context table holds segment offsets (whole or overlay).
SEGMENTS_FORMAT_VERSION = 5
#: The layouts this version reads (1: from before manifests were sealed, read with a warning).
READABLE_FORMATS = (1, 2, 3, 4, 5)


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars as the Python numbers JSON writes (a search over
    ``np.arange`` sets ``num_leaves`` to ``np.int64(23)``), in dicts, lists and tuples too."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def saved_params(params: dict[str, Any]) -> dict[str, Any]:
    """An estimator's constructor parameters as the manifest keeps them.

    A fitted ``base_model`` is not kept (a path is); a ``leaf_cache`` path becomes a string;
    NumPy scalars become Python numbers.
    """
    params = {name: _plain(value) for name, value in params.items()}
    base = params["base_model"]
    params["base_model"] = os.fspath(base) if isinstance(base, str | os.PathLike) else None
    if params["leaf_cache"] is not None:
        params["leaf_cache"] = os.fspath(params["leaf_cache"])
    return params


def _booster_params(params: BoosterParams) -> dict[str, Any]:
    """Booster parameters in JSON-ready form."""
    out = asdict(params)
    out["extra"] = dict(params.extra)
    out["monotone_constraints"] = (
        None if params.monotone_constraints is None else list(params.monotone_constraints)
    )
    return out


def estimator_manifest(
    estimator: Any, model: FittedModel, params: dict[str, Any], target: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON-ready manifest of a fitted estimator (everything but the model file).

    Parameters
    ----------
    estimator : TabTuneRegressor or TabTuneClassifier
        Fitted; its fitted attributes (``backend_``, ``strategy_``, ...) are written.
    model : FittedModel
        The estimator's model.
    params : dict
        Its constructor parameters (see :func:`saved_params`).
    target : mapping
        What the estimator class adds about its target (classes of a classifier).
    """
    versions = {
        estimator.backend_: model.backend.library_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    names = getattr(estimator, "feature_names_in_", None)
    manifest: dict[str, Any] = {
        "format_version": FULL_FORMAT,
        "estimator": type(estimator).__name__,
        "tabtune_version": __version__,
        "backend": estimator.backend_,
        "library_versions": versions,
        "params": params,
        "booster_params": _booster_params(model.params),
        "objective": estimator.objective_,
        "group_column": estimator.group_column_,
        "time_column": estimator.time_column_,
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": None if names is None else [str(c) for c in names],
        "feature_schema": model.schema.to_dict(),
        "brand_context": None if model.context is None else model.context.to_dict(),
        "strategy": estimator.strategy_,
        "strategy_reason": estimator.strategy_reason_,
        "holdout_scores": {k: float(v) for k, v in estimator.holdout_scores_.items()},
        "base_model_id": estimator.base_model_id_,
        "best_iteration": int(estimator.best_iteration_),
        "n_new_trees": int(estimator.n_new_trees_),
        "adapted_groups": getattr(estimator, "adapted_groups_", None),
    }
    manifest.update(target)
    return manifest


def write_estimator(
    path: str | os.PathLike[str],
    model: FittedModel,
    model_bytes: bytes,
    manifest: dict[str, Any],
) -> Path:
    """Write the model file and the manifest into directory ``path`` (atomically).

    A model adapted from a base read from the registry that ``path`` lies in is written as a
    delta on that base: its trees (format 3) when that is exact and at most half the size,
    its brand-context table as an overlay on the base's (format 4) when that is exact;
    ``depends_on`` names the base. Otherwise, and always outside a registry, the full native
    model file and the whole table are written (format 2).
    """
    try:
        json.dumps(manifest)
    except (TypeError, ValueError) as exc:
        raise TabTuneInputError(
            f"cannot save: a parameter is not JSON-serialisable ({exc}); backend_params "
            "and monotone_constraints must hold plain numbers and strings"
        ) from exc
    delta = encode_delta(path, model_bytes, manifest)
    overlay = encode_context(path, manifest)
    body = dict(manifest)
    depends_on: list[str] = []
    if overlay is not None:
        body["brand_context"] = overlay
        body["format_version"] = OVERLAY_FORMAT_VERSION
        depends_on.append(overlay["overlay_on"]["id"])
    if delta is None:
        model_file, data = model.backend.model_file, model_bytes
    else:
        model_file, (data, info) = DELTA_FILE, delta
        body["delta"] = info
        body["format_version"] = max(body["format_version"], DELTA_FORMAT)
        depends_on.append(info["base"]["id"])
    if depends_on:
        body["depends_on"] = sorted(set(depends_on))
    if (manifest.get("brand_context") or {}).get("segments"):
        body["format_version"] = max(body["format_version"], SEGMENTS_FORMAT_VERSION)
    return write_model_dir(path, model_file, data, body)


def read_estimator(
    path: str | os.PathLike[str], estimator_name: str
) -> tuple[dict[str, Any], bytes]:
    """The manifest and model bytes saved at ``path`` by an ``estimator_name`` (checked).

    A model stored as a delta comes back as its full native bytes, with the manifest's
    ``model_file`` and ``model_sha256`` those of the full model.
    """
    manifest, model_bytes = read_full_model(path)
    version = manifest.get("format_version")
    if version not in READABLE_FORMATS:
        raise ModelIntegrityError(
            f"{path}: model format_version {version!r} is not readable by this tabtune "
            f"(reads {list(READABLE_FORMATS)})"
        )
    if manifest.get("estimator") != estimator_name:
        raise TabTuneInputError(
            f"{path} holds a {manifest.get('estimator')}; load it with "
            f"{manifest.get('estimator')}.load"
        )
    return manifest, model_bytes


def model_from_manifest(manifest: Mapping[str, Any], model_bytes: bytes) -> FittedModel:
    """The fitted model a manifest and its model file describe."""
    backend = get_backend(manifest["backend"])
    booster_params = dict(manifest["booster_params"])
    if booster_params.get("monotone_constraints") is not None:
        booster_params["monotone_constraints"] = tuple(booster_params["monotone_constraints"])
    context = manifest["brand_context"]
    return FittedModel(
        backend=backend,
        booster=backend.from_bytes(model_bytes),
        schema=FeatureSchema.from_dict(manifest["feature_schema"]),
        context=None if context is None else BrandContext.from_dict(context),
        params=BoosterParams(**booster_params),
    )
