"""Exports partitioned into folders by column, as Hive, Spark, Arrow and pandas write them
(``export/brand_id=acme/part-0.parquet``; the store itself is laid out so).

:func:`folder_values` reads the ``name=value`` folders between a folder the user named and
a file. Their columns join the file's rows twice over: before the transforms, the folders
named as export columns the config maps (``Account=acme`` with ``columns.brand_id:
Account``: :func:`with_export_columns`); after the mapping, the folders named as contract or
extra columns the rows lack (:func:`with_contract_columns`). A column the file holds, or
the config sets, is left as it is; a file in another brand's folder is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pandas as pd

from tabtune.data.contract import CONTRACT_COLUMNS
from tabtune.errors import TabTuneInputError

if TYPE_CHECKING:  # pragma: no cover - the config imports the data layer, not the reverse
    from tabtune.config import DataConfig

__all__ = ["HIVE_NULL", "folder_values", "with_contract_columns", "with_export_columns"]

#: The folder name Hive, Spark and Arrow write for a missing partition value.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def folder_values(path: Path, paths: Sequence[str | Path]) -> dict[str, str | None]:
    """The ``name=value`` folders between a folder of ``paths`` and the file ``path`` (a
    Hive-partitioned export, e.g. ``export/brand_id=acme/part-0.parquet``, or the store
    itself): column name -> value, percent-decoded as Arrow and the store write them, None
    for Hive's missing value (:data:`HIVE_NULL`). Empty for a file named on its own."""
    roots = [Path(raw) for raw in paths if Path(raw).is_dir() and Path(raw) in path.parents]
    if not roots:
        return {}
    root = min(roots, key=lambda r: len(r.parts))  # the outermost folder named sees the most
    parts = path.relative_to(root).parts[:-1]
    pairs = (part.split("=", 1) for part in parts if "=" in part)
    return {
        unquote(name): None if value == HIVE_NULL else unquote(value)
        for name, value in pairs
        if name
    }


def with_export_columns(
    raw: pd.DataFrame, folders: Mapping[str, str | None], data: DataConfig
) -> pd.DataFrame:
    """``raw`` (the export as read) with the folders named as export columns the config
    renames or maps from, where the file lacks them."""
    mapped_from = set(data.columns.values()) | set(data.rename)
    extra = {f: v for f, v in folders.items() if f in mapped_from and f not in raw.columns}
    return raw.assign(**extra) if extra else raw


def with_contract_columns(
    frame: pd.DataFrame, folders: Mapping[str, str | None], data: DataConfig, path: Path
) -> pd.DataFrame:
    """``frame`` (mapped to the contract) with the columns its partition folders name and it
    lacks. A folder's name is read as the export's (through ``rename`` and ``columns``) or
    the contract's; only contract and ``extra_columns`` names count, and a column the config
    sets (``constants``) or the file holds is left as the file has it. A file in the folder of
    another brand than its own ``brand_id`` is refused."""
    if not folders:
        return frame
    contract_of = {export: name for name, export in data.columns.items()}
    out = frame
    for folder, value in folders.items():
        name = contract_of.get(data.rename.get(folder, folder), folder)
        if name not in CONTRACT_COLUMNS and name not in data.extra_columns:
            continue
        if name in data.constants:
            continue
        if name not in out.columns:
            out = out.assign(**{name: value})
            continue
        if name == "brand_id" and value is not None:
            held = out[name].dropna().astype(str).str.strip()
            other = held[held != value]
            if len(other):
                raise TabTuneInputError(
                    f"{path}: its folder says {folder}={value!r} but its rows' brand_id is "
                    f"{other.iloc[0]!r} ({len(other):,} rows): one of the two is wrong. fix: "
                    "move the file to its brand's folder, or load it on its own; nothing was "
                    "written"
                )
    return out
