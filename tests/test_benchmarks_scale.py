"""The scale benchmark: its wrapper measures a child process, and it renders what it got."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks import scale


def test_the_wrapper_measures_its_one_child(tmp_path: Path):
    out = tmp_path / "usage.json"
    code = scale._measure(str(out), [sys.executable, "-c", "x = bytearray(200_000_000)"])
    usage = json.loads(out.read_text())
    assert code == 0 and usage["returncode"] == 0
    assert usage["peak_rss_gb"] >= 0.2  # the child's 200 MB, not the wrapper's
    assert usage["wall"] > 0 and usage["cpu"] >= 0


def test_render_and_dask_hook():
    out = {
        "machine": "test box",
        "notes": ["dask: skipped (pipeline.pretrain has no `scheduler` keyword yet)"],
        "results": [
            {
                "rows": 1_000_000, "brands": 217, "mode": "batched", "wall": 61.2, "cpu": 100.0,
                "peak_rss_gb": 0.91, "holdout": 0.2, "truth_error": 0.1,
                "synth": {"wall": 20.0, "peak_rss_gb": 1.5},
            }
        ],
    }  # fmt: skip
    text = scale.render(out, "python -m benchmarks.scale")
    assert "| 1.00M | 217 | batched | 61 | 100 | 0.91 | 0.2000 | 0.100 | 20 s / 1.50 GB |" in text
    assert "dask: skipped" in text
    assert isinstance(scale._dask_available(), bool)
