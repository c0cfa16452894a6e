"""The estimators' parameter documentation, with the defaults of the parameter table."""

from __future__ import annotations

from tabtune.params import estimator_params

__all__ = ["parameters_doc"]

_TEMPLATE = """
    Parameters
    ----------
    backend : {"lightgbm", "xgboost"} or None, default=<backend>
        Gradient-boosting library. None means LightGBM when pretraining and the base model's
        backend when adapting; an explicit value that differs from the base's is an error.
    device : {"auto", "cpu", "cuda"}, default=<device>
        ``"auto"`` uses CUDA only where a usable GPU and a CUDA build exist (else CPU, logged
        once); ``"cuda"`` without them raises.
    base_model : fitted estimator of the same class, path, or None, default=<base_model>
        None: ``fit`` pretrains. Otherwise ``fit`` adapts this model (or the one saved at
        this path) to the rows given; it is read, never modified, and kept by reference when
        this estimator is cloned.
    strategy : {"auto", "global", "segments", "refit", "continue", "refit+continue", \
"scratch"}, default=<strategy>
        How to adapt (ignored when pretraining). See :mod:`tabtune.transfer`.
    group_column : str or None, default=<group_column>
        Column identifying the brand. Never a raw feature: pretraining learns brand-context
        features from it; adapted models inherit it from their base.
    time_column : str or None, default=<time_column>
        Column giving time order (rows are stably sorted by it); None: rows are in time
        order. Not a feature.
    validation_fraction : float in (0, 0.5], default=<validation_fraction>
        Newest share of rows held out for early stopping and the strategy choice.
    min_rows_to_adapt : int, default=<min_rows_to_adapt>
        Brands with fewer rows (after dropping zero weights) get the ``global`` strategy.
    selection_folds : int, default=<selection_folds>
        Rolling-origin folds ``strategy="auto"`` scores its candidates on: the newest holds
        the newest ``validation_fraction`` of rows, each older one about as many rows just
        before the next one's. One holdout is a noisy basis for the choice (a few dozen rows
        for a small brand); 1 restores it (cheaper: the choice costs a fit per candidate
        and fold).
    selection_margin : float, default=<selection_margin>
        For brands with fewer than ``selection_margin_rows`` rows, ``strategy="auto"`` keeps
        ``global`` unless a strategy's fold loss is lower than ``global``'s by a relative margin
        ``selection_margin / sqrt(rows)`` (20% at 100 rows, about 12% at 300): a few dozen
        holdout rows cannot tell a small gain from noise. 0 lets the lowest loss win.
    selection_margin_rows : int, default=<selection_margin_rows>
        Brands with fewer rows than this get the selection margin; 0: none does.
    n_estimators : int, default=<n_estimators>
        Boosting rounds when pretraining and for ``scratch`` (fewer with early stopping).
    learning_rate : float, default=<learning_rate>
    num_leaves : int, default=<num_leaves>
    max_depth : int, default=<max_depth>
        -1: no limit.
    min_child_samples : int, default=<min_child_samples>
        Minimum rows per leaf (XGBoost: translated to ``min_child_weight``).
    subsample : float in (0, 1], default=<subsample>
    colsample_bytree : float in (0, 1], default=<colsample_bytree>
    reg_alpha : float >= 0, default=<reg_alpha>
    reg_lambda : float >= 0, default=<reg_lambda>
    early_stopping_rounds : int or None, default=<early_stopping_rounds>
        Rounds without improvement on the holdout before stopping; None: no early stopping
        (pretraining then uses all rows). With early stopping, weighting a row by 2 is not
        the same as repeating it: the time-ordered holdout moves (scikit-learn's
        ``check_sample_weight_equivalence_on_dense_data``; see
        :func:`expected_failed_checks`).
    regrow_on_all_rows : bool, default=<regrow_on_all_rows>
        Pretraining with early stopping: grow the global model again on all rows with the
        round count found, so the newest rows (the holdout) count too; False keeps the model
        grown on the older rows. ``holdout_scores_["global"]`` is always the early-stopped
        model's score on the holdout (on the sampled brands' holdout rows when
        ``early_stopping_max_rows`` applies: not comparable across pools).
    early_stopping_max_rows : int or None, default=<early_stopping_max_rows>
        Pretraining with early stopping and ``regrow_on_all_rows``: the early-stopped fit
        learns from the rows of a seeded sample of brands holding about this many training
        rows (scored on the same brands' holdout rows), then the model is grown on every row
        with the round count found. Rounds found on fewer rows are at most those all rows
        would support, and a large pool (the 9M-row benchmark store) runs every round either
        way, so a large pool pays for one fit on all rows instead of two. None: the early
        stopping fit learns from all training rows. Ignored without the regrow (the
        early-stopped model is then the one kept).
    adapt_n_estimators : int, default=<adapt_n_estimators>
        Most new rounds ``continue`` and ``refit+continue`` add.
    adapt_learning_rate : float or None, default=<adapt_learning_rate>
        Learning rate of the new rounds (None: ``learning_rate``).
    refit_decay_rate : float in [0, 1], default=<refit_decay_rate>
        ``refit`` sets each leaf reached by the brand's rows to
        ``decay * old + (1 - decay) * new``; leaves no row reaches keep their value.
    objective : str or None, default=<objective>
        {objectives}
    monotone_constraints : dict or None, default=<monotone_constraints>
        ``column -> -1 | 0 | 1``: monotone decreasing / none / increasing in that numeric
        column. Adapted models inherit the base's when None.
    random_state : int or None, default=<random_state>
        Seed of the libraries and of the context folds.
    n_jobs : int or None, default=<n_jobs>
        Threads (None or -1: all).
    verbose : int, default=<verbose>
        0 silent; 1 warnings; 2 info; 3 debug (library logging).
    backend_params : dict or None, default=<backend_params>
        Extra parameters passed to the library unchanged (adapted models inherit the base's
        when None). Keys tabtune sets itself are refused.
    leaf_cache : str, path or None, default=<leaf_cache>
        Directory where an adapting fit keeps the base model's leaf indices of the brand's
        rows (:class:`tabtune.leaf_cache.LeafCache`; LightGBM backend). A later fit from the
        same base on the same rows plus new ones predicts the base only on what changed:
        the same model at a fraction of the cost (a nightly refresh). None: no cache.

    Attributes
    ----------
    booster_ : lightgbm.Booster or xgboost.Booster
        The native model.
    strategy_ : str
        Chosen strategy (``"global"`` for a pretrained model).
    strategy_reason_ : str
        Why that strategy.
    holdout_scores_ : dict
        Holdout score of each evaluated strategy: the weighted loss of the objective
        (Tweedie or Poisson deviance, squared error, or log loss for classifiers; lower is
        better) over the holdout rows of every selection fold; empty when nothing was held
        out.
    base_model_id_ : str or None
        SHA-256 of the base model's native model bytes.
    model_sha256_ : str
        SHA-256 of this model's native model bytes (the id of this model as a base).
    best_iteration_ : int
        Boosting rounds in ``booster_`` (base rounds included).
    n_new_trees_ : int
        Rounds this fit added (a round holds one tree per class in multiclass).
    adapted_groups_ : list of str or None
        The groups (brands) of the rows an adapted model learnt; None for a pretrained model
        (or one saved before it was recorded). Rows of other groups are predicted by the
        base model's trees under ``global`` and ``segments``, and by this model's under the
        other strategies, with a warning.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when X was a DataFrame with string column names.
    feature_importances_ : ndarray of shape (n_features_in_,)
        Gain importance aligned with ``feature_names_in_`` (or ``x0, x1, ...``), as in
        scikit-learn: each input column's share of the model's total gain (LightGBM's
        ``feature_importance("gain")``, XGBoost's ``total_gain``). ``group_column`` and
        ``time_column`` get 0: the brand acts through the brand-context features, whose
        shares are in ``context_importances_`` (the two sum to 1).
    context_importances_ : dict of str to float
        Share of the total gain of each brand-context feature (``__brand_mean``,
        ``__brand_level_mean``, ``__brand_log_rows``); empty without a ``group_column``.
    backend_, device_, group_column_, time_column_, objective_ :
        Resolved settings.
"""


def parameters_doc(objectives: str) -> str:
    """The Parameters and Attributes sections, with the table's defaults (:mod:`tabtune.params`)
    and ``objectives`` describing the ``objective`` parameter's values."""
    text = _TEMPLATE
    for name, p in estimator_params().items():
        value = p.default
        text = text.replace(
            f"default=<{name}>",
            "default=" + (f'"{value}"' if isinstance(value, str) else repr(value)),
        )
    return text.replace("{objectives}", objectives)
