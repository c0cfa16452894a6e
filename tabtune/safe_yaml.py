"""Reading a YAML file a user hands tabtune, within limits.

:func:`load_yaml_file` reads with :class:`yaml.SafeLoader` (no Python tags) and refuses, with a
:class:`~tabtune.errors.ConfigError` that names the file and the rule:

* a path that is not a regular file (a directory, a device, a pipe);
* a file larger than :data:`MAX_YAML_BYTES` (1 MB; configs are a few KB);
* bytes that are not UTF-8;
* a document whose aliases would expand to more than :data:`MAX_YAML_NODES` nodes, or that
  refers to itself (an alias bomb: a 1.5 KB file that expands to gigabytes). The composed
  node graph is measured before anything is constructed, so a bomb is refused in
  milliseconds without being expanded;
* a mapping that names the same key twice (YAML loaders keep the last one silently: a second
  ``data:`` block appended to a config would drop the first's settings).

Only the standard library and PyYAML are imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tabtune.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import ValidationError

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "format_validation_error",
    "load_yaml_file",
    "read_yaml_mapping",
]

MAX_YAML_BYTES = 1_000_000
"""Largest YAML file read, in bytes."""

MAX_YAML_NODES = 100_000
"""Most nodes a document may hold once its aliases are expanded."""


def _expanded_size(root: yaml.Node, limit: int) -> tuple[int, yaml.Node | None]:
    """Nodes of ``root`` with aliases expanded (stops past ``limit``), and a node that
    contains itself (None when there is none).

    Sizes are memoised per node, so a shared subtree is measured once however often it is
    referred to: the cost is linear in the composed (not the expanded) document.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    # Iterative post-order walk: a deep document must not exhaust Python's stack.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            total = 1
            for child in _children(node):
                total += sizes[id(child)]
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes:
            continue
        if key in active:
            return limit + 1, node
        active.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in active:
                return limit + 1, child
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)], None


def _repeated_key(root: yaml.Node, loader: yaml.SafeLoader) -> tuple[str, int, int] | None:
    """The first key a mapping of ``root`` names twice, with the lines (1-based) of both
    (None when there is none). Keys are compared as the loader reads them (``1`` and ``0x1``,
    ``yes`` and ``true`` are one key), whether written on two lines, on one (``{a: 1, a: 2}``)
    or through an alias. Merge keys (``<<``) may repeat what they merge: YAML lets an
    explicit key override a merged one; two merge keys in one mapping are refused."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                line = key.start_mark.line + 1
                identity = _key_identity(key, loader)
                if identity in lines:
                    return str(key.value), lines[identity], line
                lines[identity] = line
        stack.extend(_children(node))
    return None


def _key_identity(key: yaml.ScalarNode, loader: yaml.SafeLoader) -> Any:
    """What the loader makes of a scalar key (keys equal as Python dict keys, ``1`` and
    ``1.0``, are the one key the document's mapping would keep), or its tag and text when it
    cannot be built on its own (a merge key)."""
    try:
        value = loader.construct_object(key)
        hash(value)
    except (yaml.YAMLError, TypeError, ValueError):
        return (key.tag, key.value)
    return value


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def load_yaml_file(path: Path) -> Any:
    """Parse one YAML document from ``path``, within the limits of this module.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    object
        The document (None for an empty file).

    Raises
    ------
    ConfigError
        The path is not a regular file, the file is too large, not UTF-8, not valid YAML,
        or its aliases expand too far; the message names the file and the rule.
    """
    if path.is_dir():
        raise ConfigError(
            f"{path}: is a directory, not a config file; pass a YAML file "
            "(e.g. configs/default.yaml)"
        )
    if not path.is_file():
        raise ConfigError(f"{path}: not a regular file; pass a YAML file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_YAML_BYTES:,} bytes, the limit for a config file; "
            "a config is a few KB (keep data out of it)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size, looped = _expanded_size(node, MAX_YAML_NODES)
        if looped is not None:
            raise ConfigError(
                f"{path}: line {looped.start_mark.line + 1}: a YAML alias refers to the node "
                "that contains it (a recursive document); write the values out"
            )
        if size > MAX_YAML_NODES:
            raise ConfigError(
                f"{path}: its YAML aliases expand to more than {MAX_YAML_NODES:,} values "
                "(an alias bomb?); a config needs far fewer: write the values out or use "
                "fewer aliases"
            )
        repeated = _repeated_key(node, loader)
        if repeated is not None:
            key, first, again = repeated
            raise ConfigError(
                f"{path}: line {again}: key {key!r} appears twice in the same mapping (first "
                f"on line {first}); YAML would keep only the last one: merge the two into one"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml_mapping(path: Path, empty: bool = True) -> dict[str, Any]:
    """The mapping a YAML file holds ({} when empty), read within :func:`load_yaml_file`'s
    limits; a ConfigError when it is missing, not YAML, or not a mapping, or (``empty``
    False) holds no setting: a truncated config had every default, its folders relative to
    wherever the command ran (CLI red-team)."""

    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = load_yaml_file(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if loaded is None and not empty:
        raise ConfigError(
            f"{path}: holds no settings (empty, or only comments); leave --config out to use "
            "the built-in defaults, or write the settings (configs/default.yaml lists them)"
        )
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
    return loaded


def format_validation_error(exc: ValidationError, source: str) -> str:
    """A pydantic validation error of a config file: one line per key, an unknown key so
    named (pydantic says "extra inputs are not permitted")."""
    lines = [f"{source}: invalid configuration ({exc.error_count()} problem(s))"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<top level>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        value = err.get("input")
        # a whole section (or the whole config) as "got" is a page, not a value
        quiet = err["type"] == "extra_forbidden" or isinstance(value, dict)
        shown = "" if quiet else f" (got {value!r})"
        if err["loc"] and err["loc"][-1] == "[key]" and not isinstance(value, str):
            what = (
                "flag (yes, no, on, off)"
                if isinstance(value, bool)
                else "null (~ or nothing)"
                if value is None
                else "number"
                if isinstance(value, int | float)
                else type(value).__name__
            )
            shown += f"; YAML read the key as a {what}: quote it ('007': 3)"
        lines.append(f"  - {key}: {msg}{shown}")
    return "\n".join(lines)
