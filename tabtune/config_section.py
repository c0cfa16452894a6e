"""The base of every config section: unknown keys refused, assignments validated, and a YAML
flag where a number belongs refused (pydantic would read ``n_estimators: true`` as 1 tree)."""

from __future__ import annotations

import itertools
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from tabtune.errors import TabTuneInputError
from tabtune.params import annotation_types

__all__ = ["ConfigSection", "expanded_path", "overlapping_folders", "user_path"]


class ConfigSection(BaseModel):
    """A config section (:mod:`tabtune.config`)."""

    # .inf / .nan in YAML refused by key: a guard rail of inf failed later, by another name
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_flag_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """``true``/``false`` where a number belongs is refused: pydantic would read
        ``n_estimators: true`` as 1 tree."""
        if info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(value, dict) and typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]  # {name: number} mappings
            flags = {f"{k}: ": v for k, v in value.items() if isinstance(v, bool)}
        else:
            flags = {"": value} if isinstance(value, bool) else {}
        allowed = annotation_types(annotation)
        if flags and bool not in allowed and allowed & {int, float}:
            where, flag = next(iter(flags.items()))
            raise ValueError(f"{where}must be a number, not {str(flag).lower()}")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        """An assignment a validator refuses leaves the section as it was: pydantic runs the
        cross-field checks after storing the value, so ``config.bids.min_bid = 1e6`` raised
        and kept 1e6."""
        if name not in type(self).model_fields:
            super().__setattr__(name, value)
            return
        before, fields_set = self.__dict__.get(name), set(self.__pydantic_fields_set__)
        try:
            super().__setattr__(name, value)
        except ValidationError:
            self.__dict__[name] = before
            object.__setattr__(self, "__pydantic_fields_set__", fields_set)
            raise


def expanded_path(path: Path) -> Path:
    """``path`` with a leading ``~`` read as the home folder, as a shell reads it; a
    ``ValueError`` (a config error by key) when it names no folder."""
    if path.parts and path.parts[0] == "~" and os.environ.get("HOME") == "":
        # Python reads an empty HOME as "" and puts "~/models" at /models (a cron job)
        raise ValueError(
            f"{str(path)!r}: HOME is empty, so '~' names no folder; give the full path"
        )
    try:
        return path.expanduser()
    except RuntimeError as exc:  # "~nosuchuser/...": refused as a config error, not a crash
        raise ValueError(f"{str(path)!r}: {exc}") from None


def user_path(path: str | os.PathLike[str]) -> Path:
    """A path given from Python (``est.save("~/models/acme")``) with ``~`` read as the home
    folder, as :func:`expanded_path` reads it; a :class:`TabTuneInputError` when ``~`` names
    no folder (an empty HOME put "~/m" at "/m")."""
    try:
        return expanded_path(Path(path))
    except ValueError as exc:
        raise TabTuneInputError(str(exc)) from None


def overlapping_folders(named: Sequence[tuple[str, Path | str | None]]) -> str | None:
    """Two of the ``(setting, folder)`` pairs that are the same folder or one inside the
    other, as resolved (``..`` and links followed: ``store/../models`` is beside the store, a
    link into the store is in it), said with the fix; None when each has its own folder
    (unset ones are skipped)."""
    given = [(k, v) for k, v in named if v is not None]
    full = {k: Path(v).expanduser().resolve() for k, v in given}
    for (a, shown_a), (b, shown_b) in itertools.combinations(given, 2):
        if full[a] == full[b] or full[a] in full[b].parents or full[b] in full[a].parents:
            return f"{a} ({shown_a}) and {b} ({shown_b}) overlap: give each its own folder"
    return None
