"""Helpers the decision tasks (:mod:`tabtune.tasks.bid`, :mod:`tabtune.tasks.budget`) share.

* :class:`ModelSet`: a global model and per-brand adapted models of one task, routed by brand and
  saved in the estimators' native formats;
* :func:`design_matrix`: a task's model inputs for rows at the task's grain, in their order;
* :func:`config_with_backend`, :func:`resolve_task`: the configuration a decision object uses;
* :func:`as_timestamp`, :func:`prepare_rows`: input checks;
* :func:`read_meta`: the JSON index of a saved decision object, checked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabtune.atomic import atomic_write_bytes
from tabtune.config import Config, TaskConfig, builtin_task, default_config
from tabtune.config_section import user_path
from tabtune.data.limits import EARLIEST_DATE
from tabtune.data.schema import validate_campaigns
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.estimators import TabTuneClassifier, TabTuneRegressor
from tabtune.features import GROUP_COLUMN, align_features, model_features, task_data
from tabtune.integrity import check_seal, seal
from tabtune.model_factory import brand_estimator, estimator_class, global_estimator
from tabtune.registry.manifest import sha256_file

__all__ = [
    "DECISION_FORMAT",
    "FORMAT_VERSION",
    "MODELSET_FILE",
    "ModelSet",
    "as_timestamp",
    "config_with_backend",
    "design_matrix",
    "prepare_rows",
    "read_meta",
    "write_meta",
    "resolve_task",
    "saved_table",
]

logger = logging.getLogger("tabtune")

#: Format version of a saved :class:`ModelSet`.
FORMAT_VERSION = 1
#: Format version of a saved recommender's or planner's index (:func:`write_meta`): 2 is
#: sealed and lists the sha256 of the object's files; 1 (neither) is read with a warning.
DECISION_FORMAT = 2
MODELSET_FILE = "models.json"


def config_with_backend(config: Config | None, backend: str | None) -> Config:
    """``config`` (or the default config) with ``backend`` set, when one is given."""
    cfg = config if config is not None else default_config()
    if backend is not None and backend != cfg.backend:
        cfg = cfg.model_copy(update={"backend": backend})
    return cfg


def resolve_task(cfg: Config, name: str) -> TaskConfig:
    """The configured task ``name``, or the built-in one (packaged YAML) when the config has none.

    Parameters
    ----------
    cfg : Config
    name : str
        A task name; a built-in task name when the config may lack it.

    Returns
    -------
    TaskConfig
    """
    if name in cfg.tasks:
        return cfg.tasks[name]
    return builtin_task(name)


def as_timestamp(value: Any, name: str) -> pd.Timestamp:
    """A date-like value as a midnight ``Timestamp``; a clear error when it is not a date.

    A string must be an ISO date (``YYYY-MM-DD``, optionally with a time): ``05/11/2025``
    could be either of two days, so it is refused rather than guessed.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise TabTuneInputError(
                f"{name}: {value!r} is not an ISO date; write it as YYYY-MM-DD (e.g. "
                "2025-11-05): a date like 05/11/2025 could be either of two days"
            ) from None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise TabTuneInputError(f"{name}: not a date: {value!r}") from None
    if stamp is pd.NaT or pd.isna(stamp):
        raise TabTuneInputError(f"{name}: not a date: {value!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return stamp.normalize()


def prepare_rows(history: pd.DataFrame) -> pd.DataFrame:
    """Validate campaign rows against the data contract and return them normalised."""
    if not isinstance(history, pd.DataFrame):
        raise TabTuneInputError(
            f"history must be a pandas DataFrame of campaign rows, got {type(history).__name__}"
        )
    if len(history) == 0:
        raise TabTuneInputError("history has no rows")
    dates = pd.to_datetime(history["date"], errors="coerce") if "date" in history else None
    if dates is not None and isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_localize(None)  # the local day, as validate_campaigns reads it
    early = None if dates is None else (dates < pd.Timestamp(EARLIEST_DATE)).to_numpy()
    if early is not None and early.any() and not early.all():
        # a store loaded before the rule may hold one (a 1970-01-01: a missing date written
        # as zero): it is no campaign day, and refused it stopped every brand's plan
        logger.warning(
            "history: %d row(s) dated before %s (a missing date written as zero?) left out; "
            "tabtune validate names them", int(early.sum()), EARLIEST_DATE,
        )  # fmt: skip
        history = history.loc[~early]
    return validate_campaigns(history, source="history")


def _estimator_class(task: TaskConfig) -> type[TabTuneRegressor] | type[TabTuneClassifier]:
    """The estimator class of ``task``."""
    return estimator_class(task)


class ModelSet:
    """A global model and per-brand adapted models of one task, routed by brand.

    Parameters
    ----------
    task : TaskConfig
        The task the models predict.
    global_model : estimator
        A fitted ``TabTuneRegressor``/``TabTuneClassifier``.
    global_id : str, default ""
        Id reported for predictions of the global model (a registry id when it has one).
    global_source : {"global", "brand"}, default "global"
        ``"brand"`` when ``global_model`` is in fact one brand's own model (e.g. a registry
        brand champion wrapped for that brand).
    brand_models : dict, optional
        Brand id -> fitted estimator adapted to that brand.
    brand_ids : dict, optional
        Brand id -> model id.
    known_brands : iterable of str, optional
        Brands the global model saw in pretraining. ``None``: not known (no brand is reported
        as unknown).
    """

    def __init__(
        self,
        task: TaskConfig,
        global_model: Any,
        *,
        global_id: str = "",
        global_source: str = "global",
        brand_models: dict[str, Any] | None = None,
        brand_ids: dict[str, str] | None = None,
        known_brands: Iterable[str] | None = None,
    ) -> None:
        self.task = task
        self.global_model = global_model
        self.global_id = global_id
        self.global_source = global_source
        self.brand_models = dict(brand_models or {})
        self.brand_ids = dict(brand_ids or {})
        self.known_brands = None if known_brands is None else {str(b) for b in known_brands}

    # -- construction ------------------------------------------------------------
    @classmethod
    def pretrain(
        cls, cfg: Config, task: TaskConfig, rows: pd.DataFrame, *, n_jobs: int | None = None
    ) -> ModelSet:
        """Fit the global model of ``task`` on pooled contract rows."""
        data = task_data(rows, task)
        est = global_estimator(cfg, task)
        if n_jobs is not None:
            est.set_params(n_jobs=n_jobs)
        logger.info(
            "pretraining %s on %d rows of %d brands",
            task.name,
            len(data),
            data.X[GROUP_COLUMN].nunique(),
        )
        est.fit(data.X, data.y, sample_weight=data.weight)
        return cls(
            task,
            est,
            global_id=f"local:global/{task.name}",
            known_brands=data.X[GROUP_COLUMN].unique(),
        )

    def adapt(self, cfg: Config, rows: pd.DataFrame, *, n_jobs: int | None = None) -> ModelSet:
        """A new set: this set's global model plus one adapted model per brand in ``rows``."""
        brand_models = dict(self.brand_models)
        brand_ids = dict(self.brand_ids)
        for brand, brand_rows in rows.groupby(GROUP_COLUMN, sort=True, observed=True):
            brand = str(brand)
            try:
                data = task_data(brand_rows, self.task, features=model_features(self.global_model))
            except TabTuneInputError as exc:
                logger.info("%s: brand %s keeps the global model (%s)", self.task.name, brand, exc)
                continue
            est = brand_estimator(cfg, self.task, self.global_model)
            if n_jobs is not None:
                est.set_params(n_jobs=n_jobs)
            est.fit(data.X, data.y, sample_weight=data.weight)
            brand_models[brand] = est
            brand_ids[brand] = f"local:brands/{brand}/{self.task.name}"
            logger.info(
                "%s: adapted brand %s on %d rows (%s)",
                self.task.name,
                brand,
                len(data),
                getattr(est, "strategy_", "?"),
            )
        known = None if self.known_brands is None else self.known_brands | set(brand_models)
        return ModelSet(
            self.task,
            self.global_model,
            global_id=self.global_id,
            global_source=self.global_source,
            brand_models=brand_models,
            brand_ids=brand_ids,
            known_brands=known,
        )

    @classmethod
    def from_base(cls, base: Any, task: TaskConfig, meta_file: str, subdir: str) -> ModelSet:
        """The global part of a base: a fitted decision object, a saved one, or an estimator.

        Parameters
        ----------
        base : object with ``models_``, str, Path or estimator
        task : TaskConfig
        meta_file : str
            The JSON file that marks a saved decision object's directory.
        subdir : str
            Where that object keeps this task's :class:`ModelSet`.
        """
        models = getattr(base, "models_", None)
        if isinstance(models, ModelSet):
            return ModelSet(
                task,
                models.global_model,
                global_id=models.global_id,
                known_brands=models.known_brands,
            )
        if isinstance(base, str | Path):
            path = user_path(base)
            if (path / meta_file).is_file():
                read_meta(path / meta_file, None)  # sealed: an edited index is refused
                loaded = cls.load(path / subdir, task)
                return ModelSet(
                    task,
                    loaded.global_model,
                    global_id=loaded.global_id,
                    known_brands=loaded.known_brands,
                )
            if path.is_dir():
                return cls(task, _estimator_class(task).load(path), global_id=str(path))
            raise TabTuneInputError(f"base_model: {path} is not a saved model directory")
        if hasattr(base, "predict") and hasattr(base, "fit"):
            return cls(task, base, global_id=type(base).__name__)
        raise TabTuneInputError(
            "base_model must be a fitted recommender/planner, a path to a saved one, or a "
            f"fitted tabtune estimator; got {type(base).__name__}"
        )

    # -- routing -----------------------------------------------------------------
    def source(self, brand: str) -> str:
        """``"brand"`` (its own model), ``"global"`` or ``"unknown"`` (global, never seen)."""
        if brand in self.brand_models or self.global_source == "brand":
            return "brand"
        if self.known_brands is None or brand in self.known_brands:
            return "global"
        return "unknown"

    def model_id(self, brand: str) -> str:
        """Id of the model that serves ``brand``."""
        return self.brand_ids.get(brand, self.global_id)

    def estimator(self, brand: str) -> Any:
        """The estimator that serves ``brand``."""
        return self.brand_models.get(brand, self.global_model)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predict model inputs (``brand_id`` column first), each brand with its model."""
        brands = X[GROUP_COLUMN].astype(str).to_numpy()
        out = np.empty(len(X), dtype=float)
        kind_classification = self.task.kind == "classification"
        for brand in np.unique(brands):
            idx = np.flatnonzero(brands == brand)
            est = self.estimator(str(brand))
            part = align_features(X.iloc[idx], est)
            if kind_classification:
                out[idx] = np.asarray(est.predict_proba(part))[:, -1]
            else:
                out[idx] = np.asarray(est.predict(part), dtype=float)
        return out

    # -- persistence -----------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write every model with its native ``save`` plus an index (``models.json``)."""
        path.mkdir(parents=True, exist_ok=True)
        self.global_model.save(path / "global")
        brands = []
        for i, (brand, est) in enumerate(sorted(self.brand_models.items())):
            sub = f"brands/{i:04d}"
            est.save(path / sub)
            brands.append(
                {"brand_id": brand, "dir": sub, "model_id": self.brand_ids.get(brand, "")}
            )
        index = {
            "format_version": FORMAT_VERSION,
            "task": self.task.model_dump(mode="json"),
            "global": {"dir": "global", "model_id": self.global_id, "source": self.global_source},
            "brands": brands,
            "known_brands": None if self.known_brands is None else sorted(self.known_brands),
        }
        atomic_write_bytes(path / MODELSET_FILE, json.dumps(index, indent=2).encode("utf-8"))

    @classmethod
    def load(cls, path: Path, task: TaskConfig | None = None) -> ModelSet:
        """Read a set written by :meth:`save`."""
        index_path = path / MODELSET_FILE
        if not index_path.is_file():
            raise TabTuneInputError(f"{index_path}: not found (not a saved model set)")
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if index.get("format_version") != FORMAT_VERSION:
            raise TabTuneInputError(
                f"{index_path}: format {index.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
        task = task if task is not None else TaskConfig.model_validate(index["task"])
        klass = _estimator_class(task)
        glob = index["global"]
        return cls(
            task,
            klass.load(path / glob["dir"]),
            global_id=glob["model_id"],
            global_source=glob.get("source", "global"),
            brand_models={b["brand_id"]: klass.load(path / b["dir"]) for b in index["brands"]},
            brand_ids={b["brand_id"]: b["model_id"] for b in index["brands"]},
            known_brands=index.get("known_brands"),
        )


def design_matrix(frame: pd.DataFrame, task: TaskConfig) -> pd.DataFrame:
    """Model inputs of ``task`` for rows at the task's grain, in the rows' own order."""
    flat = task.model_copy(update={"aggregate_by": None})
    data = task_data(frame.assign(_pos=np.arange(len(frame))), flat, require_target=False)
    order = np.argsort(data.rows["_pos"].to_numpy(), kind="stable")
    return data.X.iloc[order].reset_index(drop=True)


def write_meta(root: Path, name: str, meta: dict[str, Any], files: Iterable[str]) -> None:
    """Write a saved decision object's JSON index ``root / name``: sealed, with the sha256 of
    each of ``files`` (paths under ``root``) that exists, so an edit of any is refused.

    Parameters
    ----------
    root : Path
        The saved object's directory.
    name : str
        The index file's name.
    meta : dict
        JSON-ready content (``kind`` and the settings); ``format_version`` is set here.
    files : iterable of str
        The object's other files, relative to ``root`` (each model set's ``models.json``, its
        parquet tables); each model directory is sealed on its own.
    """
    listed = {f: sha256_file(root / f) for f in files if (root / f).is_file()}
    body = seal({**meta, "format_version": DECISION_FORMAT, "files": listed})
    atomic_write_bytes(root / name, json.dumps(body, indent=2).encode("utf-8"))


def read_meta(path: Path, kind: str | None) -> dict[str, Any]:
    """The JSON index of a saved decision object, checked for its ``kind``, format, seal and
    the sha256 of the files it lists (:func:`write_meta`).

    Parameters
    ----------
    path : Path
        The index file.
    kind : str or None
        The expected ``kind`` (e.g. ``"budget_planner"``); None: either decision object.

    Returns
    -------
    dict
        With ``files``: the files the index lists (none for an index of format 1).

    Raises
    ------
    TabTuneInputError
        No such file, or another kind or format.
    ModelIntegrityError
        The index was edited, or a file it lists is missing or changed.
    """
    what = (kind or "decision object").replace("_", " ")
    if not path.is_file():
        raise TabTuneInputError(f"{path}: not found (not a saved {what})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelIntegrityError(f"{path}: not readable JSON ({exc}); save it again") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    kinds = (kind,) if kind is not None else ("bid_recommender", "budget_planner")
    if not isinstance(meta, dict) or meta.get("kind") not in kinds or version not in (1, 2):
        raise TabTuneInputError(
            f"{path}: not a {what} of format {DECISION_FORMAT} (kind "
            f"{meta.get('kind') if isinstance(meta, dict) else None!r}, format {version!r})"
        )
    # format 1 had neither a seal nor a file list: read with a warning
    check_seal(meta, str(path), legacy=version == 1 and "files" not in meta)
    for rel, digest in (meta.get("files") or {}).items():
        file = path.parent / rel
        if not file.is_file() or sha256_file(file) != digest:
            raise ModelIntegrityError(
                f"{file}: {'missing' if not file.is_file() else 'changed since it was saved'} "
                f"(its sha256 is listed in {path.name}); save the {what} again"
            )
    meta.setdefault("files", None)
    return meta


def saved_table(meta: dict[str, Any], root: Path, name: str) -> pd.DataFrame | None:
    """The parquet table ``root / name`` of a saved decision object when its index
    (:func:`read_meta`) lists it (an index of format 1 lists none: read when there), else
    None (a file an earlier save left is not this object's)."""
    listed = meta["files"] is None or name in meta["files"]
    return pd.read_parquet(root / name) if listed and (root / name).is_file() else None
