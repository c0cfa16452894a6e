"""Adapted models stored in the registry as deltas on their base (saved-model format 3).

Oracles: the in-memory estimator's predictions, the same estimator saved as a full copy
outside the registry, and the boosting library itself reading the full model file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from tabtune import TabTuneRegressor
from tabtune.errors import ModelIntegrityError
from tabtune.estimators.deltas import DELTA_FILE, clear_base_cache, registry_location
from tabtune.estimators.persistence import DELTA_FORMAT, FULL_FORMAT
from tabtune.registry import ModelRegistry

STRATEGIES = ("refit", "continue", "refit+continue", "scratch", "global", "segments")
NATIVE = {"lightgbm": "model.txt", "xgboost": "model.ubj"}


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": pd.Categorical(rng.choice(list("xyz"), n), categories=list("xyz")),
        }
    )
    y = np.exp(0.3 * X["a"].to_numpy()) + rng.gamma(1.0, 1.0, n)
    return X, y


def _publish(reg: ModelRegistry, est, brand: str | None = None, promote: bool = False):
    return reg.publish("bid", lambda d: est.save(d / "model"), brand=brand, promote=promote)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_base_cache()
    yield
    clear_base_cache()


@pytest.fixture(scope="module", params=["lightgbm", "xgboost"])
def adapted(request, tmp_path_factory):
    """A registry with a global model and one brand version per strategy (both backends)."""
    clear_base_cache()
    backend = request.param
    root = tmp_path_factory.mktemp(f"reg-{backend}")
    reg = ModelRegistry(root)
    X, y = _data(3000, 0)
    glob = TabTuneRegressor(backend=backend, n_estimators=40, random_state=0).fit(X, y)
    gref = _publish(reg, glob, promote=True)
    base = TabTuneRegressor.load(gref.path / "model")  # the refresh loads it from the registry
    Xb, yb = _data(400, 1)
    out = {}
    for strategy in STRATEGIES:
        est = TabTuneRegressor(
            backend=backend, base_model=base, strategy=strategy, n_estimators=30, random_state=0
        ).fit(Xb, yb)
        ref = _publish(reg, est, brand="acme")
        full = est.save(root.parent / f"full-{backend}-{strategy.replace('+', '_')}")
        out[strategy] = (est, ref, full)
    return backend, reg, gref, X, out


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_delta_loads_to_the_full_model(adapted, strategy) -> None:
    backend, reg, gref, X, out = adapted
    est, ref, full = out[strategy]
    model_dir = ref.path / "model"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    if strategy == "scratch":  # nothing shared with the base: a full copy
        assert (model_dir / NATIVE[backend]).is_file() and "delta" not in manifest
        assert manifest["format_version"] == FULL_FORMAT
    else:
        assert (model_dir / DELTA_FILE).is_file() and not (model_dir / NATIVE[backend]).exists()
        assert manifest["format_version"] == DELTA_FORMAT
        assert manifest["delta"]["base"]["id"] == gref.id
        assert manifest["depends_on"] == [gref.id]
        assert reg.manifest(ref)["depends_on"] == [gref.id]
        assert (model_dir / DELTA_FILE).stat().st_size < 0.5 * (
            full / NATIVE[backend]
        ).stat().st_size
    clear_base_cache()  # a fresh process: nothing cached
    loaded = TabTuneRegressor.load(model_dir)
    from_full = TabTuneRegressor.load(full)
    # the very bytes of the full model, so the same predictions
    assert loaded._model_bytes == (full / NATIVE[backend]).read_bytes()
    assert loaded.model_sha256_ == est.model_sha256_ == from_full.model_sha256_
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.predict(X), from_full.predict(X))
    assert loaded.strategy_ == est.strategy_


def test_raw_library_reads_the_rebuilt_model_like_the_full_file(adapted) -> None:
    backend, _, _, _, out = adapted
    est, ref, full = out["refit+continue"]
    loaded = TabTuneRegressor.load(ref.path / "model")
    rng = np.random.default_rng(5)
    if backend == "lightgbm":
        oracle = lgb.Booster(model_file=str(full / "model.txt"))
        rebuilt = lgb.Booster(model_str=loaded._model_bytes.decode("utf-8"))
        M = rng.normal(size=(200, oracle.num_feature()))
        np.testing.assert_array_equal(rebuilt.predict(M), oracle.predict(M))
    else:
        oracle = xgb.Booster(model_file=str(full / "model.ubj"))
        rebuilt = xgb.Booster(model_file=bytearray(loaded._model_bytes))
        types = oracle.feature_types or ["q"] * oracle.num_features()
        values = rng.normal(size=(200, len(types)))
        for j, kind in enumerate(types):
            if kind == "c":
                values[:, j] = rng.integers(0, 3, 200)
        M = xgb.DMatrix(
            values, feature_names=oracle.feature_names, feature_types=types, enable_categorical=True
        )
        np.testing.assert_array_equal(rebuilt.predict(M), oracle.predict(M))


def test_saving_outside_a_registry_writes_the_full_model(adapted, tmp_path) -> None:
    backend, _, _, _, out = adapted
    est, _, _ = out["refit"]
    path = est.save(tmp_path / "mine")
    assert (path / NATIVE[backend]).is_file() and not (path / DELTA_FILE).exists()


def test_registry_location() -> None:
    assert registry_location(Path("/r/global/bid/v0003/model")) == (Path("/r"), "global/bid/v0003")
    assert registry_location(Path("/r/brands/acme/bid/v0012/model")) == (
        Path("/r"),
        "brands/acme/bid/v0012",
    )
    assert registry_location(Path("/r/somewhere/model")) is None


def _one_brand_delta(tmp_path: Path):
    reg = ModelRegistry(tmp_path / "models")
    X, y = _data(1500, 0)
    glob = TabTuneRegressor(n_estimators=20, random_state=0).fit(X, y)
    gref = _publish(reg, glob, promote=True)
    base = TabTuneRegressor.load(gref.path / "model")
    est = TabTuneRegressor(base_model=base, strategy="refit").fit(*_data(300, 1))
    ref = _publish(reg, est, brand="acme")
    assert (ref.path / "model" / DELTA_FILE).is_file()
    return reg, gref, ref, X


def test_missing_base_is_a_clear_integrity_error(tmp_path: Path) -> None:
    reg, gref, ref, _ = _one_brand_delta(tmp_path)
    shutil.rmtree(gref.path)
    clear_base_cache()
    with pytest.raises(ModelIntegrityError, match=r"global/bid/v0001.*is missing.*Restore"):
        TabTuneRegressor.load(ref.path / "model")


def test_changed_base_is_a_clear_integrity_error(tmp_path: Path) -> None:
    reg, gref, ref, _ = _one_brand_delta(tmp_path)
    other = TabTuneRegressor(n_estimators=25, random_state=1).fit(*_data(1500, 2))
    other.save(gref.path / "model")  # a valid model, but not the one the delta was built on
    clear_base_cache()
    with pytest.raises(ModelIntegrityError, match=r"global/bid/v0001.*changed.*Restore"):
        TabTuneRegressor.load(ref.path / "model")
    (gref.path / "model" / "model.txt").write_text("garbage")  # corrupt: fails its checksum
    with pytest.raises(ModelIntegrityError, match=r"global/bid/v0001.*cannot be read"):
        TabTuneRegressor.load(ref.path / "model")


def test_a_copied_registry_loads_its_deltas(tmp_path: Path) -> None:
    reg, _, ref, X = _one_brand_delta(tmp_path)
    expected = TabTuneRegressor.load(ref.path / "model").predict(X)
    shutil.copytree(tmp_path / "models", tmp_path / "moved")
    shutil.rmtree(tmp_path / "models")
    clear_base_cache()
    moved = tmp_path / "moved" / ref.path.relative_to(tmp_path / "models") / "model"
    np.testing.assert_array_equal(TabTuneRegressor.load(moved).predict(X), expected)


def test_unexpected_layouts_fall_back_to_full_copies() -> None:
    from tabtune.boosting.lightgbm_text import apply_line_edits, line_edits, text_delta
    from tabtune.boosting.xgboost import ubj_model

    assert text_delta("not a model", "nor this") is None
    assert ubj_model(b"garbage") is None and ubj_model(b"{}") is None
    old, new = ["a", "b", "c", "d"], ["a", "x", "c", "d", "e"]
    assert apply_line_edits(old, line_edits(old, new)) == new
