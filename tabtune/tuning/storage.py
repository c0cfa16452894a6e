"""Tuning storage: checked storage URLs, opening them, and failing trials of dead workers.

``sqlite:///models/tuning.db`` (the default: one process, resumable), ``journal:<path>``
(several processes on one machine) and ``postgresql[+psycopg2]://...`` (several machines).
SQLite is refused for parallel workers (its FAQ warns of "database is locked"). A worker that
dies leaves a ``RUNNING`` trial behind: :func:`reap_dead_trials` marks it ``FAIL`` when its
process is gone (same host).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from tabtune.errors import ConfigError
from tabtune.tuning.keys import ERROR_ATTR, WORKER_ATTR

__all__ = [
    "StorageSpec",
    "check_parallel",
    "open_storage",
    "parse_storage",
    "reap_dead_trials",
    "worker_identity",
]

logger = logging.getLogger("tabtune")

#: Tries to open a SQLite/RDB storage that another process is creating at the same moment.
CREATE_ATTEMPTS = 3
#: Seconds before the second try (twice that before the third).
CREATE_RETRY_SECONDS = 0.5


@dataclass(frozen=True)
class StorageSpec:
    """A checked storage URL.

    Attributes
    ----------
    url : str
        As given.
    kind : {"sqlite", "journal", "rdb"}
    path : Path or None
        The file of a SQLite or journal storage.
    display : str
        The URL with any password hidden, for messages.
    """

    url: str
    kind: Literal["sqlite", "journal", "rdb"]
    path: Path | None
    display: str

    @property
    def parallel_safe(self) -> bool:
        """Whether several processes may write to it at once (not SQLite)."""
        return self.kind != "sqlite"


def parse_storage(url: str) -> StorageSpec:
    """Check a storage URL without touching the storage.

    Parameters
    ----------
    url : str
        ``sqlite:///<path>``, ``journal:<path>``, ``postgresql[+driver]://user@host/db`` or
        ``mysql[+driver]://...``.

    Returns
    -------
    StorageSpec

    Raises
    ------
    ConfigError
        For any other scheme, a missing path or database name, an in-memory SQLite database
        (nothing to resume), or a database driver that is not installed.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"tuning.storage: empty storage URL {url!r}")
    if url.startswith("journal:"):
        path = url[len("journal:") :]
        if not path:
            raise ConfigError(
                "tuning.storage: journal storage needs a file, e.g. journal:models/tuning.journal"
            )
        return StorageSpec(url, "journal", Path(path), url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"tuning.storage: cannot parse {url!r}: {exc}") from None
    display = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not url.startswith("sqlite:///") or not parsed.database or parsed.database == ":memory:":
            raise ConfigError(
                f"tuning.storage: {display!r} needs a database file, e.g. sqlite:///models/tuning.db"
            )
        return StorageSpec(url, "sqlite", Path(parsed.database), display)
    if backend not in ("postgresql", "mysql"):
        raise ConfigError(
            f"tuning.storage: unsupported storage {display!r}; use sqlite:///<file>, "
            "journal:<file> or postgresql://user@host/db"
        )
    if not parsed.database or not parsed.host:
        raise ConfigError(f"tuning.storage: {display!r} needs a host and a database name")
    try:
        parsed.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError) as exc:
        driver = parsed.get_driver_name()
        package = _DRIVER_PACKAGES.get(driver, driver)
        others = [f"{backend}+{d}://" for d in _DRIVERS[backend] if d != driver and _importable(d)]
        hint = f"pip install '{package}'" + (
            f", or name the installed driver: {others[0]}..." if others else ""
        )
        raise ConfigError(
            f"tuning.storage: the driver for {display!r} is not installed ({exc}); {hint}"
        ) from None
    return StorageSpec(url, "rdb", None, display)


def open_storage(storage: str | StorageSpec) -> optuna.storages.BaseStorage:
    """Open (creating if needed) an Optuna storage.

    SQLite and journal files get their parent folder created (like every configured folder;
    one that cannot be created is a ``ConfigError``). PostgreSQL/MySQL storages get a
    heartbeat, so a trial whose worker died on another machine is failed after a few minutes.
    Two processes that create the same new SQLite/RDB storage at once race to create its
    tables; the loser opens it again (up to :data:`CREATE_ATTEMPTS` tries) and finds them.

    Raises
    ------
    ConfigError
        For a bad URL, or a database that cannot be reached or opened (the database's own
        reason, without SQLAlchemy's statement).
    """
    spec = storage if isinstance(storage, StorageSpec) else parse_storage(storage)
    if spec.kind == "journal":
        path = _make_folder(spec)
        try:  # the journal is replayed here: a damaged one fails now
            return JournalStorage(JournalFileBackend(str(path)))
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise ConfigError(
                f"tuning.storage: the journal {path} cannot be read ({type(exc).__name__}: "
                f"{exc}): it is damaged, or not an Optuna journal; fix: move it away (a new "
                "one is started; its studies are lost) or point tuning.storage elsewhere"
            ) from None
    kwargs: dict[str, Any] = {}
    if spec.kind == "sqlite":
        _make_folder(spec)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        kwargs.update(
            engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=60, grace_period=300
        )
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(spec.url, **kwargs)
        except SQLAlchemyError as exc:
            if not _creation_race(exc):
                raise ConfigError(
                    f"tuning.storage: cannot open {spec.display}: {_reason(exc)}; fix: restore "
                    "or reach it, or point tuning.storage elsewhere (tune keeps its studies "
                    "there, and pretrain and the refresh read the adopted parameters from it)"
                ) from None
            if attempt == CREATE_ATTEMPTS:
                raise ConfigError(
                    f"tuning.storage: {spec.display} was being created by another process at "
                    f"the same time ({_reason(exc)}), and opening it failed {CREATE_ATTEMPTS} "
                    "times; run the command again (the storage exists now), or start one "
                    "`tabtune tune` alone before starting others on a new storage"
                ) from None
            # another process is creating the same storage: its tables now exist, so
            # opening again finds them instead of creating them a second time
            logger.info(
                "tuning.storage %s: created by another process, opening it again", spec.display
            )
            time.sleep(CREATE_RETRY_SECONDS * attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


#: The package (as pip names it) of each database driver SQLAlchemy may ask for.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pymysql": "pymysql",
    "mysqldb": "mysqlclient",
}


#: The drivers of each database tabtune's storages accept.
_DRIVERS = {"postgresql": ("psycopg", "psycopg2"), "mysql": ("mysqldb", "pymysql")}


def _importable(driver: str) -> bool:
    """Whether the driver's module imports (``mysqldb`` is the module ``MySQLdb``)."""
    try:
        importlib.import_module({"mysqldb": "MySQLdb"}.get(driver, driver))
    except ImportError:
        return False
    return True


def _make_folder(spec: StorageSpec) -> Path:
    """Create the folder of a SQLite or journal storage file when it is missing (as tabtune
    creates every configured folder), and return the file.

    Raises
    ------
    ConfigError
        The folder cannot be created (a file in the way, no permission), naming the setting,
        the folder and why.
    """
    assert spec.path is not None  # a SQLite or journal storage is a file
    folder = spec.path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        try:
            existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
            a_file = existing.exists() and not existing.is_dir()
        except OSError:  # a parent that cannot be searched (no permission) says no more
            existing, a_file = folder, False
        why = (
            f"{existing} is a file, not a folder"
            if a_file
            else f"{exc.strerror or exc}: {exc.filename or folder}"
        )
        raise ConfigError(
            f"tuning.storage: {spec.display}: its folder {folder} cannot be created ({why}); "
            "point tuning.storage at a file in a folder tabtune can create or write, e.g. "
            "sqlite:///models/tuning.db"
        ) from None
    return spec.path


def _creation_race(exc: SQLAlchemyError) -> bool:
    """Whether ``exc`` is what creating an Optuna storage gives when another process creates
    it at the same moment: a table, or the schema version row, that already exists."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    return isinstance(exc, IntegrityError) or "already exists" in text


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own first line of ``exc``, without SQLAlchemy's statement and link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(orig or exc).__name__}: {text[0] if text else ''}"


def check_parallel(store: StorageSpec, n_jobs: int) -> None:
    """Refuse ``n_jobs`` > 1 worker processes on a storage that cannot serve them (SQLite)."""
    if n_jobs > 1 and not store.parallel_safe:
        raise ConfigError(
            f"tuning.storage: {store.display} is SQLite, which cannot serve {n_jobs} parallel "
            "workers ('database is locked'); use journal:models/tuning.journal (one machine) "
            "or postgresql://... (several)"
        )


# -------------------------------------------------------------------------- worker liveness
def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (guards against pid reuse), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def worker_identity() -> str:
    """``host|pid|start time`` of this process, recorded on the trials it runs."""
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{_process_start(pid) or ''}"


def _worker_alive(identity: str) -> bool | None:
    """True/False for a worker on this host, None when it ran elsewhere (cannot tell)."""
    host, _, rest = identity.partition("|")
    pid_text, _, start = rest.partition("|")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    current = _process_start(pid)
    return not (start and current and current != start)


def reap_dead_trials(study: optuna.Study, *, stale_after: float = 3600.0) -> list[int]:
    """Mark ``RUNNING`` trials whose worker process is gone as ``FAIL``.

    Optuna leaves the trial of a killed process ``RUNNING`` forever (journal and SQLite have
    no heartbeat). A trial's worker is recorded when it starts; on this host a dead process is
    detected at once. A trial without a recorded worker (killed in the instant between its
    creation and the first line of the objective) is failed once older than ``stale_after``
    seconds. Trials of workers on other hosts are left to the RDB heartbeat.

    Returns
    -------
    list of int
        The numbers of the trials marked failed.
    """
    reaped = []
    now = datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(WORKER_ATTR)
        if owner is not None:
            dead = _worker_alive(str(owner)) is False
        else:
            started = trial.datetime_start or now
            dead = (now - started).total_seconds() > stale_after
        if not dead:
            continue
        storage = study._storage
        storage.set_trial_user_attr(trial._trial_id, ERROR_ATTR, "worker process died")
        if storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            reaped.append(trial.number)
    if reaped:
        logger.warning(
            "study %s: marked %d trial(s) left RUNNING by dead workers as FAIL: %s",
            study.study_name,
            len(reaped),
            reaped,
        )
    return reaped
