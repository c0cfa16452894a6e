"""A version's ``manifest.json``: writing it, reading it, and checking the files against it.

The manifest is the caller's entries merged with the registry's own keys (see
:mod:`tabtune.registry`), among them ``files``: the sha256 of every file of the version, and
``manifest_sha256``: the sha256 of the manifest's own content (:mod:`tabtune.integrity`), so
every file of a version, the manifest included, is covered by a checksum.
Nothing here imports numpy, pandas or a boosting library.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata
import json
import math
import platform
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from tabtune import __version__
from tabtune.atomic import fsync_dir, fsync_file, write_durable
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.integrity import SEAL_KEY, check_seal, seal
from tabtune.registry.layout import MANIFEST_NAME, ModelRef

__all__ = [
    "FORMAT_VERSION",
    "build_manifest",
    "declared_dependencies",
    "hash_written_files",
    "jsonable",
    "library_versions",
    "read_manifest",
    "relative_files",
    "sha256_file",
    "verify_manifest",
    "write_manifest",
]

#: Version of the manifest layout written by this module; :meth:`ModelRegistry.verify` refuses
#: manifests with a newer one. 2: the manifest is sealed (``manifest_sha256``); 1 (unsealed) is
#: still read, with a warning.
FORMAT_VERSION = 2

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


# ---------------------------------------------------------------------- files and checksums


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def relative_files(directory: Path) -> list[str]:
    """Return the files under ``directory`` (recursively) as sorted relative posix paths."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def _safe_relative(name: str) -> bool:
    pure = PurePath(name)
    return bool(name) and not pure.is_absolute() and ".." not in pure.parts and "\\" not in name


def hash_written_files(tmp: Path) -> dict[str, str]:
    """Check and checksum what a model writer wrote into ``tmp``, and make it durable.

    Every file is hashed and fsynced, then every folder holding one (deepest first).

    Returns
    -------
    dict of str to str
        ``{relative posix path: sha256 hex}``.

    Raises
    ------
    TabTuneInputError
        The writer wrote a symlink, a ``manifest.json``, or no file at all.
    """
    for entry in tmp.rglob("*"):
        if entry.is_symlink():
            raise TabTuneInputError(
                f"model writer created a symlink {entry.relative_to(tmp).as_posix()!r}; "
                "write real files so they can be checksummed"
            )
    names = relative_files(tmp)
    if MANIFEST_NAME in names:
        raise TabTuneInputError(
            f"model writer wrote {MANIFEST_NAME}, which the registry owns; "
            "pass extra metadata with publish(..., manifest=...)"
        )
    if not names:
        raise TabTuneInputError("model writer wrote no files; nothing to publish")
    files = {}
    for name in names:
        files[name] = sha256_file(tmp / name)
        fsync_file(tmp / name)
    for sub in sorted({p.parent for p in tmp.rglob("*") if p.is_file()}, reverse=True):
        fsync_dir(sub)
    return files


def declared_dependencies(tmp: Path) -> list[str]:
    """The registry ids the files a writer wrote say they need.

    A model file's own ``manifest.json`` in a sub-folder (``model/manifest.json``) may list
    ``depends_on``: the versions it cannot be loaded without (a model stored as a delta on its
    base). The registry records their union in the version's manifest, so that garbage
    collection keeps them. Unreadable or non-JSON files declare nothing.
    """
    found: set[str] = set()
    for path in tmp.rglob(MANIFEST_NAME):
        if path.parent == tmp:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        needs = data.get("depends_on") if isinstance(data, dict) else None
        if isinstance(needs, list):
            found |= {v for v in needs if isinstance(v, str)}
    return sorted(found)


# ---------------------------------------------------------------------- writing


def build_manifest(
    user_manifest: Mapping[str, Any],
    ref: ModelRef,
    files: Mapping[str, str],
    depends_on: list[str] | None = None,
) -> dict[str, Any]:
    """Merge the caller's entries with the registry's keys, which win on a clash.

    Parameters
    ----------
    user_manifest : mapping
        The caller's entries, already passed through :func:`jsonable`.
    ref : ModelRef
        The version being published.
    files : mapping
        ``{relative path: sha256}`` from :func:`hash_written_files`.
    depends_on : list of str, optional
        Versions this one cannot be loaded without (:func:`declared_dependencies`), merged
        with the caller's ``depends_on`` entry; the key is written only when there are some.

    Returns
    -------
    dict
        Sealed: ``manifest_sha256`` is the sha256 of the rest (:func:`tabtune.integrity.seal`).
    """
    body = {
        **user_manifest,
        "format_version": FORMAT_VERSION,
        "id": ref.id,
        "task": ref.task,
        "brand": ref.brand,
        "version": ref.version,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "files": dict(files),
        "library_versions": library_versions(),
    }
    needs = set(depends_on or [])
    declared = user_manifest.get("depends_on")
    if isinstance(declared, list):
        needs |= {v for v in declared if isinstance(v, str)}
    if needs:
        body["depends_on"] = sorted(needs)
    body.pop(SEAL_KEY, None)  # the caller's value, if any, is not the registry's seal
    return seal(body)


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``directory/manifest.json`` (sorted keys, indented, fsynced; not atomic on its
    own: the directory is published as a whole)."""
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_durable(directory / MANIFEST_NAME, text.encode("utf-8"))


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
        found["tabtune"] = __version__
    return found


def jsonable(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON types; raise ``TypeError`` naming ``where`` otherwise.

    Numpy scalars and arrays (recognised by module name, so numpy is never imported here),
    dates, times and paths are converted; non-finite floats become ``None``.
    """
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
        if hasattr(value, "tolist"):
            return jsonable(value.tolist(), where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has a key {key!r} of type {type(key).__name__}; "
                    "manifest keys must be strings"
                )
            out[key] = jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, _dt.date | _dt.time):  # datetime and pandas.Timestamp included
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which is not "
        "JSON-serialisable; manifest values must be str, int, float, bool, None, lists or "
        "dicts of them (numpy scalars, dates and paths are converted)"
    )


# ---------------------------------------------------------------------- reading and checking


def read_manifest(directory: Path, ref_id: str) -> dict[str, Any]:
    """Return ``directory/manifest.json`` as a dict.

    Raises
    ------
    ModelIntegrityError
        The file is missing, unreadable, not JSON or not a JSON object (``ref_id`` names the
        version in the message).
    """
    path = directory / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelIntegrityError(f"{ref_id}: {MANIFEST_NAME} is missing ({path})") from None
    except OSError as exc:
        raise ModelIntegrityError(f"{ref_id}: cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelIntegrityError(f"{ref_id}: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelIntegrityError(f"{ref_id}: {path} is not a JSON object")
    return data


def verify_manifest(directory: Path, ref_id: str, manifest: Mapping[str, Any]) -> None:
    """Check a version directory against its manifest: identity, the manifest's own seal,
    every file's sha256, no extra files.

    Raises
    ------
    ModelIntegrityError
        Naming the file and, for a changed file, the expected and actual sha256.
    """
    fmt = manifest.get("format_version")
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise ModelIntegrityError(f"{ref_id}: manifest has no integer format_version")
    if fmt > FORMAT_VERSION:
        raise ModelIntegrityError(
            f"{ref_id}: manifest format_version {fmt} is newer than this tabtune "
            f"understands ({FORMAT_VERSION}); upgrade tabtune"
        )
    if manifest.get("id") != ref_id:
        raise ModelIntegrityError(
            f"{ref_id}: manifest says it is {manifest.get('id')!r}; the directory was moved "
            "or copied from another version"
        )
    check_seal(manifest, f"{ref_id}: file {MANIFEST_NAME!r}", legacy=fmt < 2)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelIntegrityError(f"{ref_id}: manifest lists no files")
    for name, expected in files.items():
        if not isinstance(name, str) or not _safe_relative(name):
            raise ModelIntegrityError(f"{ref_id}: manifest lists an unsafe path {name!r}")
        file = directory / name
        if not file.is_file():
            raise ModelIntegrityError(
                f"{ref_id}: file {name!r} is missing (expected sha256 {expected})"
            )
        actual = sha256_file(file)
        if actual != expected:
            raise ModelIntegrityError(
                f"{ref_id}: file {name!r} is corrupt: expected sha256 {expected}, actual {actual}"
            )
    extra = sorted(set(relative_files(directory)) - set(files) - {MANIFEST_NAME})
    if extra:
        raise ModelIntegrityError(
            f"{ref_id}: files not in the manifest were added after publishing: {extra}"
        )
