"""The base model's leaf indices of each brand's rows, kept on disk between fits.

A nightly refresh adapts the same base model to a brand whose history grew by a day. Most of
a repeated adaptation's CPU went into predicting the base's ~600 trees on every row again
(leaf indices for ``refit``, raw scores for ``continue``; docs/benchmarks.md). A
:class:`LeafCache` keeps, per base model and brand, the rows' leaf indices and the encoded
features they were predicted from (:class:`~tabtune.boosting.base.LeafMemory`); the next fit
predicts only new rows and rows whose features changed in a way that can change their path
(the brand-context features move a little every night). The models are the same with or
without it: it is only a cache, safe to delete at any time.

Files are NumPy ``.npz`` archives (``X``, ``leaves``, ``base``) read with
``allow_pickle=False``, written to a temporary file and renamed into place
(:func:`tabtune.atomic.atomic_open`). A file that cannot be read or does not match (another
base model, other features) is ignored with a warning and replaced by the next fit.
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
        values = sorted({str(v) for v in pd.unique(pd.Series(np.asarray(groups, dtype=object)))})
        digest = hashlib.sha256(json.dumps(values).encode("utf-8")).hexdigest()[:32]
        return self.directory / f"{digest}.npz"

    def load(self, base_id: str, groups: Any, n_features: int) -> LeafMemory | None:
        """The memory of the last fit of these groups from the base ``base_id``, or None
        (no file, another base, other features, or a file that cannot be read). The session
        using it checks the tree count."""
        path = self.path(groups)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as archive:
                if str(archive["base"]) != base_id:
                    return None
                memory = LeafMemory(X=archive["X"], leaves=archive["leaves"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            logger.warning("leaf cache %s ignored: cannot be read (%s)", path, exc)
            return None
        if (
            memory.X.shape[1] != n_features
            or memory.X.dtype != np.float64
            or memory.leaves.dtype.kind != "u"
        ):
            logger.warning("leaf cache %s ignored: it does not match the base model", path)
            return None
        return memory

    def save(self, base_id: str, groups: Any, memory: LeafMemory) -> Path:
        """Write the memory of these groups' rows (atomically: a reader sees the old file or
        the new one)."""
        path = self.path(groups)
        # 0o644: a cache is as readable as the models. Not fsynced: it is only a cache, and a
        # crash that loses the new file costs one full prediction, not a wrong model.
        with atomic_open(path, mode=0o644, durable=False) as handle:
            np.savez(handle, X=memory.X, leaves=memory.leaves, base=np.array(base_id))
        return path
