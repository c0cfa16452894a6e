"""The Dask client pooled pretraining runs on (a scheduler address, or a local cluster) and
the partitions it keeps on the workers."""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from tabtune.distributed.native_logs import quiet_worker_stdout
from tabtune.errors import TabTuneInputError
from tabtune.optional import optional_import

__all__ = [
    "DASK_PURPOSE",
    "Partitions",
    "connect_client",
    "dask_client",
    "dask_module",
    "quiet_dask_unless_verbose",
]

#: What needs Dask, in the missing-dependency message.
DASK_PURPOSE = "pretraining on Dask"

#: Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT = 30


def dask_module(name: str) -> ModuleType:
    """A Dask module (``dask.distributed``, ``dask.dataframe``, ...), imported now."""
    module = optional_import(name, extra="dask", purpose=DASK_PURPOSE)
    quiet_dask_unless_verbose()
    return module


def connect_client(scheduler: str) -> Any:
    """A ``dask.distributed.Client`` of the running scheduler at ``scheduler``.

    Raises
    ------
    TabTuneInputError
        It cannot be reached (the message names it and how to start one).
    """
    distributed = dask_module("dask.distributed")
    try:
        return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise TabTuneInputError(
            f"cannot reach the Dask scheduler {scheduler!r} ({exc}); start one with "
            "`dask scheduler` and workers with `dask worker <address>`, or use "
            "--scheduler local"
        ) from exc


def quiet_dask_unless_verbose() -> None:
    """Dask's own INFO lines (cluster start-up, workers, ports) only with ``-v``: the
    ``distributed`` loggers of this process at WARNING, and the same in the config the
    workers it starts inherit, unless tabtune's logger shows INFO."""
    if logging.getLogger("tabtune").isEnabledFor(logging.INFO):
        return
    import dask

    logging.getLogger("distributed").setLevel(logging.WARNING)
    dask.config.set({"logging.distributed": "warning"})


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
        # Its workers share this command's stdout, where LightGBM's native start-up lines
        # (printed whatever the verbosity) mixed with the command's own output.
        client.run(quiet_worker_stdout, logging.getLogger("tabtune").isEnabledFor(logging.INFO))
    else:
        cluster = None
        client = connect_client(scheduler)
    try:
        # The current client while tabtune works: a caller's own default client (another
        # connection to the same scheduler) must not be the one that runs the graphs that
        # hold this client's futures (xgboost.dask waited on them forever).
        with client.as_current():
            yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _rows(triple: tuple[Any, Any, Any]) -> int:
    """Rows of an ``(X, y, weight)`` triple."""
    return len(triple[1])


class Partitions:
    """Partitions of whole brands on a cluster: one future each, kept on one worker
    (partition ``i`` on the ``i``-th worker in address order, round robin).

    Every step on a partition runs on that worker (:meth:`map`), so the rows each LightGBM
    worker trains on do not depend on the scheduler's choices.

    Parameters
    ----------
    client : dask.distributed.Client
    futures : list of Future
        One per partition, in the order of the pooled rows.
    workers : list of str
        Worker addresses, sorted; partition ``i`` lives on ``workers[i % len(workers)]``.
    """

    def __init__(self, client: Any, futures: list[Any], workers: list[str]) -> None:
        self.client = client
        self.futures = futures
        self.workers = workers

    @classmethod
    def submit(cls, client: Any, fn: Any, inputs: list[Any], *args: Any) -> Partitions:
        """Partitions ``fn(input, *args)``, partition ``i`` computed on its worker.

        Raises
        ------
        TabTuneInputError
            The cluster has no workers.
        """
        workers = sorted(client.scheduler_info(n_workers=-1).get("workers", {}))
        if not workers:
            raise TabTuneInputError(
                "the Dask cluster has no workers; start some with `dask worker <address>`"
            )
        futures = [
            client.submit(fn, item, *args, workers=[workers[i % len(workers)]], pure=False)
            for i, item in enumerate(inputs)
        ]
        return cls(client, futures, workers)

    def worker(self, i: int) -> str:
        """The worker partition ``i`` is kept on."""
        return self.workers[i % len(self.workers)]

    def frame(self, meta: Any) -> Any:
        """The partitions as a ``dask.dataframe`` (whole brands per partition)."""
        dd = dask_module("dask.dataframe")
        return dd.from_delayed(self.futures, meta=meta, verify_meta=False)

    def map(self, fn: Any, *args: Any) -> Partitions:
        """``fn(partition, *args)`` of each partition, computed and kept on its worker."""
        futures = [
            self.client.submit(fn, f, *args, workers=[self.worker(i)], pure=False)
            for i, f in enumerate(self.futures)
        ]
        return Partitions(self.client, futures, self.workers)

    def gather(self, fn: Any, *args: Any) -> list[Any]:
        """``fn(partition, *args)`` of every partition, brought back here (small results)."""
        return list(self.client.gather(self.map(fn, *args).futures))

    def arrays(self, fn: Any, *args: Any, width: int) -> tuple[Any, Any, Any]:
        """float32 ``dask.array`` s ``(X, y, weight)`` of ``fn(partition, *args)`` (which
        returns such a triple), one chunk per non-empty partition, kept on its worker."""
        da = dask_module("dask.array")
        delayed = dask_module("dask").delayed
        triples = self.map(fn, *args)
        sizes = triples.gather(_rows)
        columns: list[list[Any]] = [[], [], []]
        for i, (future, n) in enumerate(zip(triples.futures, sizes, strict=True)):
            if n == 0:
                continue
            for k in range(3):
                piece = self.client.submit(
                    operator.getitem, future, k, workers=[self.worker(i)], pure=False
                )
                shape = (n, width) if k == 0 else (n,)
                columns[k].append(da.from_delayed(delayed(piece), shape=shape, dtype=np.float32))
        if not columns[0]:
            raise TabTuneInputError("no rows to train on")
        X, y, w = (da.concatenate(c) for c in columns)
        return X, y, w
