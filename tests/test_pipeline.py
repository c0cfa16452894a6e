"""The Python pipeline (tabtune.pipeline): what pretraining reports about the rows it used."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabtune.config import Config, default_config
from tabtune.data.store import CampaignStore
from tabtune.data.synth import simulate
from tabtune.errors import ConfigError
from tabtune.pipeline import pretrain, registry_for, store_for


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


def test_a_store_assigned_inside_its_section_onto_the_models_folder_is_refused(
    tmp_path: Path,
) -> None:
    # the data section validates `cfg.data.store = ...` alone, not against models_dir: the
    # store and the registry would have shared one folder (every command then refused it)
    rows = simulate(n_brands=2, n_days=20, seed=3).observations
    cfg = default_config()
    cfg.models_dir = tmp_path / "models"
    cfg.data.store = tmp_path / "models"
    with pytest.raises(ConfigError, match=r"data.store .* and models_dir .* overlap"):
        store_for(cfg).append(rows)
    with pytest.raises(ConfigError, match="overlap"):
        pretrain(cfg, "bid")
    assert not (tmp_path / "models").exists()  # nothing written
    # model_copy does not validate either
    copied = default_config().model_copy(update={"runs_dir": default_config().models_dir})
    with pytest.raises(ConfigError, match="models_dir .* and runs_dir .* overlap"):
        registry_for(copied)


def _three_brands_pretrained(tmp_path: Path) -> tuple[pd.DataFrame, Config]:
    """Three simulated brands stored under ``tmp_path`` and a small global bid model."""
    rows = simulate(n_brands=3, n_days=40, seed=3).observations
    cfg = default_config().model_copy(
        update={
            "data": default_config().data.model_copy(update={"store": tmp_path / "store"}),
            "models_dir": tmp_path / "models",
        }
    )
    CampaignStore(cfg.data.store).append(rows)
    cfg.model.n_estimators = 20
    pretrain(cfg, "bid")
    return rows, cfg


def test_finetune_brand_refuses_rows_of_another_brand(tmp_path: Path) -> None:
    # b000 got a promoted champion trained on b001's rows (Python red-team)
    from tabtune.errors import TabTuneInputError
    from tabtune.pipeline import finetune_brand

    rows, cfg = _three_brands_pretrained(tmp_path)
    first, second = sorted(rows["brand_id"].unique())[:2]
    with pytest.raises(TabTuneInputError, match=rf"rows hold brand\(s\) \['{second}'\] besides"):
        finetune_brand(cfg, "bid", first, rows=rows[rows["brand_id"] == second])
    assert registry_for(cfg).versions("bid", first) == []


def test_python_pretrain_and_finetune_are_refused_while_a_refresh_runs(tmp_path: Path) -> None:
    # the command line refused them; from Python they published and promoted models mid-night
    # (Python red-team). The lock is held here as a refresh in another process holds it.
    from tabtune.pipeline import finetune_brand
    from tabtune.registry import RegistryLockedError
    from tabtune.registry.locks import REFRESH_LOCK, hold_lock, refreshing

    rows, cfg = _three_brands_pretrained(tmp_path)  # a registry never locked: no lock folder
    registry = registry_for(cfg)
    brand = sorted(rows["brand_id"].unique())[0]
    lock = registry.root / ".locks" / f"{REFRESH_LOCK}.lock"
    with hold_lock(lock, 0):  # as another process holds it (this one's own would pass)
        with pytest.raises(RegistryLockedError, match="a refresh is running: tabtune.pipeline"):
            pretrain(cfg, "bid")
        with pytest.raises(RegistryLockedError, match="finetune_brand would change the models"):
            finetune_brand(cfg, "bid", brand)
        with refreshing():  # the night's own pretraining, in the process that holds the lock
            assert pretrain(cfg, "bid").model_id == "global/bid/v0002"
    assert [r.version for r in registry.versions("bid")] == ["v0001", "v0002"]
    assert registry.versions("bid", brand) == []
    finetune_brand(cfg, "bid", brand)  # the night over: allowed again
