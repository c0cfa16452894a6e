"""YAML configuration -> validated, typed objects.

Every section is a pydantic model with ``extra="forbid"``, so a misspelt key is an error that
names the key and the file instead of a silently ignored setting. Task definitions live in their
own files (``configs/tasks/<task>.yaml``) and are referenced from the main config by path; a task
may also be written inline. The built-in tasks ship inside the package
(``tabtune/configs/tasks/<task>.yaml``, read by :func:`builtin_task`); ``configs/tasks/`` holds
identical copies for users to edit.

Relative paths resolve against the directory tabtune runs in (DESIGN.md, "CLI contract").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tabtune.builtin_tasks import BUILTIN_TASKS, DEFAULT_TASKS, builtin_name, builtin_task_spec
from tabtune.config_section import ConfigSection as _Section
from tabtune.config_section import expanded_path, overlapping_folders
from tabtune.data.contract import FILLABLE_COLUMNS, key_feature_problem
from tabtune.data.limits import iso_day
from tabtune.data.number_text import currency_problem
from tabtune.data.parse import check_date_format
from tabtune.data.schema import CONTRACT_COLUMNS
from tabtune.errors import ConfigError
from tabtune.params import Section, section_params
from tabtune.safe_yaml import format_validation_error, read_yaml_mapping

__all__ = [
    "BUILTIN_TASKS",
    "AdaptationConfig",
    "Config",
    "DataConfig",
    "DatePartsConfig",
    "ModelConfig",
    "RefreshConfig",
    "RegistryConfig",
    "SynthConfig",
    "TargetConfig",
    "TaskConfig",
    "TuningConfig",
    "builtin_task",
    "builtin_task_spec",
    "default_config",
    "load_config",
    "DEFAULT_CONFIG_PATH",
]

DEFAULT_CONFIG_PATH = Path("configs/default.yaml")

CALENDAR_FEATURES = ("day_of_week", "day_of_year", "month", "is_weekend", "week_of_year", "year")


class DatePartsConfig(_Section):
    """A date built from parts of the export: year, month and day columns.

    ``month`` may hold numbers (1-12) or English month names (``January``, ``Jan``); ``year``
    is a column name or, when the export has no year, the year itself (e.g. ``2024``).
    """

    year: str | int
    month: str
    day: str

    @field_validator("year")
    @classmethod
    def _plausible_year(cls, value: str | int) -> str | int:
        if isinstance(value, int) and not 1900 <= value <= 2100:
            raise ValueError(f"year {value} must be a column name or a year in 1900..2100")
        return value


class DataConfig(_Section):
    """Where the campaign store lives and how a user's export maps onto the contract.

    ``tabtune load`` applies, in this order: ``rename``, ``drop``, ``constants``, ``thousands``,
    ``currency`` and ``round`` (tabtune/data/number_text.py), ``scale``,
    ``date_parts`` or ``date_format`` (tabtune/data/transforms.py), then ``columns``, then the
    contract with the ``conversions_above_clicks`` and ``invalid_rows`` policies. Everything is
    declarative: names, formats and constants, never code.
    """

    store: Path = Path("data/campaigns")
    truth_dir: Path = Path("data/truth")

    @field_validator("store", "truth_dir")
    @classmethod
    def _home(cls, value: Path) -> Path:  # "~/..." as a shell reads it (it was a folder "~")
        return expanded_path(value)

    columns: dict[str, str] = Field(
        default_factory=dict,
        description="contract column -> the column name in your own export",
    )
    extra_columns: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(
        default_factory=dict,
        description="export column -> new name, applied first (before drop and columns)",
    )
    drop: list[str] = Field(
        default_factory=list,
        description="export columns to remove before mapping (e.g. its own 'revenue' when "
        "another column maps to revenue)",
    )
    constants: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="column -> one value for every row (e.g. {channel: facebook})",
    )
    fill: dict[str, float] = Field(
        default_factory=dict,
        description="measure column (spend, clicks, impressions, conversions, revenue) -> the "
        "value of its empty or '--' cells (e.g. {conversions: 0, revenue: 0} for exports that "
        "leave a zero blank); applied after thousands/currency, before scale",
    )
    scale: dict[str, float] = Field(
        default_factory=dict,
        description="money column (spend, revenue, bid) -> factor its values are multiplied by (e.g. "
        "{bid: 0.000001} for bids exported in micros); applied after constants and dates, to "
        "the export column the column is mapped from",
    )
    skip_lines: int = Field(
        0,
        ge=0,
        le=1000,
        description="lines of a CSV export before its header (a report's title and date range, "
        "as ad platforms write them), skipped",
    )
    sheet: str | int = Field(
        0,
        description="the sheet of an Excel export (.xlsx, .xlsm): its name, its 0-based position "
        "among the visible sheets, or '*' for every sheet with the same columns (default: the "
        "first visible sheet; refused when other sheets have its columns)",
    )
    thousands: Literal[",", ".", " ", "'"] | None = Field(
        None,
        description="thousands separator of the export's numbers ('1,234.50' with ','; with "
        "'.' the decimal mark is the comma: '1.234,50'); None: plain numbers",
    )
    currency: list[str] = Field(
        default_factory=list,
        description="currency symbols or codes written with the export's amounts, removed "
        "(e.g. ['$'] for '$1,234.50', ['EUR'] for '1234.50 EUR')",
    )
    round: list[Literal["clicks", "conversions", "impressions"]] = Field(
        default_factory=list,
        description="whole-number columns whose export holds fractions (data-driven "
        "attribution: 2.33 conversions), rounded to the nearest whole number and counted in "
        "the load's notes",
    )

    @field_validator("currency")
    @classmethod
    def _currency_tokens(cls, tokens: list[str]) -> list[str]:
        for token in tokens:
            problem = currency_problem(token)
            if problem is not None:
                raise ValueError(f"{token!r} {problem}")
        return tokens

    date_format: str | None = Field(
        None,
        description="strptime format of the export's date column (e.g. '%d-%m-%Y'); "
        "None: ISO 8601 (YYYY-MM-DD)",
    )
    date_parts: DatePartsConfig | None = Field(
        None, description="build the date from year/month/day columns (or a fixed year)"
    )
    timezone: str | None = Field(
        None,
        description="the account's time zone (IANA name, e.g. 'Europe/Paris'): a date written "
        "as a timestamp with a UTC offset ('2026-10-31T23:00:00Z') is stored under its day "
        "there (2026-11-01); a time without an offset is taken as written. None: dates whose "
        "every time of day is after noon are refused (a UTC midnight of a zone east of UTC)",
    )
    conversions_above_clicks: Literal["allow", "clip", "reject"] = Field(
        "allow",
        description="rows with more conversions than clicks (post-view conversions): keep them "
        "(noted in the load summary), lower conversions to clicks, or refuse them",
    )
    invalid_rows: Literal["reject", "skip"] = Field(
        "reject",
        description="rows that break the contract (negative spend, unparseable date, ...): "
        "refuse the load, or skip them and say which and why",
    )
    restated_rows: Literal["keep", "replace"] = Field(
        "keep",
        description="rows the store holds under the same key with other values (a day exported "
        "before it was complete, conversions attributed later): keep the stored values and say "
        "so, or replace them with the new ones (tabtune load and a refresh's new rows)",
    )

    @field_validator("columns")
    @classmethod
    def _known_contract_columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CONTRACT_COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown contract column(s) {unknown}; mappable columns are {list(CONTRACT_COLUMNS)}"
            )
        return value

    @field_validator("fill")
    @classmethod
    def _fillable(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(FILLABLE_COLUMNS))
        if unknown:
            raise ValueError(f"unknown measure column(s) {unknown}; fillable: {FILLABLE_COLUMNS}")
        bad = {c: f for c, f in value.items() if not (math.isfinite(f) and f >= 0)}
        if bad:
            raise ValueError(f"fill values must be finite numbers >= 0, got {bad}")
        return value

    @field_validator("scale")
    @classmethod
    def _numeric_scales(cls, value: dict[str, float]) -> dict[str, float]:
        numeric = [c for c, kind in CONTRACT_COLUMNS.items() if kind == "float"]
        unknown = sorted(set(value) - set(numeric))
        if unknown:
            raise ValueError(f"unknown money column(s) {unknown}; scalable: {numeric}")
        bad = {c: f for c, f in value.items() if not (math.isfinite(f) and f > 0)}
        if bad:
            raise ValueError(f"factors must be finite numbers > 0, got {bad}")
        return value

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        return None if value is None else check_date_format(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris', "
                "'America/New_York' or 'UTC'"
            ) from None
        return value

    @field_validator("rename")
    @classmethod
    def _distinct_new_names(cls, value: dict[str, str]) -> dict[str, str]:
        targets = list(value.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"several columns renamed to {twice}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if self.date_parts is not None and self.date_format is not None:
            raise ValueError("date_parts and date_format exclude each other: use one")
        if self.timezone is not None and (
            self.date_format is not None or self.date_parts is not None
        ):
            raise ValueError(
                "timezone reads ISO 8601 timestamps with a UTC offset (and timestamp columns); "
                "date_format and date_parts read the day as written: use one"
            )
        if self.date_parts is not None and "date" in self.columns:
            raise ValueError("date_parts builds the 'date' column: remove columns.date")
        for name, value in self.constants.items():
            if name in self.columns:
                raise ValueError(f"constants.{name} and columns.{name} both set {name!r}: keep one")
            if name == "date":
                raise ValueError("constants.date: a constant date is not supported")
            if isinstance(value, bool) and CONTRACT_COLUMNS.get(name) == "string":
                raise ValueError(  # YAML 1.1 reads NO, on, yes as flags ("the Norway problem")
                    f"constants.{name}: {str(value).lower()} is a flag, not a text; quote it "
                    f"(constants: {{{name}: 'NO'}})"
                )
        return self


class TargetConfig(_Section):
    """A task's target: ``numerator`` or the ratio ``numerator / denominator``.

    With a denominator, rows where it is 0 are dropped and the denominator is the sample
    weight (a rate estimated from 500 clicks counts more than one from 2).
    """

    numerator: str
    denominator: str | None = None


class TaskConfig(_Section):
    """One prediction task: target, features and model kind."""

    name: str
    kind: Literal["regression", "classification"] = "regression"
    description: str = ""
    target: TargetConfig
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    calendar: list[str] = Field(default_factory=list)
    monotone: dict[str, Literal[-1, 0, 1]] = Field(default_factory=dict)
    objective: Literal["squared_error", "poisson", "tweedie", "absolute_error"] | None = Field(
        None,
        description="regression loss (None: squared_error); tweedie suits zero-inflated money targets",
    )
    aggregate_by: list[str] | None = Field(
        default=None,
        description="group rows to this grain (summing counts and money) before modelling",
    )

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CALENDAR_FEATURES))
        if unknown:
            raise ValueError(
                f"unknown calendar feature(s) {unknown}; known: {list(CALENDAR_FEATURES)}"
            )
        return value

    @model_validator(mode="after")
    def _features_present(self) -> TaskConfig:
        if self.objective is not None and self.kind == "classification":
            raise ValueError("objective applies to regression tasks only")
        if not (self.categorical or self.numeric or self.calendar):
            raise ValueError("a task needs at least one feature (categorical, numeric or calendar)")
        if both := sorted(set(self.categorical) & set(self.numeric)):
            raise ValueError(f"column(s) {both} listed as both categorical and numeric")
        if (key := key_feature_problem([*self.categorical, *self.numeric])) is not None:
            raise ValueError(key)
        if self.target.numerator in (*self.categorical, *self.numeric):
            raise ValueError(
                f"the target ({self.target.numerator!r}) is also a feature: the model would read "
                "the answer from its inputs; fix: remove it from categorical/numeric"
            )
        if bad := sorted(set(self.monotone) - set(self.numeric)):
            raise ValueError(f"monotone constraint on {bad}, which are not numeric features")
        return self


def _param_field(section: Section, name: str) -> Any:
    """The pydantic field of a parameter-table row: its default, bounds and description."""
    row = section_params(section)[name]
    bounds: dict[str, Any] = dict(row.constraint.bounds)
    return Field(row.default, description=row.description, **bounds)


class _ParamSection(_Section):
    """A section whose fields are rows of :data:`tabtune.params.PARAMETERS`.

    Each field is declared with its annotation (for type checkers) and ``_param_field``; the
    table's check runs after pydantic's (choices, ``-1 or >= 1``, non-zero thread counts), so
    the config accepts exactly what the estimators accept. A test asserts that the declared
    fields and annotations are the table's.
    """

    section: ClassVar[Section]

    @field_validator("*")
    @classmethod
    def _table_constraint(cls, value: Any, info: ValidationInfo) -> Any:
        row = section_params(cls.section).get(info.field_name or "")
        if row is not None and not row.constraint.check(value):
            raise ValueError(f"must be {row.constraint.text}")
        return value


class ModelConfig(_ParamSection):
    """Boosting parameters for pretraining the global model (see :mod:`tabtune.params`)."""

    section: ClassVar[Section] = "model"

    n_estimators: int = _param_field("model", "n_estimators")
    learning_rate: float = _param_field("model", "learning_rate")
    num_leaves: int = _param_field("model", "num_leaves")
    max_depth: int = _param_field("model", "max_depth")
    min_child_samples: int = _param_field("model", "min_child_samples")
    subsample: float = _param_field("model", "subsample")
    colsample_bytree: float = _param_field("model", "colsample_bytree")
    reg_alpha: float = _param_field("model", "reg_alpha")
    reg_lambda: float = _param_field("model", "reg_lambda")
    early_stopping_rounds: int | None = _param_field("model", "early_stopping_rounds")
    regrow_on_all_rows: bool = _param_field("model", "regrow_on_all_rows")
    early_stopping_max_rows: int | None = _param_field("model", "early_stopping_max_rows")
    random_state: int | None = _param_field("model", "random_state")
    n_jobs: int | None = _param_field("model", "n_jobs")
    backend_params: dict[str, Any] = Field(
        default_factory=dict,
        description=section_params("model")["backend_params"].description,
    )

    @field_validator("backend_params", mode="before")
    @classmethod
    def _no_backend_params(cls, value: Any) -> Any:
        # The table's default None means "none": the config spells it as an empty mapping.
        return {} if value is None else value


class AdaptationConfig(_ParamSection):
    """How each brand's model is adapted from the global one (see :mod:`tabtune.params`)."""

    section: ClassVar[Section] = "adaptation"

    strategy: str = _param_field("adaptation", "strategy")
    min_rows_to_adapt: int = _param_field("adaptation", "min_rows_to_adapt")
    validation_fraction: float = _param_field("adaptation", "validation_fraction")
    adapt_n_estimators: int = _param_field("adaptation", "adapt_n_estimators")
    adapt_learning_rate: float | None = _param_field("adaptation", "adapt_learning_rate")
    refit_decay_rate: float = _param_field("adaptation", "refit_decay_rate")
    selection_folds: int = _param_field("adaptation", "selection_folds")
    selection_margin: float = _param_field("adaptation", "selection_margin")
    selection_margin_rows: int = _param_field("adaptation", "selection_margin_rows")
    reselect_every_days: int | None = _param_field("adaptation", "reselect_every_days")
    reselect_when_rows_grow: float | None = _param_field("adaptation", "reselect_when_rows_grow")
    n_jobs: int | None = _param_field("adaptation", "n_jobs")


class TuningConfig(_Section):
    """Optuna study settings."""

    storage: str = Field(
        "sqlite:///models/tuning.db",
        description="where studies are kept; not given: sqlite:///<models_dir>/tuning.db",
    )
    n_trials: int = Field(20, ge=1)
    timeout: float | None = Field(600.0, gt=0)
    n_folds: int = Field(3, ge=1, le=10)
    min_gain: float = Field(
        0.01,
        ge=0.0,
        lt=1.0,
        description="a trial's parameters replace the defaults only when they score lower on "
        "every fold and their mean fold loss is at least this share lower (0.01: 1%)",
    )
    seed: int = 0
    search_space: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict,
        description="per parameter: {low, high, log} or {choices: [...]}, or null to not tune it; "
        "checked against the tunable parameters by tabtune.tuning before any trial runs",
    )

    @field_validator("storage")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        allowed = ("sqlite:///", "postgresql://", "postgresql+psycopg2://",
                   "postgresql+psycopg://", "mysql://", "mysql+pymysql://", "mysql+mysqldb://",
                   "journal:")  # fmt: skip
        if not value.startswith(allowed):
            raise ValueError(f"storage {value!r} must start with one of {list(allowed)}")
        return value


class RefreshConfig(_Section):
    """The nightly per-brand refresh."""

    promotion_margin: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="a challenger must beat the champion's out-of-time loss (the task's "
        "deviance) by this share",
    )
    global_every_days: int | None = Field(
        None,
        ge=1,
        description="re-pretrain the global model when its data ends this many days before the run date",
    )
    contest_every_days: int = Field(
        7,
        ge=1,
        description="a brand the global model serves (its challenger lost its contest) and "
        "that repeats that choice contests again this many days "
        "after its last contest; sooner when it chooses its strategy again "
        "(adaptation.reselect_every_days, reselect_when_rows_grow). 1: every night",
    )
    refit_every_days: int = Field(
        7,
        ge=1,
        description="a brand champion that repeats its own choice on the same global model is "
        "refitted on its rows when its newest learned day is this many days old, or sooner once "
        "the rows it has not learned reach refit_when_rows_grow of those it learned; the other "
        "nights it serves as it is, scored on the new rows. 1: every night",
    )
    refit_when_rows_grow: float = Field(
        0.05,
        gt=0,
        description="refit a brand champion before refit_every_days once its rows not yet "
        "learned are this share of the rows it learned",
    )
    executor: Literal["inline", "process", "dask"] = "inline"
    n_workers: int = Field(2, ge=1)
    scheduler: str | None = None
    plots: bool = Field(
        False,
        description="also write each brand's decision plot (bid vs predicted value, or budget "
        "response curves with the plan) as outputs/<D+1>/plots/<kind>-<brand>.png and embed it "
        "in the run report (about 0.3 s a brand)",
    )


class RegistryConfig(_Section):
    """The model registry's retention policy (``tabtune models gc``)."""

    keep_versions: int = Field(
        3,
        ge=1,
        description="newest versions kept per brand and task (and per global task); the "
        "champion, its rollback target, the champion a kept version was built against and the "
        "base of every kept version are kept too",
    )
    gc_after_refresh: bool = Field(
        True,
        description="delete the versions the policy does not keep at the end of every refresh",
    )


class BidConfig(_Section):
    """Guard rails on recommended bids."""

    min_bid: float = Field(0.05, gt=0)
    max_bid: float = Field(50.0, gt=0)
    max_change: float = Field(
        0.3, gt=0, description="largest relative change from the current bid per day"
    )
    target_roas: float = Field(4.0, gt=0)
    target_roas_by_brand: dict[str, float] = Field(
        default_factory=dict,
        description="brand id -> its own revenue / cost target (each client's), used by "
        "`tabtune bids`, the refresh and BidRecommender.recommend; brands not listed take "
        "target_roas",
    )

    @model_validator(mode="after")
    def _ordered(self) -> BidConfig:
        if self.min_bid >= self.max_bid:
            raise ValueError(f"min_bid ({self.min_bid}) must be below max_bid ({self.max_bid})")
        bad = {
            b: t for b, t in self.target_roas_by_brand.items() if not (math.isfinite(t) and t > 0)
        }
        if bad:
            raise ValueError(f"target_roas_by_brand: targets must be finite numbers > 0, got {bad}")
        return self

    def target_roas_for(self, brand: str) -> float:
        """The brand's revenue / cost target: its own (``target_roas_by_brand``), else
        ``target_roas``."""
        return float(self.target_roas_by_brand.get(str(brand), self.target_roas))


class BudgetConfig(_Section):
    """Defaults for budget plans."""

    relative_bounds: float = Field(
        0.3, gt=0, description="channel spend may move +-this share of recent spend"
    )
    lookback_days: int = Field(28, ge=1)
    grid_points: int = Field(
        61,
        ge=5,
        le=501,
        description="spend levels per channel of the allocation's grid (its work grows with "
        "the square; 501 already splits a channel's range in 500 steps)",
    )
    response: Literal["hill", "model"] = Field(
        "hill",
        description=(
            "spend-response curves: 'hill' (Hill curves identified by the bid lever, pooled "
            "across brands; the model where a channel has no bids) or 'model' (the budget task's "
            "learned model)"
        ),
    )


class SynthConfig(_Section):
    """Defaults for ``tabtune synth``."""

    n_brands: int = Field(60, ge=1)
    n_days: int = Field(730, ge=7)
    seed: int = 0
    start: str = "2024-01-01"

    @field_validator("start", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:  # YAML reads an unquoted 2024-01-01 as a date
        return iso_day(value)  # "01/02/2024" was read month-first, "garbage" failed in synth


class Config(_Section):
    """The whole tabtune configuration."""

    data: DataConfig = Field(default_factory=DataConfig)
    models_dir: Path = Path("models")
    runs_dir: Path = Path("runs")
    outputs_dir: Path = Path("outputs")
    cache_dir: Path | None = Field(
        Path("cache"),
        description="what a refresh keeps between nights to save work (the base model's leaf "
        "indices of each brand's rows); null: nothing kept. Safe to delete at any time",
    )
    backend: Literal["lightgbm", "xgboost"] = "lightgbm"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    tasks: dict[str, TaskConfig] = Field(default_factory=dict)
    model: ModelConfig = Field(default_factory=lambda: ModelConfig())
    adaptation: AdaptationConfig = Field(default_factory=lambda: AdaptationConfig())
    tuning: TuningConfig = Field(default_factory=lambda: TuningConfig())
    refresh: RefreshConfig = Field(default_factory=lambda: RefreshConfig())
    registry: RegistryConfig = Field(default_factory=lambda: RegistryConfig())
    bids: BidConfig = Field(default_factory=lambda: BidConfig())
    budget: BudgetConfig = Field(default_factory=lambda: BudgetConfig())
    synth: SynthConfig = Field(default_factory=lambda: SynthConfig())

    #: Task name -> the file it was read from (tasks given inline or built in have none).
    _task_files: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("models_dir", "runs_dir", "outputs_dir", "cache_dir")
    @classmethod
    def _home(cls, value: Path | None) -> Path | None:  # "~/..." as a shell reads it
        return None if value is None else expanded_path(value)

    @model_validator(mode="after")
    def _folders_apart(self) -> Config:
        """The store and the folders tabtune writes do not overlap (``bids`` wrote into a store
        then refused as damaged); each task is named by its key (its models are kept so)."""
        if misnamed := {k: t.name for k, t in self.tasks.items() if t.name != k}:
            raise ValueError(f"tasks {misnamed} are not named by their keys; fix: name each so")
        if overlap := self.folder_overlap():
            raise ValueError(overlap)
        return self

    def folder_overlap(self, truth: bool = False) -> str | None:
        """Two of the store and the folders tabtune writes that overlap, with the fix
        (:func:`~tabtune.config_section.overlapping_folders`); with ``truth``, the simulator's
        ``data.truth_dir`` against the store only (``synth`` and ``demo`` write it). Checked when
        the config is built or assigned, and where the store or registry opens (a section's own
        assignment, ``cfg.data.store = cfg.models_dir``, is validated by the section alone)."""
        pairs: list[tuple[str, Path | None]] = [("data.store", self.data.store)]
        if truth:
            return overlapping_folders([*pairs, ("data.truth_dir", self.data.truth_dir)])
        pairs += [("models_dir", self.models_dir), ("runs_dir", self.runs_dir)]
        pairs += [("outputs_dir", self.outputs_dir), ("cache_dir", self.cache_dir)]
        return overlapping_folders(pairs)

    @model_validator(mode="after")
    def _tuning_beside_the_models(self) -> Config:
        """``tuning.storage`` not given: ``tuning.db`` in ``models_dir``, so that a config with
        its own models keeps its own studies (a tuned study is applied to every pretraining of
        its task, and the simulator's must not tune a client's model)."""
        if "storage" not in self.tuning.model_fields_set:
            # a section of its own: a copy's section is shared (a copy given another
            # models_dir moved its original's studies too); still derived, so it follows a
            # models_dir assigned later
            tuning = self.tuning.model_copy()
            tuning.storage = f"sqlite:///{(Path(self.models_dir) / 'tuning.db').as_posix()}"
            tuning.model_fields_set.discard("storage")
            object.__setattr__(self, "tuning", tuning)  # no second validation of the whole
        return self

    def task_file(self, name: str) -> str | None:
        """The file the task ``name`` was read from, as the config names it; None for a task
        written inline in the config or a built-in one."""
        return self._task_files.get(name)

    def task(self, name: str) -> TaskConfig:
        """Return the task called ``name`` or raise a ConfigError listing the known ones."""
        try:
            return self.tasks[name]
        except KeyError:
            raise ConfigError(
                f"unknown task {name!r}; configured tasks: {sorted(self.tasks) or 'none'}"
            ) from None


def _load_task(name: str, spec: Any, source: Path) -> dict[str, Any]:
    builtin = builtin_name(spec)
    if builtin is not None:
        if builtin != name:  # decisions and pooled responses are keyed on the task's name
            raise ConfigError(
                f"{source}: tasks.{name}: {spec!r} is the built-in task {builtin!r}, which keeps "
                f"its name (tasks.{builtin}: {builtin}); a task of another name is a file or a "
                "mapping of its own"
            )
        return {**builtin_task_spec(builtin), "name": name}
    if isinstance(spec, str):
        path = Path(spec)
        if not path.exists():
            raise ConfigError(
                f"{source}: tasks.{name}: task file {path} not found (relative paths resolve "
                f"against the directory tabtune runs in, {Path.cwd()}); fix: the task file's "
                f"path, or a built-in task by name (tasks.{name}: "
                f"{name if name in BUILTIN_TASKS else 'bid'}; built-in: "
                f"{', '.join(BUILTIN_TASKS)})"
            )
        raw = _named(read_yaml_mapping(path), name, f"{source}: tasks.{name} ({path})")
        try:
            return TaskConfig.model_validate(raw).model_dump()
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, f"{path} (task {name!r})")) from None
    if isinstance(spec, dict):
        return _named(dict(spec), name, f"{source}: tasks.{name}")
    raise ConfigError(f"{source}: tasks.{name} must be a path to a task file or a mapping")


def _named(raw: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """A task's mapping named by its key: models, outputs and caches are kept under the name,
    so a copied file still saying another task's name wrote over that task's models."""
    if raw.setdefault("name", name) != name:
        raise ConfigError(
            f"{where}: name {raw['name']!r} is not the task's key {name!r}: its models and "
            f"outputs would be those of task {raw['name']!r}; fix: name: {name} in the task "
            "(or no name: at all)"
        )
    return raw


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a configuration file.

    Parameters
    ----------
    path : str or Path, optional
        The YAML file. ``None`` uses ``configs/default.yaml`` when it exists in the working
        directory, otherwise the built-in defaults (which include the ``bid`` task). A file
        without a ``tasks:`` key has the built-in ``bid`` and ``budget`` tasks
        (:data:`DEFAULT_TASKS`); ``tasks.<name>`` is a task file's path, a mapping, or a
        built-in task's name (``bid``, or ``builtin:bid``).

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, or a key is unknown or has a bad value; the
        message names the file and the key.
    """
    if path is None and not DEFAULT_CONFIG_PATH.exists():
        return default_config()
    source = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    raw = read_yaml_mapping(source, empty=False)
    # no tasks: key at all: the built-in bid and budget tasks, as configs/default.yaml names
    tasks = (raw["tasks"] if "tasks" in raw else dict(DEFAULT_TASKS)) or {}
    if not isinstance(tasks, dict):
        raise ConfigError(f"{source}: tasks must be a mapping of task name -> file or mapping")
    raw["tasks"] = {name: _load_task(name, spec, source) for name, spec in tasks.items()}
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(source))) from None
    config._task_files = {
        name: spec
        for name, spec in tasks.items()
        if isinstance(spec, str) and builtin_name(spec) is None
    }
    return config


def builtin_task(name: str) -> TaskConfig:
    """A built-in task (``bid``, ``budget``, ``audience``, ``creative``) from its packaged YAML.

    Parameters
    ----------
    name : str
        One of :data:`BUILTIN_TASKS`.

    Returns
    -------
    TaskConfig
        A new object on every call.

    Raises
    ------
    ConfigError
        An unknown name.
    """
    return TaskConfig.model_validate(builtin_task_spec(name))


def __getattr__(name: str) -> Any:
    """``BID_TASK``: the packaged ``bid`` task's mapping (kept for code that imports it)."""
    if name == "BID_TASK":
        return builtin_task_spec("bid")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_config() -> Config:
    """The embedded default: the simulator's layout with the built-in ``bid`` and ``budget``
    tasks, as a config file without a ``tasks:`` key has (:data:`DEFAULT_TASKS`)."""
    return Config.model_validate({"tasks": {name: builtin_task(name) for name in DEFAULT_TASKS}})
