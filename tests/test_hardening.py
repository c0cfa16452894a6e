"""Fault and bad-input matrix for the input boundary (issue 15): store, registry, leaf cache,
config files.

Each case asserts the exception (or exit code), the message, and that nothing was written
(the sha256 of every file of the working folder before and after). Property-based tests
(hypothesis) cover the contract validator and the store's append.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabtune.boosting.base import read_model_dir, write_model_dir
from tabtune.cli import EXIT_BAD_INPUT, main
from tabtune.config import load_config
from tabtune.data.limits import (
    EARLIEST_DATE,
    MAX_FUTURE_DAYS_ENV,
    brand_id_problem,
    check_brand_id,
    latest_allowed_date,
)
from tabtune.data.schema import validate_campaigns
from tabtune.data.store import CampaignStore
from tabtune.errors import ConfigError, ContractError, ModelIntegrityError, TabTuneInputError
from tabtune.integrity import SEAL_KEY
from tabtune.leaf_cache import LeafCache
from tabtune.registry import ModelRegistry
from tabtune.safe_yaml import MAX_YAML_BYTES, load_yaml_file

TODAY = dt.datetime.now(dt.UTC).date()


def digest_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden ones too)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def rows(
    brands=("acme", "b-01"),
    days: int = 3,
    start: str = "2024-01-01",
    channels=("search", "social"),
    devices=("desktop", "mobile"),
) -> pd.DataFrame:
    """Contract rows: brand x day x channel x device, deterministic values."""
    index = pd.MultiIndex.from_product(
        [list(brands), pd.date_range(start, periods=days, freq="D"), channels, devices],
        names=["brand_id", "date", "channel", "device"],
    )
    frame = index.to_frame(index=False)
    n = len(frame)
    frame["spend"] = np.arange(n, dtype=float) + 1.0
    frame["clicks"] = np.arange(n) % 7 + 1
    frame["conversions"] = frame["clicks"] // 2
    frame["revenue"] = frame["spend"] * 3.0
    return frame


@pytest.fixture
def store(tmp_path: Path) -> CampaignStore:
    return CampaignStore(tmp_path / "campaigns")


@pytest.fixture
def filled(store: CampaignStore) -> CampaignStore:
    store.append(rows())
    return store


# ================================================================== appends keyed by row key


def test_late_rows_of_a_day_are_added(store: CampaignStore) -> None:
    full = rows(days=1)
    part = full[full["device"] == "desktop"]
    first = store.append(part)
    assert first.rows_written == len(part)
    second = store.append(full)  # the whole day, including the rows already stored
    assert (second.rows_written, second.rows_skipped) == (len(full) - len(part), len(part))
    pd.testing.assert_frame_equal(store.read(), validate_campaigns(full))


def test_exact_repeat_writes_nothing(filled: CampaignStore) -> None:
    before = digest_tree(filled.root)
    result = filled.append(rows())
    assert (result.rows_written, result.rows_skipped, result.files) == (0, len(rows()), [])
    assert digest_tree(filled.root) == before


def test_restated_rows_keep_the_stored_values(filled: CampaignStore) -> None:
    restated = rows().assign(spend=999.0)
    result = filled.append(restated)
    assert result.rows_written == 0
    assert (filled.read()["spend"] != 999.0).all()


def test_on_existing_error_names_the_clashing_dates_only(filled: CampaignStore) -> None:
    before = digest_tree(filled.root)
    late = rows(brands=["acme"], days=2, start="2024-01-03")
    with pytest.raises(TabTuneInputError, match="already stored") as caught:
        filled.append(late, on_existing="error")
    assert "2024-01-03" in str(caught.value) and "2024-01-04" not in str(caught.value)
    assert digest_tree(filled.root) == before


# ================================================================== date limits


@pytest.mark.parametrize(
    "day",
    ["9999-12-31", "2099-01-01", str(TODAY + dt.timedelta(days=2)), "1969-12-31", "1900-01-01"],
)
def test_absurd_dates_are_refused_everywhere(store: CampaignStore, tmp_path: Path, day) -> None:
    frame = rows(days=1).assign(date=day)
    with pytest.raises(ContractError, match=r"column 'date': must not be (after|before)") as e:
        validate_campaigns(frame)
    assert day in str(e.value)
    before = digest_tree(tmp_path)
    with pytest.raises(ContractError, match=r"must not be (after|before)"):
        store.append(frame)
    assert digest_tree(tmp_path) == before and not store.root.exists()


def test_tomorrow_is_allowed_and_the_slack_is_configurable(
    store: CampaignStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tomorrow = rows(days=1).assign(date=str(TODAY + dt.timedelta(days=1)))
    assert len(validate_campaigns(tomorrow)) == len(tomorrow)
    later = rows(days=1).assign(date=str(TODAY + dt.timedelta(days=10)))
    assert len(validate_campaigns(later, max_future_days=30)) == len(later)
    monkeypatch.setenv(MAX_FUTURE_DAYS_ENV, "0")
    with pytest.raises(ContractError, match=f"today \\+ 0 days.*{MAX_FUTURE_DAYS_ENV}"):
        validate_campaigns(tomorrow)
    monkeypatch.setenv(MAX_FUTURE_DAYS_ENV, "soon")
    with pytest.raises(TabTuneInputError, match=f"{MAX_FUTURE_DAYS_ENV}='soon'"):
        latest_allowed_date()
    monkeypatch.setenv(MAX_FUTURE_DAYS_ENV, "999999999")  # overflowed the calendar (exit 1)
    with pytest.raises(TabTuneInputError, match="from 0 to 3650"):
        latest_allowed_date()
    monkeypatch.setenv(MAX_FUTURE_DAYS_ENV, "3650")
    assert latest_allowed_date() == TODAY + dt.timedelta(days=3650)
    monkeypatch.delenv(MAX_FUTURE_DAYS_ENV)
    assert latest_allowed_date() == TODAY + dt.timedelta(days=1)
    assert CampaignStore(store.root, max_future_days=30).append(later).rows_written == len(later)


# ================================================================== brand ids: one rule


BAD_BRANDS = [
    "acme..inc",
    "b" * 129,
    "é" * 50,  # 100 UTF-8 bytes, 300 percent-encoded
    "a=b",
    "a/b",
    "a\\b",
    ".hidden",
    "zero\u200bwidth",
    "bell\x07",
]
GOOD_BRANDS = ["acme.inc", "b" * 128, "007", "50%", "x+y", "é_brand", "NA", "acme corp"]


@pytest.mark.parametrize("brand", BAD_BRANDS)
def test_bad_brand_ids_are_refused_by_validate_store_and_registry(
    tmp_path: Path, brand: str
) -> None:
    frame = rows(brands=["ok", brand], days=1)
    with pytest.raises(ContractError, match="column 'brand_id': must be a folder-safe name"):
        validate_campaigns(frame)
    store = CampaignStore(tmp_path / "campaigns")
    with pytest.raises(ContractError, match="brand_id"):
        store.append(frame)
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(TabTuneInputError, match="invalid brand"):
        registry.publish("bid", lambda d: (d / "m.txt").write_text("x"), brand=brand)
    assert brand_id_problem(brand) is not None
    assert digest_tree(tmp_path) == {}


@pytest.mark.parametrize("brand", GOOD_BRANDS)
def test_good_brand_ids_are_accepted_by_validate_store_and_registry(
    tmp_path: Path, brand: str
) -> None:
    frame = rows(brands=[brand], days=1)
    assert set(validate_campaigns(frame)["brand_id"]) == {brand}
    store = CampaignStore(tmp_path / "campaigns")
    store.append(frame)
    assert store.brands() == [brand]
    registry = ModelRegistry(tmp_path / "models")
    ref = registry.publish("bid", lambda d: (d / "m.txt").write_text("x"), brand=brand)
    registry.verify(ref)
    assert check_brand_id(brand) == brand


def test_long_values_are_shortened_in_messages() -> None:
    frame = rows(brands=["x" * 100_000], days=1)
    with pytest.raises(ContractError) as caught:
        validate_campaigns(frame)
    assert len(str(caught.value)) < 3_000 and "(100000 characters)" in str(caught.value)


# ================================================================== the store, checked on read


def _data_file(store: CampaignStore, brand: str) -> Path:
    (path,) = store.files([brand])
    return path


def _assert_refused(store: CampaignStore, *needles: str, brands=None) -> None:
    before = digest_tree(store.root)
    with pytest.raises(TabTuneInputError, match="damaged") as caught:
        store.read(brands)
    for needle in needles:
        assert needle in str(caught.value), str(caught.value)
    assert digest_tree(store.root) == before


def test_a_foreign_parquet_file_in_a_brand_folder_is_named(filled: CampaignStore) -> None:
    junk = filled.partition_dir("acme") / "export.parquet"
    junk.write_bytes(b"not parquet at all")
    _assert_refused(filled, str(junk), "move it out of the store")
    assert len(filled.read("b-01")) == len(rows()) // 2  # other brands still read
    with pytest.raises(TabTuneInputError, match="export.parquet"):
        filled.date_range()
    with pytest.raises(TabTuneInputError, match="export.parquet"):
        filled.append(rows(brands=["acme"], start="2024-02-01"))


def test_a_changed_data_file_is_detected(filled: CampaignStore) -> None:
    path = _data_file(filled, "acme")
    pq.write_table(pq.ParquetFile(path).read(), path, compression="snappy")  # same rows
    _assert_refused(filled, str(path), "changed after it was written")


def test_a_copied_file_doubles_no_rows(filled: CampaignStore) -> None:
    path = _data_file(filled, "acme")
    data = path.read_bytes()
    copy = path.with_name(path.stem + " (copy).parquet")
    copy.write_bytes(data)
    _assert_refused(filled, str(copy), "not a file of the store")


def test_rows_stored_twice_are_refused_naming_both_files(filled: CampaignStore) -> None:
    path = _data_file(filled, "acme")
    table = pq.ParquetFile(path).read()
    other = path.parent / "tmp.parquet"
    pq.write_table(table, other, compression="snappy")  # other bytes, same rows
    digest = hashlib.sha256(other.read_bytes()).hexdigest()[:8]
    renamed = other.with_name(path.name[: -len("abcdef12.parquet")] + f"{digest}.parquet")
    other.rename(renamed)
    before = digest_tree(filled.root)
    with pytest.raises(TabTuneInputError, match="stored more than once") as caught:
        filled.read()
    assert path.name in str(caught.value) and renamed.name in str(caught.value)
    assert digest_tree(filled.root) == before


def test_a_second_spelling_of_a_brand_folder_is_refused(filled: CampaignStore) -> None:
    source = filled.partition_dir("b-01")
    twin = filled.root / "brand_id=b%2D01"  # decodes to "b-01" too
    twin.mkdir()
    for f in source.iterdir():
        (twin / f.name).write_bytes(f.read_bytes())
    _assert_refused(filled, str(twin), "a second folder for brand 'b-01'")


def test_parquet_outside_the_brand_folders_is_refused(filled: CampaignStore) -> None:
    junk = filled.root / "junk.parquet"
    junk.write_bytes(_data_file(filled, "acme").read_bytes())
    _assert_refused(filled, str(junk), "outside the brand folders")


def test_harmless_strays_are_ignored_with_a_warning(filled: CampaignStore, caplog) -> None:
    expected = filled.read()
    (filled.root / "README.txt").write_text("notes")
    (filled.partition_dir("acme") / "notes.txt").write_text("notes")
    with caplog.at_level(logging.WARNING, logger="tabtune.data.store"):
        pd.testing.assert_frame_equal(filled.read(), expected)
    assert "README.txt" in caplog.text and "notes.txt" in caplog.text


def test_a_poisoned_future_file_is_refused(filled: CampaignStore) -> None:
    frame = rows(brands=["acme"], days=1, start="2024-03-01").assign(date="2099-12-31")
    late = CampaignStore(filled.root, max_future_days=100_000)
    late.append(frame)  # what an older tabtune let through
    _assert_refused(filled, "20991231", "after the latest allowed day")
    with pytest.raises(TabTuneInputError, match="20991231"):
        filled.date_range()
    assert len(late.read()) == len(rows()) + len(frame)


def test_invalid_brand_folder_is_refused(filled: CampaignStore) -> None:
    bad = filled.root / "brand_id=acme..inc"
    bad.mkdir()
    _assert_refused(filled, str(bad), "contains '..'")


def test_validate_on_a_damaged_store_exits_2_naming_the_file(small_config, capsys) -> None:
    store = CampaignStore(Path("data/campaigns"))
    store.append(rows())
    junk = store.partition_dir("acme") / "junk.parquet"
    junk.write_bytes(b"junk")
    before = digest_tree(Path.cwd())
    assert main(["--config", str(small_config), "validate"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "junk.parquet" in err and "Traceback" not in err
    assert digest_tree(Path.cwd()) == before


# ================================================================== registry: sealed manifests


def _write(d: Path) -> None:
    (d / "model.txt").write_text("trees")


def test_an_edited_outer_manifest_is_refused_and_not_served(tmp_path: Path, caplog) -> None:
    reg = ModelRegistry(tmp_path / "models")
    v1 = reg.publish("bid", _write, manifest={"selection": {"strategy": "refit"}}, promote=True)
    v2 = reg.publish("bid", _write, manifest={"selection": {"strategy": "refit"}}, promote=True)
    manifest = json.loads((v2.path / "manifest.json").read_text())
    manifest["selection"]["strategy"] = "scratch"
    (v2.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="'manifest.json' was edited") as caught:
        reg.verify(v2)
    assert v2.id in str(caught.value)
    with caplog.at_level(logging.WARNING, logger="tabtune.registry"):
        served = reg.resolve("bid")
    assert served == v1 and served.fallback_from == "v0002"
    with pytest.raises(ModelIntegrityError):
        reg.promote(v2)


def test_a_manifest_without_its_seal_is_refused(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    ref = reg.publish("bid", _write)
    manifest = json.loads((ref.path / "manifest.json").read_text())
    del manifest[SEAL_KEY]
    (ref.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=f"no {SEAL_KEY}"):
        reg.verify(ref)


def test_a_format_1_manifest_without_a_seal_is_read_with_a_warning(tmp_path: Path) -> None:
    """Models published before manifests were sealed keep loading, and say they are unsealed."""
    from tabtune.integrity import UnsealedManifestWarning

    reg = ModelRegistry(tmp_path / "models")
    ref = reg.publish("bid", _write)
    manifest = json.loads((ref.path / "manifest.json").read_text())
    del manifest[SEAL_KEY]
    manifest["format_version"] = 1
    (ref.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UnsealedManifestWarning, match="before manifests were sealed"):
        reg.verify(ref)
    # a format-1 manifest that does carry a seal must match it
    manifest[SEAL_KEY] = "0" * 64
    (ref.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="was edited"):
        reg.verify(ref)
    path = write_model_dir(tmp_path / "m", "model.txt", b"tree", {"format_version": 1})
    saved = json.loads((path / "manifest.json").read_text())
    del saved[SEAL_KEY]
    (path / "manifest.json").write_text(json.dumps(saved))
    with pytest.warns(UnsealedManifestWarning):
        read_model_dir(path)


def test_whitespace_changes_to_a_manifest_are_harmless(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    ref = reg.publish("bid", _write)
    manifest = json.loads((ref.path / "manifest.json").read_text())
    (ref.path / "manifest.json").write_text(json.dumps(manifest))  # no indent, same content
    reg.verify(ref)


def test_model_dir_with_an_edited_manifest_is_refused(tmp_path: Path) -> None:
    path = write_model_dir(tmp_path / "m", "model.txt", b"tree", {"brand_context": {"a": 1.0}})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["brand_context"]["a"] = 2.0
    (path / "manifest.json").write_text(json.dumps(manifest))
    before = digest_tree(tmp_path)
    with pytest.raises(ModelIntegrityError, match="manifest.json was edited"):
        read_model_dir(path)
    assert digest_tree(tmp_path) == before


def test_estimator_load_refuses_an_edited_brand_context(tmp_path: Path) -> None:
    from contracts import adapted, new_brand, pretrained

    from tabtune.estimators import TabTuneRegressor

    base = pretrained("lightgbm", "cpu")
    X, y = new_brand("sealed", n_days=30)
    est = adapted(base, X, y, strategy="global")
    path = est.save(tmp_path / "acme")
    assert TabTuneRegressor.load(path).model_sha256_ == est.model_sha256_
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["brand_context"] is not None
    manifest["brand_context"] = None
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    with pytest.raises(ModelIntegrityError, match="was edited after it was written"):
        TabTuneRegressor.load(path)


# ================================================================== leaf cache


def _cached_fit(tmp_path: Path):
    from contracts import adapted, new_brand, pretrained

    base = pretrained("lightgbm", "cpu")
    X, y = new_brand("leafy", n_days=60)
    first = adapted(base, X, y, strategy="refit", leaf_cache=tmp_path)
    (path,) = tmp_path.iterdir()
    return base, X, y, first, path


def _rewrite(path: Path, **changes) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays.update(changes)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _refit_again(base, X, y, tmp_path, first, caplog, expected: str) -> None:
    from contracts import adapted

    with caplog.at_level(logging.WARNING, logger="tabtune.leaf_cache"):
        again = adapted(base, X, y, strategy="refit", leaf_cache=tmp_path)
    assert expected in caplog.text
    assert again.model_sha256_ == first.model_sha256_


def test_leaf_cache_checksum_mismatch_is_ignored_and_rebuilt(tmp_path: Path, caplog) -> None:
    base, X, y, first, path = _cached_fit(tmp_path)
    with np.load(path) as archive:
        original = archive["leaves"].copy()
    leaves = original.copy()
    leaves[0, 0] = 1 if leaves[0, 0] == 0 else 0
    _rewrite(path, leaves=leaves)
    _refit_again(base, X, y, tmp_path, first, caplog, "checksum mismatch")
    with np.load(path) as archive:  # rebuilt: the good leaves again
        np.testing.assert_array_equal(archive["leaves"], original)


def test_leaf_cache_without_checksum_is_ignored(tmp_path: Path, caplog) -> None:
    base, X, y, first, path = _cached_fit(tmp_path)
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "sha256"}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    _refit_again(base, X, y, tmp_path, first, caplog, "no checksum")


@pytest.mark.parametrize("damage", ["out_of_range", "shuffled"])
def test_well_formed_cache_with_wrong_leaves_is_cross_checked(
    tmp_path: Path, caplog, damage: str
) -> None:
    base, X, y, first, path = _cached_fit(tmp_path)
    cache = LeafCache(tmp_path)
    n_features = len(base._model.layout.names)
    memory = cache.load(base.model_sha256_, X["brand_id"], n_features)
    if damage == "out_of_range":
        memory.leaves[:, 3] = np.iinfo(memory.leaves.dtype).max
        expected = "out of range"
    else:
        memory.leaves[:] = memory.leaves[::-1]  # every value in range, rows swapped
        expected = "disagree"
    cache.save(base.model_sha256_, X["brand_id"], memory)  # a valid checksum
    _refit_again(base, X, y, tmp_path, first, caplog, expected)


def test_leaf_cache_of_other_brands_is_ignored(tmp_path: Path, caplog) -> None:
    cache = LeafCache(tmp_path)
    rng = np.random.default_rng(0)
    from tabtune.boosting.base import LeafMemory

    memory = LeafMemory(X=rng.normal(size=(4, 3)), leaves=np.zeros((4, 2), np.uint8))
    path = cache.save("base", ["acme"], memory)
    path.rename(cache.path(["other"]))  # a file moved to another brand's name
    with caplog.at_level(logging.WARNING, logger="tabtune.leaf_cache"):
        assert cache.load("base", ["other"], 3) is None
    assert "other brands" in caplog.text


# ================================================================== config files


BOMB = """\
model:
  backend_params:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _config_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    cases = {}
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    cases["alias bomb"] = (bomb, "aliases expand to more than")
    extra = tmp_path / "extra.yaml"
    extra.write_text(BOMB.replace("model:\n  backend_params:", "data:\n  extra_columns:"))
    cases["alias bomb in extra_columns"] = (extra, "aliases expand to more than")
    loop = tmp_path / "loop.yaml"
    loop.write_text("model: &m\n  backend_params: *m\n")
    cases["recursive alias"] = (loop, "refers to the node that contains it")
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("device: cpu # café\n".encode("latin-1"))
    cases["non-UTF-8"] = (latin, "not UTF-8 text (byte 0xe9")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    cases["directory"] = (folder, "is a directory, not a config file")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_YAML_BYTES + "\ndevice: cpu\n")
    cases["too large"] = (big, "the limit for a config file")
    return cases


CONFIG_CASES = [
    "alias bomb",
    "alias bomb in extra_columns",
    "recursive alias",
    "non-UTF-8",
    "directory",
    "too large",
]


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_files_are_refused_fast(tmp_path: Path, case: str) -> None:
    path, message = _config_cases(tmp_path)[case]
    before = digest_tree(tmp_path)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.perf_counter() - started < 2.0
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert len(str(caught.value)) < 1_000
    assert digest_tree(tmp_path) == before


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_files_exit_2_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, case: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path, message = _config_cases(tmp_path)[case]
    before = digest_tree(tmp_path)
    assert main(["--config", str(path), "validate"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert digest_tree(tmp_path) == before


def test_modest_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {a: 1, b: [1, 2]}\none: *b\ntwo: {<<: *b, c: 3}\n")
    assert load_yaml_file(path) == {
        "base": {"a": 1, "b": [1, 2]},
        "one": {"a": 1, "b": [1, 2]},
        "two": {"a": 1, "b": [1, 2], "c": 3},
    }
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml_file(empty) is None


# ================================================================== property-based


_FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def campaign_frames(draw) -> pd.DataFrame:
    brands = draw(st.lists(st.sampled_from(["a", "b", "007", "x y"]), min_size=1, max_size=3))
    days = draw(st.integers(1, 4))
    frame = rows(brands=sorted(set(brands)), days=days, channels=("s", "t"), devices=("d",))
    keep = draw(st.lists(st.booleans(), min_size=len(frame), max_size=len(frame)))
    frame = frame[np.array(keep)] if any(keep) else frame.iloc[:1]
    spend = draw(
        st.lists(st.floats(0, 1e6, allow_nan=False), min_size=len(frame), max_size=len(frame))
    )
    return frame.assign(spend=spend).reset_index(drop=True)


@_FAST
@given(frame=campaign_frames(), seed=st.integers(0, 2**16), parts=st.integers(1, 4))
def test_appending_any_split_in_any_order_equals_appending_whole(
    tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame, seed: int, parts: int
) -> None:
    whole = CampaignStore(tmp_path_factory.mktemp("whole"))
    whole.append(frame)
    split = CampaignStore(tmp_path_factory.mktemp("split"))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, parts, len(frame))
    for part in rng.permutation(parts):
        chunk = frame[labels == part]
        if len(chunk):
            split.append(chunk.sample(frac=1.0, random_state=seed))
    pd.testing.assert_frame_equal(split.read(), whole.read())
    before = digest_tree(split.root)
    again = split.append(frame)
    assert again.rows_written == 0 and again.rows_skipped == len(frame)
    assert digest_tree(split.root) == before


@_FAST
@given(frame=campaign_frames(), seed=st.integers(0, 2**16))
def test_validation_is_idempotent_and_order_free(frame: pd.DataFrame, seed: int) -> None:
    once = validate_campaigns(frame)
    pd.testing.assert_frame_equal(validate_campaigns(once), once)
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(validate_campaigns(shuffled), once)


@_FAST
@given(brand=st.text(min_size=0, max_size=140))
def test_validate_and_registry_agree_on_every_brand_id(brand: str) -> None:
    frame = rows(brands=[brand], days=1, channels=("s",), devices=("d",))
    try:
        accepted = validate_campaigns(frame)["brand_id"].iloc[0]
    except ContractError:
        accepted = None
    assert (accepted is None) == (brand_id_problem(brand.strip()) is not None)
    if accepted is not None:
        assert check_brand_id(accepted) == accepted  # what validate accepts, the registry does


@_FAST
@given(
    day=st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)),
)
def test_validate_accepts_exactly_the_allowed_date_range(day: dt.date) -> None:
    frame = rows(days=1, channels=("s",), devices=("d",)).assign(date=day.isoformat())
    allowed = EARLIEST_DATE <= day <= latest_allowed_date()
    try:
        validate_campaigns(frame)
        ok = True
    except ContractError:
        ok = False
    assert ok == allowed


def test_a_zero_unix_time_date_is_refused() -> None:
    """1970-01-01 (a missing date written as a zero Unix time) was stored silently, decades
    before the brand's other rows (exports red-team)."""
    frame = rows(days=1, channels=("s",), devices=("d",)).assign(date="1970-01-01")
    with pytest.raises(ContractError, match="must not be before 1995-01-01"):
        validate_campaigns(frame)


def test_a_control_character_in_a_text_key_is_refused() -> None:
    """A channel holding a line break or a NUL was stored (and broke every CSV written from
    it); a no-break space and an emoji sequence (zero-width joiner) stay text (exports
    red-team)."""
    frame = rows(days=1, channels=("s",), devices=("d",))
    for bad in ("sea\nrch", "a\x00b", "tab\there"):
        with pytest.raises(ContractError, match="channel': must not contain a control character"):
            validate_campaigns(frame.assign(channel=bad))
    fine = validate_campaigns(frame.assign(channel="social\xa0ads", audience="👩\u200d💻"))
    assert fine["channel"].iloc[0] == "social\xa0ads"
