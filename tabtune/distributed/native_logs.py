"""LightGBM's own messages during Dask pretraining: off the command's stdout.

``lightgbm.dask`` prints its network start-up on stdout whatever the model's ``verbosity``
(the network is set up before the parameters apply): ``Finding random open ports for
workers`` in the client, through LightGBM's Python logger, and ``[LightGBM] [Info] Trying to
bind port ...`` in every worker, from the native library. :func:`route_lightgbm_logs` sends the
Python logger's messages to the ``lightgbm`` logger (LightGBM's ``register_logger``), shown at
INFO with ``-v``. The native library logs through a callback registered per thread, and a Dask
worker trains in a thread of its own, so its lines reach the worker's stdout directly:
:func:`quiet_worker_stdout` sends the stdout of the worker processes tabtune starts to stderr
with ``-v``, and discards it without.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

__all__ = [
    "LIGHTGBM_LOGGER",
    "LightGBMLogRoute",
    "route_lightgbm_logs",
    "route_on_cluster",
    "quiet_worker_stdout",
]

#: The Python logger LightGBM's messages go to.
LIGHTGBM_LOGGER = "lightgbm"
#: Warnings of the network start-up that say nothing is wrong (a worker connecting before its
#: peer listens retries); logged at INFO.
_BENIGN_WARNINGS = ("Connecting to rank", "Set TCP_NODELAY failed")


class LightGBMLogRoute:
    """A logger for ``lightgbm.register_logger``: each message a record of ``lightgbm``.

    LightGBM hands its native messages to ``info`` whatever their level; the level is read
    from the text (``[Warning]``, ``[Fatal]``).
    """

    def info(self, msg: str) -> None:
        """Log a message LightGBM calls information (native messages carry their level)."""
        text = str(msg).strip()
        if not text:
            return
        native_warning = "[Warning]" in text or "[Fatal]" in text
        benign = any(marker in text for marker in _BENIGN_WARNINGS)
        level = logging.WARNING if native_warning and not benign else logging.INFO
        logging.getLogger(LIGHTGBM_LOGGER).log(level, text)

    def warning(self, msg: str) -> None:
        """A warning of LightGBM's Python package: a Python warning, as LightGBM's own logger
        issues it (so that ``warnings`` filters apply)."""
        warnings.warn(str(msg), stacklevel=3)


def route_lightgbm_logs(level: int | None = None) -> None:
    """Send LightGBM's messages of this process to the ``lightgbm`` logger.

    Parameters
    ----------
    level : int, optional
        For a process whose logging nobody configured (a Dask worker): the logger shows
        records from ``level`` on, on stderr (a handler is added when it has none). None: the
        process's own logging configuration decides (the CLI's: INFO with ``-v``).
    """
    import lightgbm

    if level is not None:
        logger = logging.getLogger(LIGHTGBM_LOGGER)
        logger.setLevel(level)
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)
            logger.propagate = False
    lightgbm.register_logger(LightGBMLogRoute())


def route_on_cluster(client: Any) -> None:
    """:func:`route_lightgbm_logs` here (as this process logs) and on every worker of
    ``client`` (INFO when tabtune's logger shows INFO, ``-v``; else WARNING)."""
    shown = logging.getLogger("tabtune").isEnabledFor(logging.INFO)
    route_lightgbm_logs()
    client.run(route_lightgbm_logs, logging.INFO if shown else logging.WARNING)


def quiet_worker_stdout(shown: bool) -> None:
    """This process's standard output (file descriptor 1) written to its standard error from
    now on (``shown``), or discarded: for the worker processes of a local cluster, which share
    the command's stdout and print nothing else there."""
    sys.stdout.flush()
    if shown:
        os.dup2(2, 1)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
    finally:
        os.close(devnull)
