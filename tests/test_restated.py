"""Restated rows: keys the store holds, exported again with other values (tabtune.data.restated)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabtune.cli import EXIT_OK, main
from tabtune.data.load import load_exports
from tabtune.data.restated import restated_days, stored_differently, values_differ
from tabtune.data.schema import validate_campaigns
from tabtune.data.store import CampaignStore

REPO = Path(__file__).resolve().parents[1]


def _rows(brands: tuple[str, ...] = ("acme", "globex"), days: int = 5) -> pd.DataFrame:
    dates = pd.date_range("2024-03-01", periods=days)
    return pd.DataFrame(
        [
            {
                "brand_id": b,
                "date": d,
                "channel": ch,
                "spend": 10.0 + i,
                "clicks": 5,
                "conversions": 1,
                "revenue": 20.0,
            }
            for b in brands
            for i, d in enumerate(dates)
            for ch in ("search", "social")
        ]
    )


def _checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def test_values_differ_missing_tolerance_and_text() -> None:
    new = pd.Series([1.0, np.nan, np.nan, 2.0, 3.0, 1e6 * (1 + 1e-12)])
    old = pd.Series([1.0, np.nan, 4.0, np.nan, 3.5, 1e6])
    assert values_differ(new, old).tolist() == [False, False, True, True, True, False]
    text = values_differ(pd.Series(["a", "b", None]), pd.Series(["a", "c", None]))
    assert text.tolist() == [False, True, False]


def test_stored_differently_marks_exactly_the_changed_rows(tmp_path: Path) -> None:
    store = CampaignStore(tmp_path / "store")
    stored = _rows()
    store.append(stored)
    again = validate_campaigns(pd.concat([stored, _rows(("initech",))], ignore_index=True))
    assert not stored_differently(store, again).any()  # same values, and new keys

    restated = again.copy()
    last = restated["date"] == restated["date"].max()
    change = last & (restated["brand_id"] == "acme") & (restated["channel"] == "search")
    restated.loc[change, "revenue"] = 55.0  # conversions attributed later
    restated.loc[restated["brand_id"] == "globex", "clicks"] += 0  # unchanged
    mask = stored_differently(store, restated)
    assert mask.tolist() == change.tolist()
    assert restated_days(restated[mask]) == {"acme": ["2024-03-05"]}
    # the mask follows the rows' order, whatever it is
    shuffled = restated.sample(frac=1.0, random_state=0)
    assert stored_differently(store, shuffled).tolist() == change.loc[shuffled.index].tolist()


def test_stored_differently_on_an_empty_store(tmp_path: Path) -> None:
    rows = validate_campaigns(_rows())
    assert not stored_differently(CampaignStore(tmp_path / "none"), rows).any()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.yaml"
    cfg = {"data": {"store": "store"}, "tasks": {"bid": str(REPO / "configs/tasks/bid.yaml")}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_load_reports_a_day_loaded_partly_then_exported_complete(
    config: Path, tmp_path: Path, capsys
) -> None:
    rows = _rows()
    last = rows["date"] == rows["date"].max()
    partial = rows[last].assign(spend=rows.loc[last, "spend"] / 2, clicks=2)
    rows[~last].to_csv("history.csv", index=False)
    partial.to_csv("partial.csv", index=False)
    rows[last].to_csv("complete.csv", index=False)
    for name in ("history.csv", "partial.csv"):
        assert main(["-c", str(config), "load", name]) == EXIT_OK
    capsys.readouterr()
    before = _checksums(tmp_path / "store")

    assert main(["-c", str(config), "load", "complete.csv"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "4 row(s) of the files are already stored with other values" in out
    assert "acme (2024-03-05)" in out and "globex (2024-03-05)" in out
    assert "the stored values were kept" in out and "load all of its exports again" in out
    assert _checksums(tmp_path / "store") == before  # kept, as the message says

    # the library summary says the same; the partial file itself is no restatement
    from tabtune.config import load_config

    data = load_config(config).data
    summary = load_exports(["complete.csv"], data, dry_run=True)
    assert summary.rows_restated == 4 and summary.restated == {
        "acme": ["2024-03-05"],
        "globex": ["2024-03-05"],
    }
    same = load_exports(["partial.csv"], data, dry_run=True)
    assert same.rows_already_stored == 4 and same.rows_restated == 0 and not same.restated


def test_refresh_append_warns_about_restated_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tabtune.config import default_config
    from tabtune.refresh.run import _warn_restated

    cfg = default_config().model_copy(
        update={"data": default_config().data.model_copy(update={"store": tmp_path / "s"})}
    )
    rows = _rows()
    CampaignStore(cfg.data.store).append(rows)
    changed = rows.assign(revenue=np.where(rows["brand_id"] == "globex", 99.0, rows["revenue"]))
    with caplog.at_level(logging.WARNING, logger="tabtune.refresh"):
        assert _warn_restated(cfg, rows) == []
        assert not caplog.records
        notes = _warn_restated(cfg, changed)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("10 new row(s) were already stored with other values")
    assert "globex: 2024-03-01, 2024-03-02" in message and "acme" not in message
    assert notes == [message]  # the note the run's report carries
