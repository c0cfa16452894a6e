"""The nightly per-brand refresh: small steps, each testable alone, and thin wiring.

For a run date ``D`` and a task, :func:`refresh`

1. takes the registry's ``refresh`` lock (a second run at the same time is refused, naming the
   holder), then appends new rows to the store if given (idempotently);
2. makes sure a global champion exists (:func:`ensure_global`: pretrains on rows up to ``D`` if
   there is none; :func:`global_refresh_due` is the hook for re-pretraining on a schedule);
3. for every brand with data up to ``D``, in a worker (:func:`refresh_brand`):
   :func:`load_brand` -> :func:`build_challenger` (adapt the global champion on rows up to
   ``D``; published with ``promote=False``) -> :func:`evaluate` (champion, challenger and
   global model on the same newest window of the brand, :func:`holdout_mask`) ->
   :func:`decide_promotion` -> :func:`write_decisions` (predictions for the day after ``D``,
   plus recommended bids for the ``bid`` task or the channel budget plan for ``budget``);
   a brand below ``adaptation.min_rows_to_adapt`` rows is a ``cold_start``: no new trees, the
   global model's trees with its context and offsets, published as its version; one without
   new rows since its champion was trained is ``skipped``;
4. records each brand in ``runs/<D>/state.json`` as soon as it is done (atomically), so a run
   killed at any point resumes where it stopped, and writes ``runs/<D>/report.json`` and
   ``report.html`` at the end.

Idempotency. A brand recorded as done in the state is never touched again, so rerunning a
finished date publishes nothing and rewrites nothing. A brand interrupted after its challenger
was published finds that version again (its manifest records the run date, the global base and
the champion it was built against) instead of publishing a second one, so a resumed run ends
with the same versions, champions and outputs as an uninterrupted one. Brands that failed are
retried on a rerun.

Runs of the default task (``bid``) live in ``runs/<D>/``; other tasks in ``runs/<D>/<task>/``.
Outputs are filed under the day they decide for, ``D + 1`` (as ``tabtune bids`` and ``tabtune
budget`` do): ``outputs/<D+1>/predictions/brand_id=<id>/part-0.parquet`` (``predictions-<task>/``
for other tasks), ``outputs/<D+1>/bids/...`` and ``outputs/<D+1>/budgets/...``; as in the store,
the folder carries ``brand_id`` (``pandas.read_parquet("outputs/<D+1>/bids")`` restores it) and
the ``date`` column is that day too.

The package, one job per module (this module re-exports the public names):

- :mod:`tabtune.refresh.state`: the run records (:class:`BrandRecord`, :class:`RunReport`,
  :class:`Decision`) and the run state (``state.json``) with the report built from it;
- :mod:`tabtune.refresh.challenger`: a brand's rows and its challenger (:func:`build_challenger`);
- :mod:`tabtune.refresh.promotion`: the candidates scored out of time (:func:`challenge`), the
  decision, and the challenger's record in the registry;
- :mod:`tabtune.refresh.decisions`: the outputs for the next day (:func:`write_decisions`);
- :mod:`tabtune.refresh.global_model`: the global champion (:func:`ensure_global`);
- :mod:`tabtune.refresh.brand`: the per-brand job (:func:`refresh_brand`);
- :mod:`tabtune.refresh.run`: the dates, the lock and the executor (:func:`refresh`,
  :func:`refresh_range`).
"""

from __future__ import annotations

from tabtune.refresh.brand import refresh_brand
from tabtune.refresh.challenger import (
    build_challenger,
    fit_brand_model,
    leaf_cache_dir,
    load_brand,
    repeated_selection,
    tuned_adaptation,
    usable_rows,
)
from tabtune.refresh.decisions import DECISIONS, next_day_contexts, write_decisions
from tabtune.refresh.global_model import ensure_global, global_refresh_due
from tabtune.refresh.promotion import (
    Challenge,
    challenge,
    decide_promotion,
    evaluate,
    find_run_challenger,
    holdout_mask,
    publish_challenger,
    same_recipe_decision,
)
from tabtune.refresh.run import LOCK_NAME, refresh, refresh_range
from tabtune.refresh.state import (
    DONE_STATUSES,
    JOURNAL_NAME,
    REPORT_NAME,
    STATE_FORMAT,
    STATE_NAME,
    STATUSES,
    BrandRecord,
    Decision,
    RunReport,
    append_record,
    build_report,
    load_state,
    new_state,
    parse_date,
    pending_brands,
    record_brand,
    save_state,
)

__all__ = [
    "DECISIONS",
    "DONE_STATUSES",
    "JOURNAL_NAME",
    "LOCK_NAME",
    "REPORT_NAME",
    "STATE_FORMAT",
    "STATE_NAME",
    "STATUSES",
    "BrandRecord",
    "Challenge",
    "Decision",
    "RunReport",
    "append_record",
    "build_challenger",
    "build_report",
    "challenge",
    "decide_promotion",
    "ensure_global",
    "evaluate",
    "find_run_challenger",
    "fit_brand_model",
    "global_refresh_due",
    "holdout_mask",
    "leaf_cache_dir",
    "load_brand",
    "load_state",
    "new_state",
    "next_day_contexts",
    "parse_date",
    "pending_brands",
    "publish_challenger",
    "record_brand",
    "refresh",
    "refresh_brand",
    "refresh_range",
    "repeated_selection",
    "same_recipe_decision",
    "save_state",
    "tuned_adaptation",
    "usable_rows",
    "write_decisions",
]
