"""The registry's retention policy (``ModelRegistry.gc``, ``tabtune models gc``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabtune import TabTuneRegressor
from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tabtune.errors import TabTuneInputError
from tabtune.estimators.deltas import clear_base_cache
from tabtune.registry import ModelRegistry


def _writer(needs: list[str] | None = None, size: int = 100):
    """A model writer: a file of ``size`` bytes and, like a delta, a model manifest that
    declares what it needs."""

    def write(d: Path) -> None:
        (d / "model").mkdir()
        (d / "model" / "model.bin").write_bytes(b"x" * size)
        (d / "model" / "manifest.json").write_text(json.dumps({"depends_on": needs or []}))

    return write


def _pub(reg: ModelRegistry, brand: str | None = None, *, promote: bool = False, **kw: Any):
    needs = kw.pop("needs", None)
    return reg.publish(
        "bid", _writer(needs, kw.pop("size", 100)), brand=brand, manifest=kw, promote=promote
    )


def _names(reg: ModelRegistry, brand: str | None = None) -> list[str]:
    return [r.version for r in reg.versions("bid", brand)]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_keeps_champion_rollback_target_and_newest(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    refs = [_pub(reg, "acme") for _ in range(7)]
    reg.promote(refs[2])  # v0003 is live; v0002 is what a rollback moves to
    result = reg.gc(keep_versions=2)
    assert _names(reg, "acme") == ["v0002", "v0003", "v0006", "v0007"]
    assert result.deleted == [
        "brands/acme/bid/v0001",
        "brands/acme/bid/v0004",
        "brands/acme/bid/v0005",
    ]
    assert result.freed_bytes > 300 and result.kept == 4
    for name in _names(reg, "acme"):
        reg.verify(reg.ref("bid", name, brand="acme"))
    assert reg.gc(keep_versions=2).deleted == []  # nothing more to do
    assert reg.rollback("bid", "acme").version == "v0002"


def test_keeps_bases_and_promotion_history(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    globals_ = [_pub(reg, promote=True) for _ in range(6)]  # champion global v0006
    old_base = globals_[0].id
    first = _pub(reg, "acme", needs=[old_base], base_model=old_base)
    reg.promote(first)
    _pub(reg, "acme", needs=[old_base])
    champ = _pub(reg, "acme", needs=[old_base])
    reg.promote(champ)  # acme v0003
    history = {"champion_before": champ.id, "global_model": globals_[-1].id}
    _pub(reg, "acme", needs=[globals_[-1].id], refresh=history)
    reg.promote(_pub(reg, "acme", needs=[globals_[-1].id], refresh=history))  # v0005 promoted
    _pub(reg, "beta", base_model=globals_[2].id)  # a full copy that names its global model
    reg.gc(keep_versions=1)
    # global: v0001 (base of acme v0003), v0003 (beta's), v0005 (rollback target), v0006
    assert _names(reg) == ["v0001", "v0003", "v0005", "v0006"]
    # acme: v0005 (newest, champion), v0004 (rollback target), v0003 (the champion before)
    assert _names(reg, "acme") == ["v0003", "v0004", "v0005"]
    assert reg.manifest(champ)["depends_on"] == [old_base]  # lifted from model/manifest.json
    reg.rollback("bid", "acme", to="v0003")


def test_bases_of_kept_versions_are_followed_transitively(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    g = [_pub(reg) for _ in range(3)]
    a = _pub(reg, "acme", needs=[g[0].id])
    for _ in range(3):
        _pub(reg, "acme")
    _pub(reg, "beta", needs=[a.id])  # a delta on a brand version that is itself a delta
    reg.gc(keep_versions=1)
    assert "v0001" in _names(reg, "acme") and "v0001" in _names(reg)


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    for _ in range(5):
        _pub(reg, "acme")
    before = _snapshot(tmp_path / "brands")
    dry = reg.gc(keep_versions=1, dry_run=True)
    assert _snapshot(tmp_path / "brands") == before
    assert dry.dry_run and len(dry.deleted) == 4 and dry.freed_bytes > 0
    real = reg.gc(keep_versions=1)
    assert real.deleted == dry.deleted and real.freed_bytes == dry.freed_bytes


def test_unreadable_manifest_protects_globals_and_pointer_protects_scope(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    for _ in range(3):
        _pub(reg)
    kept = _pub(reg, "acme")
    (kept.path / "manifest.json").write_text("{broken")
    for _ in range(3):
        _pub(reg, "beta")
    (tmp_path / "brands" / "beta" / "bid" / "CHAMPION").write_text("nonsense\n")
    result = reg.gc(keep_versions=1)
    assert _names(reg) == ["v0001", "v0002", "v0003"] and _names(reg, "beta") == [
        "v0001",
        "v0002",
        "v0003",
    ]
    assert any("unreadable" in note for note in result.notes)


def test_interrupted_deletion_leaves_no_half_version(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    for _ in range(3):
        _pub(reg, "acme")
    scope = tmp_path / "brands" / "acme" / "bid"
    (scope / ".deleted-v0009-abc").mkdir()  # what a crash after the rename leaves
    (scope / ".deleted-v0009-abc" / "f").write_text("x")
    assert _names(reg, "acme") == ["v0001", "v0002", "v0003"]  # hidden: never a version
    reg.gc(keep_versions=3)
    assert not (scope / ".deleted-v0009-abc").exists()


def test_keep_versions_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(TabTuneInputError, match="keep_versions"):
        ModelRegistry(tmp_path).gc(keep_versions=0)


def test_a_simulated_year_of_nights_stays_bounded(tmp_path: Path) -> None:
    """365 nights: a challenger per brand every night (a delta on the global champion),
    promoted every 5th night, a new global model every 30 nights; gc after every night."""
    reg = ModelRegistry(tmp_path)
    brands = ["a", "b", "c"]
    glob = _pub(reg, promote=True, size=2000)
    sizes = []
    for night in range(1, 366):
        if night % 30 == 0:
            glob = _pub(reg, promote=True, size=2000)
        for brand in brands:
            champ = reg.champion("bid", brand)
            ref = _pub(
                reg,
                brand,
                needs=[glob.id],
                base_model=glob.id,
                refresh={
                    "global_model": glob.id,
                    "champion_before": None if champ is None else champ.id,
                },
            )
            if night % 5 == (hash(brand) % 5):
                reg.promote(ref)
        reg.gc(keep_versions=3)
        sizes.append(sum(len(v) for v in _snapshot(tmp_path).values()))
        for brand in brands:
            assert len(reg.versions("bid", brand)) <= 6  # newest 3, champion, rollback, history
        assert len(reg.versions("bid")) <= 6
    assert max(sizes[30:]) < 2 * max(sizes[:30]) + 20_000  # flat, not growing with nights
    for brand in brands:  # every kept version's base is still there
        for ref in reg.versions("bid", brand):
            for need in reg.manifest(ref).get("depends_on", []):
                reg.verify(reg.from_id(need))


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return X, np.exp(0.3 * X["a"].to_numpy()) + rng.gamma(1.0, 1.0, n)


def test_gc_registry_still_loads_every_kept_version(tmp_path: Path) -> None:
    clear_base_cache()
    reg = ModelRegistry(tmp_path)
    X, y = _data(1500, 0)
    for night in range(4):
        if night in (0, 2):  # a new global model on nights 0 and 2
            glob = TabTuneRegressor(n_estimators=15, random_state=night).fit(X, y)
            gref = reg.publish("bid", lambda d, m=glob: m.save(d / "model"), promote=True)
            base = TabTuneRegressor.load(gref.path / "model")
        est = TabTuneRegressor(base_model=base, strategy="refit").fit(*_data(200, night + 1))
        ref = reg.publish(
            "bid",
            lambda d, m=est: m.save(d / "model"),
            brand="acme",
            manifest={"base_model": gref.id},
        )
        if night == 0:
            reg.promote(ref)  # the champion stays a delta on global v0001
    reg.gc(keep_versions=1)
    assert _names(reg) == ["v0001", "v0002"] and _names(reg, "acme") == ["v0001", "v0004"]
    clear_base_cache()
    for brand in (None, "acme"):
        for ref in reg.versions("bid", brand):
            reg.verify(ref)
            assert np.isfinite(TabTuneRegressor.load(ref.path / "model").predict(X)).all()


def test_cli_models_gc(small_config: Path, capsys) -> None:
    reg = ModelRegistry(small_config.parent / "models")
    for _ in range(5):
        _pub(reg, "acme")
    before = _snapshot(small_config.parent / "models" / "brands")
    code = main(["--config", str(small_config), "models", "gc", "--dry-run", "--keep", "2"])
    out = capsys.readouterr().out
    assert code == EXIT_OK and "would delete brands/acme/bid/v0001" in out
    assert "would delete 3 versions" in out
    assert _snapshot(small_config.parent / "models" / "brands") == before
    code = main(["--config", str(small_config), "models", "gc", "--json"])  # keep_versions: 3
    data = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and data["deleted"] == ["brands/acme/bid/v0001", "brands/acme/bid/v0002"]
    assert _names(reg, "acme") == ["v0003", "v0004", "v0005"]
    assert main(["--config", str(small_config), "models", "gc", "--keep", "0"]) == EXIT_BAD_INPUT


def test_cli_models_gc_refuses_during_a_refresh(small_config: Path, capsys) -> None:
    reg = ModelRegistry(small_config.parent / "models")
    with reg.lock("refresh", timeout=0):
        code = main(["--config", str(small_config), "models", "gc"])
    assert code == EXIT_BAD_INPUT and "refresh is running" in capsys.readouterr().err


def test_nightly_refresh_stores_deltas_and_stays_bounded(tmp_path: Path) -> None:
    """Five nights of the refresh with ``registry.keep_versions: 1``: brand versions are
    deltas on the global model, old ones are collected, every kept version still loads."""
    from conftest import write_small_config

    from tabtune.config import load_config
    from tabtune.data.store import CampaignStore
    from tabtune.data.synth import simulate
    from tabtune.refresh import refresh

    path = write_small_config(
        tmp_path,
        data={"store": str(tmp_path / "data"), "truth_dir": str(tmp_path / "truth")},
        models_dir=str(tmp_path / "models"),
        runs_dir=str(tmp_path / "runs"),
        outputs_dir=str(tmp_path / "outputs"),
        cache_dir=str(tmp_path / "cache"),
        model={"n_jobs": 1},
        registry={"keep_versions": 1},
        refresh={"refit_every_days": 1},  # a version every night for retention to collect
    )
    cfg = load_config(path)
    obs = simulate(n_brands=3, n_days=100, seed=0).observations
    dates = sorted(obs["date"].unique())[-5:]
    CampaignStore(cfg.data.store).append(obs[obs["date"] < dates[0]])
    clear_base_cache()
    for date in dates:
        refresh(cfg, pd.Timestamp(date).date(), new_rows=obs[obs["date"] == date])
    reg = ModelRegistry(cfg.models_dir)
    deltas = 0
    brand_rows = [row for row in reg.list() if row["brand"] is not None]
    assert brand_rows and all(int(row["latest"][1:]) == len(dates) for row in brand_rows)
    assert sum(row["versions"] for row in brand_rows) < len(dates) * len(brand_rows)
    for row in reg.list():
        refs = reg.versions(row["task"], row["brand"])
        assert len(refs) <= 4  # newest 1, champion, rollback target, champion before
        for ref in refs:
            reg.verify(ref)
            deltas += (ref.path / "model" / "model.delta.json.gz").is_file()
            for need in reg.manifest(ref).get("depends_on", []):
                reg.verify(reg.from_id(need))
            clear_base_cache()
            TabTuneRegressor.load(ref.path / "model")
    assert deltas > 0
    # a finished night whose versions were collected still answers a rerun with its report
    first = refresh(cfg, pd.Timestamp(dates[0]).date())
    assert first.date == str(pd.Timestamp(dates[0]).date())


def test_was_published_knows_collected_versions(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    for _ in range(4):
        _pub(reg, "acme")
    reg.gc(keep_versions=1)
    assert reg.was_published("brands/acme/bid/v0004")  # exists
    assert reg.was_published("brands/acme/bid/v0002")  # collected
    assert not reg.was_published("brands/acme/bid/v0009")  # never published here
    assert not reg.was_published("brands/other/bid/v0001")
    assert not reg.was_published("global/bid/v0001") and not reg.was_published("nonsense")


def test_python_gc_and_rollback_are_refused_while_a_refresh_runs(tmp_path: Path) -> None:
    # the command line refused them; from Python they deleted versions and moved champions
    # mid-night, under the models the night was comparing (the lock is held here as a
    # refresh of another process holds it)
    from tabtune.registry import RegistryLockedError
    from tabtune.registry.locks import hold_lock, refreshing

    reg = ModelRegistry(tmp_path / "models")
    for _ in range(5):
        _pub(reg, "acme", promote=True)
    champion = reg.champion("bid", "acme")
    with hold_lock(tmp_path / "models" / ".locks" / "refresh.lock", 0):  # another process's
        with pytest.raises(RegistryLockedError, match="a refresh is running: gc would change"):
            reg.gc(keep_versions=1)
        with pytest.raises(RegistryLockedError, match="ModelRegistry.rollback would change"):
            reg.rollback("bid", "acme")
        assert reg.gc(keep_versions=1, dry_run=True).deleted  # reading is not refused
        assert _names(reg, "acme") == ["v0001", "v0002", "v0003", "v0004", "v0005"]
        assert reg.champion("bid", "acme") == champion
        with refreshing():  # the night's own retention, in the process that holds the lock
            assert reg.gc(keep_versions=4).deleted == ["brands/acme/bid/v0001"]
    reg.rollback("bid", "acme")  # the night over: allowed again
    assert reg.champion("bid", "acme") != champion
    with reg.lock("refresh", timeout=0):  # held by this process, as gc's docstring advised
        assert reg.gc(keep_versions=2).deleted  # its own gc passes (review)


def test_the_refresh_mark_is_per_thread_and_per_registry(tmp_path: Path) -> None:
    # holding one registry's refresh lock let another thread's rollback, and writes to
    # another registry being refreshed by another process, through (review)
    import threading

    from tabtune.registry import RegistryLockedError
    from tabtune.registry.locks import hold_lock

    mine, other = ModelRegistry(tmp_path / "mine"), ModelRegistry(tmp_path / "other")
    for reg in (mine, other):
        for _ in range(3):
            _pub(reg, "acme", promote=True)
    errors: list[BaseException] = []

    def rollback_mine() -> None:
        try:
            mine.rollback("bid", "acme")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    with mine.lock("refresh", timeout=0):
        thread = threading.Thread(target=rollback_mine)
        thread.start()
        thread.join()
        with hold_lock(tmp_path / "other" / ".locks" / "refresh.lock", 0):  # another process
            with pytest.raises(RegistryLockedError, match="a refresh is running"):
                other.gc(keep_versions=1)
        assert mine.gc(keep_versions=2).deleted  # this thread's own registry: passes
    assert len(errors) == 1 and isinstance(errors[0], RegistryLockedError)
