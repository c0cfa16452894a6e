"""The retention policy: which versions a registry keeps, and deleting the others safely.

A version is kept when it is

* the champion of its scope (``CHAMPION``), or in a scope whose pointer cannot be read (all
  its versions are kept then: what is live is unknown);
* one of the newest ``keep_versions`` of its scope;
* the rollback target: the newest version older than the champion (what
  :meth:`~tabtune.registry.ModelRegistry.rollback` moves to, and what
  :meth:`~tabtune.registry.ModelRegistry.resolve` serves when the champion fails verification);
* the champion a kept version was built against (its manifest's ``refresh.champion_before``:
  the promotion history one step back, so a promotion can be undone by ``rollback --to``);
* named by a kept version's manifest as what it needs: ``depends_on`` (a model stored as a
  delta on its base; followed transitively), ``base_model`` and ``refresh.global_model`` (the
  global model a brand's version was adapted from).

When a kept version's manifest cannot be read, what it needs is unknown, so no global version
is deleted. Everything else is deleted: each version folder is first renamed to a hidden
``.deleted-vNNNN-<random>`` name (atomic; hidden names are never versions), under the
registry's write lock, and only then removed; a crash in between leaves hidden folders that
the next collection removes. Nothing here knows how a model is serialised.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabtune.atomic import fsync_dir
from tabtune.errors import ModelIntegrityError
from tabtune.registry.layout import ModelRef, subdirs, version_names, version_number
from tabtune.registry.manifest import read_manifest
from tabtune.registry.pointers import read_pointer

__all__ = [
    "DELETED_PREFIX",
    "GcResult",
    "delete_versions",
    "plan_retention",
    "sweep_deleted",
]

logger = logging.getLogger("tabtune.registry")

#: Name prefix of a version folder being deleted.
DELETED_PREFIX = ".deleted-"
_ID = re.compile(r"^(global/[^/]+|brands/[^/]+/[^/]+)/v\d{4,}$")


@dataclass
class GcResult:
    """What a collection deleted (or, in a dry run, would delete).

    Attributes
    ----------
    keep_versions : int
        The policy's number of newest versions kept per scope.
    deleted : list of str
        Ids of the versions deleted (or to delete), oldest first per scope.
    kept : int
        Versions kept.
    freed_bytes : int
        Bytes of the deleted versions' files.
    dry_run : bool
        Nothing was deleted.
    notes : list of str
        Why versions were kept beyond the policy (unreadable pointers or manifests).
    """

    keep_versions: int
    deleted: list[str] = field(default_factory=list)
    kept: int = 0
    freed_bytes: int = 0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "keep_versions": self.keep_versions,
            "deleted": list(self.deleted),
            "kept": self.kept,
            "freed_bytes": self.freed_bytes,
            "dry_run": self.dry_run,
            "notes": list(self.notes),
        }


def _scopes(root: Path) -> list[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = [(None, d.name) for d in subdirs(root / "global")]
    for brand_dir in subdirs(root / "brands"):
        found.extend((brand_dir.name, d.name) for d in subdirs(brand_dir))
    return found


def _policy_roots(
    scope: Path, names: list[str], keep_versions: int, notes: list[str], sid: str
) -> set[str]:
    """The versions of one scope kept by the policy itself (before what they need)."""
    try:
        champion = read_pointer(scope)
    except ModelIntegrityError as exc:
        notes.append(f"{sid}: every version kept, the champion pointer is unreadable ({exc})")
        return set(names)
    keep = set(names[-keep_versions:])
    if champion is not None:
        keep.add(champion)
        older = [n for n in names if version_number(n) < version_number(champion)]
        if older:
            keep.add(older[-1])
    return keep


def _needs(manifest: Mapping[str, Any], *, root: bool) -> list[str]:
    """The registry ids a version's manifest says it needs (and, for a policy root, the
    champion it was built against)."""
    out: list[Any] = list(manifest.get("depends_on") or [])
    out.append(manifest.get("base_model"))
    info = manifest.get("refresh")
    if isinstance(info, Mapping):
        out.append(info.get("global_model"))
    if root:
        out.append(recorded_champion_before(manifest)[1])
    return [str(v) for v in out if isinstance(v, str) and _ID.match(v)]


def recorded_champion_before(manifest: Mapping[str, Any]) -> tuple[bool, Any]:
    """(recorded, value) of the champion a version replaced when it was published: the
    refresh's ``refresh.champion_before`` or ``tabtune finetune``'s ``champion_before``
    (None: the global model served the brand)."""
    if "champion_before" in manifest:
        return True, manifest["champion_before"]
    info = manifest.get("refresh")
    if isinstance(info, Mapping) and "champion_before" in info:
        return True, info["champion_before"]
    return False, None


def plan_retention(
    root: Path, keep_versions: int, scope_dir: Callable[[str, str | None], Path]
) -> tuple[list[ModelRef], int, list[str], bool]:
    """Decide what a collection deletes.

    Returns
    -------
    (to delete, number kept, notes, globals protected)
        Versions to delete, oldest first per scope; the last item says no global version
        may be deleted (a kept manifest was unreadable).
    """
    notes: list[str] = []
    all_refs: dict[str, ModelRef] = {}
    roots: set[str] = set()
    for brand, task in _scopes(root):
        scope = scope_dir(task, brand)
        names = version_names(scope)
        for name in names:
            ref = ModelRef(task=task, brand=brand, version=name, path=scope / name)
            all_refs[ref.id] = ref
        sid = f"global/{task}" if brand is None else f"brands/{brand}/{task}"
        roots |= {f"{sid}/{n}" for n in _policy_roots(scope, names, keep_versions, notes, sid)}
    kept, queue, protect_globals = set(roots), list(roots), False
    while queue:
        ref_id = queue.pop()
        found = all_refs.get(ref_id)
        if found is None:
            continue
        try:
            manifest = read_manifest(found.path, found.id)
        except ModelIntegrityError as exc:
            notes.append(
                f"{found.id}: no global version deleted, its manifest is unreadable ({exc})"
            )
            protect_globals = True
            continue
        for need in _needs(manifest, root=ref_id in roots):
            if need not in kept:
                kept.add(need)
                queue.append(need)
    delete = [
        ref
        for ref_id, ref in all_refs.items()
        if ref_id not in kept and not (protect_globals and ref.brand is None)
    ]
    return delete, len(all_refs) - len(delete), notes, protect_globals


def _tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def delete_versions(refs: Iterable[ModelRef]) -> int:
    """Delete version folders (call under the registry's write lock); returns bytes freed.

    Each folder is renamed to a hidden name first (atomic: readers see the version or
    nothing), the renames are made durable, then the hidden folders are removed.
    """
    moved: list[Path] = []
    freed = 0
    for ref in refs:
        freed += _tree_bytes(ref.path)
        hidden = ref.path.parent / f"{DELETED_PREFIX}{ref.version}-{uuid.uuid4().hex[:12]}"
        os.rename(ref.path, hidden)
        moved.append(hidden)
    for parent in sorted({p.parent for p in moved}):
        fsync_dir(parent)
    for hidden in moved:
        shutil.rmtree(hidden, ignore_errors=True)
    return freed


def sweep_deleted(root: Path, scope_dir: Callable[[str, str | None], Path]) -> None:
    """Remove hidden ``.deleted-*`` folders a crashed collection left behind."""
    for brand, task in _scopes(root):
        scope = scope_dir(task, brand)
        try:
            entries = list(os.scandir(scope))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name.startswith(DELETED_PREFIX) and entry.is_dir(follow_symlinks=False):
                logger.info("removing %s, left by an interrupted collection", entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)
