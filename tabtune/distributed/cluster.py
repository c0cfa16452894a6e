"""The Dask client that pooled pretraining runs on: a scheduler address, or a local cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from tabtune.errors import TabTuneInputError
from tabtune.optional import optional_import

__all__ = ["DASK_PURPOSE", "dask_client", "dask_module"]

#: What needs Dask, in the missing-dependency message.
DASK_PURPOSE = "pretraining on Dask"

#: Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT = 30


def dask_module(name: str) -> ModuleType:
    """A Dask module (``dask.distributed``, ``dask.dataframe``, ...), imported now."""
    return optional_import(name, extra="dask", purpose=DASK_PURPOSE)


@contextmanager
def dask_client(scheduler: str, n_workers: int = 2) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``scheduler``, closed on exit.

    Parameters
    ----------
    scheduler : str
        ``"local"``: a ``LocalCluster`` of ``n_workers`` single-threaded worker processes on
        this machine, closed with the client; otherwise a scheduler address such as
        ``"tcp://host:8786"``, whose workers must see the store's path and import tabtune.
    n_workers : int
        Workers of a local cluster.

    Raises
    ------
    TabTuneInputError
        The scheduler cannot be reached (the message names it and how to start one).
    """
    distributed = dask_module("dask.distributed")
    if scheduler == "local":
        cluster = distributed.LocalCluster(
            n_workers=int(n_workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = distributed.Client(cluster)
    else:
        cluster = None
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise TabTuneInputError(
                f"cannot reach the Dask scheduler {scheduler!r} ({exc}); start one with "
                "`dask scheduler` and workers with `dask worker <address>`, or use "
                "--scheduler local"
            ) from exc
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
