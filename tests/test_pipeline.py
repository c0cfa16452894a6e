"""The Python pipeline (tabtune.pipeline): what pretraining reports about the rows it used."""

from __future__ import annotations

from pathlib import Path

from tabtune.config import default_config
from tabtune.data.store import CampaignStore
from tabtune.data.synth import simulate
from tabtune.pipeline import pretrain


def test_pretraining_names_the_brands_left_without_a_usable_target(tmp_path: Path) -> None:
    rows = simulate(n_brands=4, n_days=40, seed=3).observations
    silent = sorted(rows["brand_id"].unique())[1]
    mine = rows["brand_id"] == silent
    rows.loc[mine, ["clicks", "conversions", "revenue"]] = 0  # no click: no value per click
    cfg = default_config().model_copy(
        update={
            "data": default_config().data.model_copy(update={"store": tmp_path / "store"}),
            "models_dir": tmp_path / "models",
        }
    )
    CampaignStore(cfg.data.store).append(rows)
    res = pretrain(cfg, "bid")
    assert res.brands == 3
    notes = [n for n in res.notices if "no row with a usable target" in n]
    assert notes == [
        "task 'bid': 1 brand(s) have no row with a usable target (the target revenue / clicks "
        f"needs clicks > 0) and are left out of the global model: {silent}"
    ]
