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
from tabtune.data import compaction
from tabtune.data.load import load_exports
from tabtune.data.restated import (
    replace_restated,
    restated_days,
    stored_differently,
    values_differ,
)
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
    new = pd.Series([1.0, np.nan, np.nan, 2.0, 3.0, 1e6 * (1 + 1e-15), 12_345_678.91])
    old = pd.Series([1.0, np.nan, 4.0, np.nan, 3.5, 1e6, 12_345_678.90])
    assert values_differ(new, old).tolist() == [False, False, True, True, True, False, True]
    # integers exactly: one impression in two billion is a restatement
    big = pd.Series([2_000_000_000, 7], dtype="int64")
    assert values_differ(big + 1, big).tolist() == [True, True]
    assert values_differ(big, big.astype("Int64")).tolist() == [False, False]
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


def _found(cfg, rows: pd.DataFrame) -> pd.DataFrame:
    """What a refresh's append finds restated among its new rows (before appending them)."""
    valid = validate_campaigns(rows)
    return valid[stored_differently(CampaignStore(cfg.data.store), valid)]


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
    assert "the stored values were kept" in out and "set data.restated_rows: replace" in out
    # two platforms' "Search" rows meet on one key: replace is not their fix (red-team)
    assert "another source's rows" in out and "data.constants.channel" in out
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
        assert _warn_restated(cfg, _found(cfg, rows)) == []
        assert not caplog.records
        notes = _warn_restated(cfg, _found(cfg, changed))
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("10 new row(s) were already stored with other values")
    assert "set data.restated_rows: replace" in message
    assert "globex: 2024-03-01, 2024-03-02" in message and "acme" not in message
    assert notes == [message]  # the note the run's report carries


# -- data.restated_rows: replace ---------------------------------------------------------

_KEY = ["brand_id", "date", "channel"]


def _daily_store(root: Path, rows: pd.DataFrame) -> CampaignStore:
    """A store appended one day at a time (one file per brand and day)."""
    store = CampaignStore(root)
    for day in sorted(rows["date"].unique()):
        store.append(rows[rows["date"] == day])
    return store


def _oracle(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The stored rows with the new rows' values where the keys match (pandas, by key)."""
    out = stored.set_index(_KEY)
    out.update(new.set_index(_KEY)[out.columns.intersection(new.columns)])
    return out.reset_index().sort_values(_KEY).reset_index(drop=True)


def _stored(store: CampaignStore) -> pd.DataFrame:
    got = store.read().astype({"brand_id": str})
    return got.sort_values(_KEY).reset_index(drop=True)


def _restated(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of the last three days, some with other values, plus a key not stored."""
    new = rows[rows["date"] >= rows["date"].max() - pd.Timedelta(days=2)].copy()
    late = new["channel"] == "search"
    new.loc[late, "conversions"] = 3
    new.loc[late, "revenue"] = new.loc[late, "revenue"] * 2 + 1
    extra = new.iloc[:1].assign(channel="display")  # not stored: left to append
    return pd.concat([new, extra], ignore_index=True)


def test_replace_restated_stores_exactly_the_new_values(tmp_path: Path) -> None:
    rows = _rows(days=6)
    store = _daily_store(tmp_path / "store", rows)
    before = _stored(store)
    new = validate_campaigns(_restated(rows))
    result = replace_restated(store, new)
    changed = stored_differently(CampaignStore(tmp_path / "none"), new)  # empty store: none
    assert not changed.any()
    assert result.rows_replaced == 6  # 3 days x 2 brands, search only
    assert result.days == {
        b: ["2024-03-04", "2024-03-05", "2024-03-06"] for b in ("acme", "globex")
    }
    assert len(result.files) == 2  # one rewritten file per brand
    want = _oracle(before, new[new["channel"] != "display"].astype({"brand_id": str}))
    got = _stored(store)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    assert "display" not in set(got["channel"])  # a key not stored is not added
    assert len(store.files("acme")) == 4  # days 1-3 as they were, days 4-6 in one file
    checksums = _checksums(store.root)
    assert replace_restated(store, new).rows_replaced == 0  # the same values again: nothing
    assert _checksums(store.root) == checksums


class Killed(BaseException):
    """The process killed at that point (nothing after it runs, nothing catches it)."""


@pytest.mark.parametrize("step", ["rename", "delete"])
def test_a_replacement_cut_short_reads_old_or_new_and_is_finished_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    rows = _rows(days=6)
    store = _daily_store(tmp_path / "store", rows)
    before = _stored(store)
    new = validate_campaigns(_restated(rows))
    want = _oracle(before, new[new["channel"] != "display"].astype({"brand_id": str}))
    real_rename, real_unlink = Path.rename, Path.unlink

    def rename(self: Path, target: Path) -> Path:
        if step == "rename" and self.name.startswith(".merging-"):
            raise Killed
        return real_rename(self, target)

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if step == "delete" and self.name.startswith("part-"):
            raise Killed
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "rename", rename)
    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(Killed):
        replace_restated(store, new)
    monkeypatch.undo()
    got = _stored(store)
    # killed in the first brand's (acme's) rewrite: before its rename its old values are
    # read, after it its new ones (never a mix); globex was not reached
    expected = before if step == "rename" else want.where(want["brand_id"] == "acme", before)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False)
    folder = store.root / "brand_id=acme"
    assert (folder / compaction.JOURNAL).exists()  # journalled before the rename
    assert bool(list(folder.glob(".merging-*"))) == (step == "rename")
    replace_restated(store, new)  # finishes or undoes the first, then replaces what is left
    pd.testing.assert_frame_equal(_stored(store)[want.columns], want, check_dtype=False)
    assert not list(store.root.rglob(compaction.JOURNAL))
    assert not list(store.root.rglob(".merging-*"))


def test_load_replaces_restated_rows_when_the_config_says_so(
    config: Path, tmp_path: Path, capsys
) -> None:
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["restated_rows"] = "replace"
    config.write_text(yaml.safe_dump(cfg))
    rows = _rows()
    last = rows["date"] == rows["date"].max()
    rows[~last].to_csv("history.csv", index=False)
    rows[last].assign(spend=rows.loc[last, "spend"] / 2, clicks=2).to_csv("p.csv", index=False)
    rows[last].to_csv("complete.csv", index=False)
    for name in ("history.csv", "p.csv"):
        assert main(["-c", str(config), "load", name]) == EXIT_OK
    before = _checksums(tmp_path / "store")
    capsys.readouterr()

    assert main(["-c", str(config), "load", "complete.csv", "--dry-run"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "would replace 4 of them by their new values" in out and "warning" not in out
    assert _checksums(tmp_path / "store") == before  # a dry run writes nothing

    assert main(["-c", str(config), "load", "complete.csv"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "replaced 4 of them by their new values" in out
    stored = _stored(CampaignStore(tmp_path / "store"))
    want = _oracle(rows.astype({"brand_id": str}), rows)
    pd.testing.assert_frame_equal(stored[want.columns], want, check_dtype=False)


def test_refresh_append_replaces_restated_rows_when_the_config_says_so(tmp_path: Path) -> None:
    from tabtune.config import default_config
    from tabtune.refresh.run import _warn_restated

    data = default_config().data.model_copy(
        update={"store": tmp_path / "s", "restated_rows": "replace"}
    )
    cfg = default_config().model_copy(update={"data": data})
    rows = _rows()
    CampaignStore(cfg.data.store).append(rows)
    changed = rows.assign(revenue=np.where(rows["brand_id"] == "globex", 99.0, rows["revenue"]))
    assert _warn_restated(cfg, _found(cfg, rows)) == []
    notes = _warn_restated(cfg, _found(cfg, changed))
    assert len(notes) == 1 and notes[0].startswith("10 stored row(s) replaced")
    got = _stored(CampaignStore(cfg.data.store))
    assert (got.loc[got["brand_id"] == "globex", "revenue"] == 99.0).all()
    assert (got.loc[got["brand_id"] == "acme", "revenue"] == 20.0).all()


def _replace_config(config: Path, extra: list[str]) -> None:
    cfg = yaml.safe_load(config.read_text())
    cfg["data"].update(restated_rows="replace", extra_columns=extra)
    config.write_text(yaml.safe_dump(cfg))


def test_restated_values_the_store_cannot_hold_are_refused_before_any_write(
    config: Path, tmp_path: Path, capsys
) -> None:
    _replace_config(config, ["cnt"])
    rows = _rows().assign(cnt=1)
    last = rows["date"] == rows["date"].max()
    rows[~last].to_csv("history.csv", index=False)
    assert main(["-c", str(config), "load", "history.csv"]) == EXIT_OK
    before = _checksums(tmp_path / "store")
    # a new day, and two stored rows whose integer column now holds 1.5
    mixed = pd.concat([rows[last], rows[~last].iloc[:2].assign(cnt=1.5)])
    mixed.to_csv("mixed.csv", index=False)
    capsys.readouterr()
    for dry in ([], ["--dry-run"]):
        assert main(["-c", str(config), "load", "mixed.csv", *dry]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "data.restated_rows: keep" in err and "Nothing was written" in err
        assert "Traceback" not in err
        assert _checksums(tmp_path / "store") == before  # not even the new day


def test_a_number_restating_a_text_value_is_replaced_once(config: Path, capsys) -> None:
    _replace_config(config, ["note"])
    rows = _rows().assign(note="pending")
    rows.to_csv("first.csv", index=False)
    rows.assign(note=1.0).to_csv("again.csv", index=False)  # read back as a float column
    assert main(["-c", str(config), "load", "first.csv"]) == EXIT_OK
    capsys.readouterr()
    assert main(["-c", str(config), "load", "again.csv"]) == EXIT_OK
    assert "replaced 20 of them" in " ".join(capsys.readouterr().out.split())
    assert main(["-c", str(config), "load", "again.csv"]) == EXIT_OK  # the values now stored
    out = " ".join(capsys.readouterr().out.split())
    assert "replaced" not in out and "20 already stored (same row key" in out


def test_refresh_refuses_restated_values_the_store_cannot_hold_before_its_append(
    tmp_path: Path,
) -> None:
    from tabtune.config import default_config
    from tabtune.errors import ContractError
    from tabtune.refresh.run import _refresh_session

    data = default_config().data.model_copy(
        update={"store": tmp_path / "s", "restated_rows": "replace", "extra_columns": ["cnt"]}
    )
    cfg = default_config().model_copy(update={"data": data, "models_dir": tmp_path / "m"})
    rows = _rows().assign(cnt=1)
    last = rows["date"] == rows["date"].max()
    CampaignStore(cfg.data.store).append(rows[~last], extra_columns=["cnt"])
    before = _checksums(cfg.data.store)
    new = pd.concat([rows[last], rows[~last].iloc[:1].assign(cnt=1.5)])
    with pytest.raises(ContractError, match="data.restated_rows: keep"):
        with _refresh_session(cfg, "bid", new, "inline"):
            pass
    assert _checksums(cfg.data.store) == before  # the new day was not appended either
