"""The command line's tables: per-brand adaptation, decisions, tuning results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

from tabtune.cli.console import fmt
from tabtune.evaluation import loss_name, score_objective

if TYPE_CHECKING:  # pragma: no cover - types only: tuning imports Optuna
    from tabtune.config import TaskConfig
    from tabtune.pipeline import BrandResult
    from tabtune.tuning import TuningResult

__all__ = ["brand_table", "console_table", "metric_name", "summary_table"]


def metric_name(task: TaskConfig) -> str:
    """The loss a task's holdout scores are in (log loss, a deviance or squared error)."""
    return loss_name(score_objective(task.objective, task.kind))


def brand_table(results: Iterable[BrandResult], title: str, metric: str = "err") -> Table:
    """Per brand: rows, the chosen strategy, global vs adapted holdout loss and the change.

    ``metric`` names the loss in the column titles (:func:`metric_name`). Brands' losses are
    on their own scales, so ``change`` (the adapted loss relative to the global model's on
    the same rows) is the column to compare brands by.
    """
    table = Table(title=title)
    columns: list[tuple[str, dict[str, Any]]] = [
        ("brand", {"no_wrap": True}),
        ("rows", {"justify": "right", "no_wrap": True}),
        ("strategy", {"no_wrap": True}),
        (f"global {metric}", {"justify": "right"}),
        (f"adapted {metric}", {"justify": "right"}),
        ("change vs global", {"justify": "right", "no_wrap": True}),
        ("secs", {"justify": "right"}),
    ]
    for col, kw in columns:
        table.add_column(col, **kw)
    for r in results:
        change = "-"
        if r.global_score and r.adapted_score is not None and r.strategy != "global":
            change = f"{100 * (r.adapted_score - r.global_score) / r.global_score:+.1f}%"
        table.add_row(
            r.brand_id,
            f"{r.rows:,}",
            r.strategy,
            fmt(r.global_score),
            fmt(r.adapted_score) if r.strategy != "global" else "-",
            change,
            f"{r.seconds:.1f}",
        )
    return table


def console_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    """A table with the first and last columns left-aligned and the others right-aligned."""
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 or i == len(columns) - 1 else "right")
    for row in rows:
        table.add_row(*[str(v) for v in row])
    return table


def summary_table(result: TuningResult, loss: str = "loss") -> Table:
    """A tuning study's adopted trial (the defaults unless a trial wins on every fold by
    ``tuning.min_gain``) against the defaults, parameter by parameter; ``loss`` names the
    fold loss (:func:`metric_name`)."""
    table = Table(title=f"{result.study_name}: adopted trial vs defaults")
    table.add_column("")
    table.add_column("defaults", justify="right")
    table.add_column("adopted", justify="right")
    table.add_row(loss, fmt(result.default_value), fmt(result.best_value), style="bold")
    gain = "-" if result.gain_pct is None else f"{result.gain_pct:+.2f}%"
    table.add_row("gain over defaults", "", gain, style="bold")
    best = result.best_params or {}
    for name, default in result.default_params.items():
        value = best.get(name)
        changed = value is not None and value != default
        table.add_row(name, fmt(default), fmt(value), style=None if changed else "dim")
    return table
