"""Whether a configured task's target can be fitted: tabtune.cli.target_check."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabtune.cli.target_check import target_problems
from tabtune.config import default_config
from tabtune.data.check import check_data
from tabtune.data.store import CampaignStore


def _rows(revenue: float, conversions: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        [{"brand_id": "acme", "date": d, "channel": "search", "spend": 1.0, "clicks": 2,
          "conversions": conversions, "revenue": revenue}
         for d in pd.date_range("2024-01-01", periods=3)]
    )  # fmt: skip


def _problems(tmp_path: Path, rows: pd.DataFrame, **task_update: object) -> list[str]:
    CampaignStore(tmp_path / "store").append(rows)
    base = default_config()
    tasks = {k: t.model_copy(update=task_update) for k, t in base.tasks.items()}
    cfg = base.model_copy(
        update={"data": base.data.model_copy(update={"store": tmp_path / "store"}), "tasks": tasks}
    )
    return [f"{p.what} | {p.fix}" for p in target_problems(cfg, check_data(cfg))]


def test_a_log_link_target_zero_on_every_row_is_named(tmp_path: Path) -> None:
    # revenue 0 everywhere: check said "no problems found", and tune crashed (red-team)
    (problem,) = _problems(tmp_path, _rows(0.0))
    assert "task 'bid': its target 'revenue' is zero on every row with clicks > 0" in problem
    assert "objective 'tweedie'" in problem and "data.columns.revenue" in problem
    assert _problems(tmp_path / "sold", _rows(5.0)) == []


def test_a_zero_target_is_fine_for_an_objective_that_fits_it(tmp_path: Path) -> None:
    # squared error fits a zero target (pretrain trains): check said it would be refused
    assert _problems(tmp_path, _rows(0.0), objective="squared_error") == []


def test_a_classification_target_of_one_class_is_named(tmp_path: Path) -> None:
    from tabtune.config import builtin_task

    base = default_config()
    cfg = base.model_copy(
        update={
            "data": base.data.model_copy(
                update={"store": tmp_path / "store", "extra_columns": ["impressions"]}
            ),
            "tasks": {"creative": builtin_task("creative")},
        }
    )
    every = _rows(5.0).assign(impressions=2, creative="a")  # clicks == impressions: no failure
    CampaignStore(
        tmp_path / "store",
    ).append(every)
    report = check_data(cfg)
    assert any(t.task == "creative" and t.runs for t in report.tasks), report.tasks
    (problem,) = target_problems(cfg, report)
    assert "task 'creative': its target 'clicks' is of one class" in problem.what
