"""The built-in classification tasks end to end: the refresh adapts their brands on the rows
``finetune`` learns, and ``predict`` serves what the refresh serves (tasks red-team)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabtune.cli import EXIT_OK, main
from tabtune.config import load_config
from tabtune.data.store import CampaignStore
from tabtune.features import task_data
from tabtune.pipeline import finetune_brand, load_task_data, model_for_brand, pretrain
from tabtune.refresh import refresh
from tests.conftest import write_small_config


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = write_small_config(tmp_path, tasks={"creative": "creative", "audience": "audience"})
    assert main(["--config", str(path), "synth"]) == EXIT_OK
    return path


def test_the_refresh_adapts_a_task_with_a_denominator_on_the_rows_finetune_learns(
    workspace: Path,
) -> None:
    """``creative`` (clicks out of impressions): the refresh gave the fit the ratio as a label,
    so every brand's adaptation failed ("Unknown label type: continuous") and the global model
    served it, exit 0."""
    cfg = load_config(workspace)
    pretrain(cfg, "creative")
    date = load_task_data(cfg, cfg.task("creative")).X["date"].max().date()
    report = refresh(cfg, date, task="creative")
    failed = [b.brand_id for b in report.brands if "adaptation failed" in " ".join(b.notes)]
    assert not failed and any(b.status == "promoted" for b in report.brands)
    large = max(report.brands, key=lambda b: b.rows)
    again = finetune_brand(cfg, "creative", large.brand_id, end=date, promote=False)
    assert large.rows == again.rows  # the same positive and negative rows


@pytest.mark.parametrize("task", ["creative", "audience"])
def test_predict_writes_the_probability_the_model_gives(
    workspace: Path, task: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``predict`` wrote a classifier's 0/1 labels where the refresh writes P(class 1)."""
    cfg = load_config(workspace)
    pretrain(cfg, task)
    code = main(["--config", str(workspace), "predict", "--task", task, "--output", "p.parquet"])
    assert code == EXIT_OK, capsys.readouterr().err
    out = pd.read_parquet("p.parquet")
    brand = str(out["brand_id"].iloc[0])
    mine = out[out["brand_id"] == brand]
    _, model = model_for_brand(cfg, task, brand)
    data = task_data(CampaignStore(cfg.data.store).read(), cfg.task(task), require_target=False)
    X = data.X[data.X["brand_id"] == brand]
    oracle = model.predict_proba(X[list(model.feature_names_in_)])[:, 1]
    np.testing.assert_allclose(mine["prediction"].to_numpy(), oracle, rtol=1e-9)
    assert ((mine["prediction"] > 0) & (mine["prediction"] < 1)).all()
