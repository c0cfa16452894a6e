r"""Daily budget plans: split a total across channels to maximise predicted revenue.

A brand's daily revenue in channel *c* as a function of that channel's spend *s* is predicted by
the ``budget`` task's model, pretrained on the pool of brands and adapted per brand like every
tabtune model. The task works *relative to the channel's own recent past*
(:mod:`tabtune.spend_features`): with :math:`\bar s_c, \bar r_c` the channel's mean
daily spend and revenue over the 28 days before the date, the model predicts
:math:`\mathrm{revenue} / \bar r_c` from :math:`s / \bar s_c` (monotone non-decreasing), the
channel's recent ROAS over its 182-day ROAS, channel, vertical and the day of the week, so the
response curve is :math:`f_c(s) = \bar r_c \, m(s / \bar s_c, \ldots)`, non-decreasing in
*s*. (A task with absolute ``spend`` as a feature still works: the curve is then the model's
prediction itself.)

The plan for a day is

.. math::

    \max_{s_1..s_K} \sum_c f_c(s_c) \quad\text{s.t.}\quad \sum_c s_c = T,\;
    l_c \le s_c \le u_c .

Bounds default to the channel's *recent spend* :math:`r_c` (mean daily spend over the
``budget.lookback_days`` days before the plan date) :math:`\pm` ``budget.relative_bounds``:
:math:`l_c = r_c (1 - \rho)`, :math:`u_c = r_c (1 + \rho)`; only channels with recent spend take
part. Absolute bounds ``{"search": (100, 400), ...}`` name the channels explicitly.

Optimiser
---------
Response curves can be S-shaped and a tree model's curve is a step function, so the plan is
solved exactly on a grid with dynamic programming over channels and refined off the grid
(:mod:`tabtune.tasks.allocation`, :class:`~tabtune.tasks.allocation.SpendGrid`).

Ties (flat stretches of a tree model's curve) are broken toward the recent split, so money does
not move for no predicted gain.

Reported per channel: the spend, the predicted revenue :math:`f_c(s_c)`, the marginal ROAS
:math:`(f_c(s_c + h) - f_c(s_c - h)) / 2h` with :math:`h` = 10% of the spend (a tree model is
piecewise constant, so a wide step), the recent spend, the bounds, and the *habitual* split: the
recent split scaled to the total, :math:`\tilde s_c = T r_c / \sum r`, with its predicted
revenue. The plan's predicted uplift is :math:`\sum_c f_c(s_c) - \sum_c f_c(\tilde s_c)`
(``DataFrame.attrs["predicted_uplift"]``).

:meth:`BudgetPlanner.min_spend_for_revenue` inverts the plan: the smallest total whose plan
reaches a revenue target (the DP table gives the best value of every grid total at once; a
bisection refines between two grid totals).

Calibration
-----------
A pooled model gets a brand's channel *levels* wrong more easily than the curve's shape. With
``calibrate=True`` (default) each channel's curve is multiplied by
:math:`k_c = \sum_{d} \mathrm{revenue}_{c,d} / \sum_{d} \hat f_c(s_{c,d}; d)` over the
lookback window (observed revenue over the model's prediction for the same days and spends,
clipped to [1/4, 4]), so that the curve reproduces the brand's recent revenue; ``calibration``
in the plan reports :math:`k_c`.

Bid-identified curves (``budget.response: "hill"``, the default)
----------------------------------------------------------------
The planner uses the bid-identified Hill curves of :mod:`tabtune.tasks.response`
(:class:`~tabtune.tasks.response.HillResponse`: the bid, moved by the advertiser, identifies the
slope that daily spend and revenue, moving together with demand, cannot) for every channel with
bids in the lookback window; the model's curve (with calibration) is used for a channel without
bids in the window, and for all channels with ``budget.response: "model"``.

Limits (measured on the simulator)
----------------------------------
The optimiser is exact on its grid and refined off it; the plan is only as good as the curves'
*slopes*, and the stakes are small: the simulated brands bid for a target ROAS, so channels
start with similar ROAS and the true optimum within +-30% bounds gains well under 1% of
revenue (median). On 16 held-out brands with a year of history (``python -m benchmarks.budget``,
docs/benchmarks.md) the bid-identified curves capture a median 0.93 of the achievable uplift at
the recent total and 0.97 with a total 20% higher (seed 11: 0.95 and 0.99; seed 5: 0.93 and
0.97); the learned relative model gets 0.46 and 0.25, knowing each channel's true curve shape
1.00 and 1.00. Single plans can still lose many times the small achievable gain. Keep the
bounds narrow.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabtune.atomic import atomic_write_bytes
from tabtune.config import Config, TaskConfig, builtin_task_spec, default_config
from tabtune.config_section import user_path
from tabtune.data.limits import spelling_key
from tabtune.data.store import atomic_write_parquet
from tabtune.errors import TabTuneInputError
from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.spend_features import LONG_WINDOW_DAYS, daily_spend, empty_daily_spend
from tabtune.tasks.allocation import (
    REFINE_HALVINGS,
    REFINE_MAX_ROUNDS,
    BatchResponse,
    BoundsLike,
    Response,
    SpendGrid,
    allocate_budget,
    as_amount,
    as_count,
    channel_bounds,
    habitual_split,
)
from tabtune.tasks.budget_plan import PlanProblem, best_revenue, min_total, plan_frame
from tabtune.tasks.common import (
    MODELSET_FILE,
    ModelSet,
    as_timestamp,
    config_with_backend,
    prepare_rows,
    read_meta,
    resolve_task,
    saved_table,
    write_meta,
)
from tabtune.tasks.response import HillResponse, ModelResponse, bid_index, relative_task

__all__ = [
    "BUDGET_TASK",
    "REFINE_HALVINGS",
    "REFINE_MAX_ROUNDS",
    "BatchResponse",
    "BoundsLike",
    "BudgetPlanner",
    "HILL_FILE",
    "Response",
    "SpendGrid",
    "allocate_budget",
    "budget_planner",
    "fit_response",
    "load_pooled_response",
    "pooled_response",
    "write_pooled_response",
]

logger = logging.getLogger("tabtune")

PLANNER_FILE = "planner.json"
SPEND_FILE = "recent_spend.parquet"
BID_REFERENCE_FILE = "bid_reference.parquet"
#: The pooled Hill response written next to a registry's global ``budget`` model.
HILL_FILE = "hill_response.json"

#: The packaged ``budget`` task's mapping (``tabtune/configs/tasks/budget.yaml``, read with
#: :func:`tabtune.config.builtin_task_spec`), used when the configuration defines no budget task.
BUDGET_TASK: dict[str, Any] = builtin_task_spec("budget")


# ---------------------------------------------------------------------------- the planner
class BudgetPlanner:
    """Plan a brand's daily budget across channels from a learned spend-response model.

    Parameters
    ----------
    base_model : BudgetPlanner, str, Path or estimator, optional
        ``None``: :meth:`fit` pretrains the spend-response model on the pooled history.
        Otherwise a pretrained planner, a directory written by :meth:`save`, or a fitted
        ``TabTuneRegressor`` of the ``budget`` task; :meth:`fit` then adapts it to each brand in
        the history (brands below ``adaptation.min_rows_to_adapt`` rows keep the base model).
    config : Config, optional
        Sections ``budget`` (bounds, lookback, grid), ``model`` and ``adaptation``, and the
        ``budget`` task (built-in default when the config has none). Default: built-in config.
    backend : {"lightgbm", "xgboost"}, optional
        Overrides the config's backend for pretraining.
    n_jobs : int, optional
        Threads per model fit (the estimators' ``n_jobs``); ``None``: the backend's default.
    calibrate : bool, default True
        Scale each channel's predicted curve so that it reproduces the brand's observed revenue
        over the lookback window (module docstring, "Calibration").

    Attributes
    ----------
    models_ : ModelSet
        The global model and the per-brand models.
    spend_history_ : DataFrame
        Daily spend and revenue per brand x date x channel (with ``vertical``) seen by
        :meth:`fit` and :meth:`observe`.

    Examples
    --------
    >>> planner = BudgetPlanner().fit(history)  # doctest: +SKIP
    >>> planner.plan(1000.0, "2025-06-01", brand="b003")  # doctest: +SKIP
    """

    def __init__(
        self,
        base_model: Any = None,
        config: Config | None = None,
        backend: str | None = None,
        n_jobs: int | None = None,
        calibrate: bool = True,
    ) -> None:
        self.base_model = base_model
        self.config = config
        self.backend = backend
        self.n_jobs = n_jobs
        self.calibrate = calibrate

    # -- construction -----------------------------------------------------------
    def _config(self) -> Config:
        return config_with_backend(self.config, self.backend)

    @property
    def task(self) -> TaskConfig:
        """The spend-response task definition."""
        return resolve_task(self._config(), "budget")

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        *,
        config: Config | None = None,
        history: pd.DataFrame | None = None,
        model_id: str = "",
        source: str = "global",
        response: HillResponse | None = None,
    ) -> BudgetPlanner:
        """A planner around an already fitted estimator (e.g. a registry champion).

        With ``budget.response: hill`` (the default) the Hill response is fitted on
        ``history`` as :meth:`fit` does (:func:`fit_response`): adapted from ``response`` (a
        pooled one, e.g. :func:`load_pooled_response`) when given, else pretrained on it.

        Parameters
        ----------
        estimator : TabTuneRegressor
            A fitted model of the ``budget`` task.
        config : Config, optional
        history : DataFrame, optional
            Contract rows the recent spend is taken from (:meth:`observe`).
        model_id : str
            Registry id reported in plans.
        source : {"global", "brand"}
            Whether the estimator is a brand's own model or the global one.
        response : HillResponse, optional
            The pooled Hill response to adapt to ``history``.
        """
        planner = cls(config=config)
        planner.models_ = ModelSet(
            planner.task, estimator, global_id=model_id, global_source=source
        )
        planner.spend_history_ = empty_daily_spend()
        planner.bid_reference_ = None
        planner.response_ = None
        if history is not None:
            planner.observe(history)
            planner.response_ = fit_response(planner._config(), planner.spend_history_, response)
        elif planner._config().budget.response == "hill":
            planner.response_ = response
        return planner

    def fit(self, history: pd.DataFrame) -> BudgetPlanner:
        """Pretrain (no base model) or adapt per brand (with one) the spend-response model.

        Parameters
        ----------
        history : DataFrame
            Campaign rows (the data contract); rows are summed to brand x date x channel.

        Returns
        -------
        BudgetPlanner
            ``self``.

        Raises
        ------
        TabTuneInputError
            Rows that break the contract, or no usable rows.
        """
        cfg = self._config()
        rows = prepare_rows(history)
        task = self.task
        if self.base_model is None:
            self.models_ = ModelSet.pretrain(cfg, task, rows, n_jobs=self.n_jobs)
        else:
            base = ModelSet.from_base(self.base_model, task, PLANNER_FILE, "models")
            self.models_ = base.adapt(cfg, rows, n_jobs=self.n_jobs)
        self.spend_history_ = empty_daily_spend()
        self.bid_reference_ = None
        self.observe(rows)
        self.response_ = None
        if self.base_model is None:
            self.response_ = fit_response(cfg, self.spend_history_)
        else:
            base_response = _base_response(self.base_model)
            if base_response is not None:
                self.response_ = fit_response(cfg, self.spend_history_, base_response)
        return self

    def observe(self, history: pd.DataFrame) -> BudgetPlanner:
        """Add campaign rows to the spend history recent spend is computed from (no refit).

        Parameters
        ----------
        history : DataFrame
            Campaign rows; rows already present (same brand, date, channel) are replaced.

        Returns
        -------
        BudgetPlanner
            ``self``.
        """
        rows = prepare_rows(history)
        daily = daily_spend(rows)
        index, self.bid_reference_ = bid_index(rows, getattr(self, "bid_reference_", None))
        daily = daily.merge(
            index.astype({GROUP_COLUMN: str, "channel": str}).assign(
                **{TIME_COLUMN: lambda f: pd.to_datetime(f[TIME_COLUMN])}
            ),
            on=[GROUP_COLUMN, TIME_COLUMN, "channel"],
            how="left",
        )
        old = getattr(self, "spend_history_", empty_daily_spend())
        both = pd.concat([old, daily], ignore_index=True) if len(old) else daily
        self.spend_history_ = (
            both.drop_duplicates([GROUP_COLUMN, TIME_COLUMN, "channel"], keep="last")
            .sort_values([GROUP_COLUMN, TIME_COLUMN, "channel"])
            .reset_index(drop=True)
        )
        return self

    # -- inputs ------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise TabTuneInputError("this BudgetPlanner is not fitted; call fit(history) first")

    def _brand(self, brand: str | None, bounds: BoundsLike | None = None) -> str:
        brands = (
            sorted(self.spend_history_[GROUP_COLUMN].unique()) if len(self.spend_history_) else []
        )
        if brand is not None and str(brand) not in map(str, brands):
            folded = {spelling_key(b): str(b) for b in brands}
            twin = folded.get(spelling_key(brand))
            if twin is not None or bounds is None:
                shown = ", ".join(map(repr, brands[:8])) + (" ..." if len(brands) > 8 else "")
                raise TabTuneInputError(
                    f"plan: brand {brand!r} is not in the fitted history"
                    + (
                        f"; it differs from {twin!r} only in case or spacing: pass brand={twin!r}"
                        if twin is not None
                        else f" ({len(brands)} brands: {shown}); pass one of them: a brand "
                        "is planned from its channels' recent spend, so a new one needs its "
                        "rows in the history given to fit()"
                    )
                )
        if brand is None:
            if len(brands) == 1:
                return str(brands[0])
            raise TabTuneInputError(
                f"plan: pass brand=...; the history holds {len(brands)} brands"
                + (
                    f" ({', '.join(map(str, brands[:8]))}{' ...' if len(brands) > 8 else ''})"
                    if brands
                    else ""
                )
            )
        return str(brand)

    def recent_spend(self, brand: str, date: Any) -> pd.Series:
        """Mean daily spend per channel over the ``lookback_days`` before ``date``.

        Days the brand has data count; a channel without spend on one of them counts 0.

        Parameters
        ----------
        brand : str
        date : date-like

        Returns
        -------
        Series
            Channel -> mean daily spend (channels with positive spend only), sorted by channel.
        """
        self._check_fitted()
        recent = self._recent_window(brand, as_timestamp(date, "date"))
        if len(recent) == 0:
            return pd.Series(dtype=float, name="recent_spend")
        n_days = recent[TIME_COLUMN].nunique()
        out = recent.groupby("channel", sort=True, observed=True)["spend"].sum() / n_days
        out = out[out > 0].astype(float)
        out.index = out.index.astype(str)
        out.name = "recent_spend"
        return out

    def _recent_window(self, brand: str, day: pd.Timestamp) -> pd.DataFrame:
        """The brand's daily channel rows in the ``lookback_days`` before its last day < day."""
        hist = self.spend_history_
        hist = hist[(hist[GROUP_COLUMN] == brand) & (hist[TIME_COLUMN] < day)]
        if len(hist) == 0:
            return hist
        lookback = self._config().budget.lookback_days
        start = hist[TIME_COLUMN].max() - pd.Timedelta(days=lookback - 1)
        return hist[hist[TIME_COLUMN] >= start]

    def _vertical(self, brand: str) -> str | None:
        hist = self.spend_history_
        hist = hist[hist[GROUP_COLUMN] == brand]
        if "vertical" not in hist.columns or len(hist) == 0:
            return None
        return str(hist["vertical"].iloc[-1])

    def _bounds(
        self, recent: pd.Series, bounds: BoundsLike | None
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        return channel_bounds(recent, bounds, self._config().budget.relative_bounds)

    @property
    def _relative(self) -> bool:
        """Whether the task models spend relative to the channel's trailing state."""
        return relative_task(self.task)

    def _model_response(self) -> ModelResponse:
        """The model's response curves over the current models and spend history."""
        return ModelResponse(self.task, self.models_, self.spend_history_, calibrate=self.calibrate)

    def _response_label(self, brand: str, channel: str, hill: Any) -> str:
        """``model``, ``hill`` (the brand's bid moves shaped it), or ``hill-pooled`` (its bids
        never moved: the pool's shape, scaled to its revenue)."""
        response = getattr(self, "response_", None)
        if hill is None or response is None:
            return "model"
        return "hill" if response.identified(brand, channel) else "hill-pooled"

    def _hill_curves(self, brand: str, day: pd.Timestamp, channels: list[str]) -> list:
        """Per channel the bid-identified Hill curve on ``day`` (None where there is none)."""
        response = getattr(self, "response_", None)
        if response is None or self._config().budget.response != "hill":
            return [None] * len(channels)
        window = self._recent_window(brand, day)
        if "bid_index" not in window.columns:
            return [None] * len(channels)
        return [response.curve(brand, c, window[window["channel"] == c]) for c in channels]

    def _problem(self, date: Any, bounds: BoundsLike | None, brand: str | None) -> PlanProblem:
        self._check_fitted()
        brand = self._brand(brand, bounds)
        day = as_timestamp(date, "date")
        recent = self.recent_spend(brand, day)
        channels, lower, upper = self._bounds(recent, bounds)
        vertical = self._vertical(brand)
        recent_arr = np.array([float(recent.get(c, 0.0)) for c in channels])
        hill = self._hill_curves(brand, day, channels)
        scale = np.ones(len(channels))
        modelled = [c for c in range(len(channels)) if hill[c] is None]
        model = self._model_response()
        if modelled:
            names = [channels[c] for c in modelled]
            window = self._recent_window(brand, day)
            scale[modelled] = model.calibration(brand, day, names, vertical, window)
        curves, batch = model.curves(brand, day, channels, vertical, scale, hill)
        grid = SpendGrid(
            curves,
            lower,
            upper,
            grid_points=self._config().budget.grid_points,
            reference=habitual_split(recent_arr, lower, upper, float(recent_arr.sum())),
            evaluate=batch,
        )
        model_id, source = self.models_.model_id(brand), self.models_.source(brand)
        responses = [self._response_label(brand, c, h) for c, h in zip(channels, hill)]
        return PlanProblem(
            brand,
            day,
            channels,
            lower,
            upper,
            recent_arr,
            vertical,
            model_id,
            source,
            grid,
            scale,
            responses,
        )

    # -- decisions ---------------------------------------------------------------
    def plan(
        self,
        total: float | None,
        date: Any,
        bounds: BoundsLike | None = None,
        brand: str | None = None,
    ) -> pd.DataFrame:
        """The revenue-maximising split of a daily total across channels.

        Parameters
        ----------
        total : float or None
            Daily amount to allocate; ``None`` uses the recent daily spend (sum over channels).
        date : date-like
            The day planned for (calendar features, and the recent-spend window before it).
        bounds : mapping, optional
            ``{channel: (lower, upper)}`` absolute daily bounds, which also choose the
            channels. Default: recent spend +-``budget.relative_bounds`` for each channel with
            recent spend.
        brand : str, optional
            Needed when the history holds more than one brand.

        Returns
        -------
        DataFrame
            One row per channel: ``brand_id``, ``date``, ``channel``, ``spend``,
            ``predicted_revenue``, ``marginal_roas``, ``recent_spend``, ``lower``, ``upper``,
            ``habitual_spend``, ``habitual_revenue``, ``uplift``, ``model_id``. ``attrs`` holds
            ``total``, ``predicted_revenue``, ``habitual_revenue``, ``predicted_uplift`` and
            ``uplift_pct``.

        Raises
        ------
        TabTuneInputError
            ``total`` below the sum of the lower bounds or above the sum of the upper bounds
            (the message gives the numbers), bad bounds, or an unknown brand without bounds.
        """
        if total is not None:
            total = as_amount(total, "total")
        problem = self._problem(date, bounds, brand)
        if total is None:
            total = float(problem.recent.sum())
        return plan_frame(problem, problem.grid.allocate(float(total)), float(total))

    def min_spend_for_revenue(
        self,
        target_revenue: float,
        date: Any,
        bounds: BoundsLike | None = None,
        brand: str | None = None,
    ) -> pd.DataFrame:
        """The cheapest plan whose predicted revenue reaches ``target_revenue``.

        Parameters
        ----------
        target_revenue : float
        date : date-like
        bounds : mapping, optional
            As in :meth:`plan`.
        brand : str, optional

        Returns
        -------
        DataFrame
            The plan (as :meth:`plan` returns it) at the minimal total, which is
            ``attrs["total"]``.

        Raises
        ------
        TabTuneInputError
            When even the sum of the upper bounds cannot reach the target (the message gives
            the best predicted revenue within the bounds).
        """
        target_revenue = as_amount(target_revenue, "target_revenue", positive=True)
        problem = self._problem(date, bounds, brand)
        grid = problem.grid
        lo, hi = float(problem.lower.sum()), float(problem.upper.sum())

        best_hi, spend_hi = best_revenue(grid, hi)
        if best_hi < target_revenue:
            raise TabTuneInputError(
                f"revenue target {target_revenue:,.2f} is out of reach for brand "
                f"{problem.brand!r} on {problem.date.date()}: the best plan within the bounds "
                f"predicts {best_hi:,.2f} at a total of {hi:,.2f}"
            )
        best_lo, spend_lo = best_revenue(grid, lo)
        if best_lo >= target_revenue:
            return plan_frame(problem, spend_lo, lo)
        total, spend = min_total(grid, float(target_revenue), lo, hi, spend_hi)
        return plan_frame(problem, spend, total)

    def response_curves(
        self,
        date: Any,
        bounds: BoundsLike | None = None,
        brand: str | None = None,
        points: int = 50,
        span: float = 2.0,
    ) -> pd.DataFrame:
        """Predicted revenue against spend per channel, for plots.

        Parameters
        ----------
        date : date-like
        bounds : mapping, optional
            As in :meth:`plan` (chooses the channels).
        brand : str, optional
        points : int, default 50
            Points per channel (2 to 10,000).
        span : float, default 2.0
            Curves run from 0 to ``span`` times the larger of the upper bound and the recent
            spend.

        Returns
        -------
        DataFrame
            ``channel``, ``spend``, ``predicted_revenue``, ``lower``, ``upper``.
        """
        points, span = as_count(points, "points", 2, 10_000), as_amount(span, "span", positive=True)
        problem = self._problem(date, bounds, brand)
        frames = []
        for c, channel in enumerate(problem.channels):
            top = span * max(problem.upper[c], problem.recent[c], 1e-9)
            spend = np.linspace(0.0, top, points)
            frames.append(
                pd.DataFrame(
                    {
                        "channel": channel,
                        "spend": spend,
                        "predicted_revenue": problem.grid.response[c](spend),
                        "lower": problem.lower[c],
                        "upper": problem.upper[c],
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    # -- persistence ---------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the planner to a directory: models in their native format plus JSON.

        Parameters
        ----------
        path : str or Path
            Directory (created; its planner files are replaced).

        Returns
        -------
        Path
        """
        self._check_fitted()

        root = user_path(path)
        root.mkdir(parents=True, exist_ok=True)
        self.models_.save(root / "models")
        cfg = self._config()
        keep = cfg.budget.lookback_days
        if self._relative:  # calibration needs each lookback day's trailing state
            keep += LONG_WINDOW_DAYS
        hist = self.spend_history_
        if len(hist):
            last = hist.groupby(GROUP_COLUMN)[TIME_COLUMN].transform("max")
            hist = hist[hist[TIME_COLUMN] > last - pd.Timedelta(days=keep)]
        atomic_write_parquet(hist.reset_index(drop=True), root / SPEND_FILE)
        reference = getattr(self, "bid_reference_", None)
        if reference is not None and len(reference):
            atomic_write_parquet(reference.reset_index(drop=True), root / BID_REFERENCE_FILE)
        elif (root / BID_REFERENCE_FILE).exists():
            (root / BID_REFERENCE_FILE).unlink()
        response = getattr(self, "response_", None)
        meta = {
            "kind": "budget_planner",
            "task": self.task.model_dump(mode="json"),
            "budget": cfg.budget.model_dump(mode="json"),
            "calibrate": self.calibrate,
            "hill_response": response.to_dict() if response is not None else None,
        }
        write_meta(
            root, PLANNER_FILE, meta, [f"models/{MODELSET_FILE}", SPEND_FILE, BID_REFERENCE_FILE]
        )
        return root

    @classmethod
    def load(cls, path: str | Path, config: Config | None = None) -> BudgetPlanner:
        """Read a planner written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
        config : Config, optional
            Overrides the saved ``budget`` settings (the saved ones are used otherwise).

        Returns
        -------
        BudgetPlanner
        """
        root = user_path(path)
        meta = read_meta(root / PLANNER_FILE, "budget_planner")
        if config is None:
            cfg = default_config()
            cfg = cfg.model_copy(
                update={
                    "budget": type(cfg.budget).model_validate(meta["budget"]),
                    "tasks": {**cfg.tasks, "budget": TaskConfig.model_validate(meta["task"])},
                }
            )
        else:
            cfg = config
        planner = cls(config=cfg, calibrate=bool(meta.get("calibrate", True)))
        planner.models_ = ModelSet.load(root / "models", planner.task)
        hist = pd.read_parquet(root / SPEND_FILE)
        hist[TIME_COLUMN] = pd.to_datetime(hist[TIME_COLUMN])
        if "bid_index" not in hist.columns:
            hist["bid_index"] = np.nan
        planner.spend_history_ = hist
        planner.bid_reference_ = saved_table(meta, root, BID_REFERENCE_FILE)
        saved = meta.get("hill_response")
        planner.response_ = HillResponse.from_dict(saved) if saved else None
        return planner


def fit_response(
    cfg: Config, days: pd.DataFrame, base: HillResponse | None = None
) -> HillResponse | None:
    """The Hill response a planner plans with on ``days`` (None: ``budget.response: model``).

    Parameters
    ----------
    cfg : Config
    days : DataFrame
        Daily rows with ``bid_index`` (a planner's ``spend_history_``).
    base : HillResponse, optional
        A pooled response, adapted to ``days``; without one it is pretrained on ``days``.
    """
    if cfg.budget.response != "hill":
        return None
    return base.adapt(days) if base is not None else HillResponse.pretrain(days)


def pooled_response(cfg: Config, rows: pd.DataFrame) -> HillResponse | None:
    """The Hill response pretrained on pooled contract rows (what :meth:`BudgetPlanner.fit`
    without a base model fits), or None with ``budget.response: model``."""
    if cfg.budget.response != "hill":
        return None
    days = BudgetPlanner(config=cfg)
    days.spend_history_, days.bid_reference_ = empty_daily_spend(), None
    return fit_response(cfg, days.observe(rows).spend_history_)


def write_pooled_response(response: HillResponse | None, directory: str | Path) -> None:
    """Write a pooled response as :data:`HILL_FILE` in ``directory`` (nothing when None)."""
    if response is None:
        return
    text = json.dumps(response.to_dict()).encode("utf-8")
    atomic_write_bytes(Path(directory) / HILL_FILE, text)


def load_pooled_response(directory: str | Path | None) -> HillResponse | None:
    """The pooled response in ``directory`` (a registry version), None when it has none."""
    if directory is None or not (Path(directory) / HILL_FILE).is_file():
        return None
    return HillResponse.from_dict(json.loads((Path(directory) / HILL_FILE).read_text("utf-8")))


def budget_planner(
    cfg: Config,
    history: pd.DataFrame,
    *,
    base: Any = None,
    model: Any = None,
    model_id: str = "",
    source: str = "global",
    response: HillResponse | None = None,
    n_jobs: int | None = None,
) -> BudgetPlanner:
    """The one construction of a fitted planner: Python, ``tabtune budget``, the refresh and
    ``python -m benchmarks.budget`` all plan through it.

    Parameters
    ----------
    cfg : Config
        ``budget.response`` chooses the curves: ``hill`` (default) for channels with bids in
        the window, the model's curve for the others; ``model`` for all.
    history : DataFrame
        The brand's (or the pool's) contract rows up to the day planned.
    base : BudgetPlanner, str or Path, optional
        A pooled planner to adapt (model and Hill response), as :meth:`BudgetPlanner.fit`.
    model : estimator, optional
        An already fitted model of the ``budget`` task (a registry champion); with it the model
        is not refitted and the Hill response is adapted from ``response`` (the pooled response
        stored with the global model) or, without one, pretrained on ``history``.
    model_id, source : str
        Reported in plans (with ``model``).
    response : HillResponse, optional
        See ``model``.
    n_jobs : int, optional
        Threads per model fit.

    Returns
    -------
    BudgetPlanner
        Without ``base`` and ``model`` this is ``BudgetPlanner(config=cfg).fit(history)``.
    """
    if model is None:
        return BudgetPlanner(base_model=base, config=cfg, n_jobs=n_jobs).fit(history)
    return BudgetPlanner.from_estimator(
        model, config=cfg, history=history, model_id=model_id, source=source, response=response
    )


def _base_response(base: Any) -> HillResponse | None:
    """The Hill response of a base planner (object or saved directory), else None."""
    response = getattr(base, "response_", None)
    if isinstance(response, HillResponse):
        return response
    if isinstance(base, str | Path) and (user_path(base) / PLANNER_FILE).is_file():
        saved = read_meta(user_path(base) / PLANNER_FILE, "budget_planner").get("hill_response")
        return HillResponse.from_dict(saved) if saved else None
    return None
