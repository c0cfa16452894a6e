"""``tabtune`` command line: a thin presentation layer over the library.

The library (:mod:`tabtune.pipeline`, :mod:`tabtune.refresh`, :mod:`tabtune.tuning`,
:mod:`tabtune.report`, :mod:`tabtune.tasks`) returns data frames and dataclasses and prints
nothing; this package parses arguments, shows progress and prints tables.

Modules: :mod:`~tabtune.cli.app` (entry point), :mod:`~tabtune.cli.parser`,
:mod:`~tabtune.cli.exit_codes`, :mod:`~tabtune.cli.console` (consoles, numbers),
:mod:`~tabtune.cli.progress` (the progress bar), :mod:`~tabtune.cli.brands` (``--brands``),
:mod:`~tabtune.cli.tables`, and the commands: :mod:`~tabtune.cli.commands` (synth, validate,
pretrain, finetune, predict, models), :mod:`~tabtune.cli.tune`, :mod:`~tabtune.cli.refresh`,
:mod:`~tabtune.cli.report`, :mod:`~tabtune.cli.decisions` (bids, budget) and
:mod:`~tabtune.cli.demo`.

Exit codes: 0 success, 2 bad input or configuration (the message says what and where),
1 internal error, 3 a refresh in which some brands failed while the rest completed.
"""

from __future__ import annotations

from tabtune.cli.app import main
from tabtune.cli.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
)
from tabtune.cli.parser import build_parser

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "build_parser",
    "main",
]
