"""``tabtune`` command line: a thin argparse layer over the library.

Exit codes: 0 success, 2 bad input or configuration (the message says what and where),
1 internal error, 3 a refresh in which some brands failed while the rest completed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tabtune import __version__
from tabtune.errors import TabTuneInputError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_PARTIAL = 0, 1, 2, 3

logger = logging.getLogger("tabtune")


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=_err_console(),
        transient=False,
    )


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


# ---------------------------------------------------------------------------- commands
def cmd_synth(args: argparse.Namespace, cfg) -> int:
    from tabtune.data.store import CampaignStore
    from tabtune.data.synth import simulate, write_synth

    n_brands = args.brands or cfg.synth.n_brands
    n_days = args.days or cfg.synth.n_days
    seed = cfg.synth.seed if args.seed is None else args.seed
    t0 = time.perf_counter()
    data = simulate(n_brands=n_brands, n_days=n_days, seed=seed, start=cfg.synth.start)
    store = CampaignStore(cfg.data.store)
    result = store.append(data.observations)
    paths = write_synth(data, cfg.data.truth_dir)
    counts = data.observations.groupby("brand_id").size()
    con = _console()
    con.print(
        f"simulated {len(data.observations):,} rows for {n_brands} brands over {n_days} days "
        f"(seed {seed}) in {time.perf_counter() - t0:.1f}s"
    )
    con.print(
        f"rows per brand: min {counts.min():,}, median {int(counts.median()):,}, max {counts.max():,}; "
        f"{int((counts < cfg.adaptation.min_rows_to_adapt).sum())} brands below "
        f"{cfg.adaptation.min_rows_to_adapt} rows (served by the global model)"
    )
    con.print(
        f"store: {cfg.data.store} ({result.rows_written:,} rows written, "
        f"{result.rows_skipped:,} already present)"
    )
    con.print(f"ground truth: {', '.join(str(p) for p in paths.values())}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace, cfg) -> int:
    from tabtune.data.schema import validate_file

    con = _console()
    if args.path:
        df = validate_file(
            args.path, mapping=cfg.data.columns, extra_columns=cfg.data.extra_columns
        )
        where = args.path
    else:
        from tabtune.data.schema import validate_campaigns

        df = validate_campaigns(
            _store(cfg).read(), extra_columns=cfg.data.extra_columns, source=str(cfg.data.store)
        )
        where = str(cfg.data.store)
    con.print(
        f"{where}: OK, {len(df):,} rows, {df['brand_id'].nunique()} brands, "
        f"{df['date'].min().date()} .. {df['date'].max().date()}"
    )
    return EXIT_OK


def _store(cfg):
    from tabtune.pipeline import store_for

    return store_for(cfg)


def _tasks(args: argparse.Namespace, cfg) -> list[str]:
    if getattr(args, "task", None):
        cfg.task(args.task)
        return [args.task]
    return ["bid"] if "bid" in cfg.tasks else sorted(cfg.tasks)[:1]


def cmd_pretrain(args: argparse.Namespace, cfg) -> int:
    from tabtune.pipeline import pretrain

    con = _console()
    for task in _tasks(args, cfg):
        with _err_console().status(f"pretraining global {task} model ({cfg.backend})..."):
            res = pretrain(cfg, task, end=args.end)
        con.print(
            f"global {task} model {res.model_id}: {res.rows:,} rows of {res.brands} brands "
            f"({res.data_window[0]} .. {res.data_window[1]}), holdout {_fmt(res.holdout_score)}, "
            f"{res.seconds:.1f}s"
        )
    return EXIT_OK


def _brand_table(results, title: str):
    from rich.table import Table

    table = Table(title=title)
    for col, kw in [
        ("brand", {"no_wrap": True}),
        ("rows", {"justify": "right", "no_wrap": True}),
        ("strategy", {"no_wrap": True}),
        ("global err", {"justify": "right"}),
        ("adapted err", {"justify": "right"}),
        ("change", {"justify": "right", "no_wrap": True}),
        ("secs", {"justify": "right"}),
    ]:
        table.add_column(col, **kw)
    for r in results:
        change = "-"
        if r.global_score and r.adapted_score is not None and r.strategy != "global":
            change = f"{100 * (r.adapted_score - r.global_score) / r.global_score:+.1f}%"
        table.add_row(
            r.brand_id,
            f"{r.rows:,}",
            r.strategy,
            _fmt(r.global_score),
            _fmt(r.adapted_score) if r.strategy != "global" else "-",
            change,
            f"{r.seconds:.1f}",
        )
    return table


def finetune_brands(cfg, task: str, brands: Sequence[str], *, end: Any = None) -> list:
    """Adapt the global model to each brand with a progress bar; returns BrandResults."""
    from tabtune.pipeline import finetune_brand, load_global

    base_ref, base = load_global(cfg, task)
    store = _store(cfg)
    results = []
    with _progress() as progress:
        bar = progress.add_task(f"adapting {task}", total=len(brands), status="")
        for brand in brands:
            progress.update(bar, status=brand)
            rows = store.read(brands=[brand], end=end)
            results.append(
                finetune_brand(cfg, task, brand, base=base, base_ref=base_ref, rows=rows, end=end)
            )
            progress.advance(bar)
    return results


def cmd_finetune(args: argparse.Namespace, cfg) -> int:
    store = _store(cfg)
    known = store.brands()
    if args.all:
        brands = known
    elif args.brand:
        brands = [b.strip() for b in args.brand.split(",") if b.strip()]
        unknown = [b for b in brands if b not in known]
        if unknown:
            raise TabTuneInputError(
                f"unknown brand(s) {unknown} in {cfg.data.store}; known: {known[:10]}"
                + (" ..." if len(known) > 10 else "")
            )
    else:
        raise TabTuneInputError("finetune needs --brand B (or a comma list) or --all")
    for task in _tasks(args, cfg):
        results = finetune_brands(cfg, task, brands, end=args.end)
        _console().print(_brand_table(results, f"{task}: per-brand adaptation"))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, cfg) -> int:
    import pandas as pd

    from tabtune.data.schema import validate_file
    from tabtune.pipeline import predict_rows

    task = _tasks(args, cfg)[0]
    if args.input:
        rows = validate_file(
            args.input, mapping=cfg.data.columns, extra_columns=cfg.data.extra_columns
        )
    else:
        brands = args.brands.split(",") if args.brands else None
        rows = _store(cfg).read(brands=brands, start=args.start, end=args.end)
    preds = predict_rows(cfg, task, rows)
    out = Path(args.output) if args.output else cfg.outputs_dir / "predictions" / f"{task}.parquet"
    from tabtune.data.store import atomic_write_parquet

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(preds, out)
    summary = preds.groupby("brand_id")["prediction"].agg(["size", "mean"]).head(20)
    con = _console()
    con.print(pd.DataFrame(summary).to_string())
    con.print(f"{len(preds):,} predictions written to {out}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace, cfg) -> int:
    from tabtune.pipeline import registry_for

    reg = registry_for(cfg)
    con = _console()
    if args.models_command == "list":
        rows = reg.list()
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        else:
            from tabtune.registry import format_registry_table

            con.print(format_registry_table(rows) if rows else f"no models in {cfg.models_dir}")
        return EXIT_OK
    brand = args.brand
    task = args.task or "bid"
    if args.models_command == "show":
        ref = (
            reg.champion(task, brand)
            if args.version is None
            else _find_version(reg, task, brand, args.version)
        )
        if ref is None:
            raise TabTuneInputError(
                f"no model for task {task!r}" + (f", brand {brand!r}" if brand else "")
            )
        manifest = reg.manifest(ref)
        print(
            json.dumps(manifest, indent=2, default=str) if args.json else _manifest_text(manifest)
        )
        return EXIT_OK
    if args.models_command == "rollback":
        ref = reg.rollback(task, brand, to=args.version)
        con.print(f"champion of {task}" + (f" for {brand}" if brand else "") + f" is now {ref.id}")
        return EXIT_OK
    raise TabTuneInputError(f"unknown models command {args.models_command!r}")


def _find_version(reg, task: str, brand: str | None, version: str):
    for ref in reg.versions(task, brand):
        if ref.version == version:
            return ref
    raise TabTuneInputError(
        f"no version {version!r} of task {task!r}" + (f" for brand {brand!r}" if brand else "")
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


def cmd_demo(args: argparse.Namespace, cfg) -> int:
    from tabtune.demo import run_demo

    return run_demo(cfg, n_brands=args.brands, n_days=args.days, seed=args.seed)


def cmd_tune(args: argparse.Namespace, cfg) -> int:
    from tabtune.tuning import run_tuning_cli

    return run_tuning_cli(
        cfg,
        task=_tasks(args, cfg)[0],
        n_trials=args.trials,
        timeout=args.timeout,
        scope=args.scope,
        n_jobs=args.jobs,
    )


def cmd_refresh(args: argparse.Namespace, cfg) -> int:
    from tabtune.refresh import run_refresh_cli

    return run_refresh_cli(cfg, args)


def cmd_bids(args: argparse.Namespace, cfg) -> int:
    from tabtune.tasks.bid import run_bids_cli

    return run_bids_cli(cfg, args)


def cmd_budget(args: argparse.Namespace, cfg) -> int:
    from tabtune.tasks.budget import run_budget_cli

    return run_budget_cli(cfg, args)


def cmd_report(args: argparse.Namespace, cfg) -> int:
    from tabtune.report import run_report_cli

    return run_report_cli(cfg, args)


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``tabtune`` argument parser."""
    p = argparse.ArgumentParser(
        prog="tabtune",
        description="Pretrain global gradient-boosted ad models, adapt them per brand, decide bids and budgets.",
    )
    p.add_argument(
        "--config",
        "-c",
        default=None,
        help="YAML config (default: configs/default.yaml if present)",
    )
    p.add_argument("--verbose", "-v", action="count", default=0, help="-v info, -vv debug logging")
    p.add_argument("--version", action="version", version=f"tabtune {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("synth", help="write simulated campaign history into the configured store")
    s.add_argument(
        "--brands", type=int, default=None, help="number of brands (config synth.n_brands)"
    )
    s.add_argument("--days", type=int, default=None, help="days of history (config synth.n_days)")
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser(
        "validate", help="check a CSV/Parquet file (or the store) against the data contract"
    )
    s.add_argument("path", nargs="?", default=None)
    s.set_defaults(func=cmd_validate)

    def task_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--task", default=None, help="task name (default: bid)")

    s = sub.add_parser("pretrain", help="fit the global model of a task on the pooled store")
    task_arg(s)
    s.add_argument("--end", default=None, help="use rows up to this date (inclusive)")
    s.set_defaults(func=cmd_pretrain)

    s = sub.add_parser("finetune", help="adapt the global model to brands")
    task_arg(s)
    s.add_argument("--brand", default=None, help="brand id, or a comma-separated list")
    s.add_argument("--all", action="store_true", help="every brand in the store")
    s.add_argument("--end", default=None, help="use rows up to this date (inclusive)")
    s.set_defaults(func=cmd_finetune)

    s = sub.add_parser("tune", help="Optuna search for pretraining parameters")
    task_arg(s)
    s.add_argument("--trials", type=int, default=None)
    s.add_argument("--timeout", type=float, default=None, help="seconds")
    s.add_argument(
        "--scope",
        default="global",
        help="global | adapt | adapt:<small|medium|large> | brand:<brand_id>",
    )
    s.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="parallel worker processes (needs journal: or PostgreSQL storage)",
    )
    s.set_defaults(func=cmd_tune)

    s = sub.add_parser(
        "refresh", help="nightly refresh: adapt, evaluate, promote and decide for every brand"
    )
    task_arg(s)
    s.add_argument(
        "--date", default=None, help="the run date D (outputs for D+1 go to outputs/<D+1>/)"
    )
    s.add_argument("--from", dest="date_from", default=None, help="backfill start date")
    s.add_argument("--to", dest="date_to", default=None, help="backfill end date")
    s.add_argument(
        "--brands", default=None, help="comma-separated brands (default: every brand with data)"
    )
    s.add_argument("--scheduler", default=None, help="'local' or tcp://host:port for Dask")
    s.add_argument(
        "--input", default=None, help="CSV/Parquet of new rows to append to the store first"
    )
    s.add_argument(
        "--plots",
        action="store_true",
        help="also plot each brand's decisions (outputs/<D+1>/plots/) into the run report "
        "(config refresh.plots)",
    )
    s.set_defaults(func=cmd_refresh)

    s = sub.add_parser("predict", help="predict a task for a file or the store")
    task_arg(s)
    s.add_argument("--input", default=None, help="CSV/Parquet rows (default: the store)")
    s.add_argument("--brands", default=None)
    s.add_argument("--start", default=None)
    s.add_argument("--end", default=None)
    s.add_argument("--output", default=None, help="Parquet file to write")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("bids", help="recommend bids for each brand's latest contexts")
    s.add_argument(
        "--date", default=None, help="date the bids are for (default: day after the data)"
    )
    s.add_argument("--brands", default=None)
    s.add_argument("--target-roas", type=float, default=None)
    s.add_argument(
        "--plots",
        action="store_true",
        help="also write outputs/<date>/plots/bids-<brand>.png (bid vs predicted value)",
    )
    s.set_defaults(func=cmd_bids)

    s = sub.add_parser("budget", help="plan each brand's daily budget across channels")
    s.add_argument(
        "--date", default=None, help="date the plan is for (default: day after the data)"
    )
    s.add_argument("--brands", default=None)
    s.add_argument(
        "--total", type=float, default=None, help="daily total (default: recent daily spend)"
    )
    s.set_defaults(func=cmd_budget)

    s = sub.add_parser("report", help="summarise a refresh run")
    task_arg(s)
    s.add_argument("--date", default=None, help="run date (default: the latest run)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("models", help="list, show or roll back stored models")
    msub = s.add_subparsers(dest="models_command", required=True)
    for name, help_ in [
        ("list", "every task and brand"),
        ("show", "one manifest"),
        ("rollback", "champion -> previous version"),
    ]:
        ms = msub.add_parser(name, help=help_)
        ms.add_argument("--json", action="store_true")
        if name != "list":
            ms.add_argument("--task", default=None)
            ms.add_argument("--brand", default=None)
            ms.add_argument("--version", default=None)
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("demo", help="simulate, pretrain, adapt every brand and print the table")
    s.add_argument("--brands", type=int, default=None)
    s.add_argument("--days", type=int, default=None)
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(func=cmd_demo)
    return p


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
    func: Callable[[argparse.Namespace, Any], int] = args.func
    try:
        from tabtune.config import load_config

        cfg = load_config(args.config)
        return func(args, cfg)
    except TabTuneInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _err_console().print("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        logger.exception("internal error")
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
