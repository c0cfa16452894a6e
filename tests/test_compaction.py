"""A brand's store files merged into one: reads see every row once, at every step of a merge,
and a merge interrupted at any step is completed or undone by the next append."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabtune.data import compaction
from tabtune.data.schema import sort_campaigns
from tabtune.data.store import CampaignStore, parquet_bytes
from tabtune.data.synth import simulate
from tabtune.errors import TabTuneInputError


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """The rows of the simulation's brand with rows on the most days."""
    obs = simulate(n_brands=3, n_days=60, seed=2).observations
    brand = obs.groupby("brand_id")["date"].nunique().idxmax()
    return obs[obs["brand_id"] == brand].reset_index(drop=True)


class Killed(BaseException):
    """The process killed at that point (nothing after it runs, nothing catches it)."""


def _days(rows: pd.DataFrame) -> list[pd.Timestamp]:
    return sorted(rows["date"].unique())


def _expected(rows: pd.DataFrame, upto: pd.Timestamp) -> pd.DataFrame:
    return sort_campaigns(rows[rows["date"] <= upto]).reset_index(drop=True)


def _same_rows(store: CampaignStore, rows: pd.DataFrame, upto: pd.Timestamp) -> None:
    got = store.read().reset_index(drop=True)
    want = _expected(rows, upto)
    assert len(got) == len(want)
    pd.testing.assert_frame_equal(
        got[list(want.columns)], want, check_dtype=False, check_categorical=False
    )


def _nightly(store: CampaignStore, rows: pd.DataFrame, nights: int) -> pd.Timestamp:
    """The first day, then one append per day: ``nights`` appends in all."""
    days = _days(rows)
    for day in days[:nights]:
        store.append(rows[rows["date"] == day])
    return days[nights - 1]


def test_nightly_appends_are_merged_once_a_brand_has_compact_at_files(tmp_path, rows) -> None:
    store = CampaignStore(tmp_path / "store")
    n = compaction.COMPACT_AT
    last = _nightly(store, rows, n - 1)
    brand = str(rows["brand_id"].iloc[0])
    assert len(store.files(brand)) == n - 1
    last = _nightly(store, rows, n)  # the same days again (skipped) and one more
    (merged,) = store.files(brand)  # the 16th file merged with the others
    assert merged.name.startswith("part-") and not list(merged.parent.glob(".*"))
    assert store.check() == []
    _same_rows(store, rows, last)
    last = _nightly(store, rows, n + 3)
    assert len(store.files(brand)) == 4  # the merged file and three new ones
    _same_rows(store, rows, last)


def _fill_to_one_below(store: CampaignStore, rows: pd.DataFrame) -> pd.Timestamp:
    return _nightly(store, rows, compaction.COMPACT_AT - 1)


def test_a_merge_interrupted_before_the_rename_leaves_the_old_files_in_charge(
    tmp_path, rows, monkeypatch
) -> None:
    store = CampaignStore(tmp_path / "store")
    _fill_to_one_below(store, rows)
    real_rename = Path.rename

    def crash(self, target):
        if self.name.startswith(".merging-"):
            raise Killed
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", crash)
    day = _days(rows)[compaction.COMPACT_AT - 1]
    with pytest.raises(Killed):
        store.append(rows[rows["date"] == day])
    monkeypatch.undo()
    folder = store.partition_dir(str(rows["brand_id"].iloc[0]))
    assert (folder / compaction.JOURNAL).is_file()  # interrupted after step 2
    assert store.check() == []
    _same_rows(store, rows, day)  # the new day's file was written before the merge
    # the next append undoes it, then merges again
    after = _days(rows)[compaction.COMPACT_AT]
    store.append(rows[rows["date"] == after])
    assert not (folder / compaction.JOURNAL).exists()
    assert not list(folder.glob(".merging-*"))
    _same_rows(store, rows, after)


def test_a_merge_interrupted_after_the_rename_hides_the_replaced_files(
    tmp_path, rows, monkeypatch
) -> None:
    store = CampaignStore(tmp_path / "store")
    _fill_to_one_below(store, rows)
    brand = str(rows["brand_id"].iloc[0])
    folder = store.partition_dir(brand)
    real_unlink = Path.unlink
    deleted: list[str] = []

    def crash(self, missing_ok=False):
        if self.parent == folder and self.name.startswith("part-") and len(deleted) == 3:
            raise Killed
        deleted.append(self.name)
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", crash)
    day = _days(rows)[compaction.COMPACT_AT - 1]
    with pytest.raises(Killed):
        store.append(rows[rows["date"] == day])
    monkeypatch.undo()
    on_disk = [f for f in folder.iterdir() if f.name.startswith("part-")]
    assert len(on_disk) > 1 and (folder / compaction.JOURNAL).is_file()
    assert len(store.files(brand)) == 1  # the merged file; the replaced ones are hidden
    assert store.check() == []
    _same_rows(store, rows, day)  # every row once
    after = _days(rows)[compaction.COMPACT_AT]
    store.append(rows[rows["date"] == after])
    assert not (folder / compaction.JOURNAL).exists()
    assert len([f for f in folder.iterdir() if f.name.startswith("part-")]) == 2
    _same_rows(store, rows, after)


def test_a_journal_that_does_not_describe_a_merge_hides_and_deletes_nothing(tmp_path, rows) -> None:
    """A damaged or edited journal (its ``final`` another stored file, a row count that does
    not match, or no JSON at all) is ignored by readers and removed by the next append,
    which deletes no data file."""
    import json

    store = CampaignStore(tmp_path / "store")
    last = _nightly(store, rows, 4)
    brand = str(rows["brand_id"].iloc[0])
    folder = store.partition_dir(brand)
    names = [f.name for f in store.files(brand)]
    journals = [
        {"final": names[0], "replaces": names[1:], "rows": 1},  # not the merge's row count
        {"final": names[0], "replaces": names[1:]},  # no row count
        {"final": "../" + names[0], "replaces": names[1:], "rows": 1},
    ]
    for entry in [*journals, "not json"]:
        text = entry if isinstance(entry, str) else json.dumps(entry)
        (folder / compaction.JOURNAL).write_text(text)
        assert [f.name for f in store.files(brand)] == names
        _same_rows(store, rows, last)
    day = _days(rows)[4]
    store.append(rows[rows["date"] == day])
    assert not (folder / compaction.JOURNAL).exists()
    assert set(names) <= {f.name for f in store.files(brand)}
    _same_rows(store, rows, day)


def test_a_merge_that_fails_is_logged_and_the_append_keeps_its_rows(
    tmp_path, rows, monkeypatch, caplog
) -> None:
    """The merge only saves reading time: a full disk while merging loses nothing and fails
    nothing; the files stay as they are and the next append merges them."""
    store = CampaignStore(tmp_path / "store")
    _fill_to_one_below(store, rows)
    brand = str(rows["brand_id"].iloc[0])
    real_rename = Path.rename

    def full(self, target):
        if self.name.startswith(".merging-"):
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", full)
    day = _days(rows)[compaction.COMPACT_AT - 1]
    result = store.append(rows[rows["date"] == day])
    monkeypatch.undo()
    assert result.rows_written == int((rows["date"] == day).sum())
    assert "were not merged" in caplog.text and "No space left" in caplog.text
    assert len(store.files(brand)) == compaction.COMPACT_AT
    _same_rows(store, rows, day)
    after = _days(rows)[compaction.COMPACT_AT]
    store.append(rows[rows["date"] == after])
    assert len(store.files(brand)) == 1
    _same_rows(store, rows, after)


def test_a_reader_that_listed_before_the_rename_reads_the_old_files(tmp_path, rows) -> None:
    """The journal hides the replaced files only from a listing that holds the merged file."""
    store = CampaignStore(tmp_path / "store")
    _fill_to_one_below(store, rows)
    brand = str(rows["brand_id"].iloc[0])
    folder = store.partition_dir(brand)
    names = {f.name for f in store.files(brand)}
    merged = compaction.compact(folder, store.files(brand), lambda t: parquet_bytes(t))
    assert merged is not None
    # the journal of that merge, put back as a crash after the rename would leave it
    import json

    replaced = sorted(names)
    entry = {
        "final": merged.name,
        "replaces": replaced,
        "rows": len(rows[rows["date"] <= _days(rows)[compaction.COMPACT_AT - 2]]),
    }
    (folder / compaction.JOURNAL).write_text(json.dumps(entry))
    assert compaction.superseded(folder, names) == set()  # listed before the rename
    assert compaction.superseded(folder, names | {merged.name}) == set(replaced)


def test_a_read_whose_listed_file_was_merged_away_lists_again(tmp_path, rows, monkeypatch) -> None:
    """A merge in another process may delete a file a read has just listed: the read lists
    the folder again (once) instead of failing."""
    store = CampaignStore(tmp_path / "store")
    last = _nightly(store, rows, 3)
    real = CampaignStore.dataset
    calls = []

    def stale(self, brands=None):
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError("part-20240101-20240101-00000000.parquet")
        return real(self, brands)

    monkeypatch.setattr(CampaignStore, "dataset", stale)
    _same_rows(store, rows, last)
    assert len(calls) == 2


def test_finish_removes_the_temporary_files_of_a_killed_merge(tmp_path) -> None:
    folder = tmp_path / "brand_id=acme"
    folder.mkdir()
    killed = [
        folder / "..merging-part-20240101-20240102-abcdef01.parquet.1a2b.tmp",
        folder / f".{compaction.JOURNAL}.3c4d.tmp",
    ]
    for path in killed:
        path.write_bytes(b"half")
    other = folder / ".part-20240103-20240103-12345678.parquet.5e6f.tmp"  # not the merge's
    other.write_bytes(b"x")
    compaction.finish(folder)
    assert not any(p.exists() for p in killed)
    assert other.exists()


def test_a_read_whose_listed_file_vanishes_twice_is_refused_with_the_fix(
    tmp_path, rows, monkeypatch
) -> None:
    store = CampaignStore(tmp_path / "store")
    store.append(rows)

    class Vanishing:
        def to_table(self, **kwargs):
            raise FileNotFoundError("part-20240101-20240101-00000000.parquet")

    monkeypatch.setattr(CampaignStore, "dataset", lambda self, brands=None: Vanishing())
    with pytest.raises(TabTuneInputError, match="read again"):
        store.read()
