"""Checks at the command line's boundary: arguments, writable folders, environment errors.

* :func:`positive_int`: an ``argparse`` type for counts (``--brands``, ``--days``) that refuses
  0 and negative numbers instead of treating them as "the default";
* :func:`synth_sizes`: ``synth``/``demo``'s ``--brands``/``--days`` checked by the config's own
  rules for ``synth.n_brands``/``synth.n_days``;
* :func:`check_writable`: before a command writes anything, each configured folder it writes
  to must be writable, so a read-only store or models folder is refused with exit 2 before
  any other folder was changed;
* :func:`os_error_message`: the message for an :class:`OSError` that reached the entry point
  and that the user can fix (a read-only folder, a full disk), naming the folder, its config
  key, the rule and the fix; the CLI exits 2 with it instead of printing a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tabtune.config import SynthConfig
from tabtune.errors import TabTuneInputError

__all__ = [
    "FULL_ERRNOS",
    "NOT_DURING_A_REFRESH",
    "READ_ONLY_ERRNOS",
    "WRITES",
    "between_refreshes",
    "check_writable",
    "configured_folders",
    "folder_of",
    "os_error_message",
    "output_file",
    "outside_managed_folders",
    "positive_int",
    "synth_sizes",
    "written_folders",
]

#: Errors of a folder the process may not write to.
READ_ONLY_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: Errors of a full disk or an exhausted quota.
FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG})

#: The configured folders (config keys) each command writes to.
WRITES: dict[str, tuple[str, ...]] = {
    "synth": ("data.store", "data.truth_dir"),
    "load": ("data.store",),
    "pretrain": ("models_dir", "cache_dir"),
    "finetune": ("models_dir", "cache_dir"),
    "refresh": ("models_dir", "runs_dir", "outputs_dir", "cache_dir"),
    "predict": ("outputs_dir",),
    "bids": ("outputs_dir",),
    "budget": ("outputs_dir",),
    "demo": ("data.store", "data.truth_dir", "models_dir", "cache_dir"),
}


#: ``synth``/``demo`` options -> the config keys (``synth.*``) whose rules they follow.
_SYNTH_FLAGS = {"n_brands": "--brands", "n_days": "--days"}


def synth_sizes(synth: SynthConfig, brands: int | None, days: int | None) -> SynthConfig:
    """The simulation of ``synth``/``demo``: ``--brands``/``--days`` (when given) over the
    config's ``synth`` section, checked by the config's own rules (``synth.n_days >= 7``: a
    value the config refuses is refused as an option too, with the same rule).

    Raises
    ------
    TabTuneInputError
        Naming the option, its config key, the rule and the smallest value allowed.
    """
    asked = (("n_brands", brands), ("n_days", days))
    given = {key: value for key, value in asked if value is not None}
    try:
        return SynthConfig.model_validate({**synth.model_dump(), **given})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0])
            flag = _SYNTH_FLAGS.get(key, key)
            low = (err.get("ctx") or {}).get("ge")
            fix = f"; pass {flag} {low} or more" if low is not None else ""
            rule = f"synth.{key}: {err['msg']} (got {err['input']!r})"  # as the config says it
            problems.append(f"{flag} {err['input']} is refused: {rule}{fix}")
        raise TabTuneInputError("; ".join(problems) + "; nothing was written") from None


def positive_int(value: str) -> int:
    """``argparse`` type: a whole number >= 1 (``"0"`` is refused, not taken as the default).

    Raises
    ------
    argparse.ArgumentTypeError
        Not a whole number, or below 1.
    """
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def configured_folders(cfg: Any) -> dict[str, Path]:
    """Config key -> folder, for every folder tabtune writes to (``cache_dir`` when set)."""
    folders = {
        "data.store": Path(cfg.data.store),
        "data.truth_dir": Path(cfg.data.truth_dir),
        "models_dir": Path(cfg.models_dir),
        "runs_dir": Path(cfg.runs_dir),
        "outputs_dir": Path(cfg.outputs_dir),
    }
    if getattr(cfg, "cache_dir", None) is not None:
        folders["cache_dir"] = Path(cfg.cache_dir)
    return folders


def written_folders(command: str, args: argparse.Namespace) -> tuple[str, ...]:
    """The config keys of the folders ``command`` (with these arguments) writes to."""
    if command == "load" and getattr(args, "dry_run", False):
        return ()
    keys = WRITES.get(command, ())
    if command == "refresh" and getattr(args, "input", None):
        keys = (*keys, "data.store")
    return keys


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(cfg: Any, keys: Iterable[str]) -> None:
    """Refuse, before anything is written, a configured folder the process cannot write to.

    A folder that does not exist yet is judged by its nearest existing parent (where it
    would be created).

    Parameters
    ----------
    cfg : Config
    keys : iterable of str
        Config keys of the folders (see :func:`configured_folders`).

    Raises
    ------
    TabTuneInputError
        Naming the folder, its config key and the fix.
    """
    folders = configured_folders(cfg)
    for key in keys:
        if key not in folders:
            continue
        folder = folders[key]
        existing = _nearest_existing(folder)
        if existing.exists() and not existing.is_dir():
            raise TabTuneInputError(
                f"{key} {folder}: {existing} is a file, not a folder; point {key} in the "
                "config at a folder"
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            raise TabTuneInputError(
                f"{key} {folder} is not writable ({existing} is read-only for this user); "
                f"tabtune must write there: make it writable, or point {key} in the config at "
                "a writable folder. Nothing was written."
            )


def folder_of(cfg: Any, filename: str | os.PathLike[str] | None) -> tuple[str, Path] | None:
    """The configured folder (config key, path) that holds ``filename``, if any."""
    if filename is None or cfg is None:
        return None
    target = Path(os.fsdecode(filename)).absolute()
    best: tuple[str, Path] | None = None
    for key, folder in configured_folders(cfg).items():
        root = folder.absolute()
        if (target == root or root in target.parents) and (
            best is None or len(root.parts) > len(best[1].absolute().parts)
        ):
            best = (key, folder)
    return best


def os_error_message(exc: OSError, cfg: Any = None) -> str | None:
    """The message for an environment error the user can fix, or None (an internal error).

    Parameters
    ----------
    exc : OSError
        What reached the entry point.
    cfg : Config or None
        The loaded configuration, to name the folder's config key.

    Returns
    -------
    str or None
        For a read-only folder or a full disk: the file, the folder and its config key, the
        rule and the fix. ``None`` for any other error.
    """
    if exc.errno not in READ_ONLY_ERRNOS | FULL_ERRNOS | {errno.EISDIR}:
        return None
    filename = exc.filename
    where = folder_of(cfg, filename)
    thing = f"{filename}" if filename else "a file"
    key_hint = f" (in {where[0]} {where[1]})" if where else ""
    if exc.errno == errno.EISDIR:
        if filename and Path(filename).name.startswith("."):  # a lock or state file tabtune makes
            return (
                f"{thing}{key_hint} is a folder where tabtune keeps a file of its own (a lock): "
                "remove that folder (nothing of yours is in it) and rerun."
            )
        return (
            f"{thing}{key_hint} is a folder where tabtune needs a file: name a file in the "
            "setting that gives this path (e.g. tuning.storage: journal:models/tuning.journal) "
            "and rerun."
        )
    point = f"point {where[0]} in the config elsewhere" if where else "write somewhere else"
    reason = exc.strerror or os.strerror(exc.errno or 0)
    if exc.errno in FULL_ERRNOS:
        return (
            f"cannot write {thing}{key_hint}: {reason}; tabtune needs free disk space to write "
            f"its files: free some space (or {point}) and rerun. Files are replaced "
            "atomically, so no half-written file was left."
        )
    return (
        f"cannot write {thing}{key_hint}: {reason}; the folder must be writable by this user: "
        f"make it writable (or {point}) and rerun."
    )


def output_file(
    path: Path, what: str, *, writer: str, fmt: str, option: str, example: str, typed: bool
) -> Path:
    """Check a file an option names before any work: not a folder (existing, or typed with a
    trailing slash), the suffix of ``example``, no file where a folder above it should be.

    Parameters
    ----------
    path : Path
        The file.
    what : str
        How messages name it (``"--output p.parquet"``).
    writer, fmt : str
        Who writes it and in what format, for messages (``"predict"``, ``"Parquet"``).
    option : str
        The option (``"--output"``), for the examples the messages give.
    example : str
        A file name of the right suffix (``"bid.parquet"``); its suffix (``.pq`` also for
        ``.parquet``) is required.
    typed : bool
        Whether the user typed ``what``'s path (a trailing slash then means a folder).

    Raises
    ------
    TabTuneInputError
        Naming the option and the fix; nothing was written.
    """
    suffix = Path(example).suffix.lower()
    allowed = (suffix, ".pq") if suffix == ".parquet" else (suffix,)
    if path.is_dir() or (typed and what.endswith(("/", "\\"))):
        raise TabTuneInputError(
            f"{what} is a folder; {writer} writes one {fmt} file: pass a file path, e.g. "
            f"{option} {path / example}; nothing was written"
        )
    if path.suffix.lower() not in allowed:
        raise TabTuneInputError(
            f"{what}: {writer} writes {fmt}, and the name ends in "
            f"{path.suffix or '(nothing)'!r}; name it {suffix} (e.g. {option} "
            f"{path.with_suffix(suffix)}); nothing was written"
        )
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise TabTuneInputError(
                f"{what}: {parent} is a file, not a folder; pass an {option} in a folder "
                "(or a new one); nothing was written"
            )
    return path


def outside_managed_folders(path: Path, cfg: Any, what: str, *, source: str | None = None) -> None:
    """Refuse an output file inside a folder tabtune manages (the store, the registry, the
    runs, the truth, the cache) or equal to the command's input ``source``: ``predict
    --output data/campaigns/x.parquet`` left a store every command refused as damaged, and
    ``--input f --output f`` replaced the rows with predictions (tune/predict red-team).

    Raises
    ------
    TabTuneInputError
        Naming the option, the folder's config key and the fix; nothing was written.
    """
    full = Path(os.path.realpath(path))  # "..", and links into the store, as the disk sees them
    inside = [
        (len(root.parts), key, folder)
        for key, folder in configured_folders(cfg).items()
        if full == (root := Path(os.path.realpath(folder))) or root in full.parents
    ]
    if inside:
        _, key, folder = max(inside)  # the deepest: outputs_dir may sit inside truth_dir
        if key != "outputs_dir":
            raise TabTuneInputError(
                f"{what} is inside {key} ({folder}), which tabtune manages: a file written "
                "there damages it; write it elsewhere (e.g. under outputs_dir, "
                f"{cfg.outputs_dir}); nothing was written"
            )
    if source is not None and Path(source).exists() and full.exists():
        if full.samefile(source):
            raise TabTuneInputError(
                f"{what} is the input file {source}: it would be replaced by the predictions; "
                "write them to another file; nothing was written"
            )


#: The errors the boosting libraries raise for a parameter value they refuse.
_LIBRARY_ERRORS = ("LightGBMError", "XGBoostError")


def backend_params_message(exc: Exception, cfg: Any = None) -> str | None:
    """The message for a boosting library's refusal when ``model.backend_params`` passes it
    values (``max_bin: abc`` ended in an internal error and a traceback); None otherwise."""
    params = getattr(getattr(cfg, "model", None), "backend_params", None)
    if type(exc).__name__ not in _LIBRARY_ERRORS or not params:
        return None
    backend = getattr(cfg, "backend", "the backend")
    return (
        f"{backend} failed with the config's model.backend_params {params}: {exc}; fix: if "
        f"it names one of them (or an alias), a value {backend} accepts (its parameter "
        "documentation), or remove the key"
    )


#: Commands that publish or promote models, write decisions or append rows: refused while a
#: refresh runs (a pretrain promoted a global model mid-night and ``bids`` rewrote part of the
#: night's decisions from it; refresh red-team).
NOT_DURING_A_REFRESH = frozenset({"pretrain", "finetune", "bids", "budget", "load", "synth"})


@contextlib.contextmanager
def between_refreshes(models_dir: Path, command: str) -> Iterator[None]:
    """Hold the refresh lock of the registry in ``models_dir`` shared while ``command``
    runs (such commands run side by side; a refresh, which holds it exclusively, waits for
    none of them: it is refused); refused at once (exit 2) while a refresh holds it. A
    registry without a lock folder has never been locked: nothing is created for it.

    Raises
    ------
    RegistryLockedError
        A refresh is running; the message names its holder and says to run after it.
    """
    from tabtune.refresh.run import LOCK_NAME
    from tabtune.registry import ModelRegistry, RegistryLockedError

    with contextlib.ExitStack() as stack:
        if (Path(models_dir) / ".locks").is_dir():
            try:
                registry = ModelRegistry(models_dir)  # shared: such commands run side by side
                stack.enter_context(registry.lock(LOCK_NAME, timeout=0, shared=True))
            except RegistryLockedError as exc:
                raise RegistryLockedError(
                    f"a refresh is running: `tabtune {command}` would change the models, rows "
                    f"or decisions the night is using; run it after the refresh ({exc}); "
                    "nothing was done"
                ) from None
        yield
