"""The base model's leaf indices kept between fits (tabtune.leaf_cache, ``leaf_cache=``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from contracts import adapted, new_brand, pretrained

from tabtune.boosting.base import LeafMemory
from tabtune.errors import TabTuneInputError
from tabtune.estimators import repeat_params
from tabtune.leaf_cache import LeafCache


def _memory(n=5, trees=3):
    rng = np.random.default_rng(0)
    return LeafMemory(
        X=rng.normal(size=(n, 4)), leaves=rng.integers(0, 7, (n, trees)).astype(np.uint8)
    )


def test_cache_round_trips_and_ignores_what_does_not_match(tmp_path, caplog):
    cache = LeafCache(tmp_path / "leaves")
    memory = _memory()
    path = cache.save("base-1", ["acme"] * 5, memory)
    assert path.parent == tmp_path / "leaves" and path.suffix == ".npz"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    back = cache.load("base-1", np.array(["acme", "acme"]), n_features=4)
    np.testing.assert_array_equal(back.X, memory.X)
    np.testing.assert_array_equal(back.leaves, memory.leaves)
    assert back.leaves.dtype == np.uint8
    assert cache.load("base-2", ["acme"], n_features=4) is None  # another base model
    assert cache.load("base-1", ["other"], n_features=4) is None  # another brand
    assert cache.path(["a", "b"]) == cache.path(["b", "a", "a"])
    assert cache.path(None).name == "rows.npz"
    with caplog.at_level(logging.WARNING, logger="tabtune.leaf_cache"):
        assert cache.load("base-1", ["acme"], n_features=3) is None  # other features
        path.write_bytes(b"not a zip archive")
        assert cache.load("base-1", ["acme"], n_features=4) is None
    assert "does not match" in caplog.text and "cannot be read" in caplog.text


@pytest.mark.parametrize("strategy", ["refit+continue", "refit", "continue", "global", "auto"])
def test_a_fit_from_yesterdays_leaves_is_the_same_model_for_less_work(
    tmp_path, strategy, predicted_leaf_rows
):
    base = pretrained("lightgbm", "cpu")
    X, y = new_brand("cached", n_days=91)
    night = (X["date"] < X["date"].max()).to_numpy()  # yesterday: every day but the last
    # what a refresh does between two choices (one fit), or the choosing fit
    params = {"strategy": "auto"} if strategy == "auto" else repeat_params(strategy, 7)
    adapted(base, X[night], y[night], leaf_cache=tmp_path, **params)
    assert len(list(tmp_path.iterdir())) == 1
    predicted = predicted_leaf_rows  # rows of each prediction of the base's leaves
    predicted.clear()  # from now on
    cached = adapted(base, X, y, leaf_cache=tmp_path, **params)
    cached_rows = sum(predicted)
    predicted.clear()
    plain = adapted(base, X, y, **params)
    assert cached.model_sha256_ == plain.model_sha256_
    assert cached.strategy_ == plain.strategy_ and cached.holdout_scores_ == plain.holdout_scores_
    np.testing.assert_array_equal(cached.predict(X), plain.predict(X))
    if strategy != "auto":  # one fit on every row: the base predicted on a fraction of them
        assert cached_rows < len(X) / 2
    assert len(list(tmp_path.iterdir())) == 1  # tonight's leaves replaced yesterday's


def test_a_broken_cache_file_is_ignored_and_replaced(tmp_path, caplog):
    base = pretrained("lightgbm", "cpu")
    X, y = new_brand("broken", n_days=60)
    first = adapted(base, X, y, strategy="refit", leaf_cache=tmp_path)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="tabtune.leaf_cache"):
        again = adapted(base, X, y, strategy="refit", leaf_cache=tmp_path)
    assert "cannot be read" in caplog.text
    assert again.model_sha256_ == first.model_sha256_
    n_features = len(base._model.layout.names)
    assert LeafCache(tmp_path).load(base.model_sha256_, X["brand_id"], n_features) is not None


def test_xgboost_fits_with_a_leaf_cache_and_keeps_nothing(tmp_path):
    base = pretrained("xgboost", "cpu")
    X, y = new_brand("xgb", n_days=60)
    with_cache = adapted(base, X, y, strategy="refit", leaf_cache=tmp_path / "c")
    assert with_cache.model_sha256_ == adapted(base, X, y, strategy="refit").model_sha256_
    assert not (tmp_path / "c").exists()


def test_leaf_cache_must_be_a_path():
    base = pretrained("lightgbm", "cpu")
    X, y = new_brand("bad", n_days=30)
    with pytest.raises(TabTuneInputError, match="'leaf_cache' parameter .* directory path"):
        adapted(base, X, y, leaf_cache="")
    with pytest.raises(TabTuneInputError, match="leaf_cache"):
        adapted(base, X, y, leaf_cache=3)
