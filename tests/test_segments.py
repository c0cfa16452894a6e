"""Segment offsets (strategy ``segments``): the estimator, the look-up, storage, ``auto``.

Oracles: a brute-force computation of the estimator with Python dicts and loops, the base
model's own predictions times offsets computed by hand, and the saved model loaded back.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd
import pytest
from contracts import SMALL, adapted, make_brands

from tabtune import TabTuneClassifier, TabTuneRegressor
from tabtune.estimators.context_overlay import apply_context_overlay, context_overlay
from tabtune.transfer import BrandContext
from tabtune.transfer.segments import (
    SegmentOffsets,
    fit_segment_offsets,
    segment_codes,
    variance_power,
)

# -- a brute-force oracle --------------------------------------------------------------------


def _brute_force(link, y, p, w, rows, power):
    """The nested DerSimonian-Laird offsets with dicts and loops: ``{key tuple: total}``
    per depth (``rows``: tuples of the rows' codes); a segment whose category at that depth
    is missing (-1) gets no step and does not count."""
    n, depth_count = len(y), len(rows[0])
    total = [0.0] * n
    tables = []
    for d in range(1, depth_count + 1):
        mu = [p[i] * math.exp(total[i]) if link == "log" else p[i] + total[i] for i in range(n)]
        if link == "log":
            phi = sum(w[i] * (y[i] - mu[i]) ** 2 / mu[i] ** power for i in range(n)) / (n - 1)
        else:
            phi = sum(w[i] * (y[i] - mu[i]) ** 2 for i in range(n)) / (n - 1)
        groups: dict[tuple, list[int]] = {}
        for i in range(n):
            groups.setdefault(tuple(rows[i][:d]), []).append(i)
        r, se2 = {}, {}
        for key, members in groups.items():
            if key[-1] == -1:
                continue
            sw = sum(w[i] for i in members)
            if link == "log":
                o = sum(w[i] * y[i] for i in members)
                e = sum(w[i] * mu[i] for i in members)
                v = sum(w[i] * mu[i] ** power for i in members)
                r[key], se2[key] = math.log(o / e), phi * v / e**2
            else:
                r[key] = sum(w[i] * (y[i] - mu[i]) for i in members) / sw
                se2[key] = phi / sw
        wi = {k: 1 / se2[k] for k in r}
        s1, s2 = sum(wi.values()), sum(x * x for x in wi.values())
        rbar = sum(wi[k] * r[k] for k in r) / s1
        q = sum(wi[k] * (r[k] - rbar) ** 2 for k in r)
        tau2 = max(0.0, (q - (len(r) - 1)) / (s1 - s2 / s1)) if len(r) >= 2 else 0.0
        table = {}
        for key, members in groups.items():
            step = r[key] * tau2 / (tau2 + se2[key]) if key in r else 0.0
            table[key] = total[members[0]] + step
            for i in members:
                total[i] += step
        tables.append(table)
    return tables


def _frame(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    codes = np.column_stack([rng.integers(0, 3, n), rng.integers(0, 2, n)])
    codes[rng.random(n) < 0.1, 1] = -1  # some missing categories
    p = rng.gamma(3.0, 1.0, n)
    effect = np.array([0.5, 1.0, 2.5])[codes[:, 0]] * np.where(codes[:, 1] == 1, 1.6, 1.0)
    y = p * effect * rng.gamma(5.0, 0.2, n)
    w = rng.uniform(0.5, 2.0, n)
    return codes, p, y, w


def _as_dicts(found: SegmentOffsets) -> list[dict[tuple, float]]:
    return [
        {tuple(int(c) for c in k): float(v) for k, v in zip(keys, values, strict=True)}
        for keys, values in zip(found.keys, found.values, strict=True)
    ]


@pytest.mark.parametrize("link", ["log", "identity"])
@pytest.mark.parametrize("seed", range(3))
def test_the_estimator_matches_a_brute_force_computation(link, seed):
    codes, p, y, w = _frame(seed)
    found = fit_segment_offsets(link, y, p, w, codes, ("channel", "device"), power=1.3)
    expected = _brute_force(link, y, p, w, [tuple(r) for r in codes], 1.3)
    got = _as_dicts(found)
    assert found.columns == ("channel", "device")
    assert not found.is_empty  # the segments differ: something is stored
    for depth, (mine, theirs) in enumerate(zip(got, expected, strict=True), 1):
        parents = [{k[: depth - 1]: v for k, v in t.items()} for t in expected[: depth - 1]]
        parent_of = parents[-1] if parents else {}
        for key, value in theirs.items():
            if key in mine:
                assert mine[key] == pytest.approx(value, rel=1e-10, abs=1e-12)
            else:  # not stored: a step of 0, so the parent's value
                assert value == pytest.approx(parent_of.get(key[:-1], 0.0), abs=1e-12)
    # each row's offset: its deepest segment's total (every segment here was seen)
    deepest = expected[-1]
    np.testing.assert_allclose(
        found.lookup(codes), [deepest[tuple(r)] for r in codes], rtol=1e-10, atol=1e-12
    )


def test_segments_that_do_not_differ_get_no_offset():
    codes, p, _, w = _frame(0)
    y = 1.7 * p  # every segment at the very same ratio: Q = 0, tau2 = 0
    for link in ("log", "identity"):
        found = fit_segment_offsets(link, y, p, w, codes, ("a", "b"))
        assert found.is_empty
        np.testing.assert_array_equal(found.lookup(codes), np.zeros(len(codes)))
    # a single segment (m < 2) gets none either
    one = fit_segment_offsets("log", 3 * p, p, w, np.zeros((len(p), 1), int), ("a",))
    assert one.is_empty


def test_lookup_takes_the_deepest_seen_segment_and_falls_back_to_its_parent():
    found = SegmentOffsets(
        ("a", "b"),
        (np.array([[0], [1]]), np.array([[0, 1], [2, 0]])),
        (np.array([0.5, -0.25]), np.array([0.75, 1.0])),
    )
    codes = np.array([[0, 1], [0, 0], [1, 3], [2, 0], [2, 1], [3, -1], [-1, -1]])
    np.testing.assert_array_equal(found.lookup(codes), [0.75, 0.5, -0.25, 1.0, 0.0, 0.0, 0.0])


def test_segment_codes_read_ndarrays_and_frames_alike():
    matrix = np.array([[1.0, 0.0, 7.0], [np.nan, 2.0, 8.0], [3.0, 1.0, 9.0]])
    schema = ("a", "x", "b")
    frame = pd.DataFrame(matrix, columns=list(schema))
    want = np.array([[1, 7], [-1, 8], [3, 9]])
    np.testing.assert_array_equal(segment_codes(matrix, schema, ("a", "b")), want)
    np.testing.assert_array_equal(segment_codes(frame, schema, ("a", "b")), want)
    np.testing.assert_array_equal(
        segment_codes(frame, schema, ("a", "b"), np.array([2])), want[[2]]
    )
    assert variance_power("poisson", {}) == 1.0
    assert variance_power("tweedie", {}) == 1.5
    assert variance_power("tweedie", {"tweedie_variance_power": 1.2}) == 1.2


def _context_with_segments() -> tuple[BrandContext, BrandContext, SegmentOffsets]:
    rng = np.random.default_rng(0)
    spec = BrandContext("brand", "channel", 4, prior=(1.5,), smoothing=10.0)
    groups = [f"b{i}" for i in range(20)]
    n = 400
    base = spec.with_table(rng.integers(0, 20, n), groups, rng.gamma(2.0, 1.0, (n, 1)), None, None)
    codes, p, y, w = _frame(1)
    found = fit_segment_offsets("log", y, p, w, codes, ("channel", "device"))
    brand = spec.with_table(np.zeros(30, int), ["newco"], rng.gamma(2.0, 1.0, (30, 1)), None, None)
    model = base.overlay(brand).with_offset("newco", 0.3).with_segments("newco", found)
    return base, model, found


def test_segments_round_trip_through_json_and_overlays():
    base, model, found = _context_with_segments()
    data = json.loads(json.dumps(model.to_dict()))
    back = BrandContext.from_dict(data)
    assert back.to_dict() == model.to_dict()
    ((group, loaded),) = back.segments
    assert group == "newco"
    codes, *_ = _frame(2)
    np.testing.assert_array_equal(loaded.lookup(codes), found.lookup(codes))
    # files written before segments existed load with none
    old = {k: v for k, v in data.items() if k != "segments"}
    assert BrandContext.from_dict(old).segments == ()
    assert "segments" not in base.to_dict()  # nothing written when there are none
    # overlaying the brand again (a new fit) drops its old segments; other brands keep theirs
    assert base.overlay(model).segments[0][0] == "newco"
    assert (
        model.overlay(
            base.with_table(np.zeros(3, int), ["newco"], np.ones((3, 1)), None, None)
        ).segments
        == ()
    )
    assert model.with_segments("newco", None).segments == ()
    # stored as an overlay on the base's table, rebuilt exactly
    on = {"id": "global/bid/v0001", "path": "../../x", "model_sha256": "0" * 64}
    base_json = json.loads(json.dumps(base.to_dict()))
    overlay = context_overlay(base_json, data, on)
    assert overlay is not None and overlay["segments"] == data["segments"]
    assert apply_context_overlay(base_json, overlay) == data


# -- strategy segments in auto -------------------------------------------------------------------

#: Brand x channel effects the pretraining brands never show.
EFFECTS = {"search": 0.3, "social": 3.0, "display": 1.0, "video": 1.8}


def _noisy(brands, n_days, seed, effects=None):
    """Non-negative rows with multiplicative gamma noise (cv 0.3), times ``effects``."""
    X, y = make_brands(brands, n_days=n_days, seed=seed)
    m = 1.0 if effects is None else X["channel"].map(effects).to_numpy()
    rng = np.random.default_rng(seed + 1000)
    return X, np.maximum(y, 0.0) * m * rng.gamma(10.0, 0.1, len(y))


@functools.cache
def _tweedie_base(backend: str = "lightgbm") -> TabTuneRegressor:
    X, y = _noisy([f"b{i:02d}" for i in range(12)], 60, 0)
    params = {"group_column": "brand_id", "time_column": "date", "objective": "tweedie"}
    return TabTuneRegressor(backend=backend, **params, **SMALL).fit(X, y)


def test_auto_chooses_segments_for_brand_by_channel_effects_and_not_without():
    base = _tweedie_base()
    Xn, yn = _noisy(["segco"], 60, 4, EFFECTS)
    auto = adapted(base, Xn, yn)
    scores = auto.holdout_scores_
    # the folds see the channel effects; since refit keeps the base's starting score, a
    # refit of the leaves learns them about as well (0.752 against segments' 0.755 here)
    assert scores["segments"] < 0.8 * scores["global"], scores
    assert auto.strategy_ in ("segments", "refit"), scores
    assert scores[auto.strategy_] == min(scores.values())
    ((group, found),) = adapted(base, Xn, yn, strategy="segments")._model.context.segments
    assert group == "segco" and found.columns == ("channel",)
    plain = adapted(base, *_noisy(["plainco"], 60, 4))
    assert plain.strategy_ != "segments"
    assert "segments" in plain.holdout_scores_
    assert plain._model.context.segments == ()


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])  # a matrix, a frame of columns
def test_segments_predictions_are_the_base_times_brand_and_segment_offsets(backend, tmp_path):
    base = _tweedie_base(backend)
    Xn, yn = _noisy(["segco"], 60, 4, EFFECTS)
    est = adapted(base, Xn, yn, strategy="segments")
    model, context = est._model, est._model.context
    groups = Xn["brand_id"].to_numpy()
    # the trees alone (no offsets), on the brand's table entry: the base's booster as it is
    trees = model.predict(model.encode(Xn, groups), groups=None)
    assert model.booster is base._model.booster
    brand = dict(context.offsets)["segco"]
    vocabulary = list(model.schema.vocabularies["channel"])
    codes = np.array([[vocabulary.index(c)] for c in Xn["channel"]])
    # the stored offsets are those of the brute-force estimator on all rows
    power = variance_power("tweedie", model.params.extra)
    # each row weighted by its recency: half-life 60 days before the brand's newest row
    dates = pd.to_datetime(Xn["date"])
    age_days = (dates.max() - dates).dt.total_seconds().to_numpy() / 86400.0
    oracle = _brute_force(
        "log",
        list(yn),
        list(trees * np.exp(brand)),
        list(0.5 ** (age_days / 60.0)),
        [tuple(r) for r in codes],
        power,
    )[0]
    ((_, found),) = context.segments
    stored = _as_dicts(found)[0]
    assert stored and all(stored[k] == pytest.approx(oracle[k], rel=1e-9) for k in stored)
    by_hand = trees * np.exp(brand + np.array([oracle[tuple(r)] for r in codes]))
    np.testing.assert_allclose(est.predict(Xn), by_hand, rtol=1e-9)
    # another brand is served exactly as by the base model
    X, _ = _noisy([f"b{i:02d}" for i in range(12)], 60, 0)
    np.testing.assert_array_equal(est.predict(X), base.predict(X))
    # saved (JSON) and loaded back: the same predictions, bit for bit
    path = est.save(tmp_path / "m")
    loaded = TabTuneRegressor.load(path)
    assert loaded.strategy_ == "segments"
    np.testing.assert_array_equal(loaded.predict(Xn), est.predict(Xn))


def test_a_model_with_segments_is_refused_by_readers_of_older_formats(tmp_path, monkeypatch):
    """A format-4 reader would ignore the segment offsets and serve other predictions: a
    model holding them is saved as format 5, which such a reader refuses; a model without
    them keeps its format."""
    from tabtune.errors import ModelIntegrityError
    from tabtune.estimators import persistence

    base = _tweedie_base()
    Xn, yn = _noisy(["segco"], 60, 4, EFFECTS)
    with_segments = adapted(base, Xn, yn, strategy="segments")
    without = adapted(base, Xn, yn, strategy="global")
    a = with_segments.save(tmp_path / "a")
    b = without.save(tmp_path / "b")

    def version(path):
        return json.loads((path / "manifest.json").read_text())["format_version"]

    assert version(a) == persistence.SEGMENTS_FORMAT_VERSION == 5
    assert version(b) == persistence.FULL_FORMAT
    monkeypatch.setattr(persistence, "READABLE_FORMATS", (1, 2, 3, 4))  # an older tabtune
    with pytest.raises(ModelIntegrityError, match="format_version 5"):
        TabTuneRegressor.load(a)
    np.testing.assert_array_equal(TabTuneRegressor.load(b).predict(Xn), without.predict(Xn))


def test_classifiers_do_not_try_segments():
    X, y = make_brands([f"b{i:02d}" for i in range(8)], n_days=40)
    params = {"group_column": "brand_id", "time_column": "date", **SMALL}
    base = TabTuneClassifier(**params).fit(X, (y > np.median(y)).astype(int))
    Xn, yn = make_brands(["newco"], n_days=60, seed=3)
    auto = TabTuneClassifier(base_model=base, min_rows_to_adapt=0, **SMALL).fit(
        Xn, (yn > np.median(y)).astype(int)
    )
    assert "segments" not in auto.holdout_scores_ and "global" in auto.holdout_scores_


def test_a_category_unknown_at_serving_takes_its_parents_offset_not_the_missing_rows():
    """Missing and unknown categories share the code -1: a brand whose training rows had
    missing channels must not serve an unknown channel with their offset."""
    rng = np.random.default_rng(0)
    n = 400
    codes = rng.integers(0, 3, n)[:, None]
    codes[:40, 0] = -1  # 10% missing channel, with a level of their own
    p = np.ones(n)
    level = np.where(codes[:, 0] == -1, 3.0, np.array([0.5, 1.0, 1.5])[codes[:, 0]])
    y = p * level * rng.gamma(10, 0.1, n)
    found = fit_segment_offsets("log", y, p, None, codes, ["channel"])
    assert (-1,) not in _as_dicts(found)[0]  # no segment of its own
    assert found.lookup(np.array([[-1]]))[0] == 0.0  # the parent's (the brand level)
    assert found.lookup(np.array([[0]]))[0] < -0.3  # the known segments still move


def test_recency_weights_halve_every_60_days_whatever_the_datetime_unit():
    from tabtune.estimators.inputs import time_order
    from tabtune.transfer.segments import SEGMENT_HALF_LIFE_DAYS, recency_weights

    days = pd.Series(pd.to_datetime(["2025-01-01", "2025-03-02", "2025-05-01"]))
    for unit in ("s", "us", "ns"):
        _, keys = time_order(pd.DataFrame({"date": days.astype(f"datetime64[{unit}]")}), "date")
        weights = recency_weights(keys)
        ages = np.array([120.0, 60.0, 0.0])  # days before the newest row
        np.testing.assert_allclose(weights, 0.5 ** (ages / SEGMENT_HALF_LIFE_DAYS))
    _, numeric = time_order(pd.DataFrame({"t": [1, 2, 3]}), "t")
    assert recency_weights(numeric) is None  # numeric time: no unit, no weighting
    assert recency_weights(None) is None


def test_a_brand_under_min_rows_to_adapt_gets_segment_offsets_only_when_its_folds_show_them():
    base = _tweedie_base()
    Xn, yn = _noisy(["segco"], 60, 4, EFFECTS)
    few = len(Xn) + 1  # every brand below is served by the global model's trees
    auto = adapted(base, Xn, yn, min_rows_to_adapt=few)
    assert auto.strategy_ == "segments", auto.holdout_scores_
    assert f"min_rows_to_adapt={few}" in auto.strategy_reason_
    assert "segment offsets" in auto.strategy_reason_
    assert auto.n_new_trees_ == 0
    assert set(auto.holdout_scores_) == {"global", "segments"}  # no tree strategy was tried
    # the small-brand margin decided it: segments beat global by more than it
    margin = auto.selection_margin / np.sqrt(len(Xn))
    assert auto.holdout_scores_["segments"] < auto.holdout_scores_["global"] * (1 - margin)
    # the offsets served are those of the strategy fitted on every row without a holdout
    forced = adapted(
        base, Xn, yn, strategy="segments", min_rows_to_adapt=0, early_stopping_rounds=None
    )
    np.testing.assert_allclose(auto.predict(Xn), forced.predict(Xn), rtol=1e-12)
    # without segment effects the brand keeps the level offset alone
    plain = adapted(base, *_noisy(["plainco"], 60, 4), min_rows_to_adapt=few)
    assert plain.strategy_ == "global", plain.holdout_scores_
    # a tree strategy requested for a small brand still gives the global model, unscored
    asked = adapted(base, Xn, yn, strategy="continue", min_rows_to_adapt=few)
    assert asked.strategy_ == "global" and asked.n_new_trees_ == 0
