"""The Facebook ads benchmark: the real export loaded through its config alone and every CLI step
run on it (when ``../shared/data`` exists), and the skip message when it does not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import facebook as bench  # noqa: E402


def test_the_config_is_transforms_and_mapping_only():
    """No code in the config: the export is read by the mapping and declarative transforms."""
    data = yaml.safe_load(bench.CONFIG.read_text(encoding="utf-8"))["data"]
    assert data["constants"] == {"channel": "facebook"}
    assert data["date_format"] == "%d-%m-%Y"
    assert data["columns"]["brand_id"] == "xyz_campaign_id"
    assert data["columns"]["revenue"] == "Approved_Conversion"
    assert not (REPO / "data" / "facebook").exists()  # the benchmark's store is temporary


def test_main_skips_with_a_message_without_the_shared_data(monkeypatch, tmp_path, capsys):
    written: list[str] = []
    monkeypatch.setattr(bench, "EXPORT", tmp_path / "absent.csv")
    monkeypatch.setattr(bench, "write_section", lambda name, body: written.append(name))
    monkeypatch.setattr(bench, "write_raw", lambda name, payload: written.append(name))
    assert bench.main([]) == 0
    assert "skipped" in capsys.readouterr().out and written == []


@pytest.mark.skipif(not bench.available(), reason="../shared/data/facebook_ads is absent")
def test_the_real_export_runs_through_every_step(monkeypatch, tmp_path):
    result = bench.run_facebook(workdir=tmp_path)

    steps = {s["name"]: s for s in result["steps"]}
    assert list(steps) == [
        "load",
        "check",
        "pretrain bid",
        "pretrain budget",
        "finetune bid",
        "finetune budget",
        "bids",
        "budget",
    ]
    assert all(s["code"] == 0 for s in steps.values()), steps
    assert steps["load"]["command"] == (
        "tabtune load ../shared/data/facebook_ads/KAG_conversion_data.csv"
    )
    load, check = result["load"], result["check"]
    assert load["rows_read"] == load["rows_stored"] == 1143 and load["rows_skipped"] == 0
    assert any("more conversions than clicks" in note for note in load["notes"])
    assert check["rows_per_brand"] == {"1178": 625, "936": 464, "916": 54}
    assert check["global_served"] == ["916"] and check["one_channel"] == ["1178", "916", "936"]
    assert (check["first"], check["last"]) == ("2023-08-01", "2023-08-31")

    assert result["models"]["bid"]["global"]["rows"] > 0
    assert result["models"]["bid"]["metric"] == "tweedie deviance"
    outputs = result["outputs"]
    assert outputs["date"] == "2023-09-01"
    assert set(outputs["bids"]) == {"1178", "936", "916"}
    assert all(b["reference"] == ["observed_cpc"] for b in outputs["bids"].values())
    assert all(abs(b["mean_change"]) <= 0.3 + 1e-9 for b in outputs["bids"].values())
    assert set(outputs["budgets"]) == {"1178", "936", "916"}
    assert all(p["change"] == pytest.approx(0.0) for p in outputs["budgets"].values())

    body = bench.render(result)
    assert "Approved_Conversion" in body and "+0% by construction" in body
    assert "observed cost per click" in body and "1,143 rows read" in body
    assert "| `tabtune bids` | 0 |" in body
    assert not (REPO / "data" / "facebook").exists()  # nothing written into the repository

    # main() writes that body as the "facebook" section, and the raw figures beside it
    sections: dict[str, str] = {}
    raw: dict[str, dict] = {}
    monkeypatch.setattr(bench, "run_facebook", lambda: result)
    monkeypatch.setattr(bench, "write_section", lambda name, text: sections.update({name: text}))
    monkeypatch.setattr(bench, "write_raw", lambda name, payload: raw.update({name: payload}))
    assert bench.main([]) == 0
    assert sections == {"facebook": body} and raw == {"facebook": result}
