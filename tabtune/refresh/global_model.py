"""The refresh's global model: the champion every brand of a run adapts from.

:func:`ensure_global` finds it (or pretrains it on rows up to the run date);
:func:`global_refresh_due` is the hook for pretraining it again on a schedule.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tabtune import tuning
from tabtune.config import Config
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.pipeline import pretrain, registry_for
from tabtune.refresh.state import parse_date

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.registry import ModelRef

__all__ = ["ensure_global", "global_refresh_due"]


def global_refresh_due(manifest: Mapping[str, Any], date: dt.date, every_days: int | None) -> bool:
    """Whether the global champion should be pretrained again for ``date``.

    The schedule hook: with ``every_days`` set, once the champion's data ends that many days
    before the run date. ``None`` (the default, until the config has
    ``refresh.global_every_days``) never re-pretrains.
    """
    if not every_days:
        return False
    window = manifest.get("data_window") or [None, None]
    try:
        end = parse_date(window[-1])
    except (TabTuneInputError, TypeError, IndexError):
        return True
    return (date - end).days >= int(every_days)


def ensure_global(cfg: Config, task: str, date: dt.date) -> tuple[ModelRef, str, float]:
    """The global champion the run adapts from; pretrained on rows up to ``date`` if none.

    A champion that fails verification is replaced by the newest good older version (see
    :meth:`~tabtune.registry.ModelRegistry.resolve`). A published but never promoted version
    with data up to ``date`` (a pretraining interrupted between publish and promote) is
    promoted instead of pretraining again.

    Returns
    -------
    (ModelRef, note, seconds)
        The champion, what happened, and the pretraining time (0 when none).
    """
    reg = registry_for(cfg)
    ref = reg.resolve(task)
    every = getattr(cfg.refresh, "global_every_days", None)
    if ref is not None:
        note = ""
        if ref.fallback_from:
            note = (
                f"global champion {ref.fallback_from} of {task!r} failed verification; "
                f"using {ref.id}"
            )
        if not global_refresh_due(reg.manifest(ref), date, every):
            return ref, note, 0.0
        reason = f"global champion {ref.id} is older than {every} days; re-pretrained"
    else:
        for candidate in reversed(reg.versions(task)):
            try:
                reg.verify(candidate)
                window = reg.manifest(candidate).get("data_window") or [None]
                if window[-1] is None or parse_date(window[-1]) > date:
                    continue
            except (ModelIntegrityError, TabTuneInputError):
                continue
            reg.promote(candidate)
            return candidate, f"promoted unpromoted global version {candidate.id}", 0.0
        broken: ModelRef | str | None
        try:
            broken = reg.champion(task)
        except ModelIntegrityError:
            broken = "unreadable"
        reason = (
            f"no global champion for {task!r}"
            if broken is None
            else f"the global champion of {task!r} and every older version fail verification"
        ) + f"; pretrained on rows up to {date}"
    t0 = time.perf_counter()
    tuned_cfg, tuned = tuning.tuned_pretraining(cfg, task)
    result = pretrain(tuned_cfg, task, end=date, promote=True)
    reason += f": {result.model_id}" + (f" ({tuning.tuned_note(tuned)})" if tuned else "")
    return reg.from_id(result.model_id), reason, time.perf_counter() - t0
