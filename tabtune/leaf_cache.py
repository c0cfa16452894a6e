"""The base model's leaf indices of each brand's rows, kept on disk between fits.

A nightly refresh adapts the same base model to a brand whose history grew by a day. Most of
a repeated adaptation's CPU went into predicting the base's ~600 trees on every row again
(leaf indices for ``refit``, raw scores for ``continue``; docs/benchmarks.md). A
:class:`LeafCache` keeps, per base model and brand, the rows' leaf indices and the encoded
features they were predicted from (:class:`~tabtune.boosting.base.LeafMemory`); the next fit
predicts only new rows and rows whose features changed in a way that can change their path
(the brand-context features move a little every night). The models are the same with or
without it: it is only a cache, safe to delete at any time.

Files are NumPy ``.npz`` archives (``X``, ``leaves``, ``base``, ``groups``, ``sha256``) read
with ``allow_pickle=False``, written to a temporary file and renamed into place
(:func:`tabtune.atomic.atomic_open`). ``sha256`` covers the base model id, the brand's group
values and the bytes, shapes and dtypes of ``X`` and ``leaves``. A file that cannot be read,
fails its checksum, belongs to other groups, or does not match (other features, a shape or
dtype that is not a leaf memory's) is ignored with a warning and replaced by the next fit;
the LightGBM session further refuses (with a warning) remembered leaf indices out of range for
the base's trees or that disagree with the base on a sample of rows, and predicts instead. A
file of another base model is silently replaced (that is the cache working).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabtune.atomic import atomic_open
from tabtune.boosting.base import LeafMemory

__all__ = ["LeafCache"]

logger = logging.getLogger(__name__)


class LeafCache:
    """A directory of :class:`~tabtune.boosting.base.LeafMemory`, one file per brand.

    Parameters
    ----------
    directory : str or path
        Created on the first write. One file per set of group values (a brand) holds the
        memory of the last fit from one base model; a fit from another base replaces it.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, groups: Any) -> Path:
        """The file for the rows of ``groups`` (their group column's values; None: no
        group column)."""
        if groups is None:
            return self.directory / "rows.npz"
        digest = hashlib.sha256(_groups_key(groups).encode("utf-8")).hexdigest()[:32]
        return self.directory / f"{digest}.npz"

    def load(self, base_id: str, groups: Any, n_features: int) -> LeafMemory | None:
        """The memory of the last fit of these groups from the base ``base_id``, or None
        (no file, another base, other features, or a file that cannot be read). The session
        using it checks the tree count."""
        path = self.path(groups)
        if not path.exists():
            return None
        key = "" if groups is None else _groups_key(groups)
        try:
            with np.load(path, allow_pickle=False) as archive:
                if str(archive["base"]) != base_id:
                    return None
                X, leaves = archive["X"], archive["leaves"]
                stored_key = str(archive["groups"]) if "groups" in archive.files else None
                stored_sum = str(archive["sha256"]) if "sha256" in archive.files else None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("leaf cache %s ignored: cannot be read (%s)", path, exc)
            return None
        if stored_sum is None or stored_key is None:
            logger.warning("leaf cache %s ignored: it has no checksum (an older file)", path)
            return None
        if stored_key != key:
            logger.warning("leaf cache %s ignored: it holds the rows of other brands", path)
            return None
        if (
            X.ndim != 2
            or leaves.ndim != 2
            or len(X) != len(leaves)
            or X.shape[1] != n_features
            or X.dtype != np.float64
            or leaves.dtype.kind != "u"
        ):
            logger.warning("leaf cache %s ignored: it does not match the base model", path)
            return None
        if _checksum(base_id, key, X, leaves) != stored_sum:
            logger.warning("leaf cache %s ignored: checksum mismatch (file changed)", path)
            return None
        return LeafMemory(X=X, leaves=leaves)

    def save(self, base_id: str, groups: Any, memory: LeafMemory) -> Path:
        """Write the memory of these groups' rows (atomically: a reader sees the old file or
        the new one)."""
        path = self.path(groups)
        # 0o644: a cache is as readable as the models. Not fsynced: it is only a cache, and a
        # crash that loses the new file costs one full prediction, not a wrong model.
        key = "" if groups is None else _groups_key(groups)
        X = np.ascontiguousarray(memory.X)
        leaves = np.ascontiguousarray(memory.leaves)
        digest = _checksum(base_id, key, X, leaves)
        with atomic_open(path, mode=0o644, durable=False) as handle:
            np.savez(
                handle,
                X=X,
                leaves=leaves,
                base=np.array(base_id),
                groups=np.array(key),
                sha256=np.array(digest),
            )
        return path


def _groups_key(groups: Any) -> str:
    """The sorted distinct group values as JSON: what a cache file is for."""
    values = sorted({str(v) for v in pd.unique(pd.Series(np.asarray(groups, dtype=object)))})
    return json.dumps(values)


def _checksum(base_id: str, key: str, X: np.ndarray, leaves: np.ndarray) -> str:
    """sha256 over the base id, the groups, and the arrays' shapes, dtypes and bytes."""
    digest = hashlib.sha256()
    header = json.dumps([base_id, key, X.shape, X.dtype.str, leaves.shape, leaves.dtype.str])
    digest.update(header.encode("utf-8"))
    digest.update(np.ascontiguousarray(X).data)
    digest.update(np.ascontiguousarray(leaves).data)
    return digest.hexdigest()
