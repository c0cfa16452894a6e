"""The nightly refresh end to end on small simulated data (6 brands, 120 days).

Three consecutive nights with new rows arriving each day; then: a rerun changes nothing, a
second concurrent run is refused, a corrupted champion is replaced by the previous version, a
brand with broken data fails alone (and is retried), the process pool gives the same results,
and a refresh killed with SIGKILL at random points resumes to the same final state as an
uninterrupted run. ``TABTUNE_KILL_TRIALS`` sets the number of kill trials (default 10, as CI runs it).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL, main
from tabtune.config import Config, load_config
from tabtune.data.store import CampaignStore
from tabtune.data.synth import simulate
from tabtune.errors import ContractError, TabTuneInputError
from tabtune.pipeline import pretrain
from tabtune.refresh import RunReport, refresh, refresh_range
from tabtune.registry import ModelRegistry, RegistryLockedError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from conftest import write_small_config  # noqa: E402

DATES = ["2024-04-27", "2024-04-28", "2024-04-29"]
COLD_BRAND = "b001"  # 35 rows in this simulation: below min_rows_to_adapt=100
IMAGE = 'src="data:image/png;base64,'


# ---------------------------------------------------------------------------- helpers


def workspace(root: Path) -> tuple[Path, Config]:
    """A small config whose paths all lie under ``root`` (absolute, so cwd does not matter)."""
    root.mkdir(parents=True, exist_ok=True)
    path = write_small_config(
        root,
        data={"store": str(root / "data/campaigns"), "truth_dir": str(root / "data/truth")},
        models_dir=str(root / "models"),
        runs_dir=str(root / "runs"),
        outputs_dir=str(root / "outputs"),
        cache_dir=str(root / "cache"),
        # Tiny data on a shared machine: more threads only add contention (and delay).
        model={"n_jobs": 1},
        # These nights test what a refit does each night; the weekly schedule (the default)
        # is tested on its own (test_a_champion_serves_unrefitted_until_refit_every_days).
        refresh={"refit_every_days": 1},
    )
    return path, load_config(path)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (lock files aside)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".locks" not in p.parts
    }


def registry_view(cfg: Config) -> dict[str, tuple[str | None, int]]:
    """Scope id -> (champion version, number of versions)."""
    return {
        row["id"]: (row["champion"], row["versions"])
        for row in ModelRegistry(cfg.models_dir).list()
    }


def brand_view(report: RunReport) -> dict[str, tuple]:
    return {
        b.brand_id: (
            b.status, b.model_id, b.challenger_id, b.champion_id, b.strategy, b.rows, b.contested
        )
        for b in report.brands
    }  # fmt: skip


def assert_same_outputs(mine: RunReport, theirs: RunReport) -> None:
    """Same output kinds per brand, and the same content in each file."""
    for a, b in zip(mine.brands, theirs.brands, strict=True):
        assert sorted(a.outputs) == sorted(b.outputs), a.brand_id
        for kind in a.outputs:
            pd.testing.assert_frame_equal(
                pd.read_parquet(a.outputs[kind]), pd.read_parquet(b.outputs[kind])
            )


def assert_same_scores(mine: RunReport, theirs: RunReport, rel: float = 1e-9) -> None:
    for a, b in zip(mine.brands, theirs.brands, strict=True):
        for key, value in b.scores.items():
            if value is None:
                assert a.scores[key] is None, (a.brand_id, key)
            else:
                assert a.scores[key] == pytest.approx(value, rel=rel), (a.brand_id, key)


def corrupt(ref) -> None:
    """Append a line to the first model file of a registry version (its checksum breaks)."""
    model_file = next(
        p for p in sorted(ref.path.rglob("*")) if p.is_file() and p.name != "manifest.json"
    )
    with open(model_file, "ab") as fh:
        fh.write(b"\n# corrupted\n")


def cli(config: Path, *argv: str) -> int:
    return main(["--config", str(config), *argv])


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def observations() -> pd.DataFrame:
    return simulate(n_brands=6, n_days=120, seed=0).observations


def day(obs: pd.DataFrame, date: str) -> pd.DataFrame:
    return obs[obs["date"] == pd.Timestamp(date)]


def upto(obs: pd.DataFrame, date: str) -> pd.DataFrame:
    return obs[obs["date"] <= pd.Timestamp(date)]


@pytest.fixture(scope="module")
def nightly(tmp_path_factory, observations):
    """Three nights: history up to the first date in the store, one new day before each next."""
    root = tmp_path_factory.mktemp("nightly")
    config, cfg = workspace(root)
    CampaignStore(cfg.data.store).append(upto(observations, DATES[0]))
    reports, registry_after = {}, {}
    for i, date in enumerate(DATES):
        new_rows = None if i == 0 else day(observations, date)
        reports[date] = refresh(cfg, date, new_rows=new_rows)
        registry_after[date] = registry_view(cfg)
    return SimpleNamespace(
        root=root, config=config, cfg=cfg, reports=reports, registry_after=registry_after
    )


# ---------------------------------------------------------------------------- three nights


def test_three_nights_statuses_outputs_and_models(nightly) -> None:
    reg = ModelRegistry(nightly.cfg.models_dir)
    for date, report in nightly.reports.items():
        statuses = {b.brand_id: b.status for b in report.brands}
        assert sorted(statuses) == [f"b00{i}" for i in range(6)], date
        assert statuses.pop(COLD_BRAND) == "cold_start"
        assert set(statuses.values()) <= {"promoted", "kept"}, (date, statuses)
        assert report.exit_code == 0 and report.finished_at

        run = nightly.cfg.runs_dir / date
        assert RunReport.from_dict(json.loads((run / "report.json").read_text())) == report
        assert (run / "report.html").read_text().count(IMAGE) == 2
        assert (run / "state.json").is_file()

        next_day = pd.Timestamp(date) + pd.Timedelta(days=1)
        for b in report.brands:
            assert b.scores["global"] is not None and b.rows > 0
            if b.status == "cold_start":
                # the global model's trees, with the brand's context and offsets: its own
                # version, published and promoted tonight (no new trees)
                assert b.model_id == b.challenger_id and b.served_by == "challenger"
                manifest = reg.manifest(reg.from_id(b.model_id))
                assert manifest["refresh"]["date"] == date
                assert manifest["base_model"] == report.global_model
                assert manifest["strategy"] == b.strategy in ("global", "segments")
                assert manifest["selection"]["small"] is True  # never repeated as a choice
                assert b.scores["challenger"] is not None and any("in sample" in n for n in b.notes)
            else:
                expected = b.challenger_id if b.status == "promoted" else b.champion_id
                assert b.model_id == (expected or report.global_model), b
                if b.status == "kept" and date != DATES[0]:
                    # the choice the first night's contest kept out is repeated, and contests
                    # again only refresh.contest_every_days (7) after that contest: nothing is
                    # fitted or published, the serving model is scored as it serves
                    assert b.reason.startswith("no contest tonight"), b
                    assert b.contested == DATES[0] and b.strategy, b
                    assert b.challenger_id is None and b.scores["challenger"] is None, b
                    assert b.scores["champion"] is not None, b
                    assert sorted(b.outputs) == ["bids", "predictions"], b
                    continue
                assert None not in (b.scores["champion"], b.scores["challenger"])
                if b.status != "promoted" or b.champion_id is None:
                    assert b.contested == date, b  # tonight's contest on the window
                manifest = reg.manifest(reg.from_id(b.challenger_id))
                assert manifest["refresh"]["date"] == date
                assert manifest["data_window"][1] == date  # adapted on rows up to D
                assert manifest["base_model"] == report.global_model
            assert sorted(b.outputs) == ["bids", "predictions"], b
            preds = pd.read_parquet(b.outputs["predictions"])
            assert len(preds) > 0 and preds["prediction"].notna().all()
            assert (preds["date"] == next_day).all()
            assert set(preds["model_id"]) == {b.model_id}
            expected_path = (
                nightly.cfg.outputs_dir
                / str(next_day.date())  # filed under the day decided for
                / "predictions"
                / f"brand_id={b.brand_id}"
            )
            assert Path(b.outputs["predictions"]) == expected_path / "part-0.parquet"
            bids = pd.read_parquet(b.outputs["bids"])
            assert (bids["bid"] > 0).all() and (bids["date"] == next_day).all()

    # The global model was pretrained once, on rows up to the first date.
    final = nightly.registry_after[DATES[-1]]
    assert final["global/bid"] == ("v0001", 1)
    assert reg.manifest(reg.from_id("global/bid/v0001"))["data_window"][1] == DATES[0]
    # A cold-start brand gets a version each night (its context and offsets move with its
    # rows); the others a version each night it was promoted or made its choice (the first
    # night).
    assert final[f"brands/{COLD_BRAND}/bid"] == (f"v{len(DATES):04d}", len(DATES))
    last = nightly.reports[DATES[-1]]
    for b in last.brands:
        if b.status == "cold_start":
            continue
        published = sum(
            1
            for report in nightly.reports.values()
            for r in report.brands
            if r.brand_id == b.brand_id and r.challenger_id is not None
        )
        champion, versions = final[f"brands/{b.brand_id}/bid"]
        assert versions == published >= 1, b.brand_id
        if b.status == "kept" and b.champion_id is None:
            # the global model kept serving it: its newest version holds the choice of the
            # first night, which the later nights repeated instead of choosing again
            newest = reg.manifest(reg.versions("bid", b.brand_id)[-1])
            assert newest["selection"]["date"] == DATES[0], b.brand_id
            assert newest["strategy"] == b.strategy
        if b.model_id.startswith("brands/"):
            assert b.model_id.endswith(champion)


def test_rerun_changes_nothing(nightly, observations, capsys) -> None:
    before = snapshot(nightly.root)
    for i, date in enumerate(DATES):
        new_rows = None if i == 0 else day(observations, date)  # the same rows again
        assert refresh(nightly.cfg, date, new_rows=new_rows) == nightly.reports[date]
    assert refresh_range(nightly.cfg, DATES[0], DATES[-1]) == list(nightly.reports.values())
    assert cli(nightly.config, "refresh", "--date", DATES[1]) == EXIT_OK
    out = capsys.readouterr().out
    assert "refresh bid 2024-04-28: 6 brands" in out
    assert "refresh bid 2024-04-28: finished already" in out and "not run again" in out
    assert cli(nightly.config, "report") == EXIT_OK
    assert "refresh bid 2024-04-29: 6 brands" in capsys.readouterr().out
    assert snapshot(nightly.root) == before


def test_rows_added_to_a_finished_night_are_said_to_be_unused(
    nightly, observations, tmp_path, caplog
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    late = day(observations, DATES[-1]).head(1)
    # another channel's row (its own numbers: the same ones would be a renamed stored row)
    late = late.assign(channel="late_channel", spend=late["spend"] + 1.0)
    with caplog.at_level("WARNING", logger="tabtune.refresh"):
        report = refresh(cfg, DATES[-1], new_rows=late)
    assert report == nightly.reports[DATES[-1]]  # the finished run, unchanged
    assert f"the refresh of {DATES[-1]} (bid) had already finished: the 1 brand day(s)" in (
        caplog.text
    )
    assert "the nights from now on learn them" in caplog.text
    # how to redo it: the partial day's decisions stayed, without a word of the fix
    assert "move " in caplog.text and "out of the runs folder and rerun" in caplog.text
    assert "finished run(s) learnt" not in caplog.text  # the session's own date: said once


def test_day_notes_only_when_they_hold(nightly, observations, tmp_path, caplog) -> None:
    """No false alarms: rows dated after a finished night are used by the next night of the
    range (no warning for the finished one), and a --brands night whose brand lacks the day
    while other brands have it is not told that the day's export was not loaded."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    lonely = "b002"
    others = day(observations, DATES[-1]).query("brand_id != @lonely")
    nxt = others.assign(date=pd.Timestamp("2024-04-30"))
    with caplog.at_level("WARNING", logger="tabtune.refresh"):
        reports = refresh_range(cfg, DATES[-1], "2024-04-30", new_rows=nxt, brands=[lonely])
    assert "finished run(s) learnt from the store" not in caplog.text
    assert not any("no brand has rows dated" in n for r in reports for n in r.notes)


def test_second_concurrent_run_is_refused(nightly, capsys) -> None:
    before = snapshot(nightly.root)
    with ModelRegistry(nightly.cfg.models_dir).lock("refresh"):
        with pytest.raises(
            RegistryLockedError, match=f"another refresh is running.*pid {os.getpid()}"
        ):
            refresh(nightly.cfg, "2024-04-30")
        assert cli(nightly.config, "refresh", "--date", "2024-04-30") == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert "another refresh is running" in err and f"pid {os.getpid()}" in err
        assert "then run this again" in err and "timeout" not in err  # no such option
    assert snapshot(nightly.root) == before
    assert not (nightly.cfg.runs_dir / "2024-04-30").exists()


def test_corrupted_champion_is_detected_and_the_previous_version_used(nightly, tmp_path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    reg = ModelRegistry(cfg.models_dir)
    brand = next(b.brand_id for b in nightly.reports[DATES[-1]].brands if b.status != "cold_start")
    versions = reg.versions("bid", brand)
    reg.promote(versions[-1])  # champion: the newest version, so older ones exist
    champion = reg.champion("bid", brand)
    corrupt(champion)

    report = refresh(cfg, "2024-04-30", brands=[brand])
    (b,) = report.brands
    previous = versions[-2].id
    assert b.status in ("promoted", "kept"), b
    assert b.champion_id == previous
    assert any("failed verification" in n and champion.id in n for n in b.notes), b.notes
    assert b.model_id == (b.challenger_id if b.status == "promoted" else previous)
    assert b.scores["champion"] is not None

    # A global champion that fails verification with nothing older to fall back on is
    # replaced by a new pretraining, and the report says why.
    corrupt(reg.champion("bid"))
    report = refresh(cfg, "2024-05-01", brands=[brand])
    assert report.global_model == "global/bid/v0002"
    assert any("fail verification" in n for n in report.notes), report.notes
    assert report.brands[0].status in ("promoted", "kept")


def test_brand_champions_on_a_damaged_global_model_contest_instead_of_failing(
    nightly, tmp_path
) -> None:
    """Brand champions stored as deltas on a global model that was damaged failed every
    night, with a note saying decisions were written from them (registry red-team): they now
    contest as brands without a champion, on the newly pretrained global model."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    reg = ModelRegistry(cfg.models_dir)
    champions = {
        b.brand_id for b in nightly.reports[DATES[-1]].brands if reg.champion("bid", b.brand_id)
    }
    assert champions, "setup: brand champions"
    corrupt(reg.champion("bid"))
    report = refresh(cfg, "2024-04-30")
    assert report.global_model == "global/bid/v0002"
    assert not report.failed, [(b.brand_id, b.reason) for b in report.failed]
    unloadable = [b for b in report.brands if any("cannot be loaded" in n for n in b.notes)]
    assert unloadable, [b.notes for b in report.brands]
    for b in unloadable:
        assert b.outputs.get("bids"), b  # decisions written for every such brand
        assert b.model_id == (b.challenger_id if b.status == "promoted" else report.global_model)
    assert all(b.outputs.get("bids") for b in report.brands if b.brand_id in champions)


def test_a_corrupted_champion_with_nothing_older_contests_that_night(nightly, tmp_path) -> None:
    """A champion that failed verification with no older version to stand in left the
    global model serving without a contest for refresh.contest_every_days (red-team)."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    cfg = cfg.model_copy(
        update={"refresh": cfg.refresh.model_copy(update={"contest_every_days": 30})}
    )
    reg = ModelRegistry(cfg.models_dir)
    brand = next(b.brand_id for b in nightly.reports[DATES[-1]].brands if b.status == "promoted")
    for ref in reg.versions("bid", brand):
        corrupt(ref)  # nothing older verifies either
    (b,) = refresh(cfg, "2024-04-30", brands=[brand]).brands
    assert any("failed verification, and the version it replaced" in n for n in b.notes), b.notes
    assert "no contest tonight" not in b.reason, b.reason
    assert b.contested == "2024-04-30" and b.status in ("promoted", "kept"), b


def test_a_brand_failing_after_its_promotion_says_what_serves_it(
    nightly, tmp_path, monkeypatch
) -> None:
    """A brand whose decisions could not be written after its challenger was promoted was
    reported failed, its champion moved without a word (executors red-team)."""
    import tabtune.refresh.brand as brand_module

    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    reg = ModelRegistry(cfg.models_dir)
    brand = next(b.brand_id for b in nightly.reports[DATES[-1]].brands if b.status == "promoted")
    corrupt(reg.champion("bid", brand))  # replaced tonight: a promotion

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(brand_module, "write_decisions", disk_full)
    (b,) = refresh(cfg, "2024-04-30", brands=[brand]).brands
    assert b.status == "failed" and "OSError: No space left on device" in b.reason, b
    assert "was promoted: it is the brand's champion now" in b.reason, b.reason
    assert reg.champion("bid", brand).id == b.model_id


def test_a_corrupted_champion_is_replaced_whatever_the_refit_schedule(nightly, tmp_path) -> None:
    """The version standing in for a champion that fails verification is refitted that night
    even when the weekly schedule would not refit it, so the pointer moves to a sound model."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    weekly = {"refit_every_days": 7, "refit_when_rows_grow": 1.0}
    cfg = cfg.model_copy(update={"refresh": cfg.refresh.model_copy(update=weekly)})
    reg = ModelRegistry(cfg.models_dir)
    brand = next(b.brand_id for b in nightly.reports[DATES[-1]].brands if b.status == "promoted")
    champion = reg.champion("bid", brand)
    assert len(reg.versions("bid", brand)) >= 2
    corrupt(champion)

    (b,) = refresh(cfg, "2024-04-30", brands=[brand]).brands
    assert any("failed verification" in n for n in b.notes), b.notes
    assert b.status == "promoted" and b.model_id == b.challenger_id, b
    now = reg.champion("bid", brand)
    assert now.id == b.challenger_id != champion.id
    reg.verify(now)


def test_no_new_rows_skips_and_a_brand_without_history_is_skipped(nightly, tmp_path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    reg = ModelRegistry(cfg.models_dir)
    brand = next(b.brand_id for b in nightly.reports[DATES[-1]].brands if b.status != "cold_start")
    newest = reg.versions("bid", brand)[-1]
    reg.promote(newest)  # a champion trained on every row up to the last date

    report = refresh(cfg, "2024-04-30", brands=[brand])  # no rows on 2024-04-30
    (b,) = report.brands
    assert b.status == "skipped" and "no new rows" in b.reason
    (note,) = [n for n in report.notes if "no brand has rows dated 2024-04-30" in n]
    assert f"the newest are of {DATES[-1]}" in note and "--input" in note
    assert b.model_id == b.champion_id == newest.id and b.challenger_id is None
    assert pd.read_parquet(b.outputs["predictions"])["model_id"].eq(newest.id).all()
    assert reg.versions("bid", brand)[-1] == newest  # nothing published

    # a cold-start brand whose version learnt from every row it has keeps it, unpublished
    cold = reg.versions("bid", COLD_BRAND)[-1]
    (b,) = refresh(cfg, "2024-05-01", brands=[COLD_BRAND]).brands  # no rows that day
    assert b.status == "skipped" and "no new rows" in b.reason
    assert b.model_id == b.champion_id == cold.id and b.challenger_id is None
    assert reg.versions("bid", COLD_BRAND)[-1] == cold

    # a date before finished runs is refused: their champions learnt later days
    before = snapshot(root)
    with pytest.raises(TabTuneInputError, match="refresh of 2024-05-01 has finished.*in order"):
        refresh(cfg, "2024-02-01", brands=[COLD_BRAND])
    assert snapshot(root) == before
    shutil.move(cfg.runs_dir, root / "runs-moved")  # the runs out of the way, it runs
    (b,) = refresh(cfg, "2024-02-01", brands=[COLD_BRAND]).brands  # its history starts later
    assert b.status == "skipped" and b.reason == "no rows up to 2024-02-01" and not b.outputs


def test_bad_new_rows_are_rejected_before_anything_is_written(nightly, observations) -> None:
    before = snapshot(nightly.root)
    bad = day(observations, DATES[-1]).assign(date=pd.Timestamp("2024-04-30"))
    bad.loc[bad.index[0], "clicks"] = -1
    with pytest.raises(ContractError, match="clicks"):
        refresh(nightly.cfg, "2024-04-30", new_rows=bad)
    assert snapshot(nightly.root) == before


def test_broken_brand_fails_alone_and_is_retried(
    observations, tmp_path, monkeypatch, capsys
) -> None:
    import tabtune.refresh.promotion as refresh_module

    config, cfg = workspace(tmp_path / "ws")
    store = CampaignStore(cfg.data.store)
    store.append(upto(observations, DATES[0]))
    pretrain(cfg, "bid", end=DATES[0])  # the pooled read would fail on the broken partition
    bad = store.partition_dir("b003") / "part-broken.parquet"
    bad.write_bytes(b"this is not parquet")
    real_build = refresh_module.build_challenger

    def failing_build(cfg, task, base, data, **kwargs):
        if data.X["brand_id"].iloc[0] == "b005":
            raise RuntimeError("boom: training diverged")
        return real_build(cfg, task, base, data, **kwargs)

    monkeypatch.setattr(refresh_module, "build_challenger", failing_build)
    assert cli(config, "refresh", "--date", DATES[0]) == EXIT_PARTIAL
    out = capsys.readouterr().out
    assert "FAILED (2)" in out and "b003:" in out and "b005: RuntimeError: boom" in out

    report = RunReport.from_dict(json.loads((cfg.runs_dir / DATES[0] / "report.json").read_text()))
    by_brand = {b.brand_id: b for b in report.brands}
    assert by_brand["b003"].status == "failed" and "parquet" in by_brand["b003"].reason.lower()
    assert by_brand["b005"].status == "failed" and by_brand["b005"].rows > 100
    assert not by_brand["b005"].outputs and not by_brand["b003"].outputs
    others = {k: v for k, v in by_brand.items() if k not in ("b003", "b005")}
    assert all(b.status in ("promoted", "kept", "cold_start") for b in others.values())
    assert all(Path(b.outputs["predictions"]).is_file() for b in others.values())
    views = registry_view(cfg)
    assert "brands/b003/bid" not in views and "brands/b005/bid" not in views

    # Fix the data and the bug: the rerun retries only the failed brands.
    bad.unlink()
    monkeypatch.setattr(refresh_module, "build_challenger", real_build)
    assert cli(config, "refresh", "--date", DATES[0]) == EXIT_OK
    capsys.readouterr()
    after = RunReport.from_dict(json.loads((cfg.runs_dir / DATES[0] / "report.json").read_text()))
    fixed = {b.brand_id: b for b in after.brands}
    assert fixed["b003"].status != "failed" and fixed["b005"].status != "failed"
    for brand in others:
        assert brand_view(after)[brand] == brand_view(report)[brand]
    retried = registry_view(cfg)
    assert {k: v for k, v in retried.items() if "b003" not in k and "b005" not in k} == views


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_other_executors_give_the_same_results(nightly, observations, tmp_path, executor) -> None:
    if executor == "dask":
        pytest.importorskip("dask.distributed", reason="pip install tabtune[dask]")
    _, cfg = workspace(tmp_path / "ws")
    CampaignStore(cfg.data.store).append(upto(observations, DATES[0]))
    report = refresh(cfg, DATES[0], executor=executor)
    reference = nightly.reports[DATES[0]]
    assert brand_view(report) == brand_view(reference)
    assert_same_scores(report, reference, rel=1e-6)


# ---------------------------------------------------------------------------- SIGKILL


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not predicate():
        time.sleep(0.02)


def progress_made(cfg: Config) -> str:
    """What a killed run had recorded: brands per date in the state, models published."""
    done = []
    for date in DATES[:2]:
        state = cfg.runs_dir / date / "state.json"
        if state.exists():
            brands = json.loads(state.read_text())["brands"]
            done.append(f"{date}: {len(brands)} brands")
    versions = sum(v for _, v in registry_view(cfg).values())
    return f"{'; '.join(done) or 'no state'}, {versions} model versions"


@pytest.fixture(scope="module")
def pristine_store(tmp_path_factory, observations) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    CampaignStore(root / "campaigns").append(upto(observations, DATES[1]))
    return root / "campaigns"


def test_sigkill_at_random_points_then_resume_matches_uninterrupted(
    nightly, pristine_store, tmp_path
) -> None:
    trials = int(os.environ.get("TABTUNE_KILL_TRIALS", "10"))
    rng = random.Random(int(os.environ.get("TABTUNE_KILL_SEED", "20240427")))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    for trial in range(trials):
        root = tmp_path / f"trial{trial}"
        config, cfg = workspace(root)
        shutil.copytree(pristine_store, cfg.data.store)
        milestones = {  # wait for this file (None: nothing) then a random delay, then kill
            "start": None,
            "first state": cfg.runs_dir / DATES[0] / "state.json",
            "first report": cfg.runs_dir / DATES[0] / "report.json",
            "second state": cfg.runs_dir / DATES[1] / "state.json",
        }
        name = rng.choice(sorted(milestones))
        milestone = milestones[name]
        delay = rng.uniform(0.0, 1.5)
        with open(root / "refresh.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tabtune.cli", "--config", str(config), "refresh",
                 "--from", DATES[0], "--to", DATES[1]],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True,
            )  # fmt: skip
            try:
                _wait_for(lambda: milestone is None or milestone.exists(), proc)  # noqa: B023
                time.sleep(delay)
                finished_first = proc.poll() is not None
                if not finished_first:
                    os.killpg(proc.pid, signal.SIGKILL)
            finally:
                proc.wait(timeout=60)
        where = (
            f"trial {trial}: killed {delay:.2f}s after '{name}' (exited first: {finished_first}); "
            f"{progress_made(cfg)} at the kill"
        )

        resumed = refresh_range(cfg, DATES[0], DATES[1])
        for date, report in zip(DATES[:2], resumed):
            reference = nightly.reports[date]
            assert brand_view(report) == brand_view(reference), where
            assert_same_scores(report, reference)
            assert_same_outputs(report, reference)
        assert registry_view(cfg) == nightly.registry_after[DATES[1]], where


def test_contest_dates_survive_failures_and_brand_subsets(
    observations, tmp_path, monkeypatch
) -> None:
    """A brand contests again a week after its last contest, whatever the nights between:
    a night that ran other brands only (--brands) does not erase its date, and a contest
    whose outcome failed to be carried out (the promotion raised) does not count."""
    _, cfg = workspace(tmp_path / "ws")
    CampaignStore(cfg.data.store).append(upto(observations, DATES[0]))

    def no_promotion(self, ref):
        raise OSError(5, "Input/output error")  # a full disk stops the night instead

    with monkeypatch.context() as patch:
        patch.setattr(ModelRegistry, "promote", no_promotion)
        first = {b.brand_id: b for b in refresh(cfg, DATES[0]).brands}
    failed = {k for k, b in first.items() if b.status == "failed" and k != COLD_BRAND}
    kept = {k for k, b in first.items() if b.status == "kept"}
    assert failed and kept, first  # contests won (publish, then promote raised) and lost
    assert all(first[k].contested is None for k in failed)
    assert all(first[k].contested == DATES[0] for k in kept)

    one = sorted(kept)[0]
    (b,) = refresh(cfg, DATES[1], new_rows=day(observations, DATES[1]), brands=[one]).brands
    assert b.reason.startswith("no contest tonight") and b.contested == DATES[0], b
    third = {
        b.brand_id: b for b in refresh(cfg, DATES[2], new_rows=day(observations, DATES[2])).brands
    }
    for k in kept:  # their 04-27 contest still counts two nights later
        assert third[k].reason.startswith("no contest tonight"), third[k]
        assert third[k].contested == DATES[0] and third[k].scores["challenger"] is None
    for k in failed:  # their contest was not carried out: contested again
        assert not third[k].reason.startswith("no contest"), third[k]
        assert third[k].contested == DATES[2] and third[k].scores["challenger"] is not None


def test_a_champion_serves_unrefitted_until_refit_every_days(observations, tmp_path) -> None:
    """With ``refresh.refit_every_days`` 2, the night after the one that fitted a champion
    keeps it as it is (``kept``, nothing published, tonight's decisions from it); two days
    after the newest day it learned, it is refitted."""
    _, cfg = workspace(tmp_path / "ws")
    cfg = cfg.model_copy(
        update={
            "refresh": cfg.refresh.model_copy(
                update={"refit_every_days": 2, "refit_when_rows_grow": 1.0}
            )
        }
    )
    CampaignStore(cfg.data.store).append(upto(observations, DATES[0]))
    first = {b.brand_id: b for b in refresh(cfg, DATES[0]).brands}
    champions = {k for k, b in first.items() if b.status == "promoted"}
    assert champions, first
    reg = ModelRegistry(cfg.models_dir)
    versions = {k: reg.versions("bid", k) for k in champions}
    second = {
        b.brand_id: b for b in refresh(cfg, DATES[1], new_rows=day(observations, DATES[1])).brands
    }
    for k in champions:
        b = second[k]
        assert b.status == "kept" and b.reason.startswith("no refit tonight"), b
        assert "refresh.refit_every_days: 2" in b.reason and DATES[0] in b.reason
        assert b.served_by == "champion" and b.model_id == b.champion_id == first[k].model_id
        assert b.challenger_id is None and b.scores["challenger"] is None
        assert b.scores["champion"] is not None and b.scores["global"] is not None
        assert reg.versions("bid", k) == versions[k]  # nothing published
        assert reg.champion("bid", k).id == first[k].model_id
        assert pd.read_parquet(b.outputs["predictions"])["model_id"].eq(b.model_id).all()
        assert pd.read_parquet(b.outputs["bids"])["model_id"].eq(b.model_id).all()
    third = {
        b.brand_id: b for b in refresh(cfg, DATES[2], new_rows=day(observations, DATES[2])).brands
    }
    for k in champions:
        b = third[k]
        assert b.status == "promoted" and b.challenger_id is not None, b
        assert b.model_id == b.challenger_id != first[k].model_id
        assert any("scored prequentially" in n for n in b.notes)


def test_later_nights_repeat_the_weekly_strategy_choice(nightly) -> None:
    """Night 1 chooses on folds; the next nights repeat the champion's choice in one fit."""
    registry = ModelRegistry(nightly.cfg.models_dir)
    first = {b.brand_id: b for b in nightly.reports[DATES[0]].brands}
    second = nightly.reports[DATES[1]].brands
    repeated = carried = 0
    for b in second:
        before = first[b.brand_id]
        if before.status != "promoted" or b.challenger_id is None:
            continue  # no brand champion after night 1: night 2 chooses again
        manifest = registry.manifest(registry.from_id(b.challenger_id))
        assert manifest["selection"]["date"] == DATES[0], b.brand_id
        assert manifest["strategy"] == before.strategy
        assert "repeats the choice of " + DATES[0] in manifest["reason"]
        repeated += 1
        # no fit on the rows before a window: the choice is scored as it served, prequentially
        assert manifest["refresh"]["same_recipe"], b.brand_id
        sums = manifest["refresh"]["prequential"]
        assert sums["selection_date"] == DATES[0] and sums["nights"] == 1 and sums["rows"] > 0
        assert b.scores["champion"] == pytest.approx(sums["champion"] / sums["weight"])
        assert b.scores["global"] == pytest.approx(sums["global"] / sums["weight"])
        assert any("scored prequentially" in n for n in b.notes)
        # the third night adds its rows to the sums its champion's manifest carries
        third = next(t for t in nightly.reports[DATES[2]].brands if t.brand_id == b.brand_id)
        if b.status == "promoted" and third.challenger_id is not None:
            later = registry.manifest(registry.from_id(third.challenger_id))["refresh"]
            assert later["prequential"]["nights"] == 2
            assert later["prequential"]["rows"] > sums["rows"]
            carried += 1
    assert repeated >= 1 and carried >= 1


def test_refresh_keeps_each_adapted_brands_base_leaves_for_the_next_night(nightly) -> None:
    """A refresh keeps the global model's leaf indices of each adapted brand's rows, so the
    next night predicts the global model only on the new day's rows (same models)."""
    from tabtune.leaf_cache import LeafCache
    from tabtune.pipeline import load_global
    from tabtune.refresh import leaf_cache_dir

    cache = LeafCache(leaf_cache_dir(nightly.cfg, nightly.cfg.task("bid")))
    assert cache.directory == nightly.root / "cache" / "leaves" / "bid"
    adapted = [
        b
        for b in nightly.reports[DATES[-1]].brands
        if b.challenger_id is not None and b.strategy not in (None, "scratch")
    ]
    assert adapted
    _, glob = load_global(nightly.cfg, "bid")
    n_features = len(glob._model.layout.names)
    for b in adapted:
        memory = cache.load(glob.model_sha256_, [b.brand_id], n_features)
        # its rows tonight (rows of zero weight, e.g. no clicks, are not fitted)
        assert memory is not None and 0.5 * b.rows < len(memory.X) <= b.rows, b.brand_id


def test_the_nights_bids_are_those_the_recommender_gives_from_the_rows(nightly) -> None:
    """The refresh computes each context's reference bid once, for the predictions and the
    bids; the bids are those ``BidRecommender.recommend(contexts, history=rows)`` computes
    itself with the model that serves the brand (the oracle: the public path)."""
    from tabtune.refresh.brand import _load_version
    from tabtune.refresh.decisions import decision_contexts, next_day_contexts
    from tabtune.tasks.bid import BidRecommender

    date = pd.Timestamp(DATES[-1]).date()
    store, task = CampaignStore(nightly.cfg.data.store), nightly.cfg.task("bid")
    checked = 0
    for b in nightly.reports[DATES[-1]].brands:
        if "bids" not in b.outputs:
            continue
        rows = store.read(brands=[b.brand_id], end=date)
        model = _load_version(nightly.cfg, task, b.model_id)
        source = "brand" if b.model_id.startswith("brands/") else "global"
        rec = BidRecommender.from_estimator(
            model, config=nightly.cfg, model_id=b.model_id, source=source
        )
        contexts = decision_contexts(next_day_contexts(rows, date)).reset_index(drop=True)
        expected = rec.recommend(contexts, history=rows).drop(columns="brand_id")
        written = pd.read_parquet(b.outputs["bids"])
        pd.testing.assert_frame_equal(
            written[list(expected.columns)], expected, check_dtype=False, check_categorical=False
        )
        checked += 1
    assert checked >= 3


def test_refresh_plots_decisions_into_the_run_report(tmp_path, observations) -> None:
    config, cfg = workspace(tmp_path / "ws")
    CampaignStore(cfg.data.store).append(upto(observations, DATES[0]))
    brands = "b002,b003"
    assert cli(config, "refresh", "--date", DATES[0], "--brands", brands, "--plots") == EXIT_OK
    assert (
        cli(
            config, "refresh", "--task", "budget", "--date", DATES[0], "--brands", "b002", "--plots"
        )
        == EXIT_OK
    )
    next_day = (pd.Timestamp(DATES[0]) + pd.Timedelta(days=1)).date().isoformat()
    plots = cfg.outputs_dir / next_day / "plots"
    assert (plots / "bids-b002.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (plots / "bids-b003.png").is_file() and (plots / "budget-b002.png").is_file()
    # the budget task's predictions lie beside the bid task's, so that reading predictions/
    # as one dataset gives one task's rows (they were nested inside it)
    bid_predictions = pd.read_parquet(cfg.outputs_dir / next_day / "predictions")
    assert set(bid_predictions["task"]) == {"bid"}
    budget = pd.read_parquet(cfg.outputs_dir / next_day / "predictions-budget")
    assert set(budget["task"]) == {"budget"} and set(budget["brand_id"].astype(str)) == {"b002"}
    report = json.loads((cfg.runs_dir / DATES[0] / "report.json").read_text())
    assert {b["brand_id"]: Path(b["outputs"]["plot"]).name for b in report["brands"]} == {
        "b002": "bids-b002.png",
        "b003": "bids-b003.png",
    }
    page = (cfg.runs_dir / DATES[0] / "report.html").read_text()
    assert "Brand decisions" in page
    assert page.count(IMAGE) >= 2 + 2  # the run's own plots and one per brand


def test_a_cold_start_brand_is_served_as_the_estimator_serves_it(nightly) -> None:
    """One path: what the refresh serves a brand under ``min_rows_to_adapt`` is what
    ``TabTuneRegressor(base_model=global).fit(its rows)`` serves (the transfer benchmark's
    ``auto``), not the global model without the brand's context and level."""
    from tabtune import TabTuneRegressor
    from tabtune.features import model_features, task_data
    from tabtune.pipeline import load_global, load_model

    date = DATES[-1]
    (b,) = [r for r in nightly.reports[date].brands if r.brand_id == COLD_BRAND]
    assert b.status == "cold_start"
    cfg, task = nightly.cfg, nightly.cfg.task("bid")
    reg = ModelRegistry(cfg.models_dir)
    gref, glob = load_global(cfg, "bid")
    assert gref.id == nightly.reports[date].global_model
    rows = CampaignStore(cfg.data.store).read(brands=[COLD_BRAND], end=date)
    data = task_data(rows, task, features=model_features(glob))
    assert len(data) == b.rows < cfg.adaptation.min_rows_to_adapt
    a = cfg.adaptation
    oracle = TabTuneRegressor(
        base_model=glob,
        min_rows_to_adapt=a.min_rows_to_adapt,
        validation_fraction=a.validation_fraction,
        selection_folds=a.selection_folds,
        selection_margin=a.selection_margin,
        selection_margin_rows=a.selection_margin_rows,
        n_jobs=1,
    ).fit(data.X, data.y, sample_weight=data.weight)
    served = load_model(reg.from_id(b.model_id), task)
    assert served.strategy_ == oracle.strategy_ == b.strategy
    pd.testing.assert_series_equal(
        pd.Series(served.predict(data.X)), pd.Series(oracle.predict(data.X))
    )
    # ... which is not the global model as it is (the brand's level and context differ)
    assert not (glob.predict(data.X) == served.predict(data.X)).all()
    preds = pd.read_parquet(b.outputs["predictions"])
    assert set(preds["model_id"]) == {b.model_id}


def test_a_tuned_min_rows_to_adapt_routes_the_brand(
    nightly, observations, tmp_path, monkeypatch
) -> None:
    """The refresh decides a cold start with the brand's tuned ``min_rows_to_adapt`` (the
    value the estimator that adapts it uses), not the config's alone."""
    import tabtune.tuning as tuning

    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    storage = cfg.tuning.storage
    assert storage.startswith("sqlite:///")
    Path(storage[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    Path(storage[len("sqlite:///") :]).write_bytes(b"")  # a storage exists: studies are read
    studies = {f"brand:{COLD_BRAND}": {"min_rows_to_adapt": 20}}
    monkeypatch.setattr(tuning, "adopted_adaptations", lambda cfg, task, brands=None: studies)
    # one more day for the brand: its last day's rows, dated the day after the last run
    mine = observations[observations["brand_id"] == COLD_BRAND]
    after = pd.Timestamp(DATES[-1]) + pd.Timedelta(days=1)
    new_rows = mine[mine["date"] == mine["date"].max()].assign(date=after)
    (b,) = refresh(cfg, str(after.date()), new_rows=new_rows, brands=[COLD_BRAND]).brands
    assert 20 <= b.rows < cfg.adaptation.min_rows_to_adapt
    # adapted like any brand: a contest against its champion, not a cold start
    assert b.status in ("promoted", "kept"), b
    assert b.scores["champion"] is not None and b.scores["challenger"] is not None


def test_a_late_day_names_every_finished_run_it_missed(
    nightly, observations, tmp_path, caplog
) -> None:
    """A gap filled late: the finished runs after the day never saw its rows (ops red-team)."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    late = day(observations, DATES[1]).head(1).assign(channel="late_channel")
    nxt = day(observations, DATES[-1]).assign(date=pd.Timestamp("2024-04-30"))
    with caplog.at_level("WARNING", logger="tabtune.refresh"):
        report = refresh(cfg, "2024-04-30", new_rows=pd.concat([late, nxt]))
    assert f"2 finished run(s) learnt from the store before rows dated from {DATES[1]}" in (
        caplog.text
    )
    assert f"{DATES[1]} (bid, " in caplog.text and f"{DATES[2]} (bid, " in caplog.text
    assert any("finished run(s) learnt" in n for n in report.notes)


def test_a_resumed_run_does_again_the_brands_decided_before_their_rows(
    nightly, observations, tmp_path, caplog
) -> None:
    """One brand refreshed before the day's export was loaded, then the night with it: the
    brand kept its decision on the older rows, and the report claimed rows its model never
    learnt (ops red-team)."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    brand, date = "b002", "2024-04-30"
    early = refresh(cfg, date, brands=[brand])
    (before,) = [b for b in early.brands if b.brand_id == brand]
    rows = day(observations, DATES[-1]).assign(date=pd.Timestamp(date))
    with caplog.at_level("WARNING", logger="tabtune.refresh"):
        report = refresh(cfg, date, new_rows=rows)
    (after,) = [b for b in report.brands if b.brand_id == brand]
    added = int((rows["brand_id"] == brand).sum())
    assert added and after.rows > before.rows
    assert f"done again: {brand}" in caplog.text
    assert any(f"done again: {brand}" in n for n in report.notes)
    reg = ModelRegistry(cfg.models_dir)
    if after.model_id != report.global_model:
        manifest = reg.manifest(reg.from_id(after.model_id))
        assert manifest["data_window"][-1] == date  # it learnt the day's rows


def test_a_daily_brand_missing_from_the_days_rows_is_named(nightly, observations, tmp_path) -> None:
    """A brand left out of the night's file was decided on its older rows without a word for
    a week (ops red-team); brands that do not run daily are not named."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    daily = observations.groupby("brand_id")["date"].nunique()
    every_day = sorted(daily[daily == daily.max()].index)
    missing = every_day[0]
    rows = day(observations, DATES[-1]).assign(date=pd.Timestamp("2024-04-30"))
    report = refresh(cfg, "2024-04-30", new_rows=rows[rows["brand_id"] != missing])
    (note,) = [n for n in report.notes if "no rows dated 2024-04-30 while other" in n]
    assert note.startswith("1 brand(s)") and f"{missing} (newest {DATES[-1]})" in note


def test_a_missing_brand_is_named_after_a_night_the_store_never_got(
    nightly, observations, tmp_path
) -> None:
    """A night never loaded (2024-04-30 skipped) is no brand's gap: the next night's missing
    brand is still named (ops red-team: one day missing from the store switched the note off
    for six nights, and another account's file went by without a word)."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    daily = observations.groupby("brand_id")["date"].nunique()
    missing = sorted(daily[daily == daily.max()].index)[0]
    rows = day(observations, DATES[-1]).assign(date=pd.Timestamp("2024-05-01"))
    report = refresh(cfg, "2024-05-01", new_rows=rows[rows["brand_id"] != missing])
    (note,) = [n for n in report.notes if "no rows dated 2024-05-01 while other" in n]
    assert note.startswith("1 brand(s)") and f"{missing} (newest {DATES[-1]})" in note
    # the skipped night itself is named, with the fix (it went by without a word; refresh
    # red-team)
    (gap,) = [n for n in report.notes if "holds no row dated" in n]
    assert "no row dated 2024-04-30, while it holds the same weekday" in gap
    assert "tabtune load" in gap


def test_an_input_without_the_nights_date_is_named(nightly, observations, tmp_path) -> None:
    """Another day's file given to a night was only called "not loaded" (ops red-team); when
    the store holds no row of the night's date either, the night is refused: the 05-02 file
    run as 05-08 promoted models and refused the real night as out of order (refresh
    red-team)."""
    from tabtune.errors import TabTuneInputError

    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    older = day(observations, DATES[0])
    refused = "hold none dated 2024-04-30 .* and the store holds none either.*--date 2024-04-27"
    with pytest.raises(TabTuneInputError, match=refused):
        refresh(cfg, "2024-04-30", new_rows=older)
    with pytest.raises(TabTuneInputError, match=refused):  # the command line's --date D
        refresh_range(cfg, "2024-04-30", "2024-04-30", new_rows=older)
    assert not (cfg.runs_dir / "2024-04-30").exists()
    # the day stored already (loaded before): the file's rows are late ones, and the night
    # runs with the note
    CampaignStore(cfg.data.store).append(
        day(observations, DATES[-1]).assign(date=pd.Timestamp("2024-04-30"))
    )
    report = refresh(cfg, "2024-04-30", new_rows=older)
    (note,) = [n for n in report.notes if "none is dated 2024-04-30" in n]
    assert f"hold {len(older)} row(s) dated {DATES[0]} to {DATES[0]}; 0 brand day(s)" in note


def test_a_brand_rollback_says_the_refresh_may_replace_it(nightly, tmp_path, capsys) -> None:
    """The next night replaced a rolled-back champion without a word (ops red-team)."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    config, cfg = workspace(root)
    reg = ModelRegistry(cfg.models_dir)
    brand = next(
        b.brand_id
        for b in nightly.reports[DATES[-1]].brands
        if reg.champion("bid", b.brand_id) is not None
    )
    assert cli(config, "models", "rollback", "--brand", brand) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert f"champion of bid for {brand} is" in out and "a rollback is not pinned" in out
    # the decisions the demoted version wrote stay: said, with the command (refresh red-team)
    assert f"`tabtune bids --brands {brand}` writes the decisions again" in out


def test_an_unfinished_earlier_night_does_not_resume_after_later_nights(nightly, tmp_path) -> None:
    """A night killed before later nights finished is superseded by them: resumed, its
    remaining brands were decided from champions that had learnt the later days and reported
    as having lost history (refresh red-team; an earlier review let it resume). Refused,
    naming the folder to move; the later nights say it never finished."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    run = cfg.runs_dir / DATES[1]
    state = json.loads((run / "state.json").read_text())
    state["finished_at"] = None
    state["brands"] = dict(list(state["brands"].items())[:2])  # killed after two brands
    (run / "state.json").write_text(json.dumps(state))
    (run / "report.json").unlink()
    with pytest.raises(TabTuneInputError, match=rf"interrupted.*move {run}"):
        refresh(cfg, DATES[1])
    assert json.loads((run / "state.json").read_text()) == state  # nothing was done
    shutil.rmtree(cfg.runs_dir / DATES[-1])  # no later finished night: it resumes
    for later in DATES[2:-1]:
        shutil.rmtree(cfg.runs_dir / later)
    report = refresh(cfg, DATES[1])
    assert len(report.brands) == 6 and report.finished_at


def test_a_daily_channel_missing_from_the_days_rows_is_named(
    nightly, observations, tmp_path
) -> None:
    """A night's file with one platform's rows only: the other channels' bids vanished
    without a word (new-user red-team)."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    week = observations[observations["date"] > pd.Timestamp(DATES[-1]) - pd.Timedelta(days=7)]
    daily = week.groupby(["brand_id", "channel"])["date"].nunique()
    rows = day(observations, DATES[-1]).assign(date=pd.Timestamp("2024-04-30"))
    channels = rows.groupby("brand_id")["channel"].nunique()
    brand, channel = next(
        (b, c) for b, c in daily[daily == 7].index if channels.get(b, 0) > 1
    )  # a channel of a brand whose other channels have the day
    keep = ~((rows["brand_id"] == brand) & (rows["channel"] == channel))
    assert (rows.loc[~keep, "brand_id"] == brand).any() and (
        rows.loc[keep, "brand_id"] == brand
    ).any()
    report = refresh(cfg, "2024-04-30", new_rows=rows[keep])
    (note,) = [n for n in report.notes if "channel(s) of brands with rows dated 2024-04-30" in n]
    assert f"{brand}: {channel}" in note and "no bid is written for them" in note
    (b,) = [b for b in report.brands if b.brand_id == brand]
    bids = pd.read_parquet(b.outputs["bids"])
    assert channel not in set(bids["channel"])  # what the note says


def test_a_backfills_input_notes_are_in_its_first_night_only(
    nightly, observations, tmp_path
) -> None:
    """A backfill's --input notes (rows stored with other values, ...) were copied into every
    night's report, as if each night had appended them (executors red-team)."""
    root = tmp_path / "copy"
    shutil.copytree(nightly.root, root)
    _, cfg = workspace(root)
    restated = day(observations, DATES[0]).head(2)
    restated = restated.assign(revenue=restated["revenue"] + 7.0)
    last = day(observations, DATES[-1])  # the range's days, stored (a file of none is refused)
    for date in ("2024-04-30", "2024-05-01"):
        CampaignStore(cfg.data.store).append(last.assign(date=pd.Timestamp(date)))
    reports = refresh_range(cfg, "2024-04-30", "2024-05-01", new_rows=restated)
    needle = "already stored with other values"
    assert [any(needle in n for n in r.notes) for r in reports] == [True, False]
