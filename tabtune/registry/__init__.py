"""Versioned model store on disk: versions, champion pointers, manifests, checksums and locks.

The registry does not know how a model is serialised. A caller hands :meth:`ModelRegistry.publish`
a *writer*, a function that writes the model's files into a directory; the registry turns that
directory into an immutable, checksummed version.

Layout under the registry root::

    <root>/global/<task>/v0001/{model files..., manifest.json}
    <root>/global/<task>/CHAMPION
    <root>/brands/<brand>/<task>/v0001/{model files..., manifest.json}
    <root>/brands/<brand>/<task>/CHAMPION
    <root>/.locks/<name>.lock

File formats
------------
``vNNNN/``
    One published version. Numbers are four digits, zero padded (``v0001``), and grow past
    ``v9999`` without breaking order. A version directory is created by renaming a complete
    temporary directory (``.tmp-<host>-<pid>-<token>``, in the same task folder), so it is never
    seen half written. Names starting with ``.`` are never listed as versions.
``vNNNN/manifest.json``
    UTF-8 JSON object: the caller's manifest merged with the registry's own keys, which win on a
    clash: ``format_version`` (1), ``id`` (``"global/bid/v0003"``), ``task``, ``brand`` (``null``
    for global), ``version``, ``created_at`` (UTC, ISO 8601), ``files`` (``{relative posix path:
    sha256 hex}`` for every file the writer wrote) and ``library_versions`` (Python and whichever
    of numpy, pandas, lightgbm, xgboost, scikit-learn, tabtune are installed).
``vNNNN/manifest.json`` ``depends_on``
    Present when a file the writer wrote (a model's own ``model/manifest.json``) declares the
    versions it cannot be loaded without, such as the base of a model stored as a delta
    (``docs/registry.md``); garbage collection never deletes them while this version is kept.
``.deleted-vNNNN-<random>/``
    A version being deleted by :meth:`ModelRegistry.gc`: renamed to a hidden name first (so it
    is never half there), then removed; one a crash left behind is removed by the next ``gc``.
``CHAMPION``
    Plain text: the champion's version name and a newline (``"v0003\\n"``), so ``cat CHAMPION``
    answers "what is live". It is replaced atomically (a temporary
    ``.CHAMPION.<random>.tmp`` then :func:`os.replace`, see :mod:`tabtune.atomic`) and only
    ever names a complete version.
``.locks/<name>.lock``
    Held with :func:`fcntl.flock`; while held it contains the holder's pid, host and start time.

Locks
-----
:meth:`ModelRegistry.lock` gives callers (the nightly refresh, the CLI) an inter-process lock.
The registry's own short critical sections (choosing a version number, moving a champion) take a
separate lock, ``.locks/write.lock``, so a caller holding ``lock("registry")`` can still publish.
Do not hold ``lock("write")`` yourself while calling registry methods: ``flock`` is not re-entrant
across file descriptors, so that would wait for ever.

Modules
-------
:mod:`~tabtune.registry.model_registry` (:class:`ModelRegistry`), :mod:`~tabtune.registry.layout`
(names, :class:`ModelRef`), :mod:`~tabtune.registry.manifest` (manifests, checksums,
verification), :mod:`~tabtune.registry.pointers` (``CHAMPION``), :mod:`~tabtune.registry.locks`,
:mod:`~tabtune.registry.retention` (what :meth:`ModelRegistry.gc` keeps and deletes),
:mod:`~tabtune.registry.staging` (temporary directories), :mod:`~tabtune.registry.mlflow_mirror`
and :mod:`~tabtune.registry.table` (``tabtune models list``).
"""

from __future__ import annotations

from tabtune.registry.layout import CHAMPION_NAME, MANIFEST_NAME, ModelRef
from tabtune.registry.locks import RegistryLockedError
from tabtune.registry.manifest import FORMAT_VERSION, library_versions
from tabtune.registry.model_registry import ModelRegistry
from tabtune.registry.retention import GcResult
from tabtune.registry.table import format_registry_table

__all__ = [
    "CHAMPION_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "GcResult",
    "ModelRef",
    "ModelRegistry",
    "RegistryLockedError",
    "format_registry_table",
    "library_versions",
]
