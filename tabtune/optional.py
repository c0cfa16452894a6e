"""Lazy imports of the optional dependencies, with one error that says what to install.

The optional dependencies are the ``pyproject.toml`` extras: CuPy (``gpu``), Dask
(``dask``: ``dask``, ``distributed``, ``dask.dataframe``), matplotlib (``plot``), MLflow
(``mlflow``), openpyxl (``excel``, Excel exports) and, for the benchmarks only, GPBoost (``bench``). None of them is imported by
``import tabtune``: every use goes through :func:`optional_import` at the moment it is needed,
and :func:`is_available` answers "is it installed?" without importing anything.

A missing module raises :class:`OptionalDependencyError` (an :class:`ImportError`) whose
message names the pip extra, e.g. ``the Dask executor needs dask.distributed: pip install
tabtune[dask]``. The same text is available up front from :func:`install_hint`, for callers
that show it instead of raising.

This module imports only the standard library and sits at the bottom of the layers, next to
:mod:`tabtune.errors`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

__all__ = [
    "OptionalDependencyError",
    "install_hint",
    "is_available",
    "optional_import",
    "require",
]


class OptionalDependencyError(ImportError):
    """An optional dependency is not installed; the message names the pip extra to install."""


def install_hint(module: str, *, extra: str, purpose: str) -> str:
    """The one message for a missing optional dependency.

    Parameters
    ----------
    module : str
        The module that is needed, e.g. ``"dask.distributed"``.
    extra : str
        The ``tabtune`` extra that installs it, e.g. ``"dask"``.
    purpose : str
        What needs it, as the subject of the sentence, e.g. ``"the Dask executor"``.

    Returns
    -------
    str
        ``"<purpose> needs <module>: pip install tabtune[<extra>]"``.
    """
    return f"{purpose} needs {module}: pip install tabtune[{extra}]"


def is_available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it.

    A module already imported counts (and one blocked with a ``None`` entry in
    :data:`sys.modules` does not). Otherwise the import system is asked for the module's spec,
    which imports its parent packages for a dotted name but never ``module`` itself.

    Parameters
    ----------
    module : str
        A module name, e.g. ``"cupy"`` or ``"dask.distributed"``.

    Returns
    -------
    bool
    """
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, extra: str, purpose: str) -> None:
    """Fail early, without importing, when an optional dependency is missing.

    For a constructor that will need ``module`` later (an MLflow mirror, say) and should say so
    now rather than at first use. Parameters as for :func:`optional_import`.

    Raises
    ------
    OptionalDependencyError
        ``module`` is not :func:`is_available`; the message is :func:`install_hint`'s.
    """
    if not is_available(module):
        raise OptionalDependencyError(
            install_hint(module, extra=extra, purpose=purpose), name=module
        )


def optional_import(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency now, or say which extra installs it.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"mlflow"`` or ``"matplotlib.figure"``.
    extra : str
        The ``tabtune`` extra that installs it (``gpu``, ``dask``, ``plot``, ``mlflow``,
        ``excel``, ``bench``).
    purpose : str
        What needs it, as the subject of the sentence (see :func:`install_hint`).

    Returns
    -------
    module
        The imported module (``module`` itself, not its top-level package).

    Raises
    ------
    OptionalDependencyError
        The import failed with an :class:`ImportError`; the message is
        :func:`install_hint`'s and the original error is chained as its cause.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OptionalDependencyError(
            install_hint(module, extra=extra, purpose=purpose), name=module
        ) from exc
