"""Brand-context tables stored as overlays on their base's table (saved-model format 4).

Oracles: the table itself (``BrandContext.to_dict``) rebuilt exactly, the in-memory
estimator's context and predictions, and the size of the whole table.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from contracts import SMALL, adapted, make_brands, new_brand

from tabtune import TabTuneRegressor
from tabtune.errors import ModelIntegrityError
from tabtune.estimators.context_overlay import (
    OVERLAY_FORMAT,
    apply_context_overlay,
    context_overlay,
)
from tabtune.estimators.deltas import clear_base_cache
from tabtune.estimators.persistence import OVERLAY_FORMAT_VERSION, SEGMENTS_FORMAT_VERSION
from tabtune.registry import ModelRegistry
from tabtune.transfer import BrandContext

ON = {"id": "global/bid/v0001", "path": "../../x", "model_sha256": "0" * 64}


def _table(groups: list[str], seed: int, n_levels: int = 4) -> BrandContext:
    """A context table learnt from random rows of ``groups`` (levels drawn, some missing)."""
    rng = np.random.default_rng(seed)
    n = 40 * len(groups)
    codes = rng.integers(0, len(groups), n)
    levels = rng.integers(0, n_levels, n).astype(float)
    levels[rng.random(n) < 0.1] = np.nan
    spec = BrandContext("brand", "channel", n_levels, prior=(1.5,), smoothing=10.0)
    return spec.with_table(codes, groups, rng.gamma(2.0, 1.0, (n, 1)), None, levels)


def _json(context: BrandContext) -> dict:
    return json.loads(json.dumps(context.to_dict()))


@pytest.mark.parametrize("seed", range(6))
def test_an_adapted_table_is_rebuilt_exactly_from_a_small_overlay(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = [f"b{i:03d}" for i in range(200)]
    base = _table(pool, seed)
    # the brand: new (seed even) or one of the pool's brands re-learnt (seed odd)
    brand = "newco" if seed % 2 == 0 else str(rng.choice(pool))
    model = base.overlay(_table([brand], seed + 100)).with_offset(brand, float(rng.normal()))
    overlay = context_overlay(_json(base), _json(model), ON)
    assert overlay is not None and overlay["format"] == OVERLAY_FORMAT
    assert overlay["overlay_on"] == ON
    assert apply_context_overlay(_json(base), overlay) == _json(model)
    assert BrandContext.from_dict(apply_context_overlay(_json(base), overlay)) is not None
    assert overlay["groups"]["keys"] == [brand]
    assert overlay["drop"] == ([] if brand == "newco" else [brand])
    whole = len(json.dumps(_json(model)))
    assert len(json.dumps(overlay)) < 0.05 * whole


def test_any_table_on_the_same_specification_is_rebuilt_exactly() -> None:
    base = _table([f"b{i}" for i in range(30)], 0)
    unrelated = _table(["x", "b3", "y", "b1"], 1)  # other order, other values
    overlay = context_overlay(_json(base), _json(unrelated), ON)
    assert overlay is not None
    assert apply_context_overlay(_json(base), overlay) == _json(unrelated)
    reordered = base.overlay(_table(["b5"], 2))
    shuffled = BrandContext.from_dict({**_json(reordered), "offsets": [["b5", 0.25], ["b7", -0.5]]})
    overlay = context_overlay(_json(base), _json(shuffled), ON)
    assert overlay is not None
    assert apply_context_overlay(_json(base), overlay) == _json(shuffled)


def test_another_specification_keeps_the_whole_table() -> None:
    base = _table(["a", "b"], 0)
    other = BrandContext("brand", "channel", 4, prior=(2.0,), smoothing=10.0)
    model = other.with_table(np.array([0, 1]), ["a", "c"], np.ones((2, 1)), None, None)
    assert context_overlay(_json(base), _json(model), ON) is None


def test_an_overlay_that_does_not_fit_its_base_is_refused() -> None:
    base = _table([f"b{i}" for i in range(10)], 0)
    model = base.overlay(_table(["new"], 1))
    overlay = context_overlay(_json(base), _json(model), ON)
    assert overlay is not None
    bad = {**overlay, "levels": {"keys": [10**6], "mean": [[1.0]]}}
    with pytest.raises(ValueError, match="names a group"):
        apply_context_overlay(_json(base), bad)
    with pytest.raises(ValueError, match="specification"):
        apply_context_overlay({**_json(base), "prior": [9.0]}, overlay)


# -- saved in a registry --------------------------------------------------------------------

STRATEGIES = ("global", "segments", "refit", "continue", "scratch")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A global model with a brand-context table of 40 brands and one brand version per
    strategy, saved in a registry."""
    clear_base_cache()
    root = tmp_path_factory.mktemp("reg")
    reg = ModelRegistry(root)
    X, y = make_brands([f"b{i:02d}" for i in range(40)], n_days=20, seed=1)
    glob = TabTuneRegressor(group_column="brand_id", time_column="date", **SMALL).fit(X, y)
    gref = reg.publish("bid", lambda d: glob.save(d / "model"), promote=True)
    base = TabTuneRegressor.load(gref.path / "model")
    Xb, yb = new_brand(n_days=40, level=2.5)
    out = {}
    for strategy in STRATEGIES:
        est = adapted(base, Xb, yb, strategy=strategy)
        ref = reg.publish("bid", lambda d, e=est: e.save(d / "model"), brand="newco")
        full = est.save(root.parent / f"full-{strategy}")
        out[strategy] = (est, ref, full)
    yield reg, gref, Xb, out
    clear_base_cache()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_brand_version_stores_its_context_as_an_overlay(registry, strategy) -> None:
    reg, gref, Xb, out = registry
    est, ref, full = out[strategy]
    manifest = json.loads((ref.path / "model" / "manifest.json").read_text())
    # a table with segment offsets is format 5 (a format-4 reader would ignore them)
    has_segments = bool(est._model.context.segments)
    assert has_segments == (strategy == "segments")
    expected = SEGMENTS_FORMAT_VERSION if has_segments else OVERLAY_FORMAT_VERSION
    assert manifest["format_version"] == expected
    assert manifest["brand_context"]["format"] == OVERLAY_FORMAT
    assert manifest["brand_context"]["overlay_on"]["id"] == gref.id
    assert gref.id in manifest["depends_on"] and reg.manifest(ref)["depends_on"] == [gref.id]
    whole = json.loads((full / "manifest.json").read_text())["brand_context"]
    assert whole["groups"]["keys"][-1] == "newco" and len(whole["groups"]["keys"]) == 41
    assert len(json.dumps(manifest["brand_context"])) < 0.2 * len(json.dumps(whole))
    clear_base_cache()  # a fresh process
    loaded = TabTuneRegressor.load(ref.path / "model")
    assert loaded._model.context.to_dict() == est._model.context.to_dict()
    assert loaded._model.context.to_dict() == TabTuneRegressor.load(full)._model.context.to_dict()
    np.testing.assert_array_equal(loaded.predict(Xb), est.predict(Xb))


def test_a_missing_base_names_the_brand_context_and_the_fix(tmp_path: Path, registry) -> None:
    reg, gref, Xb, out = registry
    copy = tmp_path / "models"
    shutil.copytree(reg.root, copy)
    scratch = copy / out["scratch"][1].path.relative_to(reg.root) / "model"
    shutil.rmtree(copy / gref.path.relative_to(reg.root))
    clear_base_cache()
    with pytest.raises(
        ModelIntegrityError, match=r"brand context is stored as an overlay.*is missing.*Restore"
    ):
        TabTuneRegressor.load(scratch)


def test_brands_served_by_the_global_trees_all_build_on_the_global_version(tmp_path) -> None:
    """A brand published with the global model's very trees (strategy ``global``) holds the
    global model's bytes: the next brands must still name the global version as their base,
    not that brand's version (which would chain brands on brands)."""
    clear_base_cache()
    reg = ModelRegistry(tmp_path / "models")
    X, y = make_brands([f"b{i:02d}" for i in range(12)], n_days=20, seed=2)
    glob = TabTuneRegressor(group_column="brand_id", time_column="date", **SMALL).fit(X, y)
    gref = reg.publish("bid", lambda d: glob.save(d / "model"), promote=True)
    base = TabTuneRegressor.load(gref.path / "model")
    refs = []
    for name in ("aaa", "abc", "b03"):  # version paths that sort before global/
        Xb, yb = new_brand(name=name, n_days=30, seed=len(refs))
        est = adapted(base, Xb, yb, strategy="global")
        assert est.model_sha256_ == base.model_sha256_
        refs.append(reg.publish("bid", lambda d, e=est: e.save(d / "model"), brand=name))
        TabTuneRegressor.load(refs[-1].path / "model")  # evaluated, as the refresh does
    for ref in refs:
        manifest = json.loads((ref.path / "model" / "manifest.json").read_text())
        assert manifest["depends_on"] == [gref.id]
        assert manifest["brand_context"]["overlay_on"]["id"] == gref.id
        assert len(manifest["brand_context"]["groups"]["keys"]) == 1


def test_a_base_whose_table_changed_is_refused(tmp_path: Path, registry) -> None:
    """The base's trees unchanged, its (resealed) table edited: the overlay no longer
    describes the table it was checked against at save, and loading says so."""
    from tabtune.integrity import SEAL_KEY, seal

    reg, gref, _, out = registry
    copy = tmp_path / "models"
    shutil.copytree(reg.root, copy)
    base_manifest = copy / gref.path.relative_to(reg.root) / "model" / "manifest.json"
    data = json.loads(base_manifest.read_text())
    data["brand_context"]["groups"]["mean"][0][0] += 1.0
    data.pop(SEAL_KEY)
    base_manifest.write_text(json.dumps(seal(data), indent=2, sort_keys=True))
    brand = copy / out["refit"][1].path.relative_to(reg.root) / "model"
    clear_base_cache()
    with pytest.raises(ModelIntegrityError, match=r"overlay on the table of .*manifest changed"):
        TabTuneRegressor.load(brand)


def test_keys_of_other_json_types_are_other_groups() -> None:
    """``1``, ``1.0`` and ``True`` compare equal in Python but are different group keys: the
    overlay never turns one into another (nor ``-0.0`` into ``0.0``)."""

    def table(keys, means):
        return BrandContext(
            "brand",
            None,
            0,
            (1.0,),
            10.0,
            keys=tuple(keys),
            mean=np.asarray(means, float).reshape(-1, 1),
            log_rows=np.ones(len(keys)),
        )

    base = _json(table([1, 2], [2.0, 3.0]))
    for keys, means in (([True, 2.0, 7], [2.0, 3.0, 4.0]), ([1, 2], [-0.0, 3.0])):
        model = _json(table(keys, means))
        overlay = context_overlay(base, model, ON)
        if overlay is not None:
            rebuilt = apply_context_overlay(base, overlay)
            assert json.dumps(rebuilt, sort_keys=True) == json.dumps(model, sort_keys=True)


def test_group_lookups_follow_the_table_they_belong_to() -> None:
    """A table's group index is built once; tables derived from it look up their own keys."""
    base = _table([f"b{i}" for i in range(5)], 0)
    assert base.key_index is base.key_index
    assert list(base.positions_of(["b3", "newco"])) == [3, -1]
    grown = base.overlay(_table(["newco"], 1))
    assert grown.positions_of(["newco"])[0] >= 0 and base.positions_of(["newco"])[0] == -1
    assert list(grown.key_index) == list(grown.keys)
