"""Search spaces: what each tuning scope searches, its defaults, and applying what it found.

The default ranges come from the parameter table (:data:`tabtune.params.PARAMETERS`); the
config's ``tuning.search_space`` overrides them, checked against what the ``model`` and
``adaptation`` sections accept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import optuna
from pydantic import ValidationError

from tabtune.config import AdaptationConfig, Config, ModelConfig
from tabtune.errors import ConfigError
from tabtune.params import section_params

__all__ = [
    "ADAPT_SPACE",
    "GLOBAL_SPACE",
    "ParamSpace",
    "Scope",
    "apply_params",
    "default_params",
    "resolve_search_space",
    "space_with_defaults",
]

logger = logging.getLogger("tabtune")

#: Default search space of the global model (from :data:`tabtune.params.PARAMETERS`); each
#: entry overridable by ``tuning.search_space``.
GLOBAL_SPACE: dict[str, dict[str, Any]] = {
    p.name: p.tuning.to_dict() for p in section_params("model").values() if p.tuning is not None
}

#: Default search space of adaptation (from :data:`tabtune.params.PARAMETERS`).
ADAPT_SPACE: dict[str, dict[str, Any]] = {
    p.name: p.tuning.to_dict()
    for p in section_params("adaptation").values()
    if p.tuning is not None
}

_SECTION_OF = {**dict.fromkeys(GLOBAL_SPACE, "model"), **dict.fromkeys(ADAPT_SPACE, "adaptation")}
_INT_PARAMS = frozenset(
    name
    for section in ("model", "adaptation")
    for name, p in section_params(section).items()
    if name in _SECTION_OF and p.integer
)
_SPEC_KEYS = frozenset({"low", "high", "log", "choices"})

Scope = Literal["global", "adapt", "brand"]


@dataclass(frozen=True)
class ParamSpace:
    """The range one parameter is searched over.

    Parameters
    ----------
    name : str
        The parameter, named as in ``ModelConfig`` / ``AdaptationConfig``.
    low, high : float or int, optional
        Inclusive bounds of a numeric range.
    log : bool, default False
        Search ``[low, high]`` on a log scale.
    choices : tuple, optional
        The values of a categorical parameter (instead of a range).
    integer : bool, default False
        Suggest integers.
    """

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    integer: bool = False

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this parameter's value for ``trial``."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None  # a range has both bounds
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of the space."""
        if self.choices is not None:
            return value in self.choices
        return value is not None and self.low <= value <= self.high

    def including(self, value: Any) -> tuple[ParamSpace, Any]:
        """The space widened to hold ``value``, and the value to evaluate for it.

        Zero on a log scale cannot be represented; it is evaluated as ``low`` (1e-8 in the
        default regularisation spaces, indistinguishable from 0 in practice).
        """
        if self.contains(value):
            return self, value
        if self.choices is not None:
            return replace(self, choices=(*self.choices, value)), value
        if self.log and value <= 0:
            return self, self.low
        return replace(self, low=min(self.low, value), high=max(self.high, value)), value

    def to_dict(self) -> dict[str, Any]:
        """The config spelling: ``{low, high, log}`` or ``{choices}``."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}


def _check_value(name: str, value: Any, where: str) -> None:
    section = ModelConfig if _SECTION_OF[name] == "model" else AdaptationConfig
    try:
        section.model_validate({name: value})
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"]
        raise ConfigError(f"{where}: {value!r} is not a valid {name}: {msg}") from None


def _param_space(name: str, override: Mapping[str, Any] | None) -> ParamSpace:
    where = f"tuning.search_space.{name}"
    default = GLOBAL_SPACE.get(name) or ADAPT_SPACE[name]
    raw = dict(default)
    if override:
        unknown = sorted(set(override) - _SPEC_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {unknown}; write {{low, high, log}} or {{choices: [...]}}"
            )
        if "choices" in override:
            if set(override) - {"choices"}:
                raise ConfigError(f"{where}: give either choices or low/high/log, not both")
            raw = {"choices": override["choices"]}
        elif "choices" in raw:
            raw = dict(override)
        else:
            raw.update(override)
    if "choices" in raw:
        choices = raw["choices"]
        if not isinstance(choices, list | tuple) or len(choices) == 0:
            raise ConfigError(f"{where}: choices must be a non-empty list")
        for value in choices:
            _check_value(name, value, where)
        return ParamSpace(name, choices=tuple(choices), integer=name in _INT_PARAMS)
    if "low" not in raw or "high" not in raw:
        raise ConfigError(f"{where}: a range needs both low and high")
    low, high, log = raw["low"], raw["high"], bool(raw.get("log", False))
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise ConfigError(f"{where}: bounds must be numbers, got {bound!r}")
        if name in _INT_PARAMS and float(bound) != int(bound):
            raise ConfigError(f"{where}: {name} is an integer; got bound {bound!r}")
        _check_value(name, int(bound) if name in _INT_PARAMS else bound, where)
    if low >= high:
        raise ConfigError(f"{where}: empty range, low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log-scale range needs low > 0 (got {low})")
    if name in _INT_PARAMS:
        return ParamSpace(name, int(low), int(high), log, integer=True)
    return ParamSpace(name, float(low), float(high), log)


def resolve_search_space(cfg: Config, scope: Scope) -> dict[str, ParamSpace]:
    """The search space of a scope: the defaults in code overridden by ``tuning.search_space``.

    Every override is checked, whichever scope is asked for, so a typo fails the first time
    anything is tuned.

    Parameters
    ----------
    cfg : Config
    scope : {"global", "adapt", "brand"}
        ``"global"`` gives the boosting parameters, the others the adaptation parameters.

    Returns
    -------
    dict of str to ParamSpace
        Parameter name -> space; a parameter overridden with ``null`` is left out (not tuned).

    Raises
    ------
    ConfigError
        For an unknown parameter or key, an empty range (``low >= high``), a log range with
        ``low <= 0``, a bound or choice outside what the config section accepts, or a space
        with nothing left to tune.
    """
    overrides = cfg.tuning.search_space
    unknown = sorted(set(overrides) - set(_SECTION_OF))
    if unknown:
        raise ConfigError(
            f"tuning.search_space: unknown parameter(s) {unknown}; tunable parameters are "
            f"{sorted(GLOBAL_SPACE)} (global) and {sorted(ADAPT_SPACE)} (adaptation)"
        )
    spaces = {
        name: _param_space(name, overrides.get(name))
        for name in _SECTION_OF
        if not (name in overrides and overrides[name] is None)
    }
    names = GLOBAL_SPACE if scope == "global" else ADAPT_SPACE
    space = {name: spaces[name] for name in names if name in spaces}
    if not space:
        raise ConfigError(f"tuning.search_space: every {scope} parameter is disabled (null)")
    return space


def default_params(cfg: Config, names: Sequence[str]) -> dict[str, Any]:
    """The configured values of tunable parameters (the defaults trial).

    ``adapt_learning_rate: null`` means "the global model's learning rate", so that is the
    value the defaults trial evaluates.
    """
    out: dict[str, Any] = {}
    for name in names:
        section = cfg.model if _SECTION_OF[name] == "model" else cfg.adaptation
        value = getattr(section, name)
        if name == "adapt_learning_rate" and value is None:
            value = cfg.model.learning_rate
        out[name] = value
    return out


def apply_params(cfg: Config, params: Mapping[str, Any]) -> Config:
    """A copy of ``cfg`` with tuned parameters set in ``model`` / ``adaptation``.

    Parameters
    ----------
    cfg : Config
    params : mapping
        Parameter name -> value, as :func:`tabtune.tuning.best_params` returns them.

    Returns
    -------
    Config
        A new, validated config; ``cfg`` is not changed.

    Raises
    ------
    ConfigError
        For an unknown name or a value the section rejects.
    """
    unknown = sorted(set(params) - set(_SECTION_OF))
    if unknown:
        raise ConfigError(f"unknown tuned parameter(s) {unknown}")
    model = {k: v for k, v in params.items() if _SECTION_OF[k] == "model"}
    adapt = {k: v for k, v in params.items() if _SECTION_OF[k] == "adaptation"}
    try:
        return cfg.model_copy(
            update={
                "model": ModelConfig.model_validate({**cfg.model.model_dump(), **model}),
                "adaptation": AdaptationConfig.model_validate(
                    {**cfg.adaptation.model_dump(), **adapt}
                ),
            }
        )
    except ValidationError as exc:
        raise ConfigError(f"tuned parameters {dict(params)} are invalid: {exc}") from None


def space_with_defaults(
    space: Mapping[str, ParamSpace], defaults: Mapping[str, Any], study: str
) -> tuple[dict[str, ParamSpace], dict[str, Any]]:
    """Widen spaces so the defaults are points of them; the defaults as they are evaluated.

    Parameters
    ----------
    space : mapping of str to ParamSpace
    defaults : mapping
        Parameter name -> default value; a value for every name of ``space``.
    study : str
        The study's name, for the log.

    Returns
    -------
    (dict of str to ParamSpace, dict)
        The widened spaces and the defaults as the defaults trial evaluates them.
    """
    out_space, out_defaults = {}, {}
    for name, sp in space.items():
        widened, value = sp.including(defaults[name])
        if widened != sp:
            logger.info(
                "study %s: search space of %s widened to include its default %r", study, name, value
            )
        elif value != defaults[name]:
            logger.debug(
                "study %s: default %s=%r is not on the log scale; the defaults trial uses %r",
                study,
                name,
                defaults[name],
                value,
            )
        out_space[name], out_defaults[name] = widened, value
    return out_space, out_defaults
