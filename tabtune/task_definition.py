"""Whether a stored model was trained for the task the config defines now.

Every published version's manifest keeps the definition of its task (``task_definition``:
target, kind, objective, aggregation and features, :func:`definition`) and the global
model's its backend. A model trained for another definition predicts what it learnt: with the
target changed from revenue per click to conversions per click, the old global model was
adapted to the new labels and served as value per click, silently. :func:`definition_change`
says what differs; the callers refuse a global model (pretrain again) and pass over a brand's
(the global model serves it, the next refresh adapts it again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabtune.config import TaskConfig

__all__ = ["DEFINITION_KEY", "definition", "definition_change", "global_definition_error"]

#: The manifest key holding the task's definition.
DEFINITION_KEY = "task_definition"
#: The fields of a task that change what its models learn.
_FIELDS = ("kind", "target", "objective", "aggregate_by", "categorical", "numeric", "calendar")


#: Fields whose order does not matter (a model's inputs are aligned by name).
_SETS = ("aggregate_by", "categorical", "numeric", "calendar")


def definition(task: TaskConfig) -> dict[str, Any]:
    """The fields of ``task`` its models depend on, as JSON values (feature lists sorted)."""
    dumped = task.model_dump(mode="json")
    return _normal({name: dumped.get(name) for name in _FIELDS})


def _normal(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the lists of :data:`_SETS` sorted."""
    return {
        k: sorted(map(str, v)) if k in _SETS and isinstance(v, list) else v
        for k, v in values.items()
    }


def definition_change(
    manifest: Mapping[str, Any], task: TaskConfig, backend: str | None = None
) -> str | None:
    """What differs between the definition a version was trained for and ``task`` (and, for
    a global model's manifest, its ``backend``); None when nothing does, or the version
    predates the record (unknown)."""
    stored = manifest.get(DEFINITION_KEY)
    if not isinstance(stored, Mapping):
        return None
    stored, now = _normal(stored), definition(task)
    changes = [
        f"{name} {stored.get(name)!r} -> {value!r}"
        for name, value in now.items()
        if name in stored and stored.get(name) != value
    ]
    was = manifest.get("backend")
    if backend is not None and isinstance(was, str) and was != backend:
        changes.append(f"backend {was!r} -> {backend!r}")
    return "; ".join(changes) or None


def global_definition_error(model_id: str, task: str, change: str) -> str:
    """The refusal of a global model trained for another definition of ``task``."""
    return (
        f"the global {task!r} model {model_id} was pretrained for another definition of the "
        f"task ({change}): it predicts what it learnt, and every brand adapted from it would "
        f"too; nothing was done. fix: tabtune pretrain --task {task} (or restore the task's "
        "definition and backend in the config)"
    )
