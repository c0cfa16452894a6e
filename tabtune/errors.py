"""Exception types shared across tabtune.

``TabTuneInputError`` (and its subclasses) mean "the user's data or configuration is wrong";
the CLI maps them to exit code 2. Anything else is an internal error (exit code 1).
"""

from __future__ import annotations


class TabTuneInputError(ValueError):
    """Bad input: data, configuration, paths or arguments supplied by the user."""


class ConfigError(TabTuneInputError):
    """A configuration file or value is invalid; the message names the key."""


class ContractError(TabTuneInputError):
    """Campaign rows break the data contract; the message names column, rule, count, examples."""

    def __init__(self, message: str, violations: list | None = None) -> None:
        super().__init__(message)
        self.violations = list(violations or [])


class ModelIntegrityError(TabTuneInputError):
    """A stored model failed its checksum or manifest checks."""


class ZeroTargetError(TabTuneInputError):
    """Rows a log-link objective (Tweedie, Poisson) cannot be fitted on: the target is zero on
    every one of them (the log of a zero mean does not exist), so there is nothing to learn.

    ``objective`` is the objective that refused them; callers that know what the target
    stands for (a task's ``revenue / clicks``) say so in a message of their own.
    """

    def __init__(self, message: str, objective: str) -> None:
        super().__init__(message)
        self.objective = objective
