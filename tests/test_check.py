"""What ``tabtune check`` finds in a store (tabtune.data.check)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabtune.config import default_config
from tabtune.data.check import check_data
from tabtune.data.store import CampaignStore


def _rows(brand: str, channel: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{"brand_id": brand, "date": d, "channel": channel, "spend": 1.0, "clicks": 2,
          "conversions": 0, "revenue": 0.0} for d in pd.date_range("2024-01-01", periods=3)]
    )  # fmt: skip


def _problems(tmp_path: Path, frames: list[pd.DataFrame]) -> list[str]:
    store = CampaignStore(tmp_path / "store")
    for frame in frames:
        store.append(frame)
    cfg = default_config().model_copy(
        update={"data": default_config().data.model_copy(update={"store": store.root})}
    )
    return [f"{p.what} | {p.fix}" for p in check_data(cfg).problems]


def test_check_names_ids_stored_under_two_spellings(tmp_path: Path) -> None:
    # written straight to the store: `load` now refuses the second brand spelling
    problems = _problems(
        tmp_path, [_rows("acme", "search"), _rows("ACME", "Search"), _rows("globex", "search")]
    )
    brand = [p for p in problems if p.startswith("1 brand_id value(s)")]
    channel = [p for p in problems if p.startswith("1 channel value(s)")]
    assert len(brand) == 1 and "'ACME' vs 'acme'" in brand[0] and "new store" in brand[0]
    assert len(channel) == 1 and "'Search' vs 'search'" in channel[0]


def test_check_is_quiet_about_distinct_ids(tmp_path: Path) -> None:
    problems = _problems(tmp_path, [_rows("acme", "search"), _rows("acme2", "social")])
    assert not [p for p in problems if "differ only in case" in p]


def test_check_names_an_extra_column_no_task_uses(tmp_path: Path) -> None:
    # data.extra_columns keeps a column in the store; only a task's feature lists make it a
    # feature. check said "no problems found" for a column the models never saw.
    rows = _rows("acme", "search").assign(temperature=20.0)
    unused = [p for p in _problems(tmp_path, [rows]) if "temperature" in p]
    assert len(unused) == 1
    assert "not a feature of any configured task" in unused[0]
    assert "numeric:" in unused[0] and "tabtune/configs/tasks/bid.yaml" in unused[0]


def test_check_is_quiet_about_an_extra_column_a_task_uses(tmp_path: Path) -> None:
    store = CampaignStore(tmp_path / "store")
    store.append(_rows("acme", "search").assign(temperature=20.0))
    base = default_config()
    bid = base.task("bid").model_copy(update={"numeric": ["temperature"]})
    cfg = base.model_copy(
        update={
            "data": base.data.model_copy(update={"store": store.root}),
            "tasks": {**base.tasks, "bid": bid},
        }
    )
    assert not [p for p in check_data(cfg).problems if "temperature" in p.what]


def test_check_counts_a_column_a_task_groups_by_as_used(tmp_path: Path) -> None:
    # its advice (leave it out of data.extra_columns) would have broken the task (review)
    store = CampaignStore(tmp_path / "store")
    store.append(_rows("acme", "search").assign(region="north"))
    base = default_config()
    bid = base.task("bid").model_copy(update={"aggregate_by": ["brand_id", "date", "region"]})
    cfg = base.model_copy(
        update={
            "data": base.data.model_copy(update={"store": store.root}),
            "tasks": {**base.tasks, "bid": bid},
        }
    )
    assert not [p for p in check_data(cfg).problems if "region" in p.what]
