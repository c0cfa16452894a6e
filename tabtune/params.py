"""The one table of tabtune's model and adaptation parameters.

Every parameter of :class:`~tabtune.estimators.TabTuneRegressor` /
:class:`~tabtune.estimators.TabTuneClassifier` and of the ``model:`` and ``adaptation:`` config
sections is a row of :data:`PARAMETERS`: its name, type, default, the values it accepts, its
config section, the range tuning searches (when it is tuned) and a one-line description. Derived
from it:

- the estimators' constructor defaults and ``PARAMETER_CONSTRAINTS`` (``tabtune.estimators``);
- the fields, defaults and checks of ``ModelConfig`` and ``AdaptationConfig`` (``tabtune.config``);
- tuning's default search spaces, which parameters are integers and which section each lives
  in (``tabtune.tuning``);
- the defaults of ``AdaptSettings`` (``tabtune.transfer``) and ``BoosterParams``
  (``tabtune.boosting.base``).

The defaults are the set the benchmarks' quality figures were measured with
(``configs/default.yaml``, docs/benchmarks.md); ``configs/default.yaml`` repeats them for
readers, and a test keeps the two in agreement.

This module sits below everything else: it imports only the standard library.
"""

from __future__ import annotations

import math
import numbers
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

__all__ = [
    "BACKENDS",
    "CLASSIFICATION_OBJECTIVES",
    "DEVICES",
    "PARAMETERS",
    "REGRESSION_OBJECTIVES",
    "STRATEGIES",
    "STRATEGY_CHOICES",
    "Constraint",
    "Param",
    "Section",
    "TuningRange",
    "annotation_types",
    "default",
    "estimator_params",
    "section_params",
]

#: Boosting libraries tabtune can drive.
BACKENDS = ("lightgbm", "xgboost")
#: Where models train: ``auto`` uses CUDA only where it is usable and worth it.
DEVICES = ("auto", "cpu", "cuda")
#: Adaptation strategies, simplest first (``auto``'s ties go to the earlier one).
STRATEGIES = ("global", "segments", "refit", "continue", "refit+continue", "scratch")
#: What ``strategy`` accepts: ``auto`` (choose among :data:`STRATEGIES`) or one of them.
STRATEGY_CHOICES = ("auto", *STRATEGIES)
#: Canonical regression objectives.
REGRESSION_OBJECTIVES = ("squared_error", "poisson", "tweedie", "absolute_error")
#: Canonical classification objectives.
CLASSIFICATION_OBJECTIVES = ("binary", "multiclass")

Section = Literal["model", "adaptation"]


# ----------------------------------------------------------------------------------------------
# constraints
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    """The values a parameter accepts.

    Parameters
    ----------
    check : callable
        ``check(value) -> bool``. Types are strict (``True`` is not an int, ``"1"`` not a
        number); None is accepted only when the constraint says so.
    text : str
        What the accepted values are, to end "must be ..." in an error message.
    bounds : mapping
        The numeric part as pydantic field bounds (``ge``, ``gt``, ``le``, ``lt``) where the
        constraint is an interval (None allowed or not); empty otherwise.
    """

    check: Callable[[Any], bool]
    text: str
    bounds: Mapping[str, float] = field(default_factory=dict)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def options(*allowed: Any) -> Constraint:
    """One of ``allowed`` (compared by identity, or equality for strings)."""
    return Constraint(
        lambda v: any(v is a or (isinstance(v, str) and v == a) for a in allowed),
        "one of " + ", ".join(repr(a) for a in allowed),
    )


def int_at_least(low: int) -> Constraint:
    """An int ``>= low`` (not a bool)."""
    return Constraint(lambda v: _is_int(v) and v >= low, f"an int >= {low}", {"ge": low})


def real_in(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Constraint:
    """A finite real number in an interval (``None`` bound: unbounded on that side)."""
    bounds: dict[str, float] = {}
    if low is not None:
        bounds["gt" if low_open else "ge"] = low
    if high is not None:
        bounds["lt" if high_open else "le"] = high

    def check(v: Any) -> bool:
        if not _is_real(v):
            return False
        x = float(v)
        above = low is None or (x > low if low_open else x >= low)
        below = high is None or (x < high if high_open else x <= high)
        return above and below

    if low is not None and high is not None:
        text = f"a float in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        text = f"a float {'>' if low_open else '>='} {low:g}"
    else:
        text = f"a float {'<' if high_open else '<='} {high:g}"
    return Constraint(check, text, bounds)


def or_none(rule: Constraint) -> Constraint:
    """``rule``, or None."""
    return Constraint(lambda v: v is None or rule.check(v), f"None or {rule.text}", rule.bounds)


def _is_monotone_map(value: Any) -> bool:
    return value is None or (
        isinstance(value, Mapping)
        and all(isinstance(k, str) and _is_int(v) and v in (-1, 0, 1) for k, v in value.items())
    )


def _is_str_keyed_map(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping) and all(isinstance(k, str) for k in value))


def _is_base_model_spec(value: Any) -> bool:
    # A fitted estimator is also accepted: tabtune.estimators, a layer above, checks that.
    return value is None or isinstance(value, str | os.PathLike)


# ----------------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TuningRange:
    """The range tuning searches a parameter over by default (``tuning.search_space`` overrides).

    Either ``low``/``high`` (inclusive; ``log``: on a log scale) or ``choices``.
    """

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The config spelling: ``{low, high, log}`` (``log`` only when set) or ``{choices}``."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        return out


@dataclass(frozen=True)
class Param:
    """One row of the parameter table.

    Parameters
    ----------
    name : str
        As spelt by the estimators and in the config.
    type : type
        Its Python type as an annotation (``int``, ``float | None``, ...).
    default : object
        THE default: of the estimators' constructors and of the config.
    constraint : Constraint
        The values it accepts (the estimators' and the config's check).
    section : {"model", "adaptation"} or None
        The config section that holds it; None: an estimator parameter only (the config sets
        it elsewhere: the task, ``backend``, ``device``).
    description : str
        One line.
    tuning : TuningRange, optional
        The default search range, for parameters that tuning searches.
    estimator : bool, default True
        A constructor parameter of the estimators (False: a config setting only).
    """

    name: str
    type: Any
    default: Any
    constraint: Constraint
    section: Section | None
    description: str
    tuning: TuningRange | None = None
    estimator: bool = True

    @property
    def integer(self) -> bool:
        """Whether the parameter takes integers."""
        return self.type is int or int in get_args(self.type)


_THREADS = or_none(Constraint(lambda v: _is_int(v) and v != 0, "a non-zero int"))

#: The parameter table. Within a section, tuned parameters are in the order tuning suggests
#: them (a study's trials depend on it).
PARAMETERS: tuple[Param, ...] = (
    # -- estimator only -----------------------------------------------------------------------
    Param("backend", str | None, None, or_none(options(*BACKENDS)), None,
          "boosting library; None: LightGBM when pretraining, the base model's when adapting"),
    Param("device", str, "auto", options(*DEVICES), None,
          "auto: CUDA only where usable and worth it; cpu; cuda (an error without a GPU)"),
    Param("base_model", Any, None,
          Constraint(_is_base_model_spec, "None, a path, or a fitted tabtune estimator"), None,
          "None: fit pretrains; otherwise the model (or its path) that fit adapts"),
    Param("group_column", str | None, None,
          Constraint(lambda v: v is None or isinstance(v, str), "None or a column name (str)"),
          None, "column identifying the brand (never a raw feature)"),
    Param("time_column", str | None, None,
          Constraint(lambda v: v is None or isinstance(v, str), "None or a column name (str)"),
          None, "column giving time order (None: rows are in time order)"),
    # -- model: the boosting parameters (pretraining, and the new trees of an adaptation) -----
    Param("n_estimators", int, 400, int_at_least(1), "model",
          "boosting rounds when pretraining and for scratch (fewer with early stopping)",
          TuningRange(100, 2000, log=True)),
    Param("learning_rate", float, 0.05, real_in(0.0, 1.0, low_open=True), "model",
          "shrinkage of each tree", TuningRange(0.01, 0.3, log=True)),
    Param("num_leaves", int, 63, int_at_least(2), "model",
          "most leaves per tree", TuningRange(8, 256, log=True)),
    # -1 (no limit) is LightGBM's default and ours; it is not a point on a numeric scale.
    Param("max_depth", int, -1,
          Constraint(lambda v: _is_int(v) and (v == -1 or v >= 1), "-1 (no limit) or an int >= 1"),
          "model", "deepest tree level (-1: no limit)",
          TuningRange(choices=(-1, 4, 6, 8, 10, 12))),
    Param("min_child_samples", int, 40, int_at_least(0), "model",
          "fewest rows per leaf (XGBoost: translated to min_child_weight)",
          TuningRange(5, 200, log=True)),
    Param("subsample", float, 1.0, real_in(0.0, 1.0, low_open=True), "model",
          "share of rows each tree learns from", TuningRange(0.5, 1.0)),
    Param("colsample_bytree", float, 1.0, real_in(0.0, 1.0, low_open=True), "model",
          "share of features each tree considers", TuningRange(0.5, 1.0)),
    Param("reg_alpha", float, 0.0, real_in(0.0), "model",
          "L1 penalty on leaf values", TuningRange(1e-8, 10.0, log=True)),
    Param("reg_lambda", float, 1.0, real_in(0.0), "model",
          "L2 penalty on leaf values", TuningRange(1e-8, 10.0, log=True)),
    Param("early_stopping_rounds", int | None, 50, or_none(int_at_least(1)), "model",
          "rounds without holdout improvement before stopping (None: no early stopping)"),
    Param("regrow_on_all_rows", bool, True,
          Constraint(lambda v: isinstance(v, bool), "True or False"), "model",
          "pretraining: after early stopping, grow the global model again on every row with the "
          "rounds found (False: keep the model grown on the older rows)"),
    Param("early_stopping_max_rows", int | None, 1_000_000, or_none(int_at_least(1)), "model",
          "pretraining with early stopping and the regrow: stop early on a seeded sample of "
          "brands holding about this many training rows, then regrow on every row (None: "
          "stop early on all rows)"),
    Param("random_state", int | None, 0, or_none(int_at_least(0)), "model",
          "seed of the libraries and of the context folds"),
    Param("n_jobs", int | None, None, _THREADS, "model",
          "threads (None or -1: all cores; the config's model.n_jobs: pretraining)"),
    Param("backend_params", dict[str, Any] | None, None,
          Constraint(_is_str_keyed_map, "None or a dict with str keys"), "model",
          "extra library parameters, passed unchanged (None: none; adapted models inherit); "
          "not the round count, nor another spelling of one tabtune sets"),
    # -- adaptation ---------------------------------------------------------------------------
    Param("strategy", str, "auto", options(*STRATEGY_CHOICES), "adaptation",
          "how a brand's model is adapted from the global one (auto: chosen on folds)",
          TuningRange(choices=STRATEGY_CHOICES)),
    Param("adapt_n_estimators", int, 200, int_at_least(0), "adaptation",
          "most new rounds continue and refit+continue add", TuningRange(10, 1000, log=True)),
    Param("adapt_learning_rate", float | None, None, or_none(real_in(0.0, 1.0, low_open=True)),
          "adaptation", "learning rate of the new rounds (None: learning_rate)",
          TuningRange(0.005, 0.3, log=True)),
    Param("refit_decay_rate", float, 0.5, real_in(0.0, 1.0), "adaptation",
          "refit sets a reached leaf to decay * old + (1 - decay) * new",
          TuningRange(0.0, 1.0)),
    Param("min_rows_to_adapt", int, 100, int_at_least(0), "adaptation",
          "brands with fewer rows get no new trees (global trees + their offsets)",
          TuningRange(20, 2000, log=True)),
    Param("validation_fraction", float, 0.2, real_in(0.0, 0.5, low_open=True), "adaptation",
          "newest share of rows: holdout for early stopping and the strategy choice"),
    Param("selection_folds", int, 3, int_at_least(1), "adaptation",
          "rolling-origin folds strategy='auto' chooses on"),
    Param("selection_margin", float, 2.0, real_in(0.0), "adaptation",
          "auto, small brands: a strategy replaces global only when its fold loss is lower by a "
          "relative margin selection_margin / sqrt(rows) (0: the lowest loss wins)"),
    Param("selection_margin_rows", int, 300, int_at_least(0), "adaptation",
          "the selection margin applies to brands with fewer rows than this (0: to none)"),
    Param("reselect_every_days", int | None, 28, or_none(int_at_least(1)), "adaptation",
          "refresh: auto chooses again when the champion's choice is this many days old; other "
          "nights the challenger repeats that choice on the new rows in one fit (None: choose "
          "every night)", estimator=False),
    Param("reselect_when_rows_grow", float | None, 0.25, or_none(real_in(0.0, low_open=True)),
          "adaptation",
          "refresh: auto also chooses again, sooner, once the brand's rows have grown by this "
          "fraction since the choice (None: by age only)", estimator=False),
    Param("n_jobs", int | None, 1, _THREADS, "adaptation",
          "threads per brand fit: brand data is small, so one thread per brand is fastest",
          estimator=False),
    # -- estimator only: the task's and the library's settings --------------------------------
    Param("objective", str | None, None,
          or_none(options(*REGRESSION_OBJECTIVES, *CLASSIFICATION_OBJECTIVES)), None,
          "loss (None: squared_error, or binary/multiclass from the classes)"),
    Param("monotone_constraints", dict[str, int] | None, None,
          Constraint(_is_monotone_map, "None or a dict column -> -1, 0 or 1"), None,
          "column -> -1 | 0 | 1: monotone decreasing / none / increasing"),
    Param("verbose", int, 0, int_at_least(0), None,
          "0 silent; 1 warnings; 2 info; 3 debug (library logging)"),
    Param("leaf_cache", str | None, None,
          Constraint(lambda v: v is None or (isinstance(v, str | os.PathLike) and str(v) != ""),
                     "None or a directory path"), None,
          "directory keeping the base model's leaf indices of a brand's rows between fits"),
)  # fmt: skip


def estimator_params() -> dict[str, Param]:
    """The estimators' constructor parameters, by name."""
    return {p.name: p for p in PARAMETERS if p.estimator}


def section_params(section: Section) -> dict[str, Param]:
    """The parameters of one config section, by name, in table order."""
    return {p.name: p for p in PARAMETERS if p.section == section}


def default(name: str, section: Section | None = None) -> Any:
    """The default of a parameter.

    Parameters
    ----------
    name : str
    section : {"model", "adaptation"}, optional
        Where a name has a row in more than one section (``n_jobs``); None: the estimators'
        parameter.
    """
    rows = section_params(section) if section is not None else estimator_params()
    return rows[name].default


def annotation_types(annotation: Any) -> set[Any]:
    """The plain types an annotation accepts (through ``X | None``, ``Optional``,
    ``Annotated`` and ``Literal`` values' types)."""
    origin = typing.get_origin(annotation)
    if origin is None:
        return {annotation}
    if origin is Literal:
        return {type(v) for v in typing.get_args(annotation)}
    if origin is Annotated:
        return annotation_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(annotation_types(a) for a in typing.get_args(annotation)))
    return {origin}
