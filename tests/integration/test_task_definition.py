"""A task redefined after pretraining: its models learnt another target (config red-team).

The bid task's target changed from revenue per click to conversions per click: the refresh
adapted the old global model to the new labels, promoted the result, and ``bids`` served it as
value per click, exit 0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from tabtune.builtin_tasks import builtin_task_spec
from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tabtune.config import Config, load_config
from tabtune.errors import TabTuneInputError
from tabtune.pipeline import finetune_brand, model_for_brand, pretrain
from tabtune.refresh import refresh
from tabtune.task_definition import DEFINITION_KEY, definition_change
from tests.conftest import write_small_config
from tests.test_store import snapshot


def _redefined(path: Path) -> Path:
    """The same config with the bid task's target changed to conversions per click."""
    cfg = yaml.safe_load(path.read_text())
    spec = builtin_task_spec("bid")
    spec["target"] = {"numerator": "conversions", "denominator": "clicks"}
    cfg["tasks"] = {"bid": spec}
    other = path.with_name("redefined.yaml")
    other.write_text(yaml.safe_dump(cfg))
    return other


#: The brand given a LightGBM champion by :func:`_a_brand_champion`.
BRAND = "b005"


def _a_brand_champion(tmp_path: Path) -> tuple[Path, Config, str]:
    """A small simulated store in ``tmp_path`` (the working folder), its global LightGBM
    model, and :data:`BRAND`'s champion adapted from it: the config path, config, model id."""
    path = write_small_config(tmp_path)
    assert main(["--config", str(path), "synth"]) == EXIT_OK
    cfg = load_config(path)
    pretrain(cfg, "bid")
    return path, cfg, finetune_brand(cfg, "bid", BRAND).model_id


def test_a_redefined_task_refuses_its_old_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    path, cfg, _ = _a_brand_champion(tmp_path)
    brand = BRAND
    xgb = cfg.model_copy(update={"backend": "xgboost"})
    with pytest.raises(TabTuneInputError, match=r"backend 'lightgbm' -> 'xgboost'"):
        refresh(xgb, "2024-03-30")
    new = load_config(_redefined(path))
    before = snapshot(tmp_path / "data")
    with pytest.raises(TabTuneInputError, match=r"pretrained for another definition of the task"):
        refresh(new, "2024-03-30", new_rows=None)
    with pytest.raises(TabTuneInputError, match=r"target .*'revenue'.* -> .*'conversions'"):
        finetune_brand(new, "bid", brand)
    code = main(["--config", str(_redefined(path)), "bids"])
    assert code == EXIT_BAD_INPUT
    assert snapshot(tmp_path / "data") == before
    # pretrained again: the brand's old champion no longer serves (it learnt revenue)
    result = pretrain(new, "bid")
    with caplog.at_level(logging.WARNING, logger="tabtune"):
        served, _ = model_for_brand(new, "bid", brand)
    assert served == result.model_id and "adapted for another definition" in caplog.text
    report = refresh(new, "2024-03-30", brands=[brand])
    (rec,) = report.brands
    assert any("adapted for another definition of the task" in n for n in rec.notes)
    from tabtune.pipeline import registry_for

    reg = registry_for(new)
    now = reg.resolve("bid", brand=brand)
    if now is not None:  # a new champion, adapted from the new global model
        manifest = reg.manifest(now)
        assert manifest[DEFINITION_KEY]["target"]["numerator"] == "conversions"
        assert definition_change(manifest, new.task("bid")) is None


def test_the_order_of_a_tasks_features_is_no_new_definition() -> None:
    """Reordering a task's categorical list made every champion "adapted for another
    definition" and refused the global model (review); a model's inputs align by name."""
    from tabtune.config import builtin_task
    from tabtune.task_definition import definition

    task = builtin_task("bid")
    manifest = {DEFINITION_KEY: definition(task)}
    reordered = task.model_copy(update={"categorical": list(reversed(task.categorical))})
    assert definition_change(manifest, reordered) is None
    fewer = task.model_copy(update={"categorical": task.categorical[:-1]})
    assert "categorical" in str(definition_change(manifest, fewer))


def test_a_champion_adapted_from_another_backend_is_contested_as_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backend switched to XGBoost and pretrained again, as the refusal says: a brand's
    LightGBM champion could not be refitted on the night's window (base of another backend),
    so the brand failed over to it every night, kept for good (refresh red-team)."""
    from tabtune.pipeline import registry_for

    monkeypatch.chdir(tmp_path)
    _, cfg, old = _a_brand_champion(tmp_path)
    brand = BRAND
    xgb = cfg.model_copy(update={"backend": "xgboost"})
    pretrain(xgb, "bid")
    (rec,) = refresh(xgb, "2024-03-30", brands=[brand]).brands
    assert rec.status != "failed" and not any("adaptation failed" in n for n in rec.notes)
    assert any("backend 'lightgbm' -> 'xgboost'" in n for n in rec.notes), rec.notes
    assert rec.model_id != old  # the night's model, and the one bids serve, agree
    served, _ = model_for_brand(xgb, "bid", brand)
    assert served == rec.model_id or rec.model_id.startswith(f"brands/{brand}/")
    assert served != old
    now = registry_for(xgb).resolve("bid", brand=brand)
    if now is not None and now.id != old:  # promoted: adapted from the XGBoost global model
        assert registry_for(xgb).manifest(now)["base_model"] == "global/bid/v0002"
