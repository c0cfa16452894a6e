"""Gradient-boosting backends behind one small interface.

``get_backend("lightgbm" | "xgboost")`` returns a :class:`Backend`; the libraries are imported
only when a backend is first used. Device helpers: :func:`resolve_device`,
:func:`cuda_available`. The feature schema lives in :mod:`tabtune.boosting.encoding`.
"""

from __future__ import annotations

from tabtune.boosting.base import (
    BACKENDS,
    OBJECTIVES,
    Backend,
    BoosterParams,
    Layout,
    LeafMemory,
    Matrix,
    Session,
    SessionOptions,
    Trained,
    cuda_available,
    get_backend,
    read_model_dir,
    resolve_device,
    sha256_hex,
    write_model_dir,
)
from tabtune.boosting.encoding import FeatureSchema

__all__ = [
    "BACKENDS",
    "OBJECTIVES",
    "Backend",
    "BoosterParams",
    "FeatureSchema",
    "Layout",
    "LeafMemory",
    "Matrix",
    "Session",
    "SessionOptions",
    "Trained",
    "cuda_available",
    "get_backend",
    "read_model_dir",
    "resolve_device",
    "sha256_hex",
    "write_model_dir",
]
