r"""Recommended bids (max CPC) per context from a learned value-per-click model.

The ``bid`` task's model predicts a context's *value per click* (revenue / clicks, weighted by
clicks) from channel, audience, device, vertical, the calendar and **the bid**: how the value
of a click changes with the bid (deeper auctions, broader matching, better placement) is
learned from the history, never assumed. It is pretrained on the pool of brands and adapted per
brand like every tabtune model; a brand the recommender never saw is served by the global model.

Bid features
------------
A context is ``(brand_id, channel, campaign_id, audience, device)``. The bid enters the model
as two features (:mod:`tabtune.features`):

.. math::

    r = \exp\Big(\frac{1}{k}\sum_{i=1}^{k} \log b_{t_i}\Big), \qquad x = b / r,

``reference_bid`` :math:`r`, the geometric mean of the context's bids on its last
:math:`k \le 28` observations strictly *before* the day (the bid itself when there are none),
and ``relative_bid`` :math:`x`. The raw bid is not a feature: advertisers bid in proportion to
what a context is worth, so across contexts a high bid mostly means a valuable context, and a
model given the raw bid learned that as a bid effect (on unseen simulated brands, +65% value per
click from 0.7x to 1.3x the current bids where the truth is +6%; +22% after adapting to each
brand; ``python -m benchmarks.bids``, docs/benchmarks.md). With the split,
:math:`r` carries the level and the effect of moving a bid is learned from each context's own
day-to-day bid changes (:math:`x`); at recommendation time :math:`r` is held fixed and only
:math:`x = b / r` moves with the candidate bid :math:`b`.

Rule
----
For a context with current bid :math:`b_0`, candidate bids form a geometric grid (plus
:math:`b_0` itself) over the allowed range

.. math::

    [\,\max(b_{min},\, b_0 (1 - \Delta)),\; \min(b_{max},\, b_0 (1 + \Delta))\,]

(``bids.min_bid``, ``bids.max_bid``, ``bids.max_change``; when :math:`b_0` lies so far outside
``[min_bid, max_bid]`` that the range is empty, the bid is clamped to the nearer limit). With
:math:`\hat v(b)` the predicted value per click *at bid b* and :math:`\hat p(b)` the predicted
conversion rate, a candidate is feasible when

.. math::

    \hat v(b) / \mathrm{ROAS}^* \ge b \qquad\text{and/or}\qquad \hat p(b)\, \mathrm{CPA}^* \ge b,

and the recommendation is the **largest feasible candidate**. The cost per click never exceeds
the bid (second-price auctions), so :math:`\hat v(b) / b` is a floor on the predicted ROAS: the
rule keeps the predicted ROAS at or above the target (and the cost per acquisition at or below
the CPA target) while buying as much traffic as the target allows. When no candidate is feasible
the lowest allowed bid is recommended. Because :math:`\hat v(b)/\mathrm{ROAS}^*` falls as the
target rises, a higher target never gives a higher bid for the same context.

``reason`` says what set the bid: ``"roas target"`` (or ``"cpa target"``), ``"capped at max
change +30%"``, ``"clamped to max_bid"``, ``"roas target not reachable: floored at max change
-30%"`` / ``"...: clamped to min_bid"`` / ``"...: clamped to max_bid"`` (a current bid so far
above max_bid that max_bid is the one bid allowed, and it misses the target), prefixed by ``"unknown brand: global model; "`` for a
brand the recommender never saw.

Without bids
------------
An export without a ``bid`` column (most platform exports) cannot teach the model how value
responds to a bid change: the task's bid features are dropped (with a notice) and the model
learns the value per click of each context from the other features. The decision is then
stated on the context's **observed cost per click** (``spend / clicks``, its ``reference``
``"observed_cpc"`` instead of ``"bid"``): the same rule with a value that does not move with
the candidate, i.e. a *value-per-click-based target CPC* :math:`\hat v / \mathrm{ROAS}^*`,
held within ``max_change`` of the observed CPC and ``[min_bid, max_bid]``. It says what a click
in the context is worth at the target, not how traffic or value would change with the bid
(no bid elasticity); set the max CPC (or the platform's target CPC/ROAS) accordingly.

Limits (measured on the simulator, ``python -m benchmarks.bids``, 3 simulations, 24 held-out
brands): adapted to a held-out brand, the learned bid effect is close to the truth on average
(+7.0% predicted vs +6.1% true from 0.7x to 1.3x the current bids); the global model alone, for
a brand it never saw, still overstates it (+15.3%), and per context the effect is learned only
roughly (it is steep for a context far below its habitual bid and flat near it). The guard
rails (``max_change``) bound the damage. At equal true spend the recommended bids buy about as
much true revenue as the simulated brands' own bids (+0.5%), which are already set in
proportion to each context's value.

:class:`~tabtune.tasks.common.ModelSet` (a global model plus per-brand models, routed by brand)
and the helpers both decision tasks use live in :mod:`tabtune.tasks.common` (re-exported here).
The rule's pure helpers (candidate grid, guard rails, feasibility, reasons, context checks)
live in :mod:`tabtune.tasks.bid_rules`. This module also holds :func:`plot_biggest_contexts`.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# BID_TASK: the packaged bid task's mapping (tabtune.config), used by the ``bids`` command.
from tabtune.config import Config, TaskConfig, default_config
from tabtune.config_section import user_path
from tabtune.data.store import atomic_write_parquet
from tabtune.errors import TabTuneInputError
from tabtune.features import (
    BID_CONTEXT,
    GROUP_COLUMN,
    TIME_COLUMN,
    reference_bids,
)
from tabtune.tasks.allocation import as_count
from tabtune.tasks.bid_rules import (
    bid_reasons,
    candidate_bids,
    check_contexts,
    cvr_task,
    has_bids,
    largest_feasible,
    observed_cpc,
    recent_bids,
    target_feasible,
)
from tabtune.tasks.common import (
    MODELSET_FILE,
    ModelSet,
    as_timestamp,
    config_with_backend,
    design_matrix,
    prepare_rows,
    read_meta,
    resolve_task,
    saved_table,
    write_meta,
)

__all__ = [
    "REFERENCE_BID",
    "REFERENCE_CPC",
    "BidRecommender",
    "ModelSet",
    "as_timestamp",
    "config_with_backend",
    "cvr_task",
    "design_matrix",
    "has_bids",
    "observed_cpc",
    "plot_biggest_contexts",
    "prepare_rows",
    "recent_bids",
    "resolve_task",
]

logger = logging.getLogger("tabtune")

RECOMMENDER_FILE = "recommender.json"
BID_HISTORY_FILE = "bid_history.parquet"
KEY_COLUMNS = ("brand_id", "date", "channel", "campaign_id", "audience", "device")


#: ``reference`` of a recommendation: the context's current bid ...
REFERENCE_BID = "bid"
#: ... or, without a ``bid`` column, its observed cost per click (spend / clicks).
REFERENCE_CPC = "observed_cpc"


def _base_bid_history(base: Any) -> pd.DataFrame | None:
    """The recent bids a base recommender (fitted or saved) keeps, if any."""
    if isinstance(base, str | Path):
        path = Path(base) / BID_HISTORY_FILE
        return pd.read_parquet(path) if path.is_file() else None
    return getattr(base, "bid_history_", None)


# ---------------------------------------------------------------------------- the recommender
class BidRecommender:
    """Recommend max-CPC bids per context under a ROAS (or CPA) target.

    Parameters
    ----------
    base_model : BidRecommender, str, Path or estimator, optional
        ``None``: :meth:`fit` pretrains the value-per-click model on the pooled history.
        Otherwise a pretrained recommender, a directory written by :meth:`save`, or a fitted
        ``TabTuneRegressor`` of the ``bid`` task; :meth:`fit` adapts it to each brand in the
        history.
    config : Config, optional
        Sections ``bids`` (min/max bid, max change, default target ROAS), ``model`` and
        ``adaptation``, and the ``bid`` task. Default: the built-in configuration.
    backend : {"lightgbm", "xgboost"}, optional
        Overrides the config's backend for pretraining.
    model_cvr : bool, default True
        Also learn the conversion rate (conversions / clicks), which ``target_cpa`` needs.
    n_candidates : int, default 25
        Grid size of candidate bids per context (the current bid is always a candidate).
    n_jobs : int, optional
        Threads per model fit (the estimators' ``n_jobs``); ``None``: the backend's default.
        ``1`` is much faster on a machine whose cores are busy with other work.

    Attributes
    ----------
    models_ : ModelSet
        Value-per-click models.
    cvr_models_ : ModelSet or None
        Conversion-rate models.
    bid_history_ : DataFrame or None
        Each context's most recent bids in the fitted history (with the base's for brands not
        in it), from which :meth:`recommend` computes reference bids when it is given no
        ``history``.

    Examples
    --------
    >>> rec = BidRecommender().fit(history)  # doctest: +SKIP
    >>> rec.recommend(contexts, target_roas=4.0)[["bid", "reason"]]  # doctest: +SKIP
    """

    def __init__(
        self,
        base_model: Any = None,
        config: Config | None = None,
        backend: str | None = None,
        model_cvr: bool = True,
        n_candidates: int = 25,
        n_jobs: int | None = None,
    ) -> None:
        self.base_model = base_model
        self.config = config
        self.backend = backend
        self.model_cvr = model_cvr
        self.n_candidates = n_candidates
        self.n_jobs = n_jobs

    def _config(self) -> Config:
        return config_with_backend(self.config, self.backend)

    @property
    def task(self) -> TaskConfig:
        """The value-per-click task definition."""
        return resolve_task(self._config(), "bid")

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        *,
        config: Config | None = None,
        model_id: str = "",
        source: str = "global",
        known_brands: Iterable[str] | None = None,
    ) -> BidRecommender:
        """A recommender around an already fitted value-per-click estimator (no CVR model).

        Parameters
        ----------
        estimator : TabTuneRegressor
            Fitted model of the ``bid`` task, e.g. a registry champion.
        config : Config, optional
        model_id : str
            Reported in recommendations.
        source : {"global", "brand"}
            Whether the estimator is a brand's own model or the global one.
        known_brands : iterable of str, optional
            Brands the global model saw; others are reported as unknown.
        """
        rec = cls(config=config, model_cvr=False)
        rec.models_ = ModelSet(
            rec.task, estimator, global_id=model_id, global_source=source, known_brands=known_brands
        )
        rec.cvr_models_ = None
        rec.bid_history_ = None
        return rec

    def fit(self, history: pd.DataFrame) -> BidRecommender:
        """Pretrain (no base model) or adapt per brand (with one) the value models.

        Parameters
        ----------
        history : DataFrame
            Campaign rows (the data contract) with the bid task's columns (``bid``, ...).

        Returns
        -------
        BidRecommender
            ``self``.
        """
        if self.n_candidates < 2:
            raise TabTuneInputError(f"n_candidates must be >= 2, got {self.n_candidates}")
        cfg = self._config()
        rows = prepare_rows(history)
        task = self.task
        self.bid_history_ = recent_bids(rows, _base_bid_history(self.base_model))
        if self.base_model is None:
            self.models_ = ModelSet.pretrain(cfg, task, rows, n_jobs=self.n_jobs)
            self.cvr_models_ = (
                ModelSet.pretrain(cfg, cvr_task(task), rows, n_jobs=self.n_jobs)
                if self.model_cvr
                else None
            )
            return self
        self.models_ = ModelSet.from_base(self.base_model, task, RECOMMENDER_FILE, "value").adapt(
            cfg, rows, n_jobs=self.n_jobs
        )
        self.cvr_models_ = None
        if self.model_cvr:
            base_cvr = self._base_cvr()
            if base_cvr is not None:
                self.cvr_models_ = base_cvr.adapt(cfg, rows, n_jobs=self.n_jobs)
            else:
                logger.info("base model has no conversion-rate model: target_cpa unavailable")
        return self

    def _base_cvr(self) -> ModelSet | None:
        base = self.base_model
        models = getattr(base, "cvr_models_", None)
        task = cvr_task(self.task)
        if isinstance(models, ModelSet):
            return ModelSet(
                task,
                models.global_model,
                global_id=models.global_id,
                known_brands=models.known_brands,
            )
        if isinstance(base, str | Path) and (user_path(base) / RECOMMENDER_FILE).is_file():
            if (user_path(base) / "cvr" / MODELSET_FILE).is_file():
                return ModelSet.from_base(base, task, RECOMMENDER_FILE, "cvr")
        return None

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise TabTuneInputError("this BidRecommender is not fitted; call fit(history) first")

    # -- decisions -------------------------------------------------------------------
    def _targets(
        self, target_roas: float | None, target_cpa: float | None
    ) -> tuple[float | None, float | None]:
        if target_roas is None and target_cpa is None:
            target_roas = self._config().bids.target_roas
        for name, value in (("target_roas", target_roas), ("target_cpa", target_cpa)):
            if value is None:
                continue
            # a flag or a text is no target (True was read as 1.0, "abc" raised ValueError)
            number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not (number and math.isfinite(float(value)) and float(value) > 0):
                raise TabTuneInputError(f"{name} must be a positive number, got {value!r}")
        if target_cpa is not None and getattr(self, "cvr_models_", None) is None:
            raise TabTuneInputError(
                "target_cpa needs a conversion-rate model, which this recommender does not have "
                "(model_cvr=False, or built from a registry bid model); use target_roas"
            )
        return (
            None if target_roas is None else float(target_roas),
            None if target_cpa is None else float(target_cpa),
        )

    def _candidates(self, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted candidate bids per row and the range's ends (:func:`candidate_bids`)."""
        return candidate_bids(current, self._config().bids, self.n_candidates)

    def _reference(
        self, frame: pd.DataFrame, current: np.ndarray, history: pd.DataFrame | None
    ) -> np.ndarray:
        """Each context's reference bid (its typical bid before the day; module docstring)."""
        ref = np.full(len(frame), np.nan)
        if history is None and "reference_bid" in frame.columns:
            ref = pd.to_numeric(frame["reference_bid"], errors="coerce").to_numpy(dtype=float)
        else:
            hist = history if history is not None else getattr(self, "bid_history_", None)
            if hist is not None and len(hist) and "bid" in hist.columns:
                cols = [
                    c
                    for c in (*BID_CONTEXT, TIME_COLUMN, "bid")
                    if c in frame.columns and c in hist.columns
                ]
                keys = [c for c in cols if c in BID_CONTEXT]
                both = pd.concat([hist[cols], frame[cols]], ignore_index=True)
                both[keys] = both[keys].astype(str)
                ref = reference_bids(both)[len(hist) :]
        return np.where(np.isfinite(ref) & (ref > 0), ref, current)

    def _design(
        self, contexts: pd.DataFrame, history: pd.DataFrame | None
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
        """Validated contexts, current bids, reference bids and the model inputs."""
        frame, current = check_contexts(contexts)
        if not has_bids(contexts):
            # no bids: each context's observed CPC is its reference (relative_bid 1 at it)
            frame = frame.assign(reference_bid=current)
            history = None
        reference = self._reference(frame, current, history)
        frame = frame.assign(reference_bid=reference).drop(columns="relative_bid", errors="ignore")
        return frame, current, reference, design_matrix(frame, self.task)

    def _predict_grid(
        self, models: ModelSet, X: pd.DataFrame, grid: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        n, m = grid.shape
        rep = X.iloc[np.repeat(np.arange(n), m)].reset_index(drop=True)
        if "bid" in rep.columns:  # models of a task that uses the raw bid
            rep["bid"] = grid.ravel()
        if "relative_bid" in rep.columns:
            rep["relative_bid"] = (grid / reference[:, None]).ravel()
        return models.predict(rep).reshape(n, m)

    def recommend(
        self,
        contexts: pd.DataFrame,
        target_roas: float | None = None,
        target_cpa: float | None = None,
        history: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Recommended bid per context (module docstring: the rule).

        Parameters
        ----------
        contexts : DataFrame
            One row per context: ``brand_id``, ``date`` (the day bid for), the current ``bid``
            and the bid task's categorical columns (``channel``, ``audience``, ``device``,
            ``vertical``); ``campaign_id`` is carried through when present.
        target_roas : float, optional
            Revenue / cost target for every context; default (neither given): each brand's
            own, ``bids.target_roas_by_brand``, else ``bids.target_roas`` (as the CLI's).
        target_cpa : float, optional
            Cost per conversion target (needs the conversion-rate model).
        history : DataFrame, optional
            Earlier campaign rows (``date``, ``bid`` and the context columns) from which each
            context's reference bid is computed (its last 28 observations before the
            context's day). Default: a ``reference_bid`` column of ``contexts`` when it has
            one, else the bids of the history the recommender was fitted on; a context with
            no earlier bid is its own reference.

        Returns
        -------
        DataFrame
            In the contexts' order: the key columns present (``brand_id``, ``date``,
            ``channel``, ``campaign_id``, ``audience``, ``device``), ``reference``
            (``"bid"``: ``current_bid`` is the context's bid; ``"observed_cpc"``: the
            contexts have no bids and ``current_bid`` is the observed cost per click, so
            ``bid`` is a target CPC, module docstring), ``current_bid``, ``reference_bid``
            (the bid that ``relative_bid`` is measured against), ``bid``, ``change``
            (relative), ``predicted_value_per_click`` (at ``bid``),
            ``current_value_per_click``, ``predicted_roas`` (value per click / bid, a floor as
            the cost per click is at most the bid), ``predicted_cvr`` (NaN without a CVR
            model), ``target_roas``, ``target_cpa``, ``reason``, ``model_id``.

        Raises
        ------
        TabTuneInputError
            Missing columns, a current bid that is not > 0, a bad target, or ``target_cpa``
            without a conversion-rate model.
        """
        self._check_fitted()
        if target_roas is None and target_cpa is None:
            per_brand = self._brand_targets(contexts)
            if per_brand is not None and len(set(per_brand)) > 1:
                return self._recommend_per_target(contexts, per_brand, history)
            target_roas = per_brand[0] if per_brand else None
        roas, cpa = self._targets(target_roas, target_cpa)
        frame, current, reference, X = self._design(contexts, history)
        grid, low, high = self._candidates(current)
        # the current bid itself too (outside the range below min_bid: its own value)
        value, cvr = self._predict_candidates(X, np.column_stack([grid, current]), reference)
        value, value_now = value[:, :-1], value[:, -1]
        cvr = None if cvr is None else cvr[:, :-1]
        ok_roas, ok_cpa = target_feasible(grid, value, cvr, roas, cpa)
        choice, any_ok = largest_feasible(ok_roas & ok_cpa)
        reasons = bid_reasons(
            frame,
            low,
            high,
            choice,
            any_ok,
            ok_roas,
            ok_cpa,
            roas,
            cpa,
            grid.shape[1],
            self._config().bids,
            self.models_.source,
        )
        columns = self._recommendation_columns(
            frame, current, reference, (grid, value_now), choice, value, cvr, (roas, cpa)
        )
        return self._recommendations(frame, has_bids(contexts), columns, reasons)

    def _recommendations(
        self, frame: pd.DataFrame, bids: bool, columns: dict[str, Any], reasons: Any
    ) -> pd.DataFrame:
        """:meth:`recommend`'s frame: the contexts' keys, then the new columns (built as one
        frame, not a column at a time: a refresh decides every brand nightly)."""
        keys = frame[[c for c in KEY_COLUMNS if c in frame.columns]]
        new = {
            "reference": REFERENCE_BID if bids else REFERENCE_CPC,
            **columns,
            "reason": reasons,
            "model_id": self._model_ids(frame),
        }
        return pd.concat([keys, pd.DataFrame(new, index=keys.index)], axis=1)

    def _brand_targets(self, contexts: pd.DataFrame) -> list[float] | None:
        """Each context's brand's ROAS target (``bids.target_roas_for``), or None when the
        config sets no brand its own target (or the contexts have no brand column)."""
        bids = self._config().bids
        if not bids.target_roas_by_brand or not isinstance(contexts, pd.DataFrame):
            return None
        if GROUP_COLUMN not in contexts.columns or not len(contexts):
            return None
        return [bids.target_roas_for(str(b)) for b in contexts[GROUP_COLUMN]]

    def _recommend_per_target(
        self, contexts: pd.DataFrame, targets: list[float], history: pd.DataFrame | None
    ) -> pd.DataFrame:
        """:meth:`recommend` for each group of contexts sharing a target, in the contexts'
        order (a fresh index, as one call gives)."""
        target = np.asarray(targets, dtype=float)
        parts, positions = [], []
        for value in dict.fromkeys(targets):
            rows = np.flatnonzero(target == value)
            parts.append(self.recommend(contexts.iloc[rows], target_roas=value, history=history))
            positions.append(rows)
        order = np.argsort(np.concatenate(positions), kind="stable")
        return pd.concat(parts, ignore_index=True).iloc[order].reset_index(drop=True)

    def _predict_candidates(
        self, X: pd.DataFrame, grid: np.ndarray, reference: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predicted value per click (>= 0) and conversion rate (in [0, 1], or None) per candidate."""
        value = np.maximum(self._predict_grid(self.models_, X, grid, reference), 0.0)
        cvr = None
        if self.cvr_models_ is not None:
            cvr = np.clip(self._predict_grid(self.cvr_models_, X, grid, reference), 0.0, 1.0)
        return value, cvr

    def _model_ids(self, frame: pd.DataFrame) -> list[str]:
        brands = frame[GROUP_COLUMN].astype(str)
        return [self.models_.model_id(b) for b in brands]

    @staticmethod
    def _recommendation_columns(
        frame: pd.DataFrame,
        current: np.ndarray,
        reference: np.ndarray,
        candidates: tuple[np.ndarray, np.ndarray],
        choice: np.ndarray,
        value: np.ndarray,
        cvr: np.ndarray | None,
        targets: tuple[float | None, float | None],
    ) -> dict[str, Any]:
        """The bid, its change and the predictions at it, by column (see :meth:`recommend`);
        ``candidates``: the candidate bids and the predicted value at the current bid."""
        grid, value_now = candidates
        roas, cpa = targets
        rows = np.arange(len(frame))
        bid = grid[rows, choice]
        return {
            "current_bid": current,
            "reference_bid": reference,
            "bid": bid,
            "change": bid / current - 1.0,
            "predicted_value_per_click": value[rows, choice],
            "current_value_per_click": value_now,
            "predicted_roas": value[rows, choice] / bid,
            "predicted_cvr": cvr[rows, choice] if cvr is not None else np.nan,
            "target_roas": np.nan if roas is None else roas,
            "target_cpa": np.nan if cpa is None else cpa,
        }

    def predict_value(
        self,
        contexts: pd.DataFrame,
        bids: Any = None,
        history: pd.DataFrame | None = None,
    ) -> np.ndarray:
        """Predicted value per click of each context at the given bids.

        Parameters
        ----------
        contexts : DataFrame
            As for :meth:`recommend` (its ``bid`` column is the current bid).
        bids : array-like, optional
            One bid per context (default: the current bids).
        history : DataFrame, optional
            As for :meth:`recommend`.

        Returns
        -------
        ndarray
        """
        self._check_fitted()
        frame, current, reference, X = self._design(contexts, history)
        at = current if bids is None else np.asarray(bids, dtype=float).reshape(-1)
        if at.shape != current.shape or not np.all(np.isfinite(at) & (at > 0)):
            raise TabTuneInputError(f"bids: need {len(current)} numbers > 0")
        return np.maximum(self._predict_grid(self.models_, X, at[:, None], reference)[:, 0], 0.0)

    def value_curves(
        self, contexts: pd.DataFrame, points: int = 25, history: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Predicted value per click across each context's allowed bid range (for plots).

        Parameters
        ----------
        contexts : DataFrame
            As for :meth:`recommend`.
        points : int, default 25
            Candidate bids per context (2 to 10,000; the current bid is added).
        history : DataFrame, optional
            As for :meth:`recommend`.

        Returns
        -------
        DataFrame
            ``context`` (row number), ``bid``, ``predicted_value_per_click``.
        """
        self._check_fitted()
        points = as_count(points, "points", 2, 10_000)
        frame, current, reference, X = self._design(contexts, history)
        saved = self.n_candidates
        self.n_candidates = points
        try:
            grid, _, _ = self._candidates(current)
        finally:
            self.n_candidates = saved
        value = np.maximum(self._predict_grid(self.models_, X, grid, reference), 0.0)
        n, m = grid.shape
        return pd.DataFrame(
            {
                "context": np.repeat(np.arange(n), m),
                "bid": grid.ravel(),
                "predicted_value_per_click": value.ravel(),
            }
        )

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the recommender: each model in its native format, plus JSON.

        Parameters
        ----------
        path : str or Path
            A directory (created).

        Returns
        -------
        Path
        """
        self._check_fitted()

        root = user_path(path)
        root.mkdir(parents=True, exist_ok=True)
        self.models_.save(root / "value")
        if self.cvr_models_ is not None:
            self.cvr_models_.save(root / "cvr")
        if getattr(self, "bid_history_", None) is not None:
            atomic_write_parquet(self.bid_history_, root / BID_HISTORY_FILE)
        elif (root / BID_HISTORY_FILE).exists():  # an earlier save's: not this recommender's
            (root / BID_HISTORY_FILE).unlink()
        cfg = self._config()
        meta = {
            "kind": "bid_recommender",
            "task": self.task.model_dump(mode="json"),
            "bids": cfg.bids.model_dump(mode="json"),
            "n_candidates": self.n_candidates,
            "cvr": self.cvr_models_ is not None,
        }
        cvr = [f"cvr/{MODELSET_FILE}"] if self.cvr_models_ is not None else []
        write_meta(root, RECOMMENDER_FILE, meta, [f"value/{MODELSET_FILE}", *cvr, BID_HISTORY_FILE])
        return root

    @classmethod
    def load(cls, path: str | Path, config: Config | None = None) -> BidRecommender:
        """Read a recommender written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
        config : Config, optional
            Overrides the saved ``bids`` guard rails (the saved ones are used otherwise).

        Returns
        -------
        BidRecommender
        """
        root = user_path(path)
        meta = read_meta(root / RECOMMENDER_FILE, "bid_recommender")
        if config is None:
            cfg = default_config()
            config = cfg.model_copy(
                update={
                    "bids": type(cfg.bids).model_validate(meta["bids"]),
                    "tasks": {**cfg.tasks, "bid": TaskConfig.model_validate(meta["task"])},
                }
            )
        rec = cls(
            config=config, model_cvr=bool(meta["cvr"]), n_candidates=int(meta["n_candidates"])
        )
        rec.models_ = ModelSet.load(root / "value", rec.task)
        rec.cvr_models_ = ModelSet.load(root / "cvr", cvr_task(rec.task)) if meta["cvr"] else None
        rec.bid_history_ = saved_table(meta, root, BID_HISTORY_FILE)
        return rec


# ---------------------------------------------------------------------------- plots
def plot_biggest_contexts(
    rec: BidRecommender,
    contexts: pd.DataFrame,
    path: str | Path,
    *,
    history: pd.DataFrame | None,
    target_roas: float,
    recommendations: pd.DataFrame | None = None,
    title: str | None = None,
    n: int = 6,
) -> Path:
    """Bid vs predicted value per click for the ``n`` contexts with the most spend, as a PNG.

    ``recommendations`` are ``rec.recommend(contexts, ...)`` when already computed (same rows);
    otherwise the biggest contexts are recommended here at ``target_roas``. Raises
    :class:`~tabtune.errors.TabTuneInputError` when matplotlib is not installed.
    """
    from tabtune.tasks.plots import plot_bid_values

    spend = pd.to_numeric(contexts.get("spend", pd.Series(0.0, index=contexts.index)))
    top = np.argsort(-spend.fillna(0.0).to_numpy(dtype=float), kind="stable")[:n]
    part = contexts.iloc[top].reset_index(drop=True)
    if recommendations is None:
        chosen = rec.recommend(part, target_roas=target_roas, history=history)
    else:
        chosen = recommendations.iloc[top].reset_index(drop=True)
    return plot_bid_values(
        rec.value_curves(part, history=history),
        chosen,
        path,
        target_roas=target_roas,
        title=title,
    )
