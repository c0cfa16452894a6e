"""The data and model commands: ``synth``, ``validate``, ``pretrain``, ``finetune``,
``predict`` and ``models``.

Each ``cmd_*`` takes the parsed arguments and the configuration and returns an exit code; the
work is done by :mod:`tabtune.pipeline`, :mod:`tabtune.data` and :mod:`tabtune.registry`, which
return results and print nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from tabtune.cli.brands import select_brands, split_brands
from tabtune.cli.console import console, err_console, fmt, notes_printed_instead
from tabtune.cli.exit_codes import EXIT_OK
from tabtune.cli.guards import output_file, outside_managed_folders, synth_sizes
from tabtune.cli.load import print_notes
from tabtune.cli.progress import progress_bar
from tabtune.cli.tables import brand_table, metric_name
from tabtune.config import Config
from tabtune.data.load import check_against_store, prepare_exports
from tabtune.data.schema import validate_campaigns
from tabtune.data.store import CampaignStore, atomic_write_parquet
from tabtune.data.synth import SynthData, simulate_batches, write_synth_batches
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.optional import OptionalDependencyError
from tabtune.pipeline import (
    BrandResult,
    finetune_brand,
    load_global,
    predict_rows,
    pretrain,
    registry_for,
    store_for,
)
from tabtune.registry import ModelRef, ModelRegistry, format_registry_table
from tabtune.tasks.common import as_timestamp

__all__ = [
    "FinetuneRun",
    "cmd_finetune",
    "cmd_models",
    "cmd_predict",
    "cmd_pretrain",
    "cmd_synth",
    "cmd_validate",
    "champion_fix",
    "finetune_brands",
    "tasks_of",
]


#: Simulated rows per batch of brands that ``tabtune synth`` holds as frames at a time.
SYNTH_BATCH_ROWS = 500_000


def tasks_of(args: argparse.Namespace, cfg: Config) -> list[str]:
    """The task of a command: ``--task`` (checked against the config), else ``bid`` (or the first)."""
    if getattr(args, "task", None):
        cfg.task(args.task)
        return [args.task]
    if not cfg.tasks:  # `tasks: {}` pretrained nothing, exit 0
        raise TabTuneInputError(
            "the config defines no task (tasks: is empty); fix: tasks: {bid: bid, budget: "
            "budget} for the built-in ones, or leave tasks: out"
        )
    return ["bid"] if "bid" in cfg.tasks else sorted(cfg.tasks)[:1]


def cmd_synth(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune synth``: simulate campaign history into the store, with its ground truth."""
    asked = synth_sizes(cfg.synth, args.brands, args.days)  # the config's rules, exit 2
    if overlap := cfg.folder_overlap(truth=True):  # the truth it writes, beside the store
        raise TabTuneInputError(f"{overlap}; set data.truth_dir; nothing was written")
    n_brands, n_days = asked.n_brands, asked.n_days
    seed = cfg.synth.seed if args.seed is None else args.seed
    t0 = time.perf_counter()

    def simulation() -> tuple[dict, Iterator[SynthData]]:
        # brand batches with bounded memory; concatenated, they are simulate(...) exactly
        return simulate_batches(n_brands, n_days, seed, cfg.synth.start, SYNTH_BATCH_ROWS)

    store = CampaignStore(cfg.data.store)
    if not getattr(args, "append", False) and store.brands():
        for batch in simulation()[1]:  # checked before anything is written
            _refuse_mixing(store, batch.observations)
    written, skipped, sizes = 0, 0, []

    def append(batch: SynthData) -> None:
        nonlocal written, skipped
        result = store.append(batch.observations)
        written, skipped = written + result.rows_written, skipped + result.rows_skipped
        sizes.append(batch.observations.groupby("brand_id").size())

    params, batches = simulation()
    paths = write_synth_batches(params, batches, cfg.data.truth_dir, each=append)
    counts = pd.concat(sizes)
    con = console()
    con.print(
        f"simulated {int(counts.sum()):,} rows for {n_brands} brands over {n_days} days "
        f"(seed {seed}) in {time.perf_counter() - t0:.1f}s"
    )
    con.print(
        f"rows per brand: min {counts.min():,}, median {int(counts.median()):,}, max {counts.max():,}; "
        f"{int((counts < cfg.adaptation.min_rows_to_adapt).sum())} brands below "
        f"{cfg.adaptation.min_rows_to_adapt} rows (served by the global model's trees)"
    )
    con.print(f"store: {cfg.data.store} ({written:,} rows written, {skipped:,} already present)")
    con.print(f"ground truth: {', '.join(str(p) for p in paths.values())}")
    return EXIT_OK


def _refuse_mixing(store: CampaignStore, observations: pd.DataFrame) -> None:
    """Refuse to add simulated rows to a store that holds other data (without ``--append``).

    An empty store, or one that already holds every simulated row (the same simulation run
    again, which writes nothing), is fine.
    """
    stored = store.brands()
    if not stored:
        return
    new = int((~store.already_stored(validate_campaigns(observations))).sum())
    if new == 0:
        return
    added = sorted(set(observations["brand_id"]) - set(stored))
    raise TabTuneInputError(
        f"{store.root} already holds {len(stored)} brand(s) ({', '.join(stored[:5])}"
        f"{', ...' if len(stored) > 5 else ''}); synth would add {new:,} simulated rows"
        + (f" and {len(added)} new brand(s)" if added else "")
        + " to that data. Pass --append to add them anyway, or point data.store at an "
        "empty folder. Nothing was written."
    )


def cmd_validate(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune validate [PATH]``: check a file (or the store) against the data contract.

    A file is refused for what ``tabtune load`` would refuse: its rows, and what they break
    beside the store's (its columns, a brand id spelled as a stored one in another case).
    """
    summary = None
    if args.path:
        # the preparation and the store checks `tabtune load` applies (transforms, mapping,
        # policies; the store's columns and brand ids), writing nothing
        df, summary = prepare_exports([args.path], cfg.data)
        summary.notes.extend(check_against_store(store_for(cfg), df, cfg.data))
        where = args.path
    else:
        df = validate_campaigns(
            store_for(cfg).read(), extra_columns=cfg.data.extra_columns, source=str(cfg.data.store)
        )
        where = str(cfg.data.store)
    console().print(
        f"{where}: OK, {len(df):,} rows, {df['brand_id'].nunique()} brands, "
        f"{df['date'].min().date()} .. {df['date'].max().date()}",
        markup=False,
    )
    if summary is not None:
        print_notes(summary)
    return EXIT_OK


def cmd_pretrain(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune pretrain``: fit and publish the global model of a task."""
    con = console()
    if args.end is not None:
        as_timestamp(args.end, "--end")  # an ISO date, or exit 2 before anything is read
    for task in tasks_of(args, cfg):
        status = err_console().status(f"pretraining global {task} model ({cfg.backend})...")
        with status, notes_printed_instead():
            from tabtune import tuning  # here: optuna loads only for a pretraining

            tuned_cfg, tuned = tuning.tuned_pretraining(cfg, task)
            try:
                res = pretrain(
                    tuned_cfg, task, end=args.end, scheduler=getattr(args, "scheduler", None)
                )
            except OptionalDependencyError as exc:  # --scheduler without Dask installed
                raise TabTuneInputError(str(exc)) from exc
        if tuned:
            con.print(f"note: {tuning.tuned_note(tuned)}", markup=False)
        con.print(
            f"global {task} model {res.model_id}: {res.rows:,} rows of {res.brands} brands "
            f"({res.data_window[0]} .. {res.data_window[1]}), holdout "
            f"{metric_name(cfg.task(task))} {fmt(res.holdout_score)}"
            f"{_no_holdout_reason(tuned_cfg, res.holdout_score)}, {res.seconds:.1f}s"
        )
        for notice in res.notices:
            con.print(f"note: {notice}", markup=False)
    return EXIT_OK


def _no_holdout_reason(cfg: Config, score: float | None) -> str:
    """Why a pretraining has no holdout score (empty when it has one)."""
    if score is not None:
        return ""
    if cfg.model.early_stopping_rounds is None:
        return " (model.early_stopping_rounds is null: no rows are held out)"
    return (
        " (no holdout: the rows could not be split by day into older rows and the newest "
        f"{cfg.adaptation.validation_fraction:.0%}, or its score is not finite)"
    )


class FinetuneRun(NamedTuple):
    """What ``finetune`` did for one task: the brands adapted and published, and those whose
    data was refused (brand -> why), for which nothing was written."""

    results: list[BrandResult]
    refused: dict[str, str]


def finetune_brands(
    cfg: Config, task: str, brands: Sequence[str], *, end: Any = None
) -> FinetuneRun:
    """Adapt the global model to each brand, with a progress bar.

    Each brand is fitted and published on its own (atomically): a brand whose data is refused
    (a :class:`~tabtune.errors.TabTuneInputError`, e.g. no rows with a usable target) writes
    nothing and is reported in ``refused``, and the other brands are still fitted. Other
    errors (bugs) stop the run.
    """
    base_ref, base = load_global(cfg, task)
    store = store_for(cfg)
    results: list[BrandResult] = []
    refused: dict[str, str] = {}
    with progress_bar(f"adapting {task}", len(brands)) as update:
        for brand in brands:
            update(status=brand)
            rows = store.read(brands=[brand], end=end)
            try:
                result = finetune_brand(
                    cfg, task, brand, base=base, base_ref=base_ref, rows=rows, end=end
                )
            except TabTuneInputError as exc:
                refused[brand] = str(exc)
            else:
                results.append(result)
            update(advance=1)
    return FinetuneRun(results, refused)


def _refusal_summary(task: str, run: FinetuneRun) -> str:
    """The brands ``finetune`` refused for ``task``, each with its reason."""
    n_brands = len(run.results) + len(run.refused)
    lines = [
        f"finetune {task}: {len(run.refused)} of {n_brands} brand(s) refused, nothing written "
        f"for them ({len(run.results)} adapted and published):"
    ]
    lines += [f"  brand {brand!r}: {reason}" for brand, reason in run.refused.items()]
    return "\n".join(lines)


def cmd_finetune(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune finetune --brand B[,C] | --all``: adapt the global model to brands.

    Every brand is tried; the table shows those adapted. Exit 2 when any was refused (the
    error names each with its reason), 0 otherwise.
    """
    if not args.all and not split_brands(args.brand):
        raise TabTuneInputError("finetune needs --brand B (or a comma list) or --all")
    if args.end is not None:
        as_timestamp(args.end, "--end")  # an ISO date, or exit 2 before anything is read
    brands = select_brands(store_for(cfg), None if args.all else args.brand)
    refusals = []
    for task in tasks_of(args, cfg):
        with notes_printed_instead():  # its notices are printed below as notes: said once
            run = finetune_brands(cfg, task, brands, end=args.end)
        if run.results:
            console().print(
                brand_table(
                    run.results, f"{task}: per-brand adaptation", metric=metric_name(cfg.task(task))
                )
            )
        for notice in dict.fromkeys(n for r in run.results for n in r.notices):
            console().print(f"note: {notice}", markup=False)
        if run.refused:
            refusals.append(_refusal_summary(task, run))
    if refusals:
        raise TabTuneInputError("\n".join(refusals))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune predict``: predict a task for a file or the store and write Parquet.

    Every option is checked before anything is predicted or written: ``--input`` with
    ``--brands``/``--start``/``--end`` (which choose rows of the store, not of a file), unknown
    brands, non-ISO or reversed dates, no stored rows to predict, and an ``--output`` that is a
    folder (or under a file) are refused.
    """
    task = tasks_of(args, cfg)[0]
    out = _predict_output(args.output, cfg, task)
    outside_managed_folders(out, cfg, f"--output {args.output or out}", source=args.input)
    if args.input:
        store_only = [f"--{name}" for name in ("brands", "start", "end") if getattr(args, name)]
        if store_only:
            raise TabTuneInputError(
                f"predict --input {args.input} predicts every row of the file; "
                f"{', '.join(store_only)} {'chooses' if len(store_only) == 1 else 'choose'} rows "
                "of the store and cannot be combined with --input: filter the file instead, or drop --input to predict the store's rows; "
                "nothing was written"
            )
        # Prediction needs the row key and the model's features, not the measures: a file of
        # contexts is enough; a feature the model lacks is named by predict_rows.
        rows, summary = prepare_exports([args.input], cfg.data, require_measures=False)
        print_notes(summary)
        _check_input_brands(cfg, rows)
        history = _stored_history(cfg, rows)
    else:
        rows = _stored_rows(cfg, args.brands, args.start, args.end)
        history = None if args.start is None else _stored_history(cfg, rows)
    # features from a row's own past (reference bids, trailing spend) see the store's earlier
    # rows, as in training and `tabtune bids`: a stored row predicts the same in any window
    preds = predict_rows(cfg, task, rows, history=history)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(preds, out)
    summary = preds.groupby("brand_id")["prediction"].agg(["size", "mean"])
    summary.columns = ["rows", "mean prediction"]
    con = console()
    con.print(summary.head(20).to_string())
    if len(summary) > 20:  # the file holds every brand: said, not cut in silence
        con.print(f"... and {len(summary) - 20} more brands (all in the file)", markup=False)
    asked = split_brands(args.brands) if args.input is None else None
    missing = sorted(set(asked or []) - set(preds["brand_id"].astype(str)))
    if missing:
        con.print(
            f"note: no stored rows of {', '.join(missing)} in the dates asked: no predictions "
            "for them (widen --start/--end)",
            markup=False,
        )
    con.print(f"{len(preds):,} predictions written to {out}")
    return EXIT_OK


def _predict_output(value: str | None, cfg: Config, task: str) -> Path:
    """The Parquet file ``predict`` writes: ``--output``, else
    ``<outputs_dir>/predictions/<task>.parquet``.

    Raises
    ------
    TabTuneInputError
        The path is a folder (existing, or written with a trailing slash), does not end in
        ``.parquet`` / ``.pq``, or a folder above it is a file.
    """
    out = Path(value) if value else cfg.outputs_dir / "predictions" / f"{task}.parquet"
    what = f"--output {value}" if value else f"the predictions file {out} (outputs_dir)"
    return output_file(
        out, what, writer="predict", fmt="Parquet", option="--output",
        example=f"{task}.parquet", typed=value is not None,
    )  # fmt: skip


def _stored_rows(cfg: Config, brands: str | None, start: Any, end: Any) -> pd.DataFrame:
    """The store's rows ``predict`` scores: ``--brands`` (checked against the store) between
    ``--start`` and ``--end`` (ISO dates, inclusive).

    Raises
    ------
    TabTuneInputError
        Unknown brands, an empty store, a date that is not ISO, ``--start`` after ``--end``,
        or no stored rows in the choice.
    """
    store = store_for(cfg)
    known = select_brands(store, brands)  # an empty store and unknown brands are named
    chosen = known if split_brands(brands) else None
    first = None if start is None else as_timestamp(start, "--start")
    last = None if end is None else as_timestamp(end, "--end")
    if first is not None and last is not None and first > last:
        raise TabTuneInputError(
            f"--start {first.date()} is after --end {last.date()}: pass --start on or before "
            "--end; nothing was written"
        )
    rows = store.read(brands=chosen, start=first, end=last)
    if len(rows) == 0:
        lo, hi = store.date_range()
        raise TabTuneInputError(
            f"no stored rows for {'brands ' + ', '.join(chosen) if chosen else 'any brand'} "
            f"between {first.date() if first is not None else 'the start'} and "
            f"{last.date() if last is not None else 'the end'} (the store holds "
            f"{pd.Timestamp(lo).date()} .. {pd.Timestamp(hi).date()}): widen --start/--end; "
            "nothing was written"
        )
    return rows


def _check_input_brands(cfg: Config, rows: pd.DataFrame) -> None:
    """Refuse ``predict --input`` brand ids that differ from stored ones only in case or
    spaces (``load`` refuses them too; served as they are, they would get the global model
    instead of the brand's), and note brands the store does not hold."""
    from tabtune.data.load import spelling_groups

    store = store_for(cfg)
    stored = store.brands() if store.exists() else []
    given = sorted({str(b) for b in rows["brand_id"].unique()})
    twins = spelling_groups(given, stored)
    if twins:
        shown = "; ".join(" vs ".join(repr(v) for v in group) for group in twins[:5])
        raise TabTuneInputError(
            f"predict --input: {len(twins)} brand id(s) differ from a stored one only in case or "
            f"spacing ({shown}): a brand is served by the model of its exact id, so "
            "such a row would get the global model instead of the brand's; spell each brand as "
            "stored in the file; nothing was written"
        )
    unknown = [b for b in given if b not in set(stored)]
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        console().print(
            f"note: {len(unknown)} brand(s) of the file are not in the store "
            f"({', '.join(unknown[:5])}{more}): the global model serves them without a brand "
            "context",
            markup=False,
        )


def _stored_history(cfg: Config, rows: pd.DataFrame) -> pd.DataFrame | None:
    """The store's rows of the brands of ``rows`` it holds, up to their last date (the
    earlier ones feed features computed from a row's past; see ``predict_rows``)."""
    store = store_for(cfg)
    known = set(store.brands())
    brands = sorted({str(b) for b in rows["brand_id"].unique()} & known)
    if not brands:
        return None
    return store.read(brands=brands, end=pd.to_datetime(rows["date"]).max())


def _no_model(reg: ModelRegistry, task: str, brand: str | None) -> str:
    """Why ``models show`` has no champion to show, and the versions there are instead."""
    who = f"task {task!r}" + (f", brand {brand!r}" if brand else "")
    versions = reg.versions(task, brand)
    if not versions:
        if brand and reg.champion(task) is not None:
            return (
                f"no model of its own for {who}: the global model serves it (a brand gets one "
                f"when a refresh or `tabtune finetune --brand {brand}` adapts it); show that "
                f"one: `tabtune models show --task {task}`"
            )
        return f"no model for {who}"
    names = ", ".join(v.version for v in versions[-5:])
    return (
        f"{who} has {len(versions)} version(s) but no champion: the global model serves it "
        f"(its challengers lost to it, or `models rollback` returned the brand to it); show "
        f"one with --version: {names}"
    )


def cmd_models(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune models list | show | rollback``."""
    reg = registry_for(cfg)
    con = console()
    if args.models_command == "list":
        rows = reg.list(verify=True)  # a corrupt champion is flagged, never a failed listing
        for row in rows:
            if row["problem"]:
                row["fix"] = champion_fix(row["task"], row["brand"], row["status"])
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
            return EXIT_OK
        con.print(format_registry_table(rows) if rows else f"no models in {cfg.models_dir}")
        for row in rows:
            if row["problem"]:
                con.print(
                    f"{row['id']}: champion {row['champion']} is {row['status']}: "
                    f"{row['problem']}; fix: {row['fix']}",
                    markup=False,
                )
        return EXIT_OK
    brand = args.brand
    task = args.task or "bid"
    if task not in cfg.tasks and not reg.versions(task):
        # an unknown task was named as "brands/<b>/<task> has no champion"
        raise TabTuneInputError(
            f"--task {task!r}: no such task in the config ({', '.join(sorted(cfg.tasks))}) "
            "and no model of it in the registry"
        )
    if args.models_command == "show":
        ref = (
            reg.champion(task, brand)
            if args.version is None
            else _find_version(reg, task, brand, args.version)
        )
        if ref is None:
            raise TabTuneInputError(_no_model(reg, task, brand))
        manifest = reg.manifest(ref)
        integrity = _integrity(reg, ref, champion=args.version is None)
        if args.json:
            print(json.dumps({**manifest, "integrity": integrity}, indent=2, default=str))
        else:
            print(_manifest_text({"integrity": _integrity_text(integrity), **manifest}))
        return EXIT_OK
    if args.models_command == "rollback":
        return _cmd_rollback(args, reg, task, brand)
    raise TabTuneInputError(f"unknown models command {args.models_command!r}")


def _cmd_rollback(
    args: argparse.Namespace, reg: ModelRegistry, task: str, brand: str | None
) -> int:
    """``tabtune models rollback``: the champion before, what the rollback leaves as it was."""
    con = console()
    try:
        current = reg.champion(task, brand)
    except ModelIntegrityError as exc:
        # a broken pointer: `models list` says to roll back to a version that verifies, and
        # the registry repoints it; without --version there is nothing to roll back from
        if args.version is None:
            versions = ", ".join(r.version for r in reg.versions(task, brand)) or "none"
            raise TabTuneInputError(
                f"{exc}; the champion pointer is broken, so there is no champion to roll back "
                f"from: name the version to serve with --version (versions: {versions})"
            ) from None
        current = None
    if args.version is not None and current is not None and current.version == args.version:
        if args.json:
            print(json.dumps({"task": task, "brand": brand, "champion": current.id}))
            return EXIT_OK
        con.print(
            f"{current.id} is already the champion of {task}"
            + (f" for {brand}" if brand else "")
            + "; nothing changed"
        )
        return EXIT_OK
    ref = _rollback_between_runs(reg, task, brand, args.version)
    if args.json:
        print(json.dumps({"task": task, "brand": brand, "champion": ref and ref.id}))
        return EXIT_OK
    now = (
        ref.id
        if ref is not None
        else "none: the global model serves it again, as before its champion was promoted"
    )
    con.print(f"champion of {task}" + (f" for {brand}" if brand else "") + f" is {now}")
    command = {"bid": "bids", "budget": "budget"}.get(task)
    again = (
        f"`tabtune {command}" + (f" --brands {brand}" if brand else "") + "` writes the "
        "decisions again from the champion now; "
        if command
        else ""
    )
    con.print(
        "note: decisions and predictions already written under outputs/ stay those of the "
        f"version rolled back from: {again}the next refresh writes its own",
        markup=False,
    )
    if brand:
        con.print(
            "note: the next refresh treats the brand as usual (a rollback is not pinned): "
            "a due refit or a winning challenger replaces what serves it now; to hold it, "
            "leave the brand out of the refresh (--brands lists the brands to run; no "
            "decisions are then written for it)",
            markup=False,
        )
    return EXIT_OK


def _rollback_between_runs(
    reg: ModelRegistry, task: str, brand: str | None, version: str | None
) -> ModelRef | None:
    """:meth:`ModelRegistry.rollback`, refused while a refresh runs (as ``models gc`` is): the
    run's report would name the champion it found, and a promotion after the rollback would
    undo it in silence."""
    from tabtune.refresh.run import LOCK_NAME
    from tabtune.registry import RegistryLockedError

    if version is not None:  # '3' is refused with the spelling it means (v0003)
        version = _find_version(reg, task, brand, version).version
    try:
        with reg.lock(LOCK_NAME, timeout=0):
            return reg.rollback(task, brand, to=version)
    except RegistryLockedError as exc:
        raise RegistryLockedError(
            f"a refresh is running (or a command that writes: pretrain, bids, ...); roll back "
            f"after it ({exc}); nothing changed"
        ) from None


def champion_fix(task: str, brand: str | None, status: str | None) -> str:
    """What to do about a champion that does not verify (``status`` from
    :meth:`~tabtune.registry.ModelRegistry.champion_status`): the commands, for a message."""
    where = f"--task {task}" + (f" --brand {brand}" if brand else "")
    publish = f"tabtune finetune {where}" if brand else f"tabtune pretrain {where}"
    if status == "broken pointer":
        return (
            f"`tabtune models rollback {where} --version V` to a version that verifies, or "
            f"publish a new champion: `{publish}`"
        )
    if status == "corrupt base":
        return (
            f"`{publish}` adapts the brand again from the global champion (if that is the "
            "damaged version, `models list` flags it: repair it first); the next refresh "
            "contests the brand too"
        )
    instead = " (or the global model)" if brand else ""
    return (
        f"`tabtune models rollback {where}` (serving skips it meanwhile: the champion it "
        f"replaced{instead} serves, as a rollback finds it), or publish a new champion: "
        f"`{publish}`"
    )


def _integrity(reg: ModelRegistry, ref: ModelRef, *, champion: bool) -> dict[str, str]:
    """``models show``'s check of ``ref`` against its manifest: ``{"status": "ok"}``, or
    ``"corrupt"`` with the ``problem`` and, for the champion, the ``fix``."""
    try:
        reg.verify(ref)
    except TabTuneInputError as exc:
        fix = (
            champion_fix(ref.task, ref.brand, "corrupt")
            if champion
            else "it cannot be promoted or rolled back to; choose another version"
        )
        return {"status": "corrupt", "problem": str(exc), "fix": fix}
    return {"status": "ok"}


def _integrity_text(integrity: dict[str, str]) -> str:
    """One line of :func:`_integrity`: ``ok``, or ``corrupt: <problem>; fix: <fix>``."""
    if integrity["status"] == "ok":
        return "ok"
    return f"{integrity['status']}: {integrity['problem']}; fix: {integrity['fix']}"


def _find_version(reg: ModelRegistry, task: str, brand: str | None, version: str) -> ModelRef:
    refs = list(reg.versions(task, brand))
    for ref in refs:
        if ref.version == version:
            return ref
    # versions are spelled v0003: '3' (or 'v3') names the same number
    spelled = [r.version for r in refs if version.lstrip("vV").isdigit()]
    meant = [v for v in spelled if v.lstrip("v").lstrip("0") == version.lstrip("vV").lstrip("0")]
    known = ", ".join(r.version for r in refs[-5:]) or "none"
    raise TabTuneInputError(
        f"no version {version!r} of task {task!r}"
        + (f" for brand {brand!r}" if brand else "")
        + (f"; did you mean --version {meant[0]}?" if meant else f" (versions: {known})")
    )


def _manifest_text(manifest: dict) -> str:
    lines = []
    for key, value in manifest.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
            if len(value) > 160:
                value = value[:157] + "..."
        lines.append(f"{key:>18}: {value}")
    return "\n".join(lines)
