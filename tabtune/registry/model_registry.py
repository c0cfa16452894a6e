"""The model registry: versions of each task's models, per brand or global, with a champion.

:class:`ModelRegistry` ties the pieces together: the layout (:mod:`~tabtune.registry.layout`),
manifests and checksums (:mod:`~tabtune.registry.manifest`), the champion pointer
(:mod:`~tabtune.registry.pointers`), locks (:mod:`~tabtune.registry.locks`), temporary
directories (:mod:`~tabtune.registry.staging`) and the optional MLflow mirror. See
:mod:`tabtune.registry` for the layout on disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tabtune.atomic import publish_dir, staging_dir
from tabtune.data.limits import check_brand_id
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.registry.layout import (
    CHAMPION_NAME,
    ModelRef,
    check_name,
    check_version,
    scope_id,
    subdirs,
    version_names,
    version_number,
)
from tabtune.registry.locks import REFRESH_LOCK, hold_lock, outside_a_refresh, refreshing
from tabtune.registry.manifest import (
    build_manifest,
    declared_dependencies,
    hash_written_files,
    jsonable,
    read_manifest,
    verify_manifest,
    write_manifest,
)
from tabtune.registry.mlflow_mirror import log_version, require_mlflow
from tabtune.registry.pointers import clear_pointer, read_pointer, write_pointer
from tabtune.registry.retention import (
    GcResult,
    delete_versions,
    plan_retention,
    recorded_champion_before,
    sweep_deleted,
)
from tabtune.registry.staging import clean_stale_tmp, staging_prefix

__all__ = ["ModelRegistry"]

# One logger for the whole registry package, named as before it was split into modules.
logger = logging.getLogger("tabtune.registry")

_WRITE_LOCK = "write"


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
            require_mlflow()

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # ------------------------------------------------------------------ paths and references

    def scope_dir(self, task: str, brand: str | None = None) -> Path:
        """Return the folder holding the versions of ``task`` (for ``brand``, or global).

        Raises
        ------
        TabTuneInputError
            ``task`` is not a valid name, or ``brand`` breaks the brand-id rule shared with
            the data contract and the store (:func:`tabtune.data.limits.check_brand_id`).
        """
        check_name(task, "task")
        if brand is None:
            return self.root / "global" / task
        check_brand_id(brand, "brand")
        return self.root / "brands" / brand / task

    def ref(self, task: str, version: str, *, brand: str | None = None) -> ModelRef:
        """Return the reference to an existing version.

        Raises
        ------
        TabTuneInputError
            The version name is malformed or the version does not exist.
        """
        check_version(version)
        path = self.scope_dir(task, brand) / version
        if not path.is_dir():
            raise TabTuneInputError(
                f"no version {version} of {scope_id(task, brand)} in registry {self.root}"
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

    def was_published(self, model_id: str) -> bool:
        """Whether ``model_id`` names a version of this registry that exists, or that existed
        and the retention policy deleted (:meth:`gc` always keeps each scope's newest version,
        so a number below it was published here; numbers are never reused).

        A malformed id, an unknown scope or a number past the scope's newest gives False.
        """
        try:
            self.from_id(model_id)
            return True
        except TabTuneInputError:
            pass
        parts = str(model_id).strip("/").split("/")
        if len(parts) == 3 and parts[0] == "global":
            task, brand, version = parts[1], None, parts[2]
        elif len(parts) == 4 and parts[0] == "brands":
            task, brand, version = parts[2], parts[1], parts[3]
        else:
            return False
        try:
            check_version(version)
            names = version_names(self.scope_dir(task, brand))
        except TabTuneInputError:
            return False
        return bool(names) and version_number(version) < version_number(names[-1])

    # ------------------------------------------------------------------ reading

    def versions(self, task: str, brand: str | None = None) -> list[ModelRef]:
        """Return the stored versions of a task, oldest first.

        Temporary directories of unfinished or crashed publishes are not versions.
        """
        scope = self.scope_dir(task, brand)
        return [
            ModelRef(task=task, brand=brand, version=name, path=scope / name)
            for name in version_names(scope)
        ]

    def champion(self, task: str, brand: str | None = None) -> ModelRef | None:
        """Return the champion version (not verified), or ``None`` if none was promoted.

        Raises
        ------
        ModelIntegrityError
            The ``CHAMPION`` pointer is unreadable or names a version that does not exist.
        """
        scope = self.scope_dir(task, brand)
        version = read_pointer(scope)
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
        return read_manifest(self._own_path(ref), ref.id)

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
        verify_manifest(path, ref.id, self.manifest(ref))

    def resolve(self, task: str, brand: str | None = None) -> ModelRef | None:
        """Return the version to serve: the champion if it verifies, else the one before it.

        If the champion is corrupt a warning is logged and the champion it replaced is served,
        as :meth:`rollback` finds it: for a brand whose champion's manifest records it, that
        version (None: the global model served the brand before, and serves it again);
        otherwise, or with a broken pointer, the newest *older* version that verifies. A
        fallback has ``fallback_from`` set to the champion's version. The pointer itself is not
        changed (use :meth:`rollback` for that).

        Returns
        -------
        ModelRef or None
            ``None`` when no champion was ever promoted, when no candidate verifies, or when a
            corrupt brand champion replaced the global model.
        """
        scope = self.scope_dir(task, brand)
        try:
            pointed = read_pointer(scope)
        except ModelIntegrityError as exc:
            logger.warning("%s; looking for the newest version that verifies", exc)
            pointed, limit = "<unreadable>", None
        else:
            if pointed is None:
                return None
            limit = version_number(pointed)
            champ = ModelRef(task=task, brand=brand, version=pointed, path=scope / pointed)
            try:
                self.verify(champ)
                return champ
            except ModelIntegrityError as exc:
                logger.warning("champion %s failed verification: %s", champ.id, exc)
            # the champion it replaced, as a rollback finds it: a newer or older losing
            # challenger never served, and the global model may have served the brand before
            before, known = self._champion_before(task, brand, pointed)
            if known and before is None:
                logger.warning(
                    "the global model serves %s instead of champion %s, which failed "
                    "verification (the global model served it before)", scope_id(task, brand),
                    pointed,
                )  # fmt: skip
                return None
            if before is not None:
                logger.warning(
                    "serving %s instead of champion %s, which failed verification", before.id,
                    pointed,
                )  # fmt: skip
                return ModelRef(task, brand, before.version, before.path, fallback_from=pointed)
        ref = self._newest_verified(
            task, brand, below=limit, skip="fallback candidate %s failed verification: %s"
        )
        if ref is None:
            logger.error("no version of %s verifies; nothing to serve", scope_id(task, brand))
            return None
        logger.warning(
            "serving %s instead of champion %s, which failed verification", ref.id, pointed
        )
        return ModelRef(ref.task, ref.brand, ref.version, ref.path, fallback_from=pointed)

    def list(self, *, verify: bool = False) -> list[dict[str, Any]]:
        """Return one JSON-ready row per (scope, task), global scopes first.

        Each row has ``id`` (``"global/bid"``), ``scope`` (``"global"`` or ``"brand"``),
        ``brand`` (``None`` for global), ``task``, ``versions`` (count), ``champion`` (version
        name or ``None``; ``"<unreadable>"`` for a broken pointer) and ``latest``.

        Parameters
        ----------
        verify : bool, default False
            Also check each champion against its manifest (:meth:`verify`, which reads and
            hashes its files) and add ``status`` (``"ok"``, ``"corrupt"``, ``"broken
            pointer"``, or ``None`` without a champion) and ``problem`` (why, else ``None``).
            A champion that fails is reported in its row; the listing itself never fails.
        """
        scopes: list[tuple[str | None, str]] = []
        for task_dir in subdirs(self.root / "global"):
            scopes.append((None, task_dir.name))
        for brand_dir in subdirs(self.root / "brands"):
            for task_dir in subdirs(brand_dir):
                scopes.append((brand_dir.name, task_dir.name))
        rows = []
        for brand, task in scopes:
            scope = self.scope_dir(task, brand)
            names = version_names(scope)
            try:
                champion = read_pointer(scope)
            except ModelIntegrityError:
                champion = "<unreadable>"
            if not names and champion is None:
                continue
            row = {
                "id": scope_id(task, brand),
                "scope": "global" if brand is None else "brand",
                "brand": brand,
                "task": task,
                "versions": len(names),
                "champion": champion,
                "latest": names[-1] if names else None,
            }
            if verify:
                row["status"], row["problem"] = self.champion_status(task, brand)
            rows.append(row)
        return rows

    def champion_status(self, task: str, brand: str | None = None) -> tuple[str | None, str | None]:
        """Whether the champion of a scope would serve: ``(status, problem)``.

        ``("ok", None)`` when it verifies; ``("corrupt", why)`` when it fails :meth:`verify`
        (a changed or missing file, a manifest that does not match); ``("corrupt base", why)``
        when a version it cannot load without (a brand delta's global model) does;
        ``("broken pointer",
        why)`` when ``CHAMPION`` is unreadable or names a version that does not exist;
        ``(None, None)`` without a champion. Never raises for a damaged registry: it is
        what listing it reports.
        """
        try:
            ref = self.champion(task, brand)
        except ModelIntegrityError as exc:
            return "broken pointer", str(exc)
        if ref is None:
            return None, None
        try:
            self.verify(ref)
        except TabTuneInputError as exc:  # ModelIntegrityError, or a path outside the registry
            return "corrupt", str(exc)
        for base in self.manifest(ref).get("depends_on") or []:  # a delta loads with its base
            try:
                self.verify(self.from_id(str(base)))
            except (TabTuneInputError, KeyError, ValueError) as exc:
                return "corrupt base", f"its base {base} does not verify: {exc}"
        return "ok", None

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
        user_manifest = jsonable(dict(manifest or {}), "manifest")
        # 0o700, as the registry's temporary directories have always been (tempfile.mkdtemp).
        with staging_dir(scope, prefix=staging_prefix(), mode=0o700) as tmp:
            writer(tmp)
            files = hash_written_files(tmp)
            needs = declared_dependencies(tmp)
            with self._write_lock():
                clean_stale_tmp(scope, keep=tmp)
                names = version_names(scope, complete=False)  # numbered past any folder
                number = version_number(names[-1]) + 1 if names else 1
                version = f"v{number:04d}"
                ref = ModelRef(task=task, brand=brand, version=version, path=scope / version)
                full = build_manifest(user_manifest, ref, files, needs)
                write_manifest(tmp, full)
                publish_dir(tmp, ref.path)
                if promote:
                    write_pointer(scope, version)
        logger.info("published %s%s", ref.id, " (champion)" if promote else "")
        if self.mlflow_uri is not None:
            log_version(ref, full, self.mlflow_uri, self.mlflow_experiment)
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
            write_pointer(ref.path.parent, ref.version)
        logger.info("promoted %s to champion", ref.id)

    def rollback(
        self, task: str, brand: str | None = None, to: str | None = None
    ) -> ModelRef | None:
        """Move the champion back to the previous champion (or to version ``to``).

        Without ``to``: for a brand champion whose manifest records the champion it replaced
        (``refresh.champion_before``, or ``champion_before`` from ``tabtune finetune``): that
        version, or none at all when the
        global model served the brand before (the pointer is removed, so the global model
        serves it again). A losing challenger published in between never served, so it is not
        a rollback target. Otherwise (or when that version no longer verifies) the newest
        version older than the champion that verifies (corrupt ones are skipped with a
        warning). The pointer is replaced atomically.

        Returns
        -------
        ModelRef or None
            The new champion; None when the brand is served by the global model again.

        Raises
        ------
        TabTuneInputError
            There is no champion, or no earlier version to roll back to, or ``to`` does not
            exist.
        ModelIntegrityError
            The explicit target ``to`` fails verification.
        """
        scope = self.scope_dir(task, brand)
        sid = scope_id(task, brand)
        with outside_a_refresh(self.root, "ModelRegistry.rollback"), self._write_lock():
            try:
                current = read_pointer(scope)
            except ModelIntegrityError:
                current = None
                if to is None:
                    raise
            target: ModelRef | None
            if to is not None:
                target = self.ref(task, to, brand=brand)
                self.verify(target)
            else:
                if current is None:
                    raise TabTuneInputError(f"{sid} has no champion to roll back from")
                before, known = self._champion_before(task, brand, current)
                if known and before is None:  # the global model served the brand before
                    clear_pointer(scope)
                    logger.warning(
                        "rolled back %s champion from %s to the global model", sid, current
                    )
                    return None
                target = before or self._newest_verified(
                    task, brand, below=version_number(current), skip="skipping %s in rollback: %s"
                )
                if target is None:
                    raise TabTuneInputError(
                        f"cannot roll back {sid}: no version older than champion {current} "
                        "verifies (nothing earlier to roll back to)"
                    )
            write_pointer(scope, target.version)
        logger.warning("rolled back %s champion from %s to %s", sid, current, target.version)
        return target

    def _champion_before(
        self, task: str, brand: str | None, current: str
    ) -> tuple[ModelRef | None, bool]:
        """The champion a brand champion replaced, from its manifest
        (:func:`~tabtune.registry.retention.recorded_champion_before`): (that version or None
        for the global model, True), or (None, False) when it is not recorded or no longer
        verifies."""
        if brand is None:
            return None, False
        try:
            recorded, before = recorded_champion_before(
                self.manifest(self.ref(task, current, brand=brand))
            )
        except (ModelIntegrityError, TabTuneInputError):
            return None, False
        if not recorded:
            return None, False
        if before is None:
            return None, True
        try:
            ref = self.from_id(str(before))
            self.verify(ref)
        except (ModelIntegrityError, TabTuneInputError, KeyError, ValueError) as exc:
            logger.warning("the champion before %s does not verify (%s): not used", current, exc)
            return None, False
        if ref.path.parent != self.scope_dir(task, brand):
            return None, False
        return ref, True

    def gc(self, keep_versions: int = 3, *, dry_run: bool = False) -> GcResult:
        """Delete the versions the retention policy does not keep (see
        :mod:`tabtune.registry.retention`): it keeps each scope's champion, its newest
        ``keep_versions``, its rollback target, the champion a kept version was built against,
        and whatever a kept version needs (the base of a delta, its global model).

        The plan is made and carried out under the write lock, so no publish or promotion
        comes in between; each version disappears whole (renamed to a hidden name, then
        removed). Refused while a refresh of another process runs (a dry run is not).

        Parameters
        ----------
        keep_versions : int
            Newest versions kept per scope (at least 1).
        dry_run : bool
            Only say what would be deleted.

        Returns
        -------
        GcResult
            The ids deleted (or to delete) and the bytes freed.

        Raises
        ------
        TabTuneInputError
            ``keep_versions`` is below 1.
        RegistryLockedError
            A refresh of another process is running (not for a dry run).
        """
        if (
            isinstance(keep_versions, bool)
            or not isinstance(keep_versions, int)
            or keep_versions < 1
        ):
            raise TabTuneInputError(
                f"keep_versions must be an integer >= 1 (registry.keep_versions), got "
                f"{keep_versions!r}"
            )
        result = GcResult(keep_versions=keep_versions, dry_run=dry_run)
        guard = contextlib.nullcontext() if dry_run else outside_a_refresh(self.root, "gc")
        with guard, self._write_lock():
            if not dry_run:
                sweep_deleted(self.root, self.scope_dir)
            delete, kept, notes, _ = plan_retention(self.root, keep_versions, self.scope_dir)
            result.deleted = [ref.id for ref in delete]
            result.kept, result.notes = kept, notes
            if dry_run:
                result.freed_bytes = sum(_folder_bytes(ref.path) for ref in delete)
            else:
                result.freed_bytes = delete_versions(delete)
        for note in notes:
            logger.warning("gc: %s", note)
        logger.info(
            "gc%s: %d versions deleted (%d bytes), %d kept",
            " (dry run)" if dry_run else "",
            len(result.deleted),
            result.freed_bytes,
            result.kept,
        )
        return result

    # ------------------------------------------------------------------ locks

    @contextlib.contextmanager
    def lock(
        self, name: str = "registry", timeout: float | None = None, *, shared: bool = False
    ) -> Iterator[Path]:
        """Hold an exclusive inter-process lock on ``<root>/.locks/<name>.lock``.

        Uses :func:`fcntl.flock`, so the lock is released if the holder dies. While held, the
        file records the holder's pid, host and start time.

        Parameters
        ----------
        name : str
            Lock name; ``"registry"`` by default (the nightly refresh's run lock).
        timeout : float or None
            ``None`` waits as long as needed; ``0`` fails at once; otherwise seconds to wait.
        shared : bool, default False
            Hold it shared (:func:`~tabtune.registry.locks.hold_lock`): the commands that
            must not run during a refresh hold the refresh lock shared, side by side. Held
            exclusively, the refresh lock marks this thread as the refresher of this
            registry (:func:`~tabtune.registry.locks.refreshing`): its own :meth:`gc` and
            :meth:`rollback` pass.

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
        check_name(name, "lock name")
        with hold_lock(self.root / ".locks" / f"{name}.lock", timeout, shared=shared) as path:
            if name == REFRESH_LOCK and not shared:  # this thread's own gc and rollback pass
                with refreshing(self.root):
                    yield path
            else:
                yield path

    # ------------------------------------------------------------------ internals

    def _write_lock(self) -> contextlib.AbstractContextManager[Path]:
        return self.lock(_WRITE_LOCK, timeout=None)

    def _newest_verified(
        self, task: str, brand: str | None, *, below: int | None, skip: str
    ) -> ModelRef | None:
        """Return the newest version numbered below ``below`` (any if ``None``) that verifies.

        Each newer one that fails verification is logged as a warning with the format ``skip``
        (its id, the error).
        """
        for ref in reversed(self.versions(task, brand)):
            if below is not None and ref.number >= below:
                continue
            try:
                self.verify(ref)
            except ModelIntegrityError as exc:
                logger.warning(skip, ref.id, exc)
                continue
            return ref
        return None

    def _own_path(self, ref: ModelRef) -> Path:
        """Return ``ref``'s directory after checking it lies in this registry."""
        check_version(ref.version)
        expected = self.scope_dir(ref.task, ref.brand) / ref.version
        if Path(os.path.abspath(ref.path)) != Path(os.path.abspath(expected)):
            raise TabTuneInputError(
                f"{ref.id} points at {ref.path}, which is not in registry {self.root} "
                f"(expected {expected})"
            )
        return expected


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
