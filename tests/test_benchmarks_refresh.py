"""The refresh benchmark's scaling table (benchmarks/refresh.py), from raw figures."""

from __future__ import annotations

import pytest
from contracts import SMALL, adapted, make_brands, new_brand

from benchmarks.refresh import DEFAULT_BRANDS, _full_copy_bytes, raw_name, render_scaling
from tabtune import TabTuneRegressor
from tabtune.estimators.deltas import clear_base_cache
from tabtune.registry import ModelRegistry


def _raw(brands, runs, pretrain_cpu=30.0):
    return {
        "args": {"brands": brands},
        "rows": brands * 2_000,
        "pretrain": {"cpu": pretrain_cpu},
        "runs": runs,
    }


def _run(executor, brands, wall, cpu, night="first", workers=1):
    return {
        "executor": executor,
        "workers": workers,
        "brands": brands,
        "wall": wall,
        "cpu": cpu,
        "brands_per_minute": brands / wall * 60,
        "night": night,
    }


def test_raw_names_keep_the_default_store_apart():
    assert raw_name(DEFAULT_BRANDS) == "refresh"
    assert raw_name(1_000) == "refresh-1000b"
    assert raw_name(1_000, quick=True) == "refresh-quick"


def test_scaling_table_lists_first_nights_by_brands():
    big = _raw(
        1_000,
        [_run("inline", 1_000, 600.0, 640.0), _run("process", 1_000, 400.0, 700.0, workers=2)],
        120.0,
    )
    small = _raw(
        200, [_run("inline", 200, 120.0, 150.0), _run("inline", 200, 60.0, 80.0, night="second")]
    )
    text = render_scaling([big, small])
    lines = [line for line in text.splitlines() if line.startswith("| ")][1:]
    rows = [line for line in lines if not set(line) <= set("|- ")]
    assert [r.split("|")[1].strip() for r in rows] == ["200", "1,000", "1,000"]
    assert "process (2 workers)" in rows[2]
    assert "**100**" in rows[1]  # 1,000 brands in 600 s
    assert "0.64" in rows[1] and "0.19x" in rows[1]  # CPU per brand; retrain 120 / night 640
    assert "0.20x" in rows[0]  # the second night is not a row
    assert render_scaling([]) == "No refresh figures yet."


def test_scaling_table_shows_stored_bytes_and_rerun():
    run = _run("process", 1_000, 400.0, 700.0, workers=2)
    run["storage"] = {"stored_per_brand": 61_000.0, "full_copy_per_brand": 2_962_000.0}
    run["rerun_wall"] = 5.4
    text = render_scaling([_raw(1_000, [run], 120.0)])
    assert "61 / 2,962 (2.1%)" in text and "| 5.4 |" in text


def test_full_copy_bytes_count_the_whole_table_of_an_overlay(tmp_path):
    """The benchmark's 'as full copies' bytes of a version stored as a delta with a context
    overlay are those of the same model saved whole (outside the registry), give or take the
    few manifest keys that differ."""
    clear_base_cache()
    reg = ModelRegistry(tmp_path / "models")
    X, y = make_brands([f"b{i:03d}" for i in range(150)], n_days=8, seed=4)
    glob = TabTuneRegressor(group_column="brand_id", time_column="date", **SMALL).fit(X, y)
    gref = reg.publish("bid", lambda d: glob.save(d / "model"), promote=True)
    base = TabTuneRegressor.load(gref.path / "model")
    est = adapted(base, *new_brand(n_days=40), strategy="refit")
    ref = reg.publish("bid", lambda d: est.save(d / "model"), brand="newco")
    full = est.save(tmp_path / "full")
    clear_base_cache()

    def size(folder):
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    stored = size(ref.path)
    oracle = size(full) + (ref.path / "manifest.json").stat().st_size
    assert stored < 0.5 * oracle
    assert abs(_full_copy_bytes(ref.path, stored, {}) - oracle) < 0.02 * oracle


def test_average_night_weights_the_three_nights_by_their_cycles() -> None:
    from benchmarks.refresh import EVERY_BRAND_FITS, _average_nights

    runs = [
        {"executor": "inline", "night": "first", "cpu": 280.0},
        {"executor": "inline", "night": EVERY_BRAND_FITS, "cpu": 70.0},
        {"executor": "inline", "night": "second", "cpu": 14.0},
        {"executor": "process", "night": "first", "cpu": 100.0},  # no second nights
    ]
    # one choosing night in 28; of the 27 others, every brand fits on one in 7
    expected = 280.0 / 28 + 27 / 28 * (14.0 * 6 / 7 + 70.0 / 7)
    assert _average_nights(runs, 28, 7) == {"inline": pytest.approx(expected)}
    assert _average_nights(runs, 28, 1)["inline"] == pytest.approx(10 + 27 / 28 * 70)
    assert _average_nights(runs, None, 7) == {}
