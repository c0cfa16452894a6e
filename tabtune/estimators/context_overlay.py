"""A saved brand model's context table stored as what it changes in its base's table.

An adapted brand model serves its brand with the global model's brand-context table plus
the brand's own entry (:meth:`tabtune.transfer.BrandContext.overlay`): the base's groups in
their order, less the brand's, then the brand's groups. Written whole, that table costs
about 250 bytes per brand of the store in every brand version's ``manifest.json``; at 5,000
brands it was most of what a brand-night stored.

Saved next to its base in a model registry, the manifest keeps an overlay instead
(``brand_context.overlay_on`` names the base by registry id, relative path and model sha256):
the base's groups it drops, the groups it appends (with their brand x level cells), and its
level and segment offsets. Like the tree delta (:mod:`tabtune.estimators.deltas`) it is exact or not
at all: it is kept only when applying it to the base's table gives the very table, as JSON
(group keys' types and the sign of zero included; checked at save); the manifest sealing
checks it on every read, and the base's model sha256 and manifest seal tie it to the very
base it was computed from.

Both functions work on the JSON form of :meth:`~tabtune.transfer.BrandContext.to_dict`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeGuard

import numpy as np

__all__ = ["OVERLAY_FORMAT", "apply_context_overlay", "context_overlay", "is_overlay"]

#: ``brand_context.format`` of a context stored as an overlay on its base's table.
OVERLAY_FORMAT = "brand-context-overlay/1"
#: The table parts an overlay rewrites; every other entry must equal the base's.
_TABLE = ("groups", "levels", "offsets", "segments")


def is_overlay(context: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether a manifest's ``brand_context`` entry is an overlay on a base's table."""
    return isinstance(context, Mapping) and context.get("format") == OVERLAY_FORMAT


def _spec(context: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in context.items() if k not in _TABLE}


def _kept_prefix(base: Mapping[str, Any], model: Mapping[str, Any]) -> int:
    """How many of ``model``'s first groups are ``base``'s groups, in ``base``'s order, with
    the same entries."""
    b, m = base["groups"], model["groups"]
    position = {_typed(key): i for i, key in enumerate(b["keys"])}
    last = -1
    for j, key in enumerate(m["keys"]):
        i = position.get(_typed(key))
        if (
            i is None
            or i <= last
            or b["mean"][i] != m["mean"][j]
            or b["log_rows"][i] != m["log_rows"][j]
        ):
            return j
        last = i
    return len(m["keys"])


def _typed(key: Any) -> tuple[str, Any]:
    """A group key with its JSON type: ``1``, ``1.0`` and ``True`` are different groups."""
    return type(key).__name__, key


def _same(a: Any, b: Any) -> bool:
    """Whether two JSON documents are identical (types, the sign of zero and order included)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def context_overlay(
    base: Mapping[str, Any], model: Mapping[str, Any], on: Mapping[str, Any]
) -> dict[str, Any] | None:
    """``model``'s context table as an overlay on ``base``'s, or None when that is not exact.

    Parameters
    ----------
    base, model : mapping
        Context tables in :meth:`~tabtune.transfer.BrandContext.to_dict` form.
    on : mapping
        The base's reference (``id``, ``path``, ``model_sha256``), kept as ``overlay_on``.

    Returns
    -------
    dict or None
        The overlay; None when the two tables differ in their specification (level column,
        prior, ...) or the overlay would not rebuild ``model`` exactly.
    """
    if _spec(base) != _spec(model):
        return None
    n_kept = _kept_prefix(base, model)
    kept = {_typed(key) for key in model["groups"]["keys"][:n_kept]}
    width = int(model["n_levels"]) + 1
    cells = np.asarray(model["levels"]["keys"], dtype=np.int64)
    appended = np.flatnonzero(cells // width >= n_kept)
    overlay = {
        "format": OVERLAY_FORMAT,
        "overlay_on": dict(on),
        **_spec(model),
        "drop": [key for key in base["groups"]["keys"] if _typed(key) not in kept],
        "groups": {name: list(values[n_kept:]) for name, values in model["groups"].items()},
        "levels": {
            "keys": (cells[appended] - n_kept * width).tolist(),
            "mean": [model["levels"]["mean"][i] for i in appended],
        },
        "offsets": list(model["offsets"]),
    } | ({"segments": list(model["segments"])} if "segments" in model else {})
    try:
        if not _same(apply_context_overlay(base, overlay), model):
            return None
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return overlay


def apply_context_overlay(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """The context table an overlay describes, from its base's table (inverse of
    :func:`context_overlay`).

    Raises
    ------
    KeyError, TypeError, ValueError, IndexError
        The overlay is malformed or does not fit ``base``.
    """
    spec = {k: v for k, v in overlay.items() if k not in ("format", "overlay_on", "drop")}
    spec = _spec(spec)
    if spec != _spec(base):
        raise ValueError("the overlay's specification differs from its base's")
    drop = {_typed(key) for key in overlay["drop"]}
    b = base["groups"]
    keep = np.fromiter(
        (_typed(key) not in drop for key in b["keys"]), dtype=bool, count=len(b["keys"])
    )
    kept = np.flatnonzero(keep)
    added = overlay["groups"]
    groups = {
        name: [b[name][i] for i in kept] + list(added[name])
        for name in ("keys", "mean", "log_rows")
    }
    width = int(base["n_levels"]) + 1
    remap = np.full(len(keep), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    cells = np.asarray(base["levels"]["keys"], dtype=np.int64)
    group = cells // width
    own = np.flatnonzero(keep[group]) if len(cells) else np.empty(0, dtype=np.int64)
    new_cells = np.asarray(overlay["levels"]["keys"], dtype=np.int64)
    if len(new_cells) and (new_cells.min() < 0 or new_cells.max() // width >= len(added["keys"])):
        raise ValueError("an overlay cell names a group the overlay does not add")
    level_keys = np.concatenate(
        [remap[group[own]] * width + cells[own] % width, new_cells + len(kept) * width]
    )
    base_mean = base["levels"]["mean"]
    return {
        **spec,
        "groups": groups,
        "levels": {
            "keys": level_keys.tolist(),
            "mean": [base_mean[i] for i in own] + list(overlay["levels"]["mean"]),
        },
        "offsets": list(overlay["offsets"]),
    } | ({"segments": list(overlay["segments"])} if "segments" in overlay else {})
