"""The built-in tasks (``bid``, ``budget``, ``audience``, ``creative``), shipped as YAML inside
the package (``tabtune/configs/tasks/<name>.yaml``; ``configs/tasks/`` holds the users'
editable copies, identical to these), and how a config names them."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tabtune.errors import ConfigError

__all__ = ["BUILTIN_TASKS", "DEFAULT_TASKS", "builtin_name", "builtin_task_spec"]

#: The tasks of a config file without a ``tasks:`` key: the built-in ``bid`` and ``budget``.
DEFAULT_TASKS: dict[str, str] = {"bid": "builtin:bid", "budget": "builtin:budget"}


#: The built-in tasks, shipped as YAML inside the package (``tabtune/configs/tasks/<name>.yaml``;
#: ``configs/tasks/`` holds the users' editable copies, identical to these).
BUILTIN_TASKS: tuple[str, ...] = ("audience", "bid", "budget", "creative")


@cache
def _builtin_task_text(name: str) -> str:
    resource = resources.files("tabtune") / "configs" / "tasks" / f"{name}.yaml"
    return resource.read_text(encoding="utf-8")


def builtin_task_spec(name: str) -> dict[str, Any]:
    """The mapping of a built-in task as written in its packaged YAML file (a fresh copy).

    Parameters
    ----------
    name : str
        One of :data:`BUILTIN_TASKS`.

    Returns
    -------
    dict
        The YAML's keys and values, e.g. to build a variant of the task
        (``{**builtin_task_spec("bid"), "numeric": ["bid"]}``).

    Raises
    ------
    ConfigError
        An unknown name.
    """
    if name not in BUILTIN_TASKS:
        raise ConfigError(f"unknown built-in task {name!r}; built-in tasks: {list(BUILTIN_TASKS)}")
    loaded = yaml.safe_load(_builtin_task_text(name))
    if not isinstance(loaded, dict):  # pragma: no cover - the packaged files are mappings
        raise ConfigError(f"built-in task {name!r}: the packaged file is not a mapping")
    loaded.setdefault("name", name)
    return loaded


def builtin_name(spec: Any) -> str | None:
    """The built-in task a config's ``tasks.<name>`` names (``bid`` or ``builtin:bid``), or
    None for a path or a mapping."""
    if not isinstance(spec, str):
        return None
    name = spec.removeprefix("builtin:")
    if name in BUILTIN_TASKS and (spec.startswith("builtin:") or not Path(spec).is_file()):
        return name
    if spec.startswith("builtin:"):
        raise ConfigError(f"unknown built-in task {name!r}; built-in tasks: {list(BUILTIN_TASKS)}")
    return None
