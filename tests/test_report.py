"""Tests for tabtune.report: report.json/report.html, embedded plots, summaries, the CLI."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tabtune.cli.exit_codes import EXIT_PARTIAL
from tabtune.cli.report import run_report_cli
from tabtune.errors import TabTuneInputError
from tabtune.report import (
    find_run,
    load_history,
    render_html,
    run_dir_for,
    served_score,
    summary_lines,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def brand(brand_id: str, status: str, rows: int, champion, challenger, glob, **extra) -> dict:
    served = {"promoted": "challenger", "kept": "champion", "cold_start": "global"}.get(status)
    return {
        "brand_id": brand_id,
        "status": status,
        "reason": extra.pop("reason", f"{status} because"),
        "rows": rows,
        "strategy": "refit" if challenger is not None else None,
        "scores": {"champion": champion, "challenger": challenger, "global": glob},
        "model_id": extra.pop("model_id", None),
        "served_by": served,
        "outputs": {},
        "notes": extra.pop("notes", []),
        "timings": {},
        "seconds": extra.pop("seconds", 1.0),
    }


def run_report(date: str, scale: float = 1.0) -> dict:
    return {
        "date": date,
        "task": "bid",
        "started_at": f"{date}T01:00:00+00:00",
        "finished_at": f"{date}T01:01:00+00:00",
        "global_model": "global/bid/v0001",
        "brands": [
            brand("b0", "promoted", 2000, 4.0 * scale, 3.0 * scale, 5.0 * scale, seconds=3.5),
            brand("b1", "kept", 500, 2.0 * scale, 2.1 * scale, 2.5 * scale, seconds=0.5),
            brand("b2", "cold_start", 40, None, None, 7.0 * scale, seconds=0.1),
            brand(
                "b3",
                "failed",
                0,
                None,
                None,
                None,
                reason="ValueError: <script>alert(1)</script>",
                seconds=0.2,
            ),
        ],
        "summary": {"brands": 4, "median_uplift_vs_global": 0.2},
        "timings": {"load": 1.0, "train": 2.0, "evaluate": 0.5, "write": 0.3, "wall": 60.0},
        "notes": [],
    }


def embedded_pngs(text: str) -> list[bytes]:
    return [
        base64.b64decode(m)
        for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    ]


def test_write_report_writes_json_and_html_with_embedded_plots(tmp_path: Path) -> None:
    history = [run_report("2024-04-27", 1.2), run_report("2024-04-28", 1.1)]
    report = run_report("2024-04-29")
    paths = write_report(tmp_path / "run", report, history=[*history, report])

    assert json.loads(paths["json"].read_text()) == report
    text = paths["html"].read_text()
    assert text.startswith("<!DOCTYPE html>")
    images = embedded_pngs(text)
    assert len(images) == 2  # error trend + uplift by size
    assert all(img.startswith(PNG_MAGIC) and len(img) > 1000 for img in images)
    # self-contained: no external resources
    assert "http://" not in text and "https://" not in text
    # user-controlled text is escaped
    assert "<script>" not in text and "&lt;script&gt;" in text
    for b in ("b0", "b1", "b2", "b3"):
        assert f"<td>{b}</td>" in text
    # the brand table's loss change has the summary's sign (it showed +40% where the summary
    # said -20%: negative is a lower loss in both; numbers audit)
    assert "loss change vs global (-: lower)" in text and "-20.00%" in text
    assert ">+40.0%<" not in text and ">-40.00%<" in text
    # no temporary files left behind
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["report.html", "report.json"]


def test_html_without_matplotlib_keeps_tables(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import raises ImportError
    text = render_html(run_report("2024-04-29"))
    assert "pip install tabtune[plot]" in text
    assert not embedded_pngs(text)
    assert "<td>b0</td>" in text


def test_html_with_no_scored_brand_says_so() -> None:
    report = run_report("2024-04-29")
    report["brands"] = [brand("x", "failed", 0, None, None, None)]
    text = render_html(report)
    assert not embedded_pngs(text)
    assert "no scored brands to plot" in text


def test_summary_lines_counts_slowest_and_failures() -> None:
    lines = summary_lines(run_report("2024-04-29"))
    text = "\n".join(lines)
    assert "refresh bid 2024-04-29: 4 brands" in lines[0]
    assert "promoted 1, kept 1, cold_start 1, skipped 0, failed 1" in text
    assert "slowest: b0 3.5s" in text
    assert "FAILED (1)" in text and "b3: ValueError" in text
    assert "-20.00%" in text  # median loss change vs global (negative: lower)
    assert "(negative: a lower loss)" in text
    # b0 and b1 have out-of-time scores; the cold start (in sample) and the failure do not
    assert "(over 2 brands)" in text  # none served by the global model


def test_a_brand_without_seconds_or_rows_is_summarised_and_rendered() -> None:
    """A null 'seconds' passed the report's shape check, then `tabtune report` crashed on it
    with a traceback (registry red-team)."""
    report = run_report("2024-04-29")
    report["brands"][0]["seconds"] = None
    report["brands"][1]["rows"] = None
    text = "\n".join(summary_lines(report))
    assert "slowest:" in text
    assert "<table" in render_html(report)


def test_summary_says_how_many_brands_the_median_covers() -> None:
    report = run_report("2024-04-29")
    served_by_global = brand("b4", "kept", 300, 2.0, None, 2.0)
    served_by_global["served_by"] = "global"
    report["brands"].append(served_by_global)
    unchanged = brand("b5", "skipped", 300, 1.0, None, 2.0)  # scored in sample: left out
    report["brands"].append(unchanged)
    report["summary"]["median_uplift_vs_global"] = 0.0
    text = "\n".join(summary_lines(report))
    assert "+0.00% (over 3 brands; the 1 the global model serves" in text


def test_served_score_follows_the_serving_model() -> None:
    r = run_report("2024-04-29")["brands"]
    assert served_score(r[0]) == 3.0  # promoted: challenger
    assert served_score(r[1]) == 2.0  # kept: champion
    assert served_score(r[2]) == 7.0  # cold start: global
    assert served_score(r[3]) is None


def test_run_dirs_history_and_find_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert run_dir_for(runs, "2024-04-29") == runs / "2024-04-29"
    assert run_dir_for(runs, "2024-04-29", "budget") == runs / "2024-04-29" / "budget"
    with pytest.raises(TabTuneInputError, match=r"no refresh runs.*--date D` first"):
        find_run(runs)
    with pytest.raises(TabTuneInputError, match="`tabtune refresh --date D --task budget` first"):
        find_run(runs, "budget")  # it suggested the bid task's command
    for date in ("2024-04-28", "2024-04-27"):
        write_report(run_dir_for(runs, date), run_report(date))
    (runs / "notes").mkdir()  # not a run
    assert find_run(runs) == runs / "2024-04-28"
    assert find_run(runs, date="2024-04-27") == runs / "2024-04-27"
    with pytest.raises(TabTuneInputError, match="2024-04-27, 2024-04-28"):
        find_run(runs, date="2024-01-01")
    assert [h["date"] for h in load_history(runs)] == ["2024-04-27", "2024-04-28"]
    assert [h["date"] for h in load_history(runs, upto="2024-04-27")] == ["2024-04-27"]
    assert load_history(runs, "budget") == []


def test_report_cli_prints_latest_and_rewrites_missing_html(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    write_report(run_dir_for(runs, "2024-04-29"), run_report("2024-04-29"))
    (runs / "2024-04-29" / "report.html").unlink()
    cfg = SimpleNamespace(runs_dir=runs)
    # a night with failed brands exits 3, as the refresh did: cron monitors read exit codes
    assert run_report_cli(cfg, SimpleNamespace(date=None)) == EXIT_PARTIAL
    out = capsys.readouterr().out
    assert "refresh bid 2024-04-29" in out and "FAILED (1)" in out
    assert (runs / "2024-04-29" / "report.html").is_file()
    fine = run_report("2024-04-30")
    fine["brands"] = [b for b in fine["brands"] if b["status"] != "failed"]
    write_report(run_dir_for(runs, "2024-04-30"), fine)
    assert run_report_cli(cfg, SimpleNamespace(date=None)) == 0


def test_report_cli_prints_the_summary_when_the_html_cannot_be_written(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    # a full disk: `tabtune report` exited 2 on rewriting report.html, and showed nothing
    import tabtune.report as report_module

    runs = tmp_path / "runs"
    write_report(run_dir_for(runs, "2024-04-29"), run_report("2024-04-29"))
    (runs / "2024-04-29" / "report.html").unlink()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module, "write_report", full_disk)
    code = run_report_cli(SimpleNamespace(runs_dir=runs), SimpleNamespace(date=None))
    assert code == EXIT_PARTIAL and "FAILED (1)" in capsys.readouterr().out


def test_report_cli_on_an_unfinished_run_says_how_to_resume(tmp_path: Path, capsys) -> None:
    run = tmp_path / "runs" / "2024-04-30"
    run.mkdir(parents=True)
    state = {
        "format_version": 1,
        "date": "2024-04-30",
        "task": "bid",
        "started_at": "t0",
        "finished_at": None,
        "brands": {"b0": {"status": "promoted"}, "b1": {"status": "failed"}},
    }
    (run / "state.json").write_text(json.dumps(state))
    # brands done since the state was last written whole are in its journal
    line = {"run": "t0", "record": {"brand_id": "b2", "status": "kept"}}
    (run / "state.journal").write_text(json.dumps(line) + "\n")
    cfg = SimpleNamespace(runs_dir=tmp_path / "runs")
    assert run_report_cli(cfg, SimpleNamespace(date="2024-04-30")) == EXIT_PARTIAL
    out = capsys.readouterr().out
    assert "not finished" in out and "refresh --date 2024-04-30" in out
    assert "3 brands recorded" in out
    assert "promoted 1" in out and "failed 1" in out and "kept 1" in out
    # a later night finished since: it no longer resumes, and the report says so (review)
    write_report(run_dir_for(tmp_path / "runs", "2024-05-01"), run_report("2024-05-01"))
    assert run_report_cli(cfg, SimpleNamespace(date="2024-04-30")) == EXIT_PARTIAL
    out = " ".join(capsys.readouterr().out.split())
    assert "2024-05-01 has finished since, so it no longer resumes" in out
    assert f"move {run.absolute()} out of" in out and "to resume it" not in out


def test_summary_and_plot_name_the_metric_of_the_run() -> None:
    from tabtune.refresh import build_report, new_state
    from tabtune.report import metric_of, summary_lines

    state = new_state(
        dt.date(2024, 1, 2), "bid", started_at="t", global_model="g", metric="tweedie deviance"
    )
    state["brands"] = {
        "a": {
            "brand_id": "a",
            "status": "promoted",
            "served_by": "challenger",
            "scores": {"champion": 2.0, "challenger": 1.0, "global": 2.0},
        }
    }
    report = build_report(state).to_dict()
    assert report["metric"] == "tweedie deviance" == metric_of(report)
    assert any("median change in tweedie deviance" in line for line in summary_lines(report))
    assert metric_of({}) == "holdout error"  # reports written before the metric was named
