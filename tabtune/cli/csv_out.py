"""``--csv FILE`` of ``bids`` and ``budget``: every brand's decisions in one CSV, for a
spreadsheet or an ad platform's bulk upload, beside the Parquet files the commands write."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tabtune.atomic import atomic_write_text
from tabtune.cli.guards import output_file, outside_managed_folders

__all__ = ["check_csv_path", "write_decisions_csv"]


def check_csv_path(value: str | None, cfg: Any = None) -> Path | None:
    """The CSV file ``--csv`` names, checked before anything is decided or written.

    Raises
    ------
    TabTuneInputError
        A folder, a name that does not end in ``.csv``, or a folder above it that is a file.
    """
    if value is None:
        return None
    path = output_file(
        Path(value), f"--csv {value}", writer="--csv", fmt="CSV", option="--csv",
        example="decisions.csv", typed=True,
    )  # fmt: skip
    if cfg is not None:  # not into the store, the registry, ...
        outside_managed_folders(path, cfg, f"--csv {value}")
    return path


def write_decisions_csv(frames: Mapping[str, pd.DataFrame], path: Path) -> str:
    """Write the brands' decisions as one CSV (a ``brand_id`` column first), atomically.

    Returns
    -------
    str
        The line the command prints.
    """
    parts = [frame.assign(brand_id=brand) for brand, frame in frames.items()]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"brand_id": []})
    table = table[["brand_id", *[c for c in table.columns if c != "brand_id"]]]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, table.to_csv(index=False))
    return f"{len(table):,} decision row(s) of {len(frames)} brand(s) also written to {path}"
