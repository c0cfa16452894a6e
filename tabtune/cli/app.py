"""The ``tabtune`` entry point: parse, configure logging, load the config, run, map errors to
exit codes (:mod:`tabtune.cli.exit_codes`)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from tabtune.cli.exit_codes import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED
from tabtune.cli.parser import build_parser
from tabtune.errors import TabTuneInputError

__all__ = ["main"]

logger = logging.getLogger("tabtune")

Handler = Callable[[argparse.Namespace, object], int]


def _handler(name: str) -> Handler:
    """``"commands:cmd_synth"`` -> :func:`tabtune.cli.commands.cmd_synth`."""
    module, func = name.split(":")
    return getattr(importlib.import_module(f"tabtune.cli.{module}"), func)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tabtune`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("optuna", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        from tabtune.config import load_config  # pydantic: not needed for --help

        cfg = load_config(args.config)
        return _handler(args.handler)(args, cfg)
    except TabTuneInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        from tabtune.cli.console import err_console

        err_console().print("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        logger.exception("internal error")
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
