"""Seals on JSON metadata: a manifest carries the sha256 of its own content.

A model's ``manifest.json`` lists the sha256 of every other file of the model, but nothing
covered the manifest itself, so an edit of it (a brand context, a data window, a selection)
changed what was served without any check failing. :func:`seal` adds ``manifest_sha256``, the
sha256 of the manifest's canonical JSON without that key, and :func:`check_seal` recomputes it
on load. The seal is inside the file, so a model directory keeps its files (no extra checksum
file). It guards against edits and corruption, not against someone who rewrites the seal too.

Only the standard library is imported here (the registry uses it without numpy or pandas).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from typing import Any

from tabtune.errors import ModelIntegrityError

__all__ = ["SEAL_KEY", "UnsealedManifestWarning", "check_seal", "json_digest", "seal"]


class UnsealedManifestWarning(UserWarning):
    """A manifest of the format before seals (``format_version`` 1) was read without one."""


SEAL_KEY = "manifest_sha256"
"""The key of a manifest that holds the sha256 of the rest of it."""


def json_digest(data: Mapping[str, Any]) -> str:
    """The sha256 of ``data``'s canonical JSON (sorted keys, no spaces), ``SEAL_KEY`` left out.

    Parameters
    ----------
    data : mapping
        JSON-ready values.

    Returns
    -------
    str
        Hex digest.
    """
    body = {key: value for key, value in data.items() if key != SEAL_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def seal(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with ``SEAL_KEY`` set to :func:`json_digest` of the rest.

    Parameters
    ----------
    data : mapping
        JSON-ready values.

    Returns
    -------
    dict
    """
    return {**data, SEAL_KEY: json_digest(data)}


def check_seal(data: Mapping[str, Any], where: str, *, legacy: bool = False) -> None:
    """Raise unless ``data`` carries a seal that matches its content.

    Parameters
    ----------
    data : mapping
        A manifest as read from disk.
    where : str
        The file, for the message.
    legacy : bool, default False
        The manifest says it was written in a format from before manifests were sealed
        (``format_version`` 1): without a seal it is read, with a warning that its content is
        not covered (publish or save the model again to seal it). A seal that is there must
        match, in any format.

    Raises
    ------
    ModelIntegrityError
        The seal is missing (an older tabtune wrote the manifest, or the key was removed) or
        does not match (the manifest was edited after it was written).
    """
    expected = data.get(SEAL_KEY)
    if expected is None and legacy:
        warnings.warn(
            f"{where} was written by a tabtune from before manifests were sealed: its "
            "content is not covered by a checksum; save or publish the model again to seal it",
            UnsealedManifestWarning,
            stacklevel=2,
        )
        return
    if not isinstance(expected, str):
        raise ModelIntegrityError(
            f"{where} carries no {SEAL_KEY}, so its content cannot be trusted (it was written "
            "by a tabtune before manifests were sealed, or edited); save or publish the model "
            "again"
        )
    actual = json_digest(data)
    if actual != expected:
        raise ModelIntegrityError(
            f"{where} was edited after it was written: its content has sha256 {actual}, its "
            f"{SEAL_KEY} says {expected}; restore the file or save/publish the model again"
        )
