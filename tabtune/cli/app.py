"""The ``tabtune`` entry point: parse, configure logging, load the config, run, map errors to
exit codes (:mod:`tabtune.cli.exit_codes`).

The exit-code contract: bad input or configuration, a folder the command must write to that is
read-only, and a full disk exit 2 with one message that names the thing, the rule and the fix
(:mod:`tabtune.cli.guards`), never with a traceback; only a bug exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from tabtune.cli.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
)
from tabtune.cli.guards import (
    NOT_DURING_A_REFRESH,
    backend_params_message,
    between_refreshes,
    check_writable,
    os_error_message,
    written_folders,
)
from tabtune.cli.parser import build_parser
from tabtune.errors import TabTuneInputError

__all__ = ["main"]

logger = logging.getLogger("tabtune")

Handler = Callable[[argparse.Namespace, object], int]


def _handler(name: str) -> Handler:
    """``"commands:cmd_synth"`` -> :func:`tabtune.cli.commands.cmd_synth`."""
    module, func = name.split(":")
    return getattr(importlib.import_module(f"tabtune.cli.{module}"), func)


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM or SIGHUP, so the command unwinds as after
    Ctrl-C (locks released, workers stopped)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: SIGTERM (``kill``, Airflow's on_kill) and SIGHUP (a closed terminal or ssh session; left
#: alone when ignored, as under ``nohup``): the command stops as after Ctrl-C.
_UNWOUND = (signal.SIGTERM, signal.SIGHUP)


def _on_signals_unwind() -> dict[int, object]:
    """Make :data:`_UNWOUND` raise :class:`Terminated` (main thread only); the handlers
    replaced, to restore."""
    previous: dict[int, object] = {}
    for sig in _UNWOUND:
        try:
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # nohup: the command must outlive the terminal
            previous[sig] = signal.signal(sig, _raise_terminated)
        except ValueError:  # not the main thread (an embedding application): leave it alone
            break
    return previous


def _restore_signals(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)  # type: ignore[arg-type]


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


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
    cfg = None
    previous = _on_signals_unwind()
    try:
        from tabtune.config import load_config  # pydantic: not needed for --help

        cfg = load_config(args.config)
        check_writable(cfg, written_folders(args.command, args))
        if args.command not in NOT_DURING_A_REFRESH or getattr(args, "dry_run", False):
            return _handler(args.handler)(args, cfg)
        with between_refreshes(cfg.models_dir, args.command):
            return _handler(args.handler)(args, cfg)
    except TabTuneInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # the reader closed the pipe: stop quietly (no traceback when Python flushes stdout)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (captured, replaced)
            pass
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        message = os_error_message(exc, cfg)
        if message is None:
            logger.exception("internal error")
            print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_INTERNAL
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        from tabtune.cli.console import err_console

        err_console().print("interrupted")
        return EXIT_INTERRUPTED
    except Terminated as exc:
        name = signal.Signals(exc.signum).name
        with contextlib.suppress(OSError, ValueError):  # SIGHUP: the terminal may be gone
            print(
                f"terminated ({name}): stopped as after Ctrl-C (a refresh resumes when rerun)",
                file=sys.stderr,
            )
        return EXIT_TERMINATED if exc.signum == signal.SIGTERM else 128 + exc.signum
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        refused = backend_params_message(exc, cfg)
        if refused is not None:
            print(f"error: {refused}", file=sys.stderr)
            return EXIT_BAD_INPUT
        logger.exception("internal error")
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        _restore_signals(previous)
