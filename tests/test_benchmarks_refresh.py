"""The refresh benchmark's scaling table (benchmarks/refresh.py), from raw figures."""

from __future__ import annotations

from benchmarks.refresh import DEFAULT_BRANDS, raw_name, render_scaling


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
