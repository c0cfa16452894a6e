"""The ``tabtune`` argument parser.

Each command names its handler as ``"<module>:<function>"`` of this package
(``args.handler``); :func:`tabtune.cli.app.main` imports that module only when the command runs,
so ``tabtune --help`` and usage errors do not import the library (pandas, LightGBM, Optuna).
"""

from __future__ import annotations

import argparse

from tabtune import __version__
from tabtune.cli.guards import positive_int

__all__ = ["build_parser"]


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
    _add_data_commands(sub)
    _add_model_commands(sub)
    _add_refresh_commands(sub)
    _add_decision_commands(sub)
    _add_registry_commands(sub)
    return p


def _task_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--task", default=None, help="task name (default: bid)")


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    """``synth``, ``validate``, ``load`` and ``check``."""
    s = sub.add_parser("synth", help="write simulated campaign history into the configured store")
    s.add_argument(
        "--brands",
        type=positive_int,
        default=None,
        help="number of brands, >= 1 (config synth.n_brands)",
    )
    s.add_argument(
        "--days",
        type=positive_int,
        default=None,
        help="days of history, >= 7 (config synth.n_days)",
    )
    s.add_argument("--seed", type=int, default=None)
    s.add_argument(
        "--append",
        action="store_true",
        help="add the simulated rows to a store that already holds other data (refused "
        "without it; rerunning the same simulation is always allowed)",
    )
    s.set_defaults(handler="commands:cmd_synth")

    s = sub.add_parser(
        "validate",
        help="check a CSV/Parquet/Excel file (or the store) against the data contract",
    )
    s.add_argument("path", nargs="?", default=None)
    s.set_defaults(handler="commands:cmd_validate")

    s = sub.add_parser(
        "load",
        help="map, transform and validate CSV/Parquet/Excel exports (files or folders) and "
        "append "
        "them to the store (config data:)",
    )
    s.add_argument("files", nargs="+", metavar="FILE", help="CSV/Parquet/Excel files or folders")
    s.add_argument("--dry-run", action="store_true", help="check and summarise; write nothing")
    s.set_defaults(handler="load:cmd_load")

    s = sub.add_parser(
        "check", help="which tasks the stored data supports, brand sizes, coverage, and fixes"
    )
    s.set_defaults(handler="load:cmd_check")


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    """``pretrain``, ``finetune`` and ``tune``."""
    s = sub.add_parser("pretrain", help="fit the global model of a task on the pooled store")
    _task_arg(s)
    s.add_argument("--end", default=None, help="use rows up to this date (inclusive)")
    s.add_argument(
        "--scheduler",
        default=None,
        help="pretrain on Dask: 'local' or tcp://host:port (default: refresh.scheduler when "
        "refresh.executor is dask, else in this process)",
    )
    s.set_defaults(handler="commands:cmd_pretrain")

    s = sub.add_parser("finetune", help="adapt the global model to brands")
    _task_arg(s)
    s.add_argument("--brand", default=None, help="brand id, or a comma-separated list")
    s.add_argument("--all", action="store_true", help="every brand in the store")
    s.add_argument("--end", default=None, help="use rows up to this date (inclusive)")
    s.set_defaults(handler="commands:cmd_finetune")

    s = sub.add_parser(
        "tune", help="Optuna search for pretraining (--scope global) or adaptation parameters"
    )
    _task_arg(s)
    s.add_argument("--trials", type=positive_int, default=None)
    s.add_argument("--timeout", type=float, default=None, help="seconds")
    s.add_argument(
        "--scope",
        default="global",
        help="global | adapt | adapt:<small|medium|large> | brand:<brand_id>",
    )
    s.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="parallel worker processes (needs journal: or PostgreSQL storage)",
    )
    s.set_defaults(handler="tune:cmd_tune")


def _add_refresh_commands(sub: argparse._SubParsersAction) -> None:
    """``refresh`` and ``predict``."""
    s = sub.add_parser(
        "refresh", help="nightly refresh: adapt, evaluate, promote and decide for every brand"
    )
    _task_arg(s)
    s.add_argument(
        "--date", default=None, help="the run date D (outputs for D+1 go to outputs/<D+1>/)"
    )
    s.add_argument("--from", dest="date_from", default=None, help="backfill start date")
    s.add_argument("--to", dest="date_to", default=None, help="backfill end date")
    s.add_argument(
        "--brands", default=None, help="comma-separated brands (default: every brand with data)"
    )
    s.add_argument(
        "--scheduler",
        default=None,
        help="'local' or tcp://host:port: adapt brands on Dask (the executor becomes dask) "
        "and pretrain there when a global model is due",
    )
    s.add_argument(
        "--input", default=None, help="CSV/Parquet/Excel of new rows to append to the store first"
    )
    s.add_argument(
        "--plots",
        action="store_true",
        help="also plot each brand's decisions (outputs/<D+1>/plots/) into the run report "
        "(config refresh.plots)",
    )
    s.set_defaults(handler="refresh:cmd_refresh")

    s = sub.add_parser("predict", help="predict a task for a file or the store")
    _task_arg(s)
    s.add_argument(
        "--input",
        default=None,
        help="CSV/Parquet/Excel rows (default: the store); not combinable with --brands/--start/--end",
    )
    s.add_argument("--brands", default=None)
    s.add_argument("--start", default=None)
    s.add_argument("--end", default=None)
    s.add_argument("--output", default=None, help="Parquet file to write")
    s.set_defaults(handler="commands:cmd_predict")


#: ``--csv`` of ``bids`` and ``budget``.
_CSV_HELP = "also write every brand's decisions to one CSV file (a brand_id column first)"


def _add_decision_commands(sub: argparse._SubParsersAction) -> None:
    """``bids``, ``budget`` and ``report``."""
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
    s.add_argument("--csv", default=None, metavar="FILE", help=_CSV_HELP)
    s.set_defaults(handler="decisions:cmd_bids")

    s = sub.add_parser("budget", help="plan each brand's daily budget across channels")
    s.add_argument(
        "--date", default=None, help="date the plan is for (default: day after the data)"
    )
    s.add_argument("--brands", default=None)
    s.add_argument(
        "--total", type=float, default=None, help="daily total (default: recent daily spend)"
    )
    s.add_argument("--csv", default=None, metavar="FILE", help=_CSV_HELP)
    s.set_defaults(handler="decisions:cmd_budget")

    s = sub.add_parser("report", help="summarise a refresh run")
    _task_arg(s)
    s.add_argument("--date", default=None, help="run date (default: the latest run)")
    s.set_defaults(handler="report:cmd_report")


def _add_models_gc(msub: argparse._SubParsersAction) -> None:
    """``models gc`` (handled by :mod:`tabtune.cli.models_gc`)."""
    ms = msub.add_parser("gc", help="delete the versions the retention policy does not keep")
    ms.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    ms.add_argument(
        "--keep",
        type=positive_int,
        default=None,
        help="newest versions kept per brand and task (default: registry.keep_versions)",
    )
    ms.add_argument("--json", action="store_true")
    ms.set_defaults(handler="models_gc:cmd_models_gc")


def _add_registry_commands(sub: argparse._SubParsersAction) -> None:
    """``models`` and ``demo``."""
    s = sub.add_parser("models", help="list, show, roll back or garbage-collect stored models")
    msub = s.add_subparsers(dest="models_command", required=True)
    for name, help_ in [
        ("list", "every task and brand"),
        ("show", "one manifest"),
        (
            "rollback",
            "a brand's champion -> the champion it replaced (or the global model), or --version",
        ),
    ]:
        ms = msub.add_parser(name, help=help_)
        ms.add_argument("--json", action="store_true", help="print JSON")
        if name != "list":
            ms.add_argument("--task", default=None, help="task name (default: bid)")
            ms.add_argument(
                "--brand", default=None, help="brand id (default: the task's global model)"
            )
            ms.add_argument(
                "--version",
                default=None,
                help="a version such as v0003 (show: default the champion; rollback: the "
                "version to make champion)",
            )
    _add_models_gc(msub)
    s.set_defaults(handler="commands:cmd_models")

    s = sub.add_parser("demo", help="simulate, pretrain, adapt every brand and print the table")
    s.add_argument("--brands", type=positive_int, default=None)
    s.add_argument("--days", type=positive_int, default=None)
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(handler="demo:cmd_demo")
