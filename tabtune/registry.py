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
``CHAMPION``
    Plain text: the champion's version name and a newline (``"v0003\\n"``), so ``cat CHAMPION``
    answers "what is live". It is replaced atomically (``CHAMPION.tmp`` then :func:`os.replace`)
    and only ever names a complete version.
``.locks/<name>.lock``
    Held with :func:`fcntl.flock`; while held it contains the holder's pid, host and start time.

Locks
-----
:meth:`ModelRegistry.lock` gives callers (the nightly refresh, the CLI) an inter-process lock.
The registry's own short critical sections (choosing a version number, moving a champion) take a
separate lock, ``.locks/write.lock``, so a caller holding ``lock("registry")`` can still publish.
Do not hold ``lock("write")`` yourself while calling registry methods: ``flock`` is not re-entrant
across file descriptors, so that would wait for ever.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.optional import optional_import, require

__all__ = [
    "FORMAT_VERSION",
    "ModelRef",
    "ModelRegistry",
    "RegistryLockedError",
    "format_registry_table",
    "library_versions",
]

logger = logging.getLogger(__name__)

#: Version of the manifest layout written by this module; :meth:`ModelRegistry.verify` refuses
#: manifests with a newer one.
FORMAT_VERSION = 1

MANIFEST_NAME = "manifest.json"
CHAMPION_NAME = "CHAMPION"
_TMP_PREFIX = ".tmp-"
_WRITE_LOCK = "write"
_VERSION_RE = re.compile(r"^v(\d{4,})$")
# A temporary directory from another host (shared file system) cannot be checked for a live
# pid; it is treated as stale once it is this old.
_FOREIGN_TMP_MAX_AGE_S = 24 * 3600.0
_LOCK_POLL_S = 0.05
_HASH_CHUNK = 1 << 20
# Distribution names to record; the first one installed wins (xgboost ships as xgboost-cpu too).
_LIBRARIES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "lightgbm": ("lightgbm",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "scikit-learn": ("scikit-learn",),
    "tabtune": ("tabtune",),
}


class RegistryLockedError(TabTuneInputError):
    """Another process holds a registry lock and the caller's timeout ran out."""


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
        return f"{_scope_id(self.task, self.brand)}/{self.version}"

    @property
    def number(self) -> int:
        """The version number (``3`` for ``"v0003"``)."""
        return _version_number(self.version)

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


class ModelRegistry:
    """Versioned, checksummed model store with champion pointers.

    Parameters
    ----------
    root : str or Path
        Registry root directory (e.g. ``"models"``). Created on first write; reading a registry
        that does not exist yet finds no models.
    mlflow_uri : str or None
        If given, every publish is also logged to this MLflow tracking URI (manifest and files).
        MLflow is imported only then; it is optional (``pip install tabtune[mlflow]``).
    mlflow_experiment : str
        MLflow experiment name used when ``mlflow_uri`` is set.

    Raises
    ------
    ImportError
        ``mlflow_uri`` is set but MLflow is not installed.

    Examples
    --------
    >>> reg = ModelRegistry(tmp)  # doctest: +SKIP
    >>> write = lambda d: (d / "model.txt").write_text("...")  # doctest: +SKIP
    >>> ref = reg.publish("bid", write, promote=True)  # doctest: +SKIP
    >>> reg.resolve("bid").id  # doctest: +SKIP
    'global/bid/v0001'
    """

    def __init__(
        self,
        root: str | Path,
        *,
        mlflow_uri: str | None = None,
        mlflow_experiment: str = "tabtune",
    ) -> None:
        self.root = Path(root)
        self.mlflow_uri = mlflow_uri
        self.mlflow_experiment = mlflow_experiment
        if mlflow_uri is not None:
            require("mlflow", extra="mlflow", purpose=_MLFLOW_PURPOSE)

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # ------------------------------------------------------------------ paths and references

    def scope_dir(self, task: str, brand: str | None = None) -> Path:
        """Return the folder holding the versions of ``task`` (for ``brand``, or global).

        Raises
        ------
        TabTuneInputError
            ``task`` or ``brand`` is not a valid name.
        """
        _check_name(task, "task")
        if brand is None:
            return self.root / "global" / task
        _check_name(brand, "brand")
        return self.root / "brands" / brand / task

    def ref(self, task: str, version: str, *, brand: str | None = None) -> ModelRef:
        """Return the reference to an existing version.

        Raises
        ------
        TabTuneInputError
            The version name is malformed or the version does not exist.
        """
        _check_version(version)
        path = self.scope_dir(task, brand) / version
        if not path.is_dir():
            raise TabTuneInputError(
                f"no version {version} of {_scope_id(task, brand)} in registry {self.root}"
            )
        return ModelRef(task=task, brand=brand, version=version, path=path)

    def from_id(self, model_id: str) -> ModelRef:
        """Return the reference named by an id such as ``"brands/b001/bid/v0002"``.

        Raises
        ------
        TabTuneInputError
            The id is malformed or names no stored version.
        """
        parts = str(model_id).strip("/").split("/")
        if len(parts) == 3 and parts[0] == "global":
            return self.ref(parts[1], parts[2])
        if len(parts) == 4 and parts[0] == "brands":
            return self.ref(parts[2], parts[3], brand=parts[1])
        raise TabTuneInputError(
            f"model id {model_id!r} is not 'global/<task>/vNNNN' or 'brands/<brand>/<task>/vNNNN'"
        )

    # ------------------------------------------------------------------ reading

    def versions(self, task: str, brand: str | None = None) -> list[ModelRef]:
        """Return the stored versions of a task, oldest first.

        Temporary directories of unfinished or crashed publishes are not versions.
        """
        scope = self.scope_dir(task, brand)
        return [
            ModelRef(task=task, brand=brand, version=name, path=scope / name)
            for name in _version_names(scope)
        ]

    def champion(self, task: str, brand: str | None = None) -> ModelRef | None:
        """Return the champion version (not verified), or ``None`` if none was promoted.

        Raises
        ------
        ModelIntegrityError
            The ``CHAMPION`` pointer is unreadable or names a version that does not exist.
        """
        scope = self.scope_dir(task, brand)
        version = _read_pointer(scope)
        if version is None:
            return None
        path = scope / version
        if not path.is_dir():
            raise ModelIntegrityError(
                f"{scope / CHAMPION_NAME} names {version}, which does not exist in {scope}"
            )
        return ModelRef(task=task, brand=brand, version=version, path=path)

    def manifest(self, ref: ModelRef) -> dict[str, Any]:
        """Return the manifest of a version as a JSON-ready dict.

        Raises
        ------
        ModelIntegrityError
            ``manifest.json`` is missing or is not a JSON object.
        """
        path = self._own_path(ref) / MANIFEST_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelIntegrityError(f"{ref.id}: {MANIFEST_NAME} is missing ({path})") from None
        except OSError as exc:
            raise ModelIntegrityError(f"{ref.id}: cannot read {path}: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelIntegrityError(f"{ref.id}: {path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ModelIntegrityError(f"{ref.id}: {path} is not a JSON object")
        return data

    def verify(self, ref: ModelRef) -> None:
        """Check a version against its manifest: identity, every file's sha256, no extra files.

        Raises
        ------
        ModelIntegrityError
            Naming the file and, for a changed file, the expected and actual sha256.
        """
        path = self._own_path(ref)
        if not path.is_dir():
            raise ModelIntegrityError(f"{ref.id}: version directory {path} does not exist")
        man = self.manifest(ref)
        fmt = man.get("format_version")
        if not isinstance(fmt, int) or isinstance(fmt, bool):
            raise ModelIntegrityError(f"{ref.id}: manifest has no integer format_version")
        if fmt > FORMAT_VERSION:
            raise ModelIntegrityError(
                f"{ref.id}: manifest format_version {fmt} is newer than this tabtune "
                f"understands ({FORMAT_VERSION}); upgrade tabtune"
            )
        if man.get("id") != ref.id:
            raise ModelIntegrityError(
                f"{ref.id}: manifest says it is {man.get('id')!r}; the directory was moved "
                "or copied from another version"
            )
        files = man.get("files")
        if not isinstance(files, dict) or not files:
            raise ModelIntegrityError(f"{ref.id}: manifest lists no files")
        for name, expected in files.items():
            if not isinstance(name, str) or not _safe_relative(name):
                raise ModelIntegrityError(f"{ref.id}: manifest lists an unsafe path {name!r}")
            file = path / name
            if not file.is_file():
                raise ModelIntegrityError(
                    f"{ref.id}: file {name!r} is missing (expected sha256 {expected})"
                )
            actual = _sha256(file)
            if actual != expected:
                raise ModelIntegrityError(
                    f"{ref.id}: file {name!r} is corrupt: expected sha256 {expected}, "
                    f"actual {actual}"
                )
        extra = sorted(set(_relative_files(path)) - set(files) - {MANIFEST_NAME})
        if extra:
            raise ModelIntegrityError(
                f"{ref.id}: files not in the manifest were added after publishing: {extra}"
            )

    def resolve(self, task: str, brand: str | None = None) -> ModelRef | None:
        """Return the version to serve: the champion if it verifies, else the newest good one.

        If the champion is corrupt (or its pointer is broken) a warning is logged and the newest
        *older* version that verifies is returned, with ``fallback_from`` set to the champion's
        version. The pointer itself is not changed (use :meth:`rollback` for that).

        Returns
        -------
        ModelRef or None
            ``None`` when no champion was ever promoted, or when no candidate verifies.
        """
        scope = self.scope_dir(task, brand)
        try:
            pointed = _read_pointer(scope)
        except ModelIntegrityError as exc:
            logger.warning("%s; looking for the newest version that verifies", exc)
            pointed, limit = "<unreadable>", None
        else:
            if pointed is None:
                return None
            limit = _version_number(pointed)
            champ = ModelRef(task=task, brand=brand, version=pointed, path=scope / pointed)
            try:
                self.verify(champ)
                return champ
            except ModelIntegrityError as exc:
                logger.warning("champion %s failed verification: %s", champ.id, exc)
        for ref in reversed(self.versions(task, brand)):
            if limit is not None and ref.number >= limit:
                continue
            try:
                self.verify(ref)
            except ModelIntegrityError as exc:
                logger.warning("fallback candidate %s failed verification: %s", ref.id, exc)
                continue
            logger.warning(
                "serving %s instead of champion %s, which failed verification", ref.id, pointed
            )
            return ModelRef(ref.task, ref.brand, ref.version, ref.path, fallback_from=pointed)
        logger.error("no version of %s verifies; nothing to serve", _scope_id(task, brand))
        return None

    def list(self) -> list[dict[str, Any]]:
        """Return one JSON-ready row per (scope, task), global scopes first.

        Each row has ``id`` (``"global/bid"``), ``scope`` (``"global"`` or ``"brand"``),
        ``brand`` (``None`` for global), ``task``, ``versions`` (count), ``champion`` (version
        name or ``None``; ``"<unreadable>"`` for a broken pointer) and ``latest``.
        """
        scopes: list[tuple[str | None, str]] = []
        for task_dir in _subdirs(self.root / "global"):
            scopes.append((None, task_dir.name))
        for brand_dir in _subdirs(self.root / "brands"):
            for task_dir in _subdirs(brand_dir):
                scopes.append((brand_dir.name, task_dir.name))
        rows = []
        for brand, task in scopes:
            scope = self.scope_dir(task, brand)
            names = _version_names(scope)
            try:
                champion = _read_pointer(scope)
            except ModelIntegrityError:
                champion = "<unreadable>"
            if not names and champion is None:
                continue
            rows.append(
                {
                    "id": _scope_id(task, brand),
                    "scope": "global" if brand is None else "brand",
                    "brand": brand,
                    "task": task,
                    "versions": len(names),
                    "champion": champion,
                    "latest": names[-1] if names else None,
                }
            )
        return rows

    # ------------------------------------------------------------------ writing

    def publish(
        self,
        task: str,
        writer: Callable[[Path], None],
        *,
        brand: str | None = None,
        manifest: Mapping[str, Any] | None = None,
        promote: bool = False,
    ) -> ModelRef:
        """Store a new version written by ``writer`` and return its reference.

        ``writer(tmp_dir)`` writes the model files into a fresh temporary directory inside the
        task folder. The registry then hashes every file, writes ``manifest.json``, fsyncs, and
        renames the directory to the next ``vNNNN`` under the write lock. If anything fails, the
        temporary directory is removed and nothing is published.

        Parameters
        ----------
        task : str
            Task name.
        writer : callable
            Called once with the directory to write into. It must write at least one file, no
            symlinks, and not ``manifest.json`` (the registry owns it).
        brand : str or None
            Brand id; ``None`` publishes a global model.
        manifest : mapping or None
            Extra manifest entries (params, feature schema, metrics, base model...). Values must
            be JSON: numpy scalars and arrays, dates and paths are converted, non-finite floats
            become ``null``; anything else raises ``TypeError`` naming the key. Registry keys
            (``format_version``, ``id``, ``files``...) override entries of the same name.
        promote : bool
            Also make the new version the champion (atomically, in the same critical section).

        Returns
        -------
        ModelRef
            The new version.

        Raises
        ------
        TabTuneInputError
            Invalid task or brand name, or the writer produced no files, a symlink, or a
            ``manifest.json``.
        TypeError
            A manifest value is not JSON-serialisable.
        """
        scope = self.scope_dir(task, brand)
        user_manifest = _jsonable(dict(manifest or {}), "manifest")
        scope.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{_host()}-{os.getpid()}-", dir=scope))
        try:
            writer(tmp)
            files = self._hash_written_files(tmp)
            with self._write_lock():
                _clean_stale_tmp(scope, keep=tmp)
                names = _version_names(scope)
                number = _version_number(names[-1]) + 1 if names else 1
                version = f"v{number:04d}"
                ref = ModelRef(task=task, brand=brand, version=version, path=scope / version)
                full = {
                    **user_manifest,
                    "format_version": FORMAT_VERSION,
                    "id": ref.id,
                    "task": task,
                    "brand": brand,
                    "version": version,
                    "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                    "files": files,
                    "library_versions": library_versions(),
                }
                _write_json_durable(tmp / MANIFEST_NAME, full)
                _fsync_dir(tmp)
                os.rename(tmp, ref.path)
                _fsync_dir(scope)
                if promote:
                    _write_pointer(scope, version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("published %s%s", ref.id, " (champion)" if promote else "")
        if self.mlflow_uri is not None:
            self._log_to_mlflow(ref, full)
        return ref

    def promote(self, ref: ModelRef) -> None:
        """Make ``ref`` the champion of its task, atomically, after verifying it.

        Raises
        ------
        ModelIntegrityError
            The version fails verification; the champion is unchanged.
        TabTuneInputError
            ``ref`` does not belong to this registry.
        """
        self._own_path(ref)
        with self._write_lock():
            self.verify(ref)
            _write_pointer(ref.path.parent, ref.version)
        logger.info("promoted %s to champion", ref.id)

    def rollback(self, task: str, brand: str | None = None, to: str | None = None) -> ModelRef:
        """Move the champion back to the previous good version (or to version ``to``).

        Without ``to`` the target is the newest version older than the champion that verifies
        (corrupt ones are skipped with a warning). The pointer is replaced atomically.

        Returns
        -------
        ModelRef
            The new champion.

        Raises
        ------
        TabTuneInputError
            There is no champion, or no earlier version to roll back to, or ``to`` does not
            exist.
        ModelIntegrityError
            The explicit target ``to`` fails verification.
        """
        scope = self.scope_dir(task, brand)
        sid = _scope_id(task, brand)
        with self._write_lock():
            try:
                current = _read_pointer(scope)
            except ModelIntegrityError:
                current = None
                if to is None:
                    raise
            if to is not None:
                target = self.ref(task, to, brand=brand)
                self.verify(target)
            else:
                if current is None:
                    raise TabTuneInputError(f"{sid} has no champion to roll back from")
                limit = _version_number(current)
                target = None
                for ref in reversed(self.versions(task, brand)):
                    if ref.number >= limit:
                        continue
                    try:
                        self.verify(ref)
                    except ModelIntegrityError as exc:
                        logger.warning("skipping %s in rollback: %s", ref.id, exc)
                        continue
                    target = ref
                    break
                if target is None:
                    raise TabTuneInputError(
                        f"cannot roll back {sid}: no version older than champion {current} "
                        "verifies (nothing earlier to roll back to)"
                    )
            _write_pointer(scope, target.version)
        logger.warning("rolled back %s champion from %s to %s", sid, current, target.version)
        return target

    # ------------------------------------------------------------------ locks

    @contextlib.contextmanager
    def lock(self, name: str = "registry", timeout: float | None = None) -> Iterator[Path]:
        """Hold an exclusive inter-process lock on ``<root>/.locks/<name>.lock``.

        Uses :func:`fcntl.flock`, so the lock is released if the holder dies. While held, the
        file records the holder's pid, host and start time.

        Parameters
        ----------
        name : str
            Lock name; ``"registry"`` by default (the nightly refresh's run lock).
        timeout : float or None
            ``None`` waits as long as needed; ``0`` fails at once; otherwise seconds to wait.

        Yields
        ------
        Path
            The lock file.

        Raises
        ------
        RegistryLockedError
            (a :class:`TabTuneInputError`) the lock is held by another process and the timeout
            ran out; the message names the holder's pid.
        """
        _check_name(name, "lock name")
        if timeout is not None and (math.isnan(timeout) or timeout < 0):
            raise TabTuneInputError(f"lock timeout must be None or >= 0, got {timeout!r}")
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        path = lock_dir / f"{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _acquire(fd, path, timeout)
            try:
                holder = {
                    "pid": os.getpid(),
                    "host": _host(),
                    "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                }
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
                yield path
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ internals

    def _write_lock(self) -> contextlib.AbstractContextManager[Path]:
        return self.lock(_WRITE_LOCK, timeout=None)

    def _own_path(self, ref: ModelRef) -> Path:
        """Return ``ref``'s directory after checking it lies in this registry."""
        _check_version(ref.version)
        expected = self.scope_dir(ref.task, ref.brand) / ref.version
        if Path(os.path.abspath(ref.path)) != Path(os.path.abspath(expected)):
            raise TabTuneInputError(
                f"{ref.id} points at {ref.path}, which is not in registry {self.root} "
                f"(expected {expected})"
            )
        return expected

    @staticmethod
    def _hash_written_files(tmp: Path) -> dict[str, str]:
        for entry in tmp.rglob("*"):
            if entry.is_symlink():
                raise TabTuneInputError(
                    f"model writer created a symlink {entry.relative_to(tmp).as_posix()!r}; "
                    "write real files so they can be checksummed"
                )
        names = _relative_files(tmp)
        if MANIFEST_NAME in names:
            raise TabTuneInputError(
                f"model writer wrote {MANIFEST_NAME}, which the registry owns; "
                "pass extra metadata with publish(..., manifest=...)"
            )
        if not names:
            raise TabTuneInputError("model writer wrote no files; nothing to publish")
        files = {}
        for name in names:
            files[name] = _sha256(tmp / name, fsync=True)
        for sub in sorted({p.parent for p in tmp.rglob("*") if p.is_file()}, reverse=True):
            _fsync_dir(sub)
        return files

    def _log_to_mlflow(self, ref: ModelRef, manifest: dict[str, Any]) -> None:
        # The registry on disk is the source of truth: a failing MLflow mirror must not undo or
        # fail a publish that already happened, so errors are logged, not raised.
        mlflow = optional_import("mlflow", extra="mlflow", purpose=_MLFLOW_PURPOSE)
        try:
            mlflow.set_tracking_uri(self.mlflow_uri)
            mlflow.set_experiment(self.mlflow_experiment)
            with mlflow.start_run(run_name=ref.id):
                mlflow.set_tags(
                    {
                        "tabtune.id": ref.id,
                        "tabtune.task": ref.task,
                        "tabtune.brand": ref.brand or "(global)",
                    }
                )
                mlflow.log_dict(manifest, "manifest.json")
                mlflow.log_artifacts(str(ref.path), artifact_path="model")
        except Exception:
            logger.warning(
                "could not log %s to MLflow at %s", ref.id, self.mlflow_uri, exc_info=True
            )


def format_registry_table(rows: list[dict[str, Any]]) -> str:
    """Render :meth:`ModelRegistry.list` rows as a plain-text table (``tabtune models list``).

    Parameters
    ----------
    rows : list of dict
        Rows with ``brand``, ``task``, ``versions``, ``champion`` and ``latest``.

    Returns
    -------
    str
        Aligned columns with a header; ``"(no models)"`` when ``rows`` is empty.
    """
    if not rows:
        return "(no models)"
    header = ("BRAND", "TASK", "VERSIONS", "CHAMPION", "LATEST")
    body = [
        (
            "(global)" if row.get("brand") is None else str(row["brand"]),
            str(row.get("task", "")),
            str(row.get("versions", 0)),
            row.get("champion") or "-",
            row.get("latest") or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(w) if i == 2 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths)), *map(fmt, body)])


def library_versions() -> dict[str, str]:
    """Return the versions of Python and the installed model libraries (not importing them).

    Versions are read from package metadata (:mod:`importlib.metadata`), so this is fast and
    never imports numpy, pandas or the boosting libraries. Libraries that are not installed are
    left out.
    """
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for key, dists in _LIBRARIES.items():
        for dist in dists:
            try:
                found[key] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    if "tabtune" not in found:  # running from a source tree that is not installed
        from tabtune import __version__

        found["tabtune"] = __version__
    return found


# ---------------------------------------------------------------------- helpers

_MLFLOW_PURPOSE = "MLflow logging"


def _check_name(value: object, what: str) -> None:
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


def _check_version(version: object) -> None:
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise TabTuneInputError(f"invalid version {version!r}: expected a name like 'v0003'")


def _version_number(version: str) -> int:
    match = _VERSION_RE.match(version)
    if not match:
        raise TabTuneInputError(f"invalid version {version!r}: expected a name like 'v0003'")
    return int(match.group(1))


def _scope_id(task: str, brand: str | None) -> str:
    return f"global/{task}" if brand is None else f"brands/{brand}/{task}"


def _subdirs(path: Path) -> list[Path]:
    try:
        entries = sorted(path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [p for p in entries if p.is_dir() and not p.name.startswith(".")]


def _version_names(scope: Path) -> list[str]:
    """Version directory names in ``scope``, by number (renamed into place, so complete)."""
    try:
        entries = list(os.scandir(scope))
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = [e.name for e in entries if _VERSION_RE.match(e.name) and e.is_dir()]
    return sorted(names, key=_version_number)


def _relative_files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def _safe_relative(name: str) -> bool:
    pure = PurePath(name)
    return bool(name) and not pure.is_absolute() and ".." not in pure.parts and "\\" not in name


def _sha256(path: Path, *, fsync: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
        if fsync:
            os.fsync(fh.fileno())
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _write_json_durable(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _read_pointer(scope: Path) -> str | None:
    """Return the champion version named by ``scope/CHAMPION``, or ``None`` if there is none."""
    path = scope / CHAMPION_NAME
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"cannot read champion pointer {path}: {exc}") from exc
    if not _VERSION_RE.match(text):
        raise ModelIntegrityError(
            f"champion pointer {path} is corrupt: {text[:40]!r} is not a version name"
        )
    return text


def _write_pointer(scope: Path, version: str) -> None:
    """Atomically point ``scope/CHAMPION`` at ``version`` (which must exist)."""
    if not (scope / version).is_dir():  # never point at nothing
        raise ModelIntegrityError(f"cannot promote {version}: {scope / version} does not exist")
    tmp = scope / f"{CHAMPION_NAME}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, scope / CHAMPION_NAME)
    _fsync_dir(scope)


def _host() -> str:
    # Hyphens separate the fields of temporary directory names.
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError as exc:  # pragma: no cover
        return exc.errno != errno.ESRCH
    return True


def _clean_stale_tmp(scope: Path, *, keep: Path) -> None:
    """Remove temporary directories of publishes whose process died (called under the lock)."""
    now = time.time()
    for entry in os.scandir(scope):
        if not entry.name.startswith(_TMP_PREFIX) or entry.path == str(keep):
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        host, _, rest = entry.name[len(_TMP_PREFIX) :].rpartition("-")
        host, _, pid_text = host.rpartition("-")
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        if host == _host() and pid_text.isdigit():
            stale = not _pid_alive(int(pid_text))
        else:
            stale = age > _FOREIGN_TMP_MAX_AGE_S
        if stale:
            logger.info("removing stale temporary directory %s", entry.path)
            shutil.rmtree(entry.path, ignore_errors=True)


def _acquire(fd: int, path: Path, timeout: float | None) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(min(_LOCK_POLL_S, max(0.0, deadline - time.monotonic())))
    holder = _lock_holder(path)
    raise RegistryLockedError(
        f"another run holds the lock {path} ({holder}); waited {timeout:g} s. "
        "Wait for it to finish, or pass a longer timeout"
    )


def _lock_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "pid unknown"
    return f"pid {info['pid']} on {info.get('host', '?')} since {info.get('since', '?')}"


def _jsonable(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON types; raise ``TypeError`` naming ``where`` otherwise."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    module = type(value).__module__
    if module == "numpy" or module.startswith("numpy."):
        # Recognised by module name so that numpy is never imported here.
        if hasattr(value, "tolist"):
            return _jsonable(value.tolist(), where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has a key {key!r} of type {type(key).__name__}; "
                    "manifest keys must be strings"
                )
            out[key] = _jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, _dt.date | _dt.time):  # datetime and pandas.Timestamp included
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which is not "
        "JSON-serialisable; manifest values must be str, int, float, bool, None, lists or "
        "dicts of them (numpy scalars, dates and paths are converted)"
    )
