"""The device benchmark: renders what it measured, and measures nothing without a GPU."""

from __future__ import annotations

import pytest

from benchmarks import device
from tabtune.boosting import cuda_available

FIGURES = {
    "environment": {"gpu": "GPU 0: test", "cores": 16, "xgboost": "3.4.1", "cupy": "14.2.0"},
    "large": {
        "rows": 1000,
        "rounds": 200,
        "fit_cpu_s": 3.0,
        "fit_cuda_s": 1.5,
        "predict_cpu_s": 0.8,
        "predict_cuda_s": 0.1,
        "rel_rms_cpu_vs_cuda": 0.01,
        "roundtrip_cuda_bit_identical": True,
        "cuda_model_served_on_cpu_max_abs_diff": 1e-5,
    },
    "scaling": {
        "rows": [{"rows": 4_000_000, "rounds": 50, "train_cpu_s": 3.0, "train_cuda_s": 1.0}]
    },
    "simulated": {"error": "Traceback ...\nValueError: boom"},
}


def test_render_reports_ratios_and_failures():
    text = device.render(FIGURES, "python -m benchmarks.device")
    assert "fit CPU 3.00 s vs CUDA 1.50 s (2.0x)" in text
    assert "| 4,000,000 | 50 | 3.00 | 1.00 | 3.0x |" in text
    assert "simulated: failed: `ValueError: boom`" in text


@pytest.mark.skipif(cuda_available("xgboost"), reason="this machine has a GPU")
def test_without_a_gpu_nothing_is_measured_or_written(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("wrote figures without a GPU")

    monkeypatch.setattr(device, "write_section", refuse)
    monkeypatch.setattr(device, "write_raw", refuse)
    assert device.main([]) == 0
    assert "nothing measured" in capsys.readouterr().out
