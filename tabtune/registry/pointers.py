"""The ``CHAMPION`` pointer of a scope: which version is live.

The file holds the version's name and a newline (``"v0003\\n"``). It is replaced atomically
(:func:`tabtune.atomic.atomic_write_text`) and only ever names a complete version.
"""

from __future__ import annotations

from pathlib import Path

from tabtune.atomic import atomic_write_text
from tabtune.errors import ModelIntegrityError
from tabtune.registry.layout import CHAMPION_NAME, VERSION_RE

__all__ = ["clear_pointer", "read_pointer", "write_pointer"]


def read_pointer(scope: Path) -> str | None:
    """Return the champion version named by ``scope/CHAMPION``, or ``None`` if there is none.

    Raises
    ------
    ModelIntegrityError
        The pointer cannot be read or does not hold a version name.
    """
    path = scope / CHAMPION_NAME
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"cannot read champion pointer {path}: {exc}") from exc
    if not VERSION_RE.match(text):
        raise ModelIntegrityError(
            f"champion pointer {path} is corrupt: {text[:40]!r} is not a version name"
        )
    return text


def write_pointer(scope: Path, version: str) -> None:
    """Atomically point ``scope/CHAMPION`` at ``version`` (which must exist).

    Raises
    ------
    ModelIntegrityError
        ``scope/version`` is not a directory; the pointer is unchanged.
    """
    if not (scope / version).is_dir():  # never point at nothing
        raise ModelIntegrityError(f"cannot promote {version}: {scope / version} does not exist")
    atomic_write_text(scope / CHAMPION_NAME, version + "\n")


def clear_pointer(scope: Path) -> None:
    """Remove ``scope/CHAMPION``: the scope has no champion (a brand is served by the global
    model). Removing a file is atomic; a scope without a pointer is left as it is."""
    (scope / CHAMPION_NAME).unlink(missing_ok=True)
