"""Names on disk: scopes, version folders, and :class:`ModelRef`, the reference to one version.

See :mod:`tabtune.registry` for the layout these names describe.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabtune.errors import TabTuneInputError

__all__ = [
    "CHAMPION_NAME",
    "MANIFEST_NAME",
    "VERSION_RE",
    "ModelRef",
    "check_name",
    "check_version",
    "scope_id",
    "subdirs",
    "version_names",
    "version_number",
]

MANIFEST_NAME = "manifest.json"
CHAMPION_NAME = "CHAMPION"
#: A version folder's name: ``v`` and at least four digits (``v0003``, ``v12345``).
VERSION_RE = re.compile(r"^v(\d{4,})$")


def check_name(value: object, what: str) -> None:
    """Check that a task, brand or lock name can be one folder or file name.

    Parameters
    ----------
    value : object
        The name.
    what : str
        What it names, for the message (``"task"``, ``"brand"``, ``"lock name"``).

    Raises
    ------
    TabTuneInputError
        Not a string, empty, hidden, a path, a control character, or over 200 bytes.
    """
    if not isinstance(value, str):
        raise TabTuneInputError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    problem = None
    if not value or not value.strip():
        problem = "is empty"
    elif value.startswith("."):
        problem = "starts with '.'"
    elif "/" in value or "\\" in value:
        problem = "contains a path separator"
    elif ".." in value:
        problem = "contains '..'"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "contains a control character"
    elif len(value.encode("utf-8")) > 200:
        problem = "is longer than 200 bytes"
    if problem:
        raise TabTuneInputError(f"invalid {what} {value!r}: it {problem}")


def check_version(version: object) -> None:
    """Raise :class:`TabTuneInputError` unless ``version`` is a name like ``"v0003"``."""
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise TabTuneInputError(f"invalid version {version!r}: expected a name like 'v0003'")


def version_number(version: str) -> int:
    """Return the number of a version name (``3`` for ``"v0003"``).

    Raises
    ------
    TabTuneInputError
        ``version`` is not a version name.
    """
    match = VERSION_RE.match(version)
    if not match:
        raise TabTuneInputError(f"invalid version {version!r}: expected a name like 'v0003'")
    return int(match.group(1))


def scope_id(task: str, brand: str | None) -> str:
    """Return the registry-relative id of a scope: ``"global/bid"`` or ``"brands/b001/bid"``."""
    return f"global/{task}" if brand is None else f"brands/{brand}/{task}"


def subdirs(path: Path) -> list[Path]:
    """Return the visible sub-folders of ``path``, sorted; none if it does not exist."""
    try:
        entries = sorted(path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [p for p in entries if p.is_dir() and not p.name.startswith(".")]


def version_names(scope: Path, *, complete: bool = True) -> list[str]:
    """Version directory names in ``scope``, by number (renamed into place, so complete).

    ``complete``: only folders holding a ``manifest.json`` (a publish renames a complete
    folder into place, so one without is not a version tabtune wrote: an empty ``v0007``
    made by hand was listed as the newest and kept collection from running); False: every
    version-named folder, for numbering the next publish past them.
    """
    try:
        entries = list(os.scandir(scope))
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = [
        e.name
        for e in entries
        if VERSION_RE.match(e.name)
        and e.is_dir()
        and (not complete or os.path.isfile(os.path.join(e.path, MANIFEST_NAME)))
    ]
    return sorted(names, key=version_number)


@dataclass(frozen=True)
class ModelRef:
    """One stored model version.

    Parameters
    ----------
    task : str
        Task name, e.g. ``"bid"``.
    brand : str or None
        Brand id; ``None`` means the global (pooled) model.
    version : str
        Version name, e.g. ``"v0003"``.
    path : Path
        The version's directory.
    fallback_from : str or None
        Set by :meth:`ModelRegistry.resolve` when the champion failed verification and this older
        version is served instead: the champion's version name. Not part of equality.
    """

    task: str
    brand: str | None
    version: str
    path: Path
    fallback_from: str | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        """Registry-relative id: ``"global/bid/v0003"`` or ``"brands/b001/bid/v0002"``."""
        return f"{scope_id(self.task, self.brand)}/{self.version}"

    @property
    def number(self) -> int:
        """The version number (``3`` for ``"v0003"``)."""
        return version_number(self.version)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description of the reference."""
        return {
            "id": self.id,
            "task": self.task,
            "brand": self.brand,
            "version": self.version,
            "path": str(self.path),
            "fallback_from": self.fallback_from,
        }
