"""Adapted models stored as what they add to their base (saved-model format 3).

A brand's model adapted from a global model shares most of the global model's trees: a refit
rewrites their leaf values, continued boosting appends trees. When such a model is saved into
the same model registry as its base, its directory holds ``model.delta.json.gz`` instead of
the full native model file: gzip-compressed JSON with the trees it changes (the numbers of a
line that changed, e.g. refitted leaf values), the trees it adds, and the header/tail edits
(:func:`tabtune.boosting.lightgbm_text.text_delta`, :func:`tabtune.boosting.xgboost.ubj_delta`).
Its manifest's ``delta`` entry names the base: its registry id (``"global/bid/v0003"``), its
path relative to the model directory, and its model file's sha256; ``depends_on`` lists the
base's id, so the registry's garbage collection never deletes it.

Exact or not at all: a delta is kept only when rebuilding the full model from it gives the
very bytes of the full model (checked before writing, and again on every load against the
full model's sha256), so predictions are identical; otherwise the full model is written.
Loading reads the base (checksum verified; a missing or changed base is a
:class:`~tabtune.errors.ModelIntegrityError` naming it and the fix), rebuilds the model's
native bytes and hands them on as if the full file had been read. The parsed base is cached in
the process (keyed by its files' identity and times), so loading many brands parses it once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tabtune.boosting.base import read_model_dir
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.estimators.context_overlay import apply_context_overlay, context_overlay, is_overlay
from tabtune.integrity import SEAL_KEY

__all__ = [
    "DELTA_FILE",
    "DELTA_FORMATS",
    "clear_base_cache",
    "encode_context",
    "encode_delta",
    "read_full_model",
    "registry_location",
]

#: The model file of a model stored as a delta on its base.
DELTA_FILE = "model.delta.json.gz"
#: The delta encoding of each backend (``delta.format`` in the manifest).
DELTA_FORMATS = {"lightgbm": "lightgbm-text-delta/1", "xgboost": "xgboost-ubj-delta/1"}
#: A delta is written only when it is at most this share of the full model file.
_MAX_SHARE = 0.5
#: Deltas on deltas are followed this deep at most (a brand's base is a full global model).
_MAX_DEPTH = 4
#: A registry version folder (``tabtune.registry.layout.VERSION_RE``; the registry is a layer
#: below the estimators, so the pattern is repeated here).
_VERSION_DIR = re.compile(r"^v\d{4,}$")
_CACHE_SIZE = 4
#: gzip level of a delta file (9 took 2-6x the time of 6 for files 1-4% smaller).
_LEVEL = 6

_lock = threading.Lock()
# model sha256 -> the directories this process read a model with that sha256 from, each with
# the length of its chain of bases (0: stored whole, 1: a delta or overlay on a whole model, ...)
_STORED_AT: dict[str, dict[Path, int]] = {}
# directory -> its chain length (as in _STORED_AT)
_CHAINS: dict[Path, int] = {}
# (directory, its files' identity) -> (full model sha256, prepared base, its brand context,
# its manifest sha256)
_BASES: OrderedDict[tuple[Any, ...], tuple[str, Any, Any, str]] = OrderedDict()


@dataclass(frozen=True)
class _Codec:
    prepare: Callable[[bytes], Any]
    diff: Callable[[Any, Any], dict[str, Any] | None]
    rebuild: Callable[[Any, dict[str, Any]], bytes]


def _lightgbm() -> _Codec:
    from tabtune.boosting.lightgbm_text import apply_text_delta, text_delta

    return _Codec(
        prepare=lambda data: data.decode("utf-8"),
        diff=text_delta,
        rebuild=lambda base, delta: apply_text_delta(base, delta).encode("utf-8"),
    )


def _xgboost() -> _Codec:
    from tabtune.boosting.xgboost import apply_ubj_delta, ubj_delta, ubj_model

    def prepare(data: bytes) -> Any:
        model = ubj_model(data)
        if model is None:
            raise ValueError("the XGBoost model is not laid out as expected")
        return model

    return _Codec(prepare=prepare, diff=ubj_delta, rebuild=apply_ubj_delta)


_CODECS: dict[str, Callable[[], _Codec]] = {"lightgbm": _lightgbm, "xgboost": _xgboost}


def clear_base_cache() -> None:
    """Forget the parsed bases and where models were read from (tests, long processes)."""
    with _lock:
        _BASES.clear()
        _STORED_AT.clear()
        _CHAINS.clear()


def registry_location(model_dir: Path) -> tuple[Path, str] | None:
    """(registry root, version id) of a model saved in a registry version's folder.

    ``<root>/global/<task>/vNNNN/<dir>`` gives ``(<root>, "global/<task>/vNNNN")``,
    ``<root>/brands/<brand>/<task>/vNNNN/<dir>`` gives ``(<root>, "brands/<brand>/<task>/vNNNN")``;
    anything else None.
    """
    model_dir = Path(os.path.abspath(model_dir))
    version = model_dir.parent
    scope = version.parent
    if not _VERSION_DIR.match(version.name):
        return None
    if scope.parent.name == "global":
        return scope.parent.parent, f"global/{scope.name}/{version.name}"
    if scope.parent.parent.name == "brands":
        brand = scope.parent.name
        return scope.parent.parent.parent, f"brands/{brand}/{scope.name}/{version.name}"
    return None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remember(path: Path, sha: str, chain: int) -> None:
    with _lock:
        directory = Path(os.path.abspath(path))
        _STORED_AT.setdefault(sha, {})[directory] = chain
        _CHAINS[directory] = chain


def _chain_of(directory: Path) -> int:
    """The chain length remembered for a model directory read in this process (0 if none)."""
    with _lock:
        return _CHAINS.get(Path(os.path.abspath(directory)), 0)


def _identity(directory: Path) -> tuple[Any, ...]:
    """The files of a model directory with their inode, size and modification time."""
    entries = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        st = entry.stat()
        entries.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns))
    return (str(directory), tuple(entries))


def _prepared_base(directory: Path, backend: str, depth: int) -> tuple[str, Any, Any, str]:
    """(full model sha256, the codec's parsed form, the manifest's brand context in JSON form,
    the manifest's own sha256 (its seal, which covers the context)) of the model at
    ``directory`` (cached)."""
    key = (backend, *_identity(directory))
    with _lock:
        if key in _BASES:
            _BASES.move_to_end(key)
            return _BASES[key]
    manifest, data = read_full_model(directory, depth=depth + 1)
    if manifest.get("backend", backend) != backend:
        raise ModelIntegrityError(
            f"{directory} holds a {manifest.get('backend')} model, not a {backend} one"
        )
    value = (
        _sha(data),
        _CODECS[backend]().prepare(data),
        manifest.get("brand_context"),
        str(manifest.get(SEAL_KEY)),
    )
    with _lock:
        _BASES[key] = value
        while len(_BASES) > _CACHE_SIZE:
            _BASES.popitem(last=False)
    return value


def _base_for(target: Path, base_sha: str) -> tuple[Path, Path, str] | None:
    """(base directory, registry root, base id) of a stored model with sha256 ``base_sha`` in
    the registry that ``target`` lies in; None when there is none.

    Several directories can hold the very same model: a brand served by the global model's
    trees (strategy ``global``) is published with the global model's bytes. The base chosen is
    the one with the shortest chain of bases (a model stored whole first), then a global
    version, so a brand's model never depends on another brand's version, and chains of
    deltas stay short (never :data:`_MAX_DEPTH` long).
    """
    with _lock:
        stored = dict(_STORED_AT.get(base_sha, {}))

    def preference(directory: Path) -> tuple[int, bool, str]:
        location = registry_location(directory)
        scope_is_global = location is not None and location[1].startswith("global/")
        return stored[directory], not scope_is_global, str(directory)

    for directory in sorted(stored, key=preference):
        if stored[directory] + 1 >= _MAX_DEPTH:
            break
        location = registry_location(directory)
        if location is None or not directory.is_dir():
            continue
        root, base_id = location
        if target.is_relative_to(root / "brands") or target.is_relative_to(root / "global"):
            return directory, root, base_id
    return None


def _stored_base(
    target: str | os.PathLike[str], manifest: Mapping[str, Any]
) -> tuple[Path, Path, str] | None:
    """(where the model is saved, its base's directory, the base's registry id) for a model
    with a base (``base_model_id``) of a backend with a delta codec, read from the registry
    that ``target`` lies in; None otherwise."""
    backend, base_sha = manifest.get("backend"), manifest.get("base_model_id")
    if backend not in _CODECS or not base_sha:
        return None
    where = Path(os.path.abspath(target))
    found = _base_for(where, str(base_sha))
    if found is None:
        return None
    base_dir, _, base_id = found
    return where, base_dir, base_id


def encode_delta(
    target: str | os.PathLike[str], model_bytes: bytes, manifest: Mapping[str, Any]
) -> tuple[bytes, dict[str, Any]] | None:
    """The delta file and the manifest's ``delta`` entry for a model saved at ``target``.

    None (write the full model) unless the model adapts a base (``base_model_id``; not the
    ``scratch`` strategy) that this process read from a registry version, ``target`` lies in
    the same registry, the delta is at most half the full model, and it rebuilds the full
    model's bytes exactly.
    """
    backend, base_sha = manifest.get("backend"), manifest.get("base_model_id")
    if manifest.get("strategy") in (None, "scratch"):
        return None
    found = _stored_base(target, manifest)
    if found is None:
        return None
    where, base_dir, base_id = found
    try:
        sha, base, _, _ = _prepared_base(base_dir, str(backend), 0)
        if sha != base_sha:
            return None
        codec = _CODECS[str(backend)]()
        delta = codec.diff(base, codec.prepare(model_bytes))
        if delta is None:
            return None
        data = gzip.compress(
            json.dumps(delta, separators=(",", ":"), allow_nan=False).encode("utf-8"),
            compresslevel=_LEVEL,
            mtime=0,
        )
        if len(data) > _MAX_SHARE * len(model_bytes):
            return None
        if codec.rebuild(base, json.loads(gzip.decompress(data))) != model_bytes:
            return None
    except (ModelIntegrityError, TabTuneInputError, OSError, ValueError, KeyError, TypeError):
        return None
    info = {
        "format": DELTA_FORMATS[str(backend)],
        "base": {
            "id": base_id,
            "path": PurePosixPath(Path(os.path.relpath(base_dir, where))).as_posix(),
            "model_sha256": sha,
        },
        "model_file": _model_file(str(backend)),
        "model_sha256": _sha(model_bytes),
        "model_bytes": len(model_bytes),
    }
    return data, info


def _model_file(backend: str) -> str:
    from tabtune.boosting.base import get_backend

    return get_backend(backend).model_file


def read_full_model(
    path: str | os.PathLike[str], *, depth: int = 0
) -> tuple[dict[str, Any], bytes]:
    """The manifest and the full native model bytes saved at ``path`` (checksums verified).

    A model stored as a delta is rebuilt from its base; the manifest returned then names the
    full model's file and sha256 (``model_file``, ``model_sha256``), as a full save's does,
    and keeps its ``delta`` entry.

    Raises
    ------
    ModelIntegrityError
        A file fails its checksum, or the delta's base is missing, changed or unreadable (the
        message names the base and the fix).
    TabTuneInputError
        ``path`` holds no saved model.
    """
    manifest, data = read_model_dir(path)
    chain = 0  # the longest chain of bases this model needs
    context = manifest.get("brand_context")
    if is_overlay(context):
        manifest = {**manifest, "brand_context": _context_of(Path(path), manifest, context, depth)}
        chain = 1 + _chain_of(Path(path) / context["overlay_on"]["path"])
    info = manifest.get("delta")
    if info is None:
        _remember(Path(path), str(manifest.get("model_sha256")), chain)
        return manifest, data
    full = _rebuild(Path(path), manifest, info, data, depth)
    manifest = {**manifest, "model_file": info["model_file"], "model_sha256": info["model_sha256"]}
    chain = max(chain, 1 + _chain_of(Path(path) / info["base"]["path"]))
    _remember(Path(path), info["model_sha256"], chain)
    return manifest, full


def encode_context(
    target: str | os.PathLike[str], manifest: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The manifest's brand context as an overlay on its base's table, for a model saved at
    ``target`` (:mod:`tabtune.estimators.context_overlay`).

    None (keep the whole table) unless the model has a base (``base_model_id``, any strategy)
    that this process read from a registry version, ``target`` lies in the same registry, and
    the overlay rebuilds the table exactly.
    """
    backend, base_sha = manifest.get("backend"), manifest.get("base_model_id")
    context = manifest.get("brand_context")
    found = _stored_base(target, manifest)
    if found is None or not isinstance(context, Mapping):
        return None
    where, base_dir, base_id = found
    try:
        sha, _, base_context, base_seal = _prepared_base(base_dir, str(backend), 0)
    except (ModelIntegrityError, TabTuneInputError, OSError, ValueError, KeyError, TypeError):
        return None
    if sha != base_sha or not isinstance(base_context, Mapping) or base_seal == "None":
        return None  # (an unsealed base, format 1: its table could change unnoticed)
    on = {
        "id": base_id,
        "path": PurePosixPath(Path(os.path.relpath(base_dir, where))).as_posix(),
        "model_sha256": sha,
        "manifest_sha256": base_seal,
    }
    try:
        model_context = json.loads(json.dumps(context, allow_nan=False))
    except (TypeError, ValueError):  # e.g. a NaN: the whole table is written
        return None
    return context_overlay(base_context, model_context, on)


def _context_of(path: Path, manifest: Mapping[str, Any], overlay: Any, depth: int) -> Any:
    """The brand-context table a manifest's overlay describes, from its base's table."""
    try:
        base = overlay["overlay_on"]
        base_id, base_sha, relative = str(base["id"]), str(base["model_sha256"]), base["path"]
    except (KeyError, TypeError) as exc:
        raise ModelIntegrityError(
            f"{path}: the manifest's brand-context overlay is malformed ({exc})"
        ) from None
    _, _, base_context, base_seal = _checked_base(
        path,
        str(manifest.get("backend")),
        base_id,
        base_sha,
        relative,
        depth,
        "this model's brand context is stored as an overlay",
    )
    if base_seal != str(base.get("manifest_sha256")):
        raise ModelIntegrityError(
            f"{path}: this model's brand context is stored as an overlay on the table of "
            f"{base_id}, whose manifest changed (manifest sha256 {base_seal}, expected "
            f"{base.get('manifest_sha256')}). Publish this model again (`tabtune finetune "
            "--brand ...` or the next `tabtune refresh`)"
        )
    try:
        if not isinstance(base_context, Mapping):
            raise ValueError(f"{base_id} has no brand-context table")
        return apply_context_overlay(base_context, overlay)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelIntegrityError(
            f"{path}: the brand-context overlay on {base_id} cannot be applied: {exc}"
        ) from None


def _checked_base(
    path: Path,
    backend: str,
    base_id: str,
    base_sha: str,
    relative: str,
    depth: int,
    stored: str,
) -> tuple[str, Any, Any, str]:
    """The prepared base that ``path``'s trees or brand context is stored on (``stored`` says
    which, in the error messages), checked against the sha256 the manifest names."""
    if backend not in _CODECS:
        raise ModelIntegrityError(f"{path}: a {backend} model cannot be stored as a delta")
    if depth >= _MAX_DEPTH:
        raise ModelIntegrityError(f"{path}: deltas on deltas deeper than {_MAX_DEPTH} levels")
    base_dir = Path(os.path.normpath(path / relative))
    fix = (
        f"Restore {base_id} (model sha256 {base_sha}) into the registry, for example from a "
        "backup, or publish this model again as a full copy (`tabtune finetune --brand ...` "
        "or the next `tabtune refresh` writes it against the current global model)"
    )
    try:
        prepared = _prepared_base(base_dir, backend, depth)
    except (TabTuneInputError, ModelIntegrityError, FileNotFoundError, NotADirectoryError) as exc:
        problem = "is missing" if not base_dir.is_dir() else f"cannot be read ({exc})"
        raise ModelIntegrityError(
            f"{path}: {stored} on its base {base_id} (at {base_dir}), which {problem}. {fix}"
        ) from None
    if prepared[0] != base_sha:
        raise ModelIntegrityError(
            f"{path}: {stored} on its base {base_id} (at {base_dir}), whose model changed: "
            f"sha256 {prepared[0]}, expected {base_sha}. {fix}"
        )
    return prepared


def _rebuild(path: Path, manifest: Mapping[str, Any], info: Any, data: bytes, depth: int) -> bytes:
    backend = manifest.get("backend")
    try:
        fmt, base = info["format"], info["base"]
        base_id, base_sha, relative = str(base["id"]), str(base["model_sha256"]), base["path"]
        expected = str(info["model_sha256"])
    except (KeyError, TypeError) as exc:
        raise ModelIntegrityError(
            f"{path}: the manifest's delta entry is malformed ({exc})"
        ) from None
    if backend not in _CODECS or fmt != DELTA_FORMATS[str(backend)]:
        raise ModelIntegrityError(
            f"{path}: delta format {fmt!r} of a {backend} model is not readable by this tabtune"
        )
    _, prepared, _, _ = _checked_base(
        path, str(backend), base_id, base_sha, relative, depth, "this model is stored as a delta"
    )
    try:
        full = _CODECS[str(backend)]().rebuild(prepared, json.loads(gzip.decompress(data)))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelIntegrityError(
            f"{path}: the delta on {base_id} cannot be applied: {exc}"
        ) from None
    if _sha(full) != expected:
        raise ModelIntegrityError(
            f"{path}: the model rebuilt from the delta on {base_id} has sha256 {_sha(full)}, "
            f"expected {expected}"
        )
    return full
