"""Unit tests for the pure steps of tabtune.refresh and the executors of tabtune.parallel.

The whole nightly job on simulated data is in tests/integration/test_refresh_nightly.py.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tabtune.cli.refresh import run_refresh_cli
from tabtune.config import default_config
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import score
from tabtune.features import TIME_COLUMN, TaskData
from tabtune.parallel import (
    DASK_HINT,
    InlineExecutor,
    ProcessExecutor,
    make_executor,
)
from tabtune.refresh import (
    BrandRecord,
    RunReport,
    build_report,
    decide_promotion,
    evaluate,
    find_run_challenger,
    global_refresh_due,
    holdout_mask,
    load_state,
    new_state,
    next_day_contexts,
    parse_date,
    pending_brands,
    record_brand,
    save_state,
    usable_rows,
)
from tabtune.registry import ModelRegistry

D = dt.date(2024, 4, 28)


# ---------------------------------------------------------------------------- holdout window


def test_holdout_mask_takes_the_newest_share_in_whole_days() -> None:
    dates = pd.to_datetime(["2024-01-03"] * 3 + ["2024-01-01"] * 4 + ["2024-01-02"] * 3)
    mask = holdout_mask(dates, 0.2)  # 2 of 10 rows -> the whole newest day (3 rows)
    assert mask.tolist() == [True] * 3 + [False] * 7
    mask = holdout_mask(dates, 0.5)  # 5 rows -> the two newest days (6 rows)
    assert mask.sum() == 6 and not mask[3:7].any()


def test_holdout_mask_edge_cases() -> None:
    assert holdout_mask([], 0.2).tolist() == []
    assert holdout_mask(["2024-01-01"], 0.01).tolist() == [True]
    one_day = ["2024-01-01"] * 5
    assert holdout_mask(one_day, 0.2).all()


def weighted_mse(y, pred, weight=None):
    """The squared-error score of a model predicting ``pred`` (tabtune.evaluation.score)."""

    class Fixed:
        def predict(self, X):
            return np.asarray(pred, dtype=float)

    X = pd.DataFrame({"row": range(len(y))})
    return score(Fixed(), X, np.asarray(y, dtype=float), None, "squared_error", weight)


def test_weighted_mse() -> None:
    assert weighted_mse([1, 2], [1, 4]) == pytest.approx(2.0)
    assert weighted_mse([1, 2], [1, 4], [3, 1]) == pytest.approx(1.0)
    assert weighted_mse([1, 2], [1, 4], [0, 0]) is None
    assert weighted_mse([], []) is None


# ---------------------------------------------------------------------------- evaluate


class RecordingModel:
    """Predicts a constant and remembers which rows it was asked about."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.seen: list[list[int]] = []

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self.seen.append(X["row"].tolist())
        return np.full(len(X), self.value)


def small_data() -> TaskData:
    dates = pd.date_range("2024-01-01", periods=10, freq="D")
    X = pd.DataFrame({"brand_id": "b", "date": dates, "row": range(10)})
    y = np.arange(10, dtype=float)
    return TaskData(X=X, y=y, weight=np.ones(10), rows=X)


def test_evaluate_scores_every_model_on_the_same_window() -> None:
    data = small_data()
    mask = holdout_mask(data.X["date"], 0.3)
    champion, challenger, glob = RecordingModel(7.0), RecordingModel(8.0), RecordingModel(0.0)
    scores = evaluate({"champion": champion, "challenger": challenger, "global": glob}, data, mask)
    assert champion.seen == challenger.seen == glob.seen == [[7, 8, 9]]
    assert scores["champion"] == pytest.approx((0 + 1 + 4) / 3)
    assert scores["challenger"] == pytest.approx((1 + 0 + 1) / 3)
    assert scores["global"] == pytest.approx((49 + 64 + 81) / 3)


def test_evaluate_predicts_a_shared_model_once_and_skips_none() -> None:
    data = small_data()
    model = RecordingModel(9.0)
    scores = evaluate(
        {"champion": model, "challenger": None, "global": model},
        data,
        holdout_mask(data.X["date"], 0.1),
    )
    assert len(model.seen) == 1
    assert scores == {"champion": 0.0, "challenger": None, "global": 0.0}


# ---------------------------------------------------------------------------- promotion


@pytest.mark.parametrize(
    ("champion", "challenger", "margin", "status"),
    [
        (1.0, 0.9, 0.0, "promoted"),
        (1.0, 1.0, 0.0, "kept"),  # a tie keeps the champion
        (1.0, 1.1, 0.0, "kept"),
        (1.0, 0.95, 0.1, "kept"),  # 5% better, 10% needed
        (1.0, 0.9, 0.1, "kept"),  # exactly at the margin is not beating it
        (1.0, 0.85, 0.1, "promoted"),
        (1.0, None, 0.0, "kept"),
        (None, 0.5, 0.0, "kept"),
        (math.nan, 0.5, 0.0, "kept"),
    ],
)
def test_decide_promotion_margins(champion, challenger, margin, status) -> None:
    decision = decide_promotion({"champion": champion, "challenger": challenger}, margin)
    assert decision.status == status
    assert decision.promote is (status == "promoted")
    assert decision.reason


def test_decide_promotion_reason_has_the_numbers() -> None:
    decision = decide_promotion({"champion": 2.0, "challenger": 1.5}, 0.05)
    assert "1.5" in decision.reason and "2" in decision.reason and "25.0%" in decision.reason


def test_global_refresh_due() -> None:
    manifest = {"data_window": ["2024-01-01", "2024-04-01"]}
    assert not global_refresh_due(manifest, D, None)
    assert not global_refresh_due(manifest, D, 30)
    assert global_refresh_due(manifest, D, 27)
    assert global_refresh_due({}, D, 7)


# ---------------------------------------------------------------------------- state


def record(brand: str, status: str, **kw) -> BrandRecord:
    return BrandRecord(brand_id=brand, status=status, **kw)


def test_pending_brands_skips_done_and_retries_failed() -> None:
    state = new_state(D, "bid", started_at="t0", global_model="global/bid/v0001")
    assert pending_brands(None, ["a", "b"]) == ["a", "b"]
    for brand, status in [("a", "promoted"), ("b", "failed"), ("c", "cold_start")]:
        state = record_brand(state, record(brand, status))
    assert pending_brands(state, ["a", "b", "c", "d"]) == ["b", "d"]


def test_record_brand_returns_a_new_state() -> None:
    state = new_state(D, "bid", started_at="t0", global_model="g")
    after = record_brand(state, record("a", "kept"))
    assert state["brands"] == {}
    assert after["brands"]["a"]["status"] == "kept"


def test_state_round_trip_and_damaged_state(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "2024-04-28" / "state.json"
    assert load_state(path) is None
    state = record_brand(
        new_state(D, "bid", started_at="t0", global_model="g"),
        record("a", "promoted", scores={"champion": 1.0, "challenger": math.inf, "global": 2.0}),
    )
    save_state(path, state)
    loaded = load_state(path)
    assert loaded["brands"]["a"]["scores"]["challenger"] is None  # non-finite -> null
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary files
    path.write_text("{not json")
    with pytest.raises(TabTuneInputError, match="move it away"):
        load_state(path)
    path.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(TabTuneInputError, match="not a tabtune state file"):
        load_state(path)


def test_records_are_journaled_not_rewritten_and_replayed(tmp_path: Path) -> None:
    """A brand's record is appended to the journal (state.json is not rewritten); reading
    the state replays this run's lines, skips a line cut short at the end, ignores another
    run's lines and refuses a damaged line before the end; saving the state drops the
    journal."""
    from tabtune.refresh import JOURNAL_NAME, append_record

    path = tmp_path / "runs" / "2024-04-28" / "state.json"
    state = new_state(D, "bid", started_at="t1", global_model="g")
    save_state(path, state)
    written = path.read_bytes()
    journal = path.with_name(JOURNAL_NAME)
    other_run = {"run": "t0", "record": record("z", "promoted").to_dict()}
    journal.write_text(json.dumps(other_run) + "\n")
    state = append_record(path, state, record("a", "failed", reason="boom"))
    state = append_record(path, state, record("b", "kept"))
    state = append_record(path, state, record("a", "promoted"))
    assert path.read_bytes() == written  # appending never rewrites the state
    loaded = load_state(path)
    assert loaded == state and sorted(loaded["brands"]) == ["a", "b"]
    assert loaded["brands"]["a"]["status"] == "promoted"  # the later line wins
    with journal.open("ab") as fh:  # a run killed while appending a line
        fh.write(b'{"run": "t1", "record": {"brand_id": "c", "sta')
    assert sorted(load_state(path)["brands"]) == ["a", "b"]
    lines = journal.read_bytes().split(b"\n")
    journal.write_bytes(b"\n".join([lines[0], b"{oops", *lines[1:]]))
    with pytest.raises(TabTuneInputError, match=r"state.journal is damaged \(line 2"):
        load_state(path)
    save_state(path, state)
    assert not journal.exists() and load_state(path) == state


def test_build_report_counts_sorts_and_sums() -> None:
    state = new_state(D, "bid", started_at="2024-04-29T01:00:00+00:00", global_model="g")
    state["finished_at"] = "2024-04-29T01:00:30+00:00"
    state["global_seconds"] = 2.0
    entries = [
        record("z", "promoted", scores={"champion": 2.0, "challenger": 1.0, "global": 2.0},
               served_by="challenger", model_id="brands/z/bid/v0001",
               timings={"load": 1.0, "train": 2.0}),
        record("k", "kept", scores={"champion": 2.0, "challenger": 2.5, "global": 2.0},
               served_by="global", model_id="g"),
        # a cold start's challenger score is in sample: not in the uplift
        record("a", "cold_start", scores={"champion": None, "challenger": 1.0, "global": 3.0},
               served_by="challenger", model_id="brands/a/bid/v0001", timings={"load": 0.5}),
        record("m", "failed", reason="boom"),
    ]  # fmt: skip
    for entry in entries:
        state = record_brand(state, entry)
    report = build_report(state)
    assert [b.brand_id for b in report.brands] == ["a", "k", "m", "z"]
    assert report.summary["promoted"] == 1 and report.summary["failed"] == 1
    assert report.summary["cold_start"] == 1 and report.summary["kept"] == 1
    assert report.summary["served_by_brand_model"] == 2
    assert report.summary["median_uplift_vs_global"] == pytest.approx(0.25)  # (0.5 + 0) / 2
    assert report.timings["load"] == 1.5 and report.timings["train"] == 2.0
    assert report.timings["wall"] == 30.0 and report.timings["pretrain"] == 2.0
    assert report.exit_code == 3 and [b.brand_id for b in report.failed] == ["m"]
    again = RunReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


def test_a_resumed_runs_wall_time_counts_its_last_attempt() -> None:
    # killed at 01:00:30, resumed the next morning at 07:00, finished 20 s later
    state = new_state(D, "bid", started_at="2024-04-29T01:00:00+00:00", global_model="g")
    state["finished_at"] = "2024-04-29T07:00:20+00:00"
    assert build_report(state).timings["wall"] == 6 * 3600 + 20  # as one attempt
    state["attempt_started_at"] = "2024-04-29T07:00:00+00:00"
    report = build_report(state)
    assert report.timings["wall"] == 20.0
    assert any(n.startswith("resumed at 2024-04-29T07:00:00") for n in report.notes)
    fresh = {**state, "attempt_started_at": state["started_at"]}  # not a resume: no note
    assert not any("resumed" in n for n in build_report(fresh).notes)


# ---------------------------------------------------------------------------- inputs


def test_parse_date() -> None:
    assert parse_date("2024-04-28") == D
    assert parse_date(pd.Timestamp("2024-04-28 13:00")) == D
    with pytest.raises(TabTuneInputError, match="not a date"):
        parse_date("28/04/2024")


def test_next_day_contexts_takes_the_latest_day_up_to_d() -> None:
    rows = pd.DataFrame(
        {
            "brand_id": "b",
            "date": pd.to_datetime(["2024-04-26", "2024-04-27", "2024-04-27", "2024-04-29"]),
            "channel": ["s", "s", "d", "s"],
        }
    )
    out = next_day_contexts(rows, dt.date(2024, 4, 28))
    assert out["channel"].tolist() == ["s", "d"]
    assert (out["date"] == pd.Timestamp("2024-04-29")).all()
    assert out["date"].dtype == rows["date"].dtype
    assert len(next_day_contexts(rows, dt.date(2024, 1, 1))) == 0


def test_usable_rows_drops_rows_without_a_target() -> None:
    cfg = default_config()
    rows = pd.DataFrame(
        {
            "brand_id": "b",
            "date": pd.to_datetime(["2024-04-26", "2024-04-27", "2024-04-28"]),
            "channel": "search",
            "audience": "a",
            "device": "mobile",
            "vertical": "v",
            "bid": 1.0,
            "clicks": [0, 4, 2],
            "revenue": [0.0, 8.0, 1.0],
        }
    )
    data = usable_rows(rows, cfg.task("bid"))
    assert len(data) == 2 and data.y.tolist() == [2.0, 0.5]
    assert len(usable_rows(rows.iloc[:1], cfg.task("bid"))) == 0  # no error: a cold start


# ---------------------------------------------------------------------------- registry lookups


def publish(reg: ModelRegistry, brand: str, refresh: dict | None, promote: bool = False):
    manifest = {} if refresh is None else {"refresh": refresh}
    return reg.publish(
        "bid",
        lambda d: (d / "model.txt").write_text(json.dumps(refresh)),
        brand=brand,
        manifest=manifest,
        promote=promote,
    )


def test_find_run_challenger_finds_only_this_runs_version(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    info = {"date": "2024-04-28", "task": "bid", "global_model": "global/bid/v0001"}
    publish(reg, "b", {**info, "date": "2024-04-27"}, promote=True)
    assert find_run_challenger(reg, "bid", "b", D, "global/bid/v0001") is None
    mine = publish(reg, "b", {**info, "champion_before": "brands/b/bid/v0001"})
    publish(reg, "b", None)  # a manual finetune published later
    found = find_run_challenger(reg, "bid", "b", D, "global/bid/v0001")
    assert found is not None and found[0] == mine
    assert found[1]["refresh"]["champion_before"] == "brands/b/bid/v0001"
    # built from another global model: not this run's challenger
    assert find_run_challenger(reg, "bid", "b", D, "global/bid/v0002") is None
    # a corrupted challenger is not reused
    (mine.path / "model.txt").write_text("tampered")
    assert find_run_challenger(reg, "bid", "b", D, "global/bid/v0001") is None
    assert find_run_challenger(reg, "bid", "nobody", D, "global/bid/v0001") is None


class _Rows(SimpleNamespace):
    def __len__(self) -> int:
        return len(self.X)


def test_a_run_challenger_built_from_other_rows_is_fitted_again(tmp_path: Path) -> None:
    """An attempt of the run before the day's export was loaded (or from the wrong file)
    published a challenger; the attempt with the day's rows reused it, and the report claimed
    rows it never learnt (ops red-team)."""
    reg = ModelRegistry(tmp_path)
    info = {"date": D.isoformat(), "task": "bid", "global_model": "global/bid/v0001"}
    days = pd.Series(pd.date_range("2024-04-01", "2024-04-27"))
    built = reg.publish(
        "bid",
        lambda d: (d / "model.txt").write_text("m"),
        brand="b",
        manifest={"refresh": info, "rows": len(days), "data_window": ["2024-04-01", "2024-04-27"]},
    )
    same = _Rows(X=pd.DataFrame({TIME_COLUMN: days}))
    found = find_run_challenger(reg, "bid", "b", D, "global/bid/v0001", same)
    assert found is not None and found[0] == built
    longer = _Rows(
        X=pd.DataFrame({TIME_COLUMN: pd.concat([days, days.tail(1) + pd.Timedelta(1, "D")])})
    )
    assert find_run_challenger(reg, "bid", "b", D, "global/bid/v0001", longer) is None
    other = _Rows(X=pd.DataFrame({TIME_COLUMN: days + pd.Timedelta(1, "D")}))  # same count
    assert find_run_challenger(reg, "bid", "b", D, "global/bid/v0001", other) is None


def test_a_run_challenger_of_restated_values_is_fitted_again(tmp_path: Path) -> None:
    """Same rows, same days, other values (restated under data.restated_rows: replace):
    the challenger's inputs checksum tells them apart."""
    from tabtune.refresh.fingerprints import rows_fingerprint

    X = pd.DataFrame(
        {TIME_COLUMN: pd.date_range("2024-04-01", periods=5), "channel": list("aabba")}
    )
    data = TaskData(X, np.arange(5.0), None, X)
    restated = TaskData(X, np.arange(5.0) + [0, 0, 0, 0, 1], None, X)
    assert rows_fingerprint(data) == rows_fingerprint(TaskData(X.copy(), np.arange(5.0), None, X))
    assert rows_fingerprint(data) != rows_fingerprint(restated)
    reg = ModelRegistry(tmp_path)
    info = {"date": D.isoformat(), "task": "bid", "global_model": "global/bid/v0001"}
    built = reg.publish(
        "bid",
        lambda d: (d / "model.txt").write_text("m"),
        brand="b",
        manifest={"refresh": info, "rows": 5, "data_window": ["2024-04-01", "2024-04-05"],
                  "rows_fingerprint": rows_fingerprint(data)},
    )  # fmt: skip
    found = find_run_challenger(reg, "bid", "b", D, "global/bid/v0001", data)
    assert found is not None and found[0] == built
    assert find_run_challenger(reg, "bid", "b", D, "global/bid/v0001", restated) is None


def test_a_champion_whose_learned_rows_were_restated_is_refitted_tonight() -> None:
    """A champion kept serving for up to refresh.refit_every_days after the rows it learned
    were restated (or completed late); the checksum of those days' rows now says so."""
    from tabtune.config import Config
    from tabtune.refresh.fingerprints import learned_rows_changed, rows_fingerprint
    from tabtune.refresh.promotion import refit_due

    days = pd.Series(pd.date_range("2024-04-01", periods=20).repeat(5))
    X = pd.DataFrame({TIME_COLUMN: days, "channel": list("abcde") * 20})
    learned = TaskData(X, np.arange(100.0), None, X)
    manifest = {
        "rows": 100,
        "data_window": ["2024-04-01", "2024-04-20"],
        "rows_fingerprint": rows_fingerprint(learned),
    }
    tonight = pd.concat([X, X.tail(5).assign(date=pd.Timestamp("2024-04-21"))], ignore_index=True)
    grown = TaskData(tonight, np.arange(105.0), None, tonight)  # one more day: 5% of 100
    cfg = Config.model_validate({"refresh": {"refit_when_rows_grow": 0.5}})
    date = dt.date(2024, 4, 21)
    assert not learned_rows_changed(manifest, grown) and not refit_due(cfg, manifest, grown, date)
    y = np.arange(105.0)
    y[3] += 1.0  # a restated value of a day it learned
    restated = TaskData(tonight, y, None, tonight)
    assert learned_rows_changed(manifest, restated) and refit_due(cfg, manifest, restated, date)
    assert not learned_rows_changed({**manifest, "rows_fingerprint": None}, restated)
    # a checksum of another version (the features computed before the per-context sums) is
    # unknown, not a restatement: every champion would refit once after an upgrade (red-team)
    unprefixed = manifest["rows_fingerprint"].split(":", 1)[1]
    assert not learned_rows_changed({**manifest, "rows_fingerprint": unprefixed}, restated)


# ---------------------------------------------------------------------------- CLI arguments


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "needs --date"),
        ({"date_from": "2024-04-01"}, "needs --date"),
        ({"date": "2024-04-01", "date_from": "2024-04-01"}, "not both"),
        ({"date_from": "2024-04-03", "date_to": "2024-04-01"}, "is after"),
        ({"date": "yesterday"}, "not a date"),
        ({"date": "2099-01-01"}, "after .* the last day campaign rows may be dated"),
        ({"date_from": "2024-04-01", "date_to": "2099-01-01"}, "to=2099-01-01 is after"),
        ({"date": "2024-04-01", "task": "nope"}, "unknown task"),
    ],
)
def test_refresh_cli_rejects_bad_arguments(tmp_path: Path, args: dict, message: str) -> None:
    cfg = default_config().model_copy(
        update={"models_dir": tmp_path / "models", "runs_dir": tmp_path / "runs"}
    )
    full = {"date": None, "date_from": None, "date_to": None, "brands": None, "scheduler": None,
            "task": None, **args}  # fmt: skip
    with pytest.raises(TabTuneInputError, match=message):
        run_refresh_cli(cfg, SimpleNamespace(**full))
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------- executors


def test_inline_executor_isolates_errors() -> None:
    with InlineExecutor() as ex:
        out = list(ex.run(operator.truediv, {"a": (1, 2), "b": (1, 0), "c": (3, 1)}))
    assert [o.key for o in out] == ["a", "b", "c"]
    assert out[0].value == 0.5 and out[2].value == 3.0
    assert not out[1].ok and isinstance(out[1].error, ZeroDivisionError)


def test_process_executor_runs_jobs_in_workers_and_isolates_errors() -> None:
    with ProcessExecutor(n_workers=2) as ex:
        out = {o.key: o for o in ex.run(math.sqrt, {"a": (4.0,), "b": (-1.0,), "c": (9.0,)})}
        assert list(ex.run(math.sqrt, {})) == []
    assert out["a"].value == 2.0 and out["c"].value == 3.0
    assert isinstance(out["b"].error, ValueError)


def test_make_executor() -> None:
    assert isinstance(make_executor("inline"), InlineExecutor)
    ex = make_executor("process", n_workers=3)
    assert isinstance(ex, ProcessExecutor) and ex.n_workers == 3
    ex.close()
    with pytest.raises(TabTuneInputError, match="unknown executor"):
        make_executor("threads")


def test_dask_executor_without_dask_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r"pip install tabtune\[dask\]"):
        make_executor("inline", scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ImportError) as info:
        make_executor("dask")
    assert str(info.value) == DASK_HINT


def test_challenger_uses_tuned_adaptation_parameters_when_a_study_has_them(
    tmp_path, monkeypatch
) -> None:
    """The brand's study wins over its bucket's; only adaptation settings are applied."""
    import tabtune.tuning as tuning
    from tabtune.config import default_config
    from tabtune.refresh import tuned_adaptation

    db = tmp_path / "tuning.db"
    cfg = default_config().model_copy(
        update={"tuning": default_config().tuning.model_copy(update={"storage": f"sqlite:///{db}"})}
    )
    task = cfg.task("bid")
    # no storage file: defaults, and no study is even looked up
    monkeypatch.setattr(tuning, "best_params", lambda *a, **k: pytest.fail("looked up"))
    assert tuned_adaptation(cfg, task, "b1", 500) == (cfg, None)

    db.write_bytes(b"")
    studies = {
        "adapt:small": {"adapt_n_estimators": 7, "learning_rate": 0.3},
        "brand:b2": {"strategy": "continue", "refit_decay_rate": 0.2},
    }
    monkeypatch.setattr(
        tuning, "best_params", lambda cfg, task, scope, storage=None: studies.get(scope)
    )
    tuned, scope = tuned_adaptation(cfg, task, "b1", 500)
    assert scope == "adapt:small"
    assert tuned.adaptation.adapt_n_estimators == 7
    assert tuned.model.learning_rate == cfg.model.learning_rate  # global settings untouched
    tuned, scope = tuned_adaptation(cfg, task, "b2", 500)
    assert scope == "brand:b2"
    assert tuned.adaptation.strategy == "continue" and tuned.adaptation.refit_decay_rate == 0.2
    assert tuned_adaptation(cfg, task, "b3", 50_000) == (cfg, None)  # large bucket: no study
    # in a night: the parameters it read when it started, whatever a study adopted since
    # (a study finished mid-night changed them for the brands after it; refresh red-team)
    from tabtune.refresh.challenger import NIGHT_STUDIES, brand_studies

    night = {"adapt:small": {"n": 1}, "brand:b2": {"n": 2}, "brand:b3": {"n": 3}}
    assert brand_studies(night, "b2") == {"brand:b2": {"n": 2}, "adapt:small": {"n": 1}}
    assert brand_studies(None, "b2") is None  # a night begun before the snapshot: read

    monkeypatch.setattr(tuning, "best_params", lambda *a, **k: pytest.fail("looked up"))
    token = NIGHT_STUDIES.set({"adapt:small": {"adapt_n_estimators": 9}})
    try:
        tuned, scope = tuned_adaptation(cfg, task, "b2", 500)
        assert scope == "adapt:small" and tuned.adaptation.adapt_n_estimators == 9
        assert tuned_adaptation(cfg, task, "b3", 50_000) == (cfg, None)
    finally:
        NIGHT_STUDIES.reset(token)


def test_repeated_selection_only_within_the_window() -> None:
    from tabtune.refresh import repeated_selection

    cfg = default_config()
    sel = {"date": "2024-04-25", "strategy": "continue", "n_new_trees": 12}
    assert repeated_selection(cfg, {"selection": sel}, D) == sel  # 3 days old, window 28
    assert repeated_selection(cfg, {"selection": sel}, D + dt.timedelta(days=24)) == sel
    assert repeated_selection(cfg, {"selection": sel}, D + dt.timedelta(days=25)) is None
    # Chosen on 400 rows: repeated up to 499 rows tonight, chosen again from 500 (25% more).
    grown = dict(sel, n_rows=400)
    assert repeated_selection(cfg, {"selection": grown}, D, n_rows=499) == grown
    assert repeated_selection(cfg, {"selection": grown}, D, n_rows=500) is None
    assert repeated_selection(cfg, {"selection": sel}, D, n_rows=10_000) == sel  # rows unknown
    by_age = cfg.model_copy(
        update={"adaptation": cfg.adaptation.model_copy(update={"reselect_when_rows_grow": None})}
    )
    assert repeated_selection(by_age, {"selection": grown}, D, n_rows=10_000) == grown
    assert repeated_selection(cfg, {"selection": sel}, dt.date(2024, 4, 24)) is None  # future
    assert repeated_selection(cfg, None, D) is None  # no champion
    assert repeated_selection(cfg, {"selection": None}, D) is None  # champion of an older tabtune
    # a cold start's choice (made under min_rows_to_adapt) is never repeated: choose again
    small = dict(sel, strategy="segments", n_new_trees=0, small=True)
    assert repeated_selection(cfg, {"selection": small}, D) is None
    every_night = cfg.model_copy(
        update={"adaptation": cfg.adaptation.model_copy(update={"reselect_every_days": None})}
    )
    assert repeated_selection(every_night, {"selection": sel}, D) is None
    fixed = cfg.model_copy(
        update={"adaptation": cfg.adaptation.model_copy(update={"strategy": "refit"})}
    )
    assert repeated_selection(fixed, {"selection": sel}, D) is None


def test_challenger_repeats_the_champions_choice_in_one_fit(tmp_path: Path) -> None:
    """Within the window the challenger is the champion's strategy, refitted without folds."""
    from tabtune.data.synth import simulate
    from tabtune.features import task_data
    from tabtune.pipeline import global_estimator
    from tabtune.refresh import build_challenger

    cfg = default_config()
    cfg = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(update={"n_estimators": 40, "learning_rate": 0.2}),
            "cache_dir": tmp_path / "cache",
        }
    )
    task = cfg.task("bid")
    data = task_data(simulate(n_brands=8, n_days=120, seed=4).observations, task)
    brands = data.X["brand_id"].value_counts()
    brand = brands.index[0]
    mine = (data.X["brand_id"] == brand).to_numpy()
    glob = global_estimator(cfg, task).fit(
        data.X[~mine], data.y[~mine], sample_weight=data.weight[~mine]
    )
    own = TaskData(data.X[mine], data.y[mine], data.weight[mine], data.rows[mine])
    first = build_challenger(cfg, task, glob, own, date=D)
    assert first.selection_ == {
        "date": D.isoformat(),
        "strategy": first.strategy_,
        "n_new_trees": first.n_new_trees_,
        "n_rows": len(own),
    }
    assert first.holdout_scores_  # chose on folds
    repeat = {"date": D.isoformat(), "strategy": "continue", "n_new_trees": 5}
    again = build_challenger(
        cfg, task, glob, own, date=D + dt.timedelta(days=1), previous={"selection": repeat}
    )
    assert again.strategy_ == "continue" and again.n_new_trees_ == 5
    assert again.holdout_scores_ == {}  # no folds, no holdout: one fit
    assert again.selection_ == repeat and "repeats the choice of" in again.strategy_reason_
    # the refresh keeps the global model's leaf indices of the brand's rows for tomorrow
    assert again.leaf_cache == str(tmp_path / "cache" / "leaves" / "bid")
    assert len(list((tmp_path / "cache" / "leaves" / "bid").glob("*.npz"))) == 1
    off = cfg.model_copy(update={"cache_dir": None})
    assert build_challenger(off, task, glob, own, date=D).leaf_cache is None
    later = build_challenger(
        cfg, task, glob, own, date=D + dt.timedelta(days=28), previous={"selection": repeat}
    )
    assert later.selection_["date"] == (D + dt.timedelta(days=28)).isoformat()
    assert later.holdout_scores_
    # A choice made on far fewer rows than the brand has tonight is made again.
    few = dict(repeat, n_rows=len(own) // 2)
    grown = build_challenger(
        cfg, task, glob, own, date=D + dt.timedelta(days=1), previous={"selection": few}
    )
    assert grown.holdout_scores_ and grown.selection_["n_rows"] == len(own)


def _brand_setup(tmp_path: Path):
    from tabtune.data.synth import simulate
    from tabtune.features import task_data
    from tabtune.pipeline import global_estimator

    cfg = default_config()
    cfg = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(update={"n_estimators": 40, "learning_rate": 0.2}),
            "cache_dir": None,
        }
    )
    task = cfg.task("bid")
    data = task_data(simulate(n_brands=8, n_days=120, seed=4).observations, task)
    brand = data.X["brand_id"].value_counts().index[0]
    mine = (data.X["brand_id"] == brand).to_numpy()
    glob = global_estimator(cfg, task).fit(
        data.X[~mine], data.y[~mine], sample_weight=data.weight[~mine]
    )
    own = TaskData(
        data.X[mine].reset_index(drop=True),
        data.y[mine],
        data.weight[mine],
        data.rows[mine].reset_index(drop=True),
    )
    return cfg, task, glob, own


def test_challenge_scores_the_choice_out_of_time_and_serves_it_refitted(tmp_path: Path) -> None:
    """The promotion scores are those of models that never saw the window's days."""
    from tabtune.estimators import repeat_params
    from tabtune.evaluation import row_losses, time_window
    from tabtune.pipeline import brand_estimator
    from tabtune.refresh import challenge

    cfg, task, glob, own = _brand_setup(tmp_path)
    window = time_window(own.X["date"], cfg.adaptation.validation_fraction)
    assert 0 < window.sum() < len(window)
    assert own.X["date"][window].min() > own.X["date"][~window].max()  # whole days
    result = challenge(cfg, task, glob, own, window, date=D, global_id="global/bid/v0001")
    assert result.out_of_time and not result.same_recipe
    # Oracle: the raw estimator fitted on the rows before the window only, scored by hand.
    before = brand_estimator(cfg, task, glob).fit(
        own.X[~window], own.y[~window], sample_weight=own.weight[~window]
    )
    assert before.strategy_ == result.challenger.selection_["strategy"]
    loss = row_losses("tweedie", own.y[window], before.predict(own.X[window]))
    expected = float(np.average(loss, weights=own.weight[window]))
    assert result.scores["challenger"] == pytest.approx(expected, rel=1e-12)
    glob_loss = row_losses("tweedie", own.y[window], glob.predict(own.X[window]))
    assert result.scores["global"] == pytest.approx(
        float(np.average(glob_loss, weights=own.weight[window])), rel=1e-12
    )
    assert result.scores["champion"] == result.scores["global"]  # no champion yet
    # The served challenger: the same choice on every row, in one fit.
    served = brand_estimator(cfg, task, glob).set_params(
        **repeat_params(before.strategy_, before.n_new_trees_)
    )
    served.fit(own.X, own.y, sample_weight=own.weight)
    np.testing.assert_array_equal(result.challenger.predict(own.X), served.predict(own.X))
    # In sample the served challenger would look better than it is out of time.
    in_sample = row_losses("tweedie", own.y[window], served.predict(own.X[window]))
    assert float(np.average(in_sample, weights=own.weight[window])) < expected


def test_challenge_fits_a_different_champion_choice_on_the_same_days(tmp_path: Path) -> None:
    from tabtune.estimators import repeat_params
    from tabtune.evaluation import row_losses, time_window
    from tabtune.pipeline import brand_estimator
    from tabtune.refresh import challenge

    cfg, task, glob, own = _brand_setup(tmp_path)
    window = time_window(own.X["date"], cfg.adaptation.validation_fraction)
    first = challenge(cfg, task, glob, own, window, date=D, global_id="g")
    chosen = first.challenger.selection_
    other = "scratch" if chosen["strategy"] != "scratch" else "refit"
    selection = {"date": D.isoformat(), "strategy": other, "n_new_trees": 7, "n_rows": 10}
    champion = brand_estimator(cfg, task, glob).set_params(**repeat_params(other, 7))
    champion.fit(own.X, own.y, sample_weight=own.weight)  # has learned from the window
    manifest = {"base_model": "g", "selection": selection}
    # The champion's choice is made again on far fewer rows: auto chooses again tonight.
    result = challenge(
        cfg,
        task,
        glob,
        own,
        window,
        date=D,
        global_id="g",
        champion=champion,
        champion_manifest=manifest,
    )
    assert not result.same_recipe
    oracle = brand_estimator(cfg, task, glob).set_params(**repeat_params(other, 7))
    oracle.fit(own.X[~window], own.y[~window], sample_weight=own.weight[~window])
    loss = row_losses("tweedie", own.y[window], oracle.predict(own.X[window]))
    assert result.scores["champion"] == pytest.approx(
        float(np.average(loss, weights=own.weight[window])), rel=1e-12
    )
    # The same choice on the same global model: one model, no contest.
    same_manifest = {"base_model": "g", "selection": dict(chosen)}
    again = challenge(
        cfg,
        task,
        glob,
        own,
        window,
        date=D,
        global_id="g",
        champion=champion,
        champion_manifest=same_manifest,
    )
    assert again.same_recipe and again.scores["champion"] == again.scores["challenger"]
    # A champion whose global model cannot be loaded is scored as it serves, with a note.
    gone = {"base_model": "old", "selection": selection}
    stale = challenge(
        cfg,
        task,
        glob,
        own,
        window,
        date=D,
        global_id="g",
        champion=champion,
        champion_manifest=gone,
        load_model_id=None,
    )
    served = row_losses("tweedie", own.y[window], champion.predict(own.X[window]))
    assert stale.scores["champion"] == pytest.approx(
        float(np.average(served, weights=own.weight[window])), rel=1e-12
    )
    assert any("scored as it serves" in n for n in stale.notes)


def test_challenge_without_days_before_the_window_scores_in_sample(tmp_path: Path) -> None:
    from tabtune.refresh import challenge

    cfg, task, glob, own = _brand_setup(tmp_path)
    window = np.ones(len(own), dtype=bool)
    result = challenge(cfg, task, glob, own, window, date=D, global_id="g")
    assert not result.out_of_time and "in sample" in result.notes[0]


def test_challenge_without_a_champion_repeats_the_newest_challengers_choice(
    tmp_path: Path,
) -> None:
    """A brand the global model keeps serving does not choose again every night."""
    from tabtune.evaluation import time_window
    from tabtune.refresh import challenge

    cfg, task, glob, own = _brand_setup(tmp_path)
    window = time_window(own.X["date"], cfg.adaptation.validation_fraction)
    first = challenge(cfg, task, glob, own, window, date=D, global_id="g")
    newest = {"base_model": "g", "selection": dict(first.challenger.selection_)}
    tomorrow = D + dt.timedelta(days=1)
    again = challenge(
        cfg, task, glob, own, window, date=tomorrow, global_id="g", previous_choice=newest
    )
    assert again.challenger.selection_ == first.challenger.selection_  # repeated, not re-chosen
    assert again.challenger.holdout_scores_ == {}  # one fit, no folds
    # from another global model, the choice is made again
    other = challenge(
        cfg, task, glob, own, window, date=tomorrow, global_id="g2", previous_choice=newest
    )
    assert other.challenger.selection_["date"] == tomorrow.isoformat()


def test_a_repeated_choice_contests_again_after_contest_every_days(
    monkeypatch, tmp_path: Path
) -> None:
    """A brand repeating a choice that was contested on day L is not contested again (nothing
    is fitted) before L + refresh.contest_every_days; then, or once it chooses again, it is."""
    from tabtune.evaluation import row_losses, time_window
    from tabtune.refresh import challenge, promotion

    cfg, task, glob, own = _brand_setup(tmp_path)
    window = time_window(own.X["date"], cfg.adaptation.validation_fraction)
    first = challenge(cfg, task, glob, own, window, date=D, global_id="g")
    assert first.contested and first.no_contest is None
    newest = {"base_model": "g", "selection": dict(first.challenger.selection_)}
    every = cfg.refresh.contest_every_days
    assert every == 7  # the default

    def night(date: dt.date, last: dt.date | None, config=cfg):
        return challenge(
            config, task, glob, own, window, date=date, global_id="g",
            previous_choice=newest, defer_final=True, last_contest=last,
        )  # fmt: skip

    fits = []
    real_fit = promotion.build_challenger
    monkeypatch.setattr(
        promotion, "build_challenger", lambda *a, **k: fits.append(1) or real_fit(*a, **k)
    )
    quiet = night(D + dt.timedelta(days=every - 1), D)
    assert not fits and quiet.challenger is None and quiet.build is None
    assert not quiet.contested and quiet.no_contest.startswith("no contest tonight")
    assert str(D + dt.timedelta(days=every)) in quiet.no_contest
    assert quiet.scores["challenger"] is None
    served = row_losses("tweedie", own.y[window], glob.predict(own.X[window]))
    expected = float(np.average(served, weights=own.weight[window]))
    assert quiet.scores["global"] == quiet.scores["champion"] == pytest.approx(expected, 1e-12)
    # due: a contest again, the same as with no record of the last one
    due = night(D + dt.timedelta(days=every), D)
    unknown = night(D + dt.timedelta(days=every), None)
    assert due.contested and due.no_contest is None and len(fits) == 2
    assert due.scores == unknown.scores
    # a contest of an earlier choice does not count
    assert night(D + dt.timedelta(days=1), D - dt.timedelta(days=1)).contested
    # the choice is due (reselect_every_days): chosen again and contested
    fresh = night(
        D + dt.timedelta(days=cfg.adaptation.reselect_every_days), D + dt.timedelta(days=27)
    )
    assert fresh.contested and fresh.selection["date"] != newest["selection"]["date"]
    # contest_every_days: 1 contests every night
    nightly = cfg.model_copy(
        update={"refresh": cfg.refresh.model_copy(update={"contest_every_days": 1})}
    )
    assert night(D + dt.timedelta(days=1), D, nightly).contested
    # a brand with its own champion (here repeated, not prequentially: no data window
    # recorded) contests every night: skipping would leave its champion unrefreshed
    served = challenge(
        cfg, task, glob, own, window, date=D + dt.timedelta(days=2), global_id="g",
        champion=first.challenger, champion_manifest=newest, last_contest=D,
    )  # fmt: skip
    assert served.contested and served.no_contest is None


def test_a_worker_keeps_the_global_model_loaded(monkeypatch, tmp_path: Path) -> None:
    """The per-process model cache evicts the least recently used model, never all at once:
    the global model, asked for by every brand, is read once for a night of many brands."""
    from types import SimpleNamespace

    from tabtune.refresh import brand as brand_module

    loads: list[str] = []

    class Registry:
        def from_id(self, model_id: str) -> str:
            return model_id

    def load_model(ref: str, task: object) -> object:
        loads.append(ref)
        return object()

    monkeypatch.setattr(brand_module, "registry_for", lambda cfg: Registry())
    monkeypatch.setattr(brand_module, "load_model", load_model)
    monkeypatch.setattr(brand_module, "_MODEL_CACHE", type(brand_module._MODEL_CACHE)())
    cfg = SimpleNamespace(models_dir=tmp_path)
    first = brand_module._load_version(cfg, None, "global/bid/v0001")
    for i in range(3 * brand_module.MODEL_CACHE_SIZE):
        assert brand_module._load_version(cfg, None, "global/bid/v0001") is first
        brand_module._load_version(cfg, None, f"brands/b{i}/bid/v0001")
    assert loads.count("global/bid/v0001") == 1
    assert len(loads) == 1 + 3 * brand_module.MODEL_CACHE_SIZE  # each brand's model read once
    assert len(brand_module._MODEL_CACHE) == brand_module.MODEL_CACHE_SIZE


def test_only_the_fit_on_every_row_reads_and_keeps_the_leaf_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fit on the rows before the window sees other brand-context values than the fit on
    every row, so it must not replace the cache tomorrow's fit on every row recalls (every
    row would differ, and be predicted again): the leaf cache only ever holds, and is only
    read by, fits on all of the brand's rows."""
    from tabtune.evaluation import time_window
    from tabtune.leaf_cache import LeafCache
    from tabtune.refresh import challenge

    cfg, task, glob, own = _brand_setup(tmp_path)
    cfg = cfg.model_copy(
        update={
            "cache_dir": tmp_path / "cache",
            "adaptation": cfg.adaptation.model_copy(update={"strategy": "refit"}),
        }
    )
    saved, loaded = [], []
    real_save, real_load = LeafCache.save, LeafCache.load

    def save(self, base_id, groups, memory):
        saved.append(len(memory.X))
        return real_save(self, base_id, groups, memory)

    def load(self, base_id, groups, n_features):
        memory = real_load(self, base_id, groups, n_features)
        loaded.append(None if memory is None else len(memory.X))
        return memory

    monkeypatch.setattr(LeafCache, "save", save)
    monkeypatch.setattr(LeafCache, "load", load)
    window = time_window(own.X["date"], cfg.adaptation.validation_fraction)
    first = challenge(cfg, task, glob, own, window, date=D, global_id="global/bid/v0001")
    assert saved and set(saved) == {len(own)}
    # the next night (the same rows): the champion's choice repeated
    saved.clear()
    loaded.clear()
    champion = first.challenger
    manifest = {"selection": champion.selection_, "base_model": "global/bid/v0001"}
    challenge(
        cfg,
        task,
        glob,
        own,
        window,
        date=D + dt.timedelta(days=1),
        global_id="global/bid/v0001",
        champion=champion,
        champion_manifest=manifest,
    )
    assert set(saved) == {len(own)} and set(loaded) == {len(own)}


def test_a_repeating_night_fits_once_and_scores_the_choice_prequentially(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A night that repeats the champion's choice fits the challenger once, on every row (no
    fit on the rows before a window), and scores the choice as it served: each night's
    champion on the rows that came after the rows it learned from, summed over the nights
    since the choice (the oracle: the losses computed by hand)."""
    import tabtune.refresh.challenger as challenger_module
    from tabtune.estimators import repeat_params
    from tabtune.evaluation import row_losses, time_window
    from tabtune.pipeline import brand_estimator
    from tabtune.refresh import challenge

    cfg, task, glob, own = _brand_setup(tmp_path)
    dates = pd.to_datetime(own.X["date"])
    last = dates.max()

    def upto(days_before: int) -> TaskData:
        return own.take((dates <= last - pd.Timedelta(days=days_before)).to_numpy())

    def manifest_of(model, data: TaskData, carried=None) -> dict:
        d = pd.to_datetime(data.X["date"])
        return {
            "base_model": "g",
            "selection": dict(model.selection_),
            "data_window": [str(d.min().date()), str(d.max().date())],
            "refresh": {} if carried is None else {"prequential": carried},
        }

    def window_of(data: TaskData) -> np.ndarray:
        return time_window(data.X["date"], cfg.adaptation.validation_fraction)

    def by_hand(model, data: TaskData, fresh: np.ndarray) -> float:
        loss = row_losses("tweedie", data.y[fresh], model.predict(data.X[fresh]))
        return float(np.sum(loss * data.weight[fresh]))

    def night(data: TaskData, days: int, champion, manifest):
        return challenge(
            cfg,
            task,
            glob,
            data,
            window_of(data),
            date=D + dt.timedelta(days=days),
            global_id="g",
            champion=champion,
            champion_manifest=manifest,
        )

    chosen_on = upto(6)
    first = challenge(cfg, task, glob, chosen_on, window_of(chosen_on), date=D, global_id="g")
    assert first.prequential is None  # the night that chose
    calls = []
    real_fit = challenger_module.fit_brand_model

    def counting_fit(*args, **kwargs):
        calls.append(len(args[3]))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(challenger_module, "fit_brand_model", counting_fit)
    night1 = upto(3)
    one = night(night1, 3, first.challenger, manifest_of(first.challenger, chosen_on))
    assert calls == [len(night1)]  # one fit, on every row
    assert one.same_recipe and one.challenger.selection_ == first.challenger.selection_
    served = brand_estimator(cfg, task, glob).set_params(
        **repeat_params(first.challenger.strategy_, first.challenger.n_new_trees_)
    )
    served.fit(night1.X, night1.y, sample_weight=night1.weight)
    np.testing.assert_array_equal(one.challenger.predict(night1.X), served.predict(night1.X))
    fresh1 = (pd.to_datetime(night1.X["date"]) > last - pd.Timedelta(days=6)).to_numpy()
    w1 = float(night1.weight[fresh1].sum())
    assert one.prequential["rows"] == int(fresh1.sum()) > 0 and one.prequential["nights"] == 1
    assert one.scores["champion"] == pytest.approx(
        by_hand(first.challenger, night1, fresh1) / w1, rel=1e-9
    )
    assert one.scores["global"] == pytest.approx(by_hand(glob, night1, fresh1) / w1, rel=1e-9)
    assert one.scores["challenger"] == one.scores["champion"]
    # the next night adds its own rows to the sums carried by its champion's manifest
    calls.clear()
    night2 = upto(0)
    two = night(night2, 6, one.challenger, manifest_of(one.challenger, night1, one.prequential))
    assert calls == [len(night2)]
    fresh2 = (pd.to_datetime(night2.X["date"]) > last - pd.Timedelta(days=3)).to_numpy()
    w2 = float(night2.weight[fresh2].sum())
    expected = (
        by_hand(first.challenger, night1, fresh1) + by_hand(one.challenger, night2, fresh2)
    ) / (w1 + w2)
    assert two.prequential["nights"] == 2 and two.prequential["since"] == one.prequential["since"]
    assert two.prequential["rows"] == int(fresh1.sum() + fresh2.sum())
    assert two.scores["champion"] == pytest.approx(expected, rel=1e-9)
    # sums of another choice are not carried over
    other = dict(one.prequential, selection_date="2000-01-01")
    again = night(night2, 6, one.challenger, manifest_of(one.challenger, night1, other))
    assert again.prequential["nights"] == 1
    assert again.scores["champion"] == pytest.approx(
        by_hand(one.challenger, night2, fresh2) / w2, rel=1e-9
    )


def test_a_champion_is_refitted_every_refit_every_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``refresh.refit_every_days`` N, a champion repeating its own choice is not refitted
    (nothing fitted, nothing to store) until the newest day it learned is N days old, or its
    new rows reach ``refit_when_rows_grow`` of the rows it learned; meanwhile it is scored
    prequentially on the rows after its own (the oracle: the losses computed by hand)."""
    import tabtune.refresh.challenger as challenger_module
    from tabtune.evaluation import row_losses, time_window
    from tabtune.refresh import challenge

    cfg, task, glob, own = _brand_setup(tmp_path)
    dates = pd.to_datetime(own.X["date"])
    learned_to = (dates.max() - pd.Timedelta(days=4)).date()
    chosen_on = own.take((dates <= pd.Timestamp(learned_to)).to_numpy())

    def window_of(data: TaskData) -> np.ndarray:
        return time_window(data.X["date"], cfg.adaptation.validation_fraction)

    first = challenge(
        cfg, task, glob, chosen_on, window_of(chosen_on), date=learned_to, global_id="g"
    )
    carried = {
        "selection_date": learned_to.isoformat(), "since": learned_to.isoformat(),
        "nights": 1, "rows": 10, "weight": 5.0, "champion": 2.0, "global": 3.0,
    }  # fmt: skip
    manifest = {
        "base_model": "g",
        "selection": dict(first.challenger.selection_),
        "data_window": [str(dates.min().date()), learned_to.isoformat()],
        "rows": len(chosen_on),
        "refresh": {"prequential": carried},
    }
    fresh = (dates > pd.Timestamp(learned_to)).to_numpy()
    assert 0 < fresh.sum() < len(own)

    def settings(**kw):
        return cfg.model_copy(update={"refresh": cfg.refresh.model_copy(update=kw)})

    def night(config, days: int):
        return challenge(
            config, task, glob, own, window_of(own), date=learned_to + dt.timedelta(days=days),
            global_id="g", champion=first.challenger, champion_manifest=manifest,
        )  # fmt: skip

    fits = []
    real_fit = challenger_module.fit_brand_model
    monkeypatch.setattr(
        challenger_module, "fit_brand_model", lambda *a, **k: fits.append(1) or real_fit(*a, **k)
    )
    weekly = settings(refit_every_days=7, refit_when_rows_grow=10.0)
    quiet = night(weekly, 4)
    assert not fits and quiet.challenger is None and quiet.build is None
    assert quiet.prequential is None and not quiet.contested
    assert quiet.no_refit.startswith("no refit tonight")
    assert str(learned_to + dt.timedelta(days=7)) in quiet.no_refit
    w = float(own.weight[fresh].sum())

    def by_hand(model) -> float:
        loss = row_losses("tweedie", own.y[fresh], model.predict(own.X[fresh]))
        return float(np.sum(loss * own.weight[fresh]))

    assert quiet.scores["champion"] == pytest.approx((2.0 + by_hand(first.challenger)) / (5 + w))
    assert quiet.scores["global"] == pytest.approx((3.0 + by_hand(glob)) / (5 + w))
    assert quiet.scores["challenger"] is None
    # due after 7 days: one fit on every row, the same sums as a nightly refit's
    due = night(weekly, 7)
    assert len(fits) == 1 and due.no_refit is None and due.challenger is not None
    assert due.prequential["rows"] == 10 + int(fresh.sum())
    assert due.scores["champion"] == pytest.approx(quiet.scores["champion"])
    # without carried sums, they start on the first day after the champion's rows (the nights
    # without a refit included), not on the night of the refit
    uncarried = challenge(
        weekly, task, glob, own, window_of(own), date=learned_to + dt.timedelta(days=7),
        global_id="g", champion=first.challenger, champion_manifest=dict(manifest, refresh={}),
    )  # fmt: skip
    assert uncarried.prequential["since"] == (learned_to + dt.timedelta(days=1)).isoformat()
    assert uncarried.prequential["rows"] == int(fresh.sum())
    assert "from " + uncarried.prequential["since"] in uncarried.notes[0]
    # due sooner once the rows it has not learned reach the share of those it learned
    share = fresh.sum() / len(chosen_on)
    assert night(settings(refit_every_days=7, refit_when_rows_grow=share), 4).no_refit is None
    assert night(settings(refit_every_days=7, refit_when_rows_grow=share * 1.01), 4).no_refit
    # rows loaded late, for days it learned, are rows it has not learned too
    late = dict(manifest, rows=len(chosen_on) - 20)
    share = (fresh.sum() + 10) / late["rows"]
    assert night(settings(refit_every_days=7, refit_when_rows_grow=share), 4).no_refit
    due_late = challenge(
        settings(refit_every_days=7, refit_when_rows_grow=share), task, glob, own,
        window_of(own), date=learned_to + dt.timedelta(days=4), global_id="g",
        champion=first.challenger, champion_manifest=late,
    )  # fmt: skip
    assert due_late.no_refit is None and due_late.challenger is not None
    # the default: weekly, or once the new rows reach 5% of those learned
    assert (cfg.refresh.refit_every_days, cfg.refresh.refit_when_rows_grow) == (7, 0.05)
    # refit_every_days: 1 refits every night
    fits.clear()
    assert night(settings(refit_every_days=1), 1).no_refit is None and len(fits) == 1
    # a champion of another global model chooses again (a contest), whatever the schedule
    other = challenge(
        weekly, task, glob, own, window_of(own), date=learned_to + dt.timedelta(days=4),
        global_id="g2", champion=first.challenger, champion_manifest=manifest,
    )  # fmt: skip
    assert other.no_refit is None and other.contested


def test_a_later_losing_choice_is_repeated_instead_of_choosing_every_night(
    tmp_path: Path,
) -> None:
    """Once the champion's choice has aged out, the brand chooses again; if that challenger
    loses, it is the newest challenger's (later) choice that the next nights repeat, rather
    than choosing again on folds every night while the old champion keeps serving."""
    from tabtune.estimators import repeat_params
    from tabtune.evaluation import time_window
    from tabtune.pipeline import brand_estimator
    from tabtune.refresh import challenge

    cfg, task, glob, own = _brand_setup(tmp_path)
    window = time_window(own.X["date"], cfg.adaptation.validation_fraction)
    old = {"date": (D - dt.timedelta(days=60)).isoformat(), "strategy": "refit", "n_new_trees": 0}
    champion = brand_estimator(cfg, task, glob).set_params(**repeat_params("refit", 0))
    champion.fit(own.X, own.y, sample_weight=own.weight)
    manifest = {"base_model": "g", "selection": old}
    aged = challenge(
        cfg, task, glob, own, window, date=D, global_id="g",
        champion=champion, champion_manifest=manifest,
    )  # fmt: skip
    assert aged.challenger.holdout_scores_  # the champion's choice aged out: chosen on folds
    newest = {"base_model": "g", "selection": dict(aged.selection)}
    tomorrow = D + dt.timedelta(days=1)
    follows = challenge(
        cfg, task, glob, own, window, date=tomorrow, global_id="g",
        champion=champion, champion_manifest=manifest, previous_choice=newest,
    )  # fmt: skip
    assert follows.challenger.holdout_scores_ == {}  # repeated in one fit, not chosen again
    assert follows.selection == aged.selection and not follows.prequential
    # an older challenger's choice does not replace a younger champion's
    young = {"base_model": "g", "selection": dict(aged.selection)}
    stale = {"base_model": "g", "selection": old}
    kept = challenge(
        cfg, task, glob, own, window, date=tomorrow, global_id="g",
        champion=champion, champion_manifest=young, previous_choice=stale,
    )  # fmt: skip
    assert kept.selection == aged.selection
    # nor does a later one while the champion's own choice can still be repeated (e.g. the
    # newest version is one a rollback set aside): the champion's choice is repeated
    later = {"base_model": "g", "selection": dict(old, date=tomorrow.isoformat())}
    rolled_back = challenge(
        cfg, task, glob, own, window, date=tomorrow, global_id="g",
        champion=champion, champion_manifest=young, previous_choice=later,
    )  # fmt: skip
    assert rolled_back.selection == aged.selection and rolled_back.same_recipe
    # a later choice from another global model is not followed
    elsewhere = {"base_model": "other", "selection": dict(aged.selection)}
    again = challenge(
        cfg, task, glob, own, window, date=tomorrow, global_id="g",
        champion=champion, champion_manifest=manifest, previous_choice=elsewhere,
    )  # fmt: skip
    assert again.challenger.holdout_scores_  # chosen on folds
    # without repeats (reselect_every_days: null) a choice made tonight is not one to keep
    never = cfg.model_copy(
        update={"adaptation": cfg.adaptation.model_copy(update={"reselect_every_days": None})}
    )
    lazy = challenge(never, task, glob, own, window, date=D, global_id="g", defer_final=True)
    assert lazy.challenger is None and not lazy.repeatable
    assert lazy.final() is lazy.challenger is not None
    assert aged.repeatable


def test_the_cli_says_why_brands_were_skipped_or_failed() -> None:
    """`refresh` printed "skipped 3" with the reasons in report.json only (new-user red-team)."""
    from tabtune.cli.refresh import reason_lines

    report = {
        "brands": [
            {"brand_id": "a", "status": "promoted", "reason": "won"},
            {"brand_id": "b", "status": "skipped", "reason": "no new rows since v0002"},
            {"brand_id": "c", "status": "failed", "reason": "ValueError: boom"},
        ]
    }
    assert reason_lines(report) == [
        "  c failed: ValueError: boom",
        "  b skipped: no new rows since v0002",
    ]
    many = {"brands": [{"brand_id": str(i), "status": "skipped", "reason": "x"} for i in range(12)]}
    assert reason_lines(many, limit=10)[-1] == "  ... and 2 more (see report.json)"


def test_a_job_that_kills_its_worker_fails_alone() -> None:
    """A worker killed by one job (out of memory, a native crash) broke the pool, and every
    job not finished failed with it, night after night (executors red-team): the others run
    again, and only the job that kills its worker is reported, by name."""
    import operator
    import os

    from tabtune.parallel import WorkerDiedError

    jobs = {f"j{i}": (math.sqrt, float(i * i)) for i in range(8)}
    jobs["poison"] = (os._exit, 1)
    jobs = {k: jobs[k] for k in ["j0", "j1", "poison", *[f"j{i}" for i in range(2, 8)]]}
    with ProcessExecutor(n_workers=2) as ex:
        out = {o.key: o for o in ex.run(operator.call, jobs)}
        again = {o.key: o for o in ex.run(math.sqrt, {"after": (16.0,)})}  # a fresh pool
    assert set(out) == set(jobs)
    assert isinstance(out["poison"].error, WorkerDiedError)
    assert "worker process died" in str(out["poison"].error)
    assert {k: o.value for k, o in out.items() if k != "poison"} == {
        f"j{i}": float(i) for i in range(8)
    }
    assert again["after"].value == 4.0


def test_a_dask_scheduler_that_cannot_be_reached_is_named() -> None:
    """refresh --scheduler bogus printed a traceback and exited 1, where pretrain --scheduler
    names the address and how to start a scheduler (executors red-team)."""
    pytest.importorskip("dask.distributed")
    with pytest.raises(TabTuneInputError, match="cannot reach the Dask scheduler 'bogus'"):
        make_executor("inline", scheduler="bogus")


def test_a_day_missing_inside_the_store_is_noted_on_its_night(tmp_path: Path) -> None:
    """A backfill's night whose day no brand has, with later days stored, ran without a note:
    its decisions re-dated the day before's contexts (executors red-team)."""
    from tabtune.data.store import CampaignStore
    from tabtune.data.synth import simulate
    from tabtune.refresh.run import _no_rows_on_date_notes

    obs = simulate(n_brands=2, n_days=10, seed=0).observations
    days = sorted(obs["date"].unique())
    gap = pd.Timestamp(days[5]).date()
    store = CampaignStore(tmp_path / "store")
    store.append(obs[obs["date"] != days[5]])
    (note,) = _no_rows_on_date_notes(store, gap, tmp_path / "runs")
    assert f"no brand has rows dated {gap}" in note and "the store has days up to" in note
    assert _no_rows_on_date_notes(store, pd.Timestamp(days[4]).date(), tmp_path) == []
    assert _no_rows_on_date_notes(store, pd.Timestamp(days[-1]).date(), tmp_path) == []
    after = pd.Timestamp(days[-1]).date() + dt.timedelta(days=1)
    assert "the newest are of" in _no_rows_on_date_notes(store, after, tmp_path)[0]
    # the budget task's night is redone with --task budget (the note gave the bid task's)
    (budget,) = _no_rows_on_date_notes(store, gap, tmp_path / "runs", "budget")
    assert f"`tabtune refresh --date {gap} --task budget --input FILE`" in budget
    assert f"`tabtune refresh --date {gap} --input FILE`" in note


def test_dask_says_its_info_lines_only_with_verbose() -> None:
    """A Dask night wrote ~100 INFO lines of distributed to stderr without -v (executors
    red-team): the loggers of this process and the workers' inherited config say warnings."""
    import logging

    dask = pytest.importorskip("dask")
    from tabtune.distributed.cluster import quiet_dask_unless_verbose

    ours, theirs = logging.getLogger("tabtune"), logging.getLogger("distributed")
    saved = ours.level, theirs.level
    try:
        with dask.config.set({"logging.distributed": "info"}):
            ours.setLevel(logging.INFO)
            theirs.setLevel(logging.INFO)
            quiet_dask_unless_verbose()  # -v: Dask's own lines stay
            assert theirs.level == logging.INFO
            ours.setLevel(logging.WARNING)
            quiet_dask_unless_verbose()
            assert theirs.level == logging.WARNING
            assert dask.config.get("logging.distributed") == "warning"
    finally:
        ours.setLevel(saved[0])
        theirs.setLevel(saved[1])


def test_a_refresh_of_a_store_without_rows_is_refused_writing_nothing(
    small_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # cron runs in the home folder: `refresh --input day.csv` with a relative store made a new
    # store of one day there, pretrained a global model on it and exited 0 (refresh red-team)
    from tabtune.data.synth import simulate
    from tests.conftest import run_cli

    day = simulate(n_brands=3, n_days=5, seed=1).observations
    day = day[day["date"] == day["date"].max()]
    day.to_csv(small_config.parent / "day.csv", index=False)
    before = sorted(p.name for p in small_config.parent.iterdir())
    code, out = run_cli(
        capsys, "refresh", "--date", str(day["date"].max().date()), "--input", "day.csv"
    )
    assert code == 2 and "Traceback" not in out, out
    assert "holds no rows" in out and f"current folder {small_config.parent}" in out, out
    assert "tabtune load" in out, out
    assert sorted(p.name for p in small_config.parent.iterdir()) == before  # no store, no lock


def test_a_run_date_far_after_the_newest_row_is_refused_writing_nothing(
    small_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --date 2025-04-17 for a store ending 2024-04-16 (a year typed wrong) ran a night, and
    # every correct night after it was refused as out of order (refresh red-team)
    from tabtune.data.store import CampaignStore
    from tabtune.data.synth import simulate
    from tests.conftest import run_cli
    from tests.test_hardening import digest_tree

    obs = simulate(n_brands=2, n_days=20, seed=1).observations
    CampaignStore("data/campaigns").append(obs)
    newest = obs["date"].max().date()
    before = digest_tree(small_config.parent)
    late = newest + dt.timedelta(days=366)
    code, out = run_cli(capsys, "refresh", "--date", str(late))
    assert code == 2 and "Traceback" not in out, out
    assert f"date={late} is 366 days after the newest row ({newest}" in out, out
    assert f"--date {newest}" in out, out
    assert digest_tree(small_config.parent) == before
    # a paused client: the nights went on while its rows stopped; the next one goes on too
    from tabtune.refresh.run import check_date_near_data
    from tabtune.refresh.state import REPORT_NAME

    store = CampaignStore("data/campaigns")
    yesterday = small_config.parent / "runs" / str(late - dt.timedelta(days=1))
    yesterday.mkdir(parents=True)
    (yesterday / REPORT_NAME).write_text("{}")
    check_date_near_data(store, late, None, small_config.parent / "runs", "bid")


def _stored_but_the_last_day() -> tuple[pd.DataFrame, pd.Timestamp]:
    """Two simulated brands over 30 days, every day but the last in ./data/campaigns: the
    rows and the last day (a night's file is made from it)."""
    from tabtune.data.store import CampaignStore
    from tabtune.data.synth import simulate

    obs = simulate(n_brands=2, n_days=30, seed=1).observations
    last = obs["date"].max()
    CampaignStore("data/campaigns").append(obs[obs["date"] < last])
    return obs, last


def test_what_preparing_the_input_noted_is_kept_in_the_report(
    small_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `refresh --input` printed the load notes to the terminal only: a cron log is lost, and
    # report.json had "notes": [] (README audit)
    import json

    from tests.conftest import run_cli

    obs, last = _stored_but_the_last_day()
    day = obs[obs["date"] == last].copy()
    day.loc[day.index[0], "conversions"] = day.loc[day.index[0], "clicks"] + 5
    day.to_csv("day.csv", index=False)
    code, out = run_cli(capsys, "refresh", "--date", str(last.date()), "--input", "day.csv")
    assert code == 0, out
    report = json.loads(
        (small_config.parent / "runs" / str(last.date()) / "report.json").read_text()
    )
    assert any("more conversions than clicks" in n for n in report["notes"]), report["notes"]


def test_a_nights_rows_before_the_brands_history_are_refused(
    small_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a year typed wrong into the past (2023 for 2024) was stored months before the brand's
    # first day, with exit 0, where no command takes it out (ops red-team); a future typo is
    # refused already. Older history goes through `tabtune load`.
    from tabtune.data.store import CampaignStore
    from tests.conftest import assert_refused

    obs, last = _stored_but_the_last_day()
    day = obs[obs["date"] == last].copy()
    day["date"] = day["date"] - pd.Timedelta(days=366)
    day.to_csv("day.csv", index=False)
    # a brand's restated days shortly before its first stored day are fine (review: a brand
    # onboarded two nights ago gets its lookback window again)
    from tabtune.refresh.input_checks import refuse_rows_before_history

    early = obs[obs["date"] == obs["date"].min()].assign(
        date=obs["date"].min() - pd.Timedelta(days=20)
    )
    refuse_rows_before_history(CampaignStore("data/campaigns"), early)
    assert_refused(
        capsys,
        small_config.parent,
        ["refresh", "--date", str(last.date()), "--input", "day.csv"],
        "before its first stored day",
        "older history is loaded with `tabtune load FILE`",
    )
    # from Python too (refresh(new_rows=...)): nothing appended
    from tabtune.config import load_config
    from tabtune.errors import ContractError
    from tabtune.refresh import refresh

    before = len(CampaignStore("data/campaigns").read())
    with pytest.raises(ContractError, match="before its first stored day"):
        refresh(load_config(small_config), str(last.date()), new_rows=day)
    assert len(CampaignStore("data/campaigns").read()) == before


def test_a_night_dated_well_after_its_input_file_is_refused(
    small_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--date 2026-12-06` for the file of 11-26 ran a night deciding for a day no row
    # reached, after which every correct night was refused as out of order (ops red-team)
    from tests.conftest import assert_refused

    obs, last = _stored_but_the_last_day()
    obs[obs["date"] == last].to_csv("day.csv", index=False)
    typo = (last + pd.Timedelta(days=10)).date()
    assert_refused(
        capsys,
        small_config.parent,
        ["refresh", "--date", str(typo), "--input", "day.csv"],
        f"date={typo} is 10 days after the newest row ({last.date()}, in the store and the rows",
        f"(--date {last.date()})",
    )
    # the rows of a few days back given to tonight's night (a corrected export) are fine
    # (review): the newest stored row is what the date is compared with


def test_a_full_disk_stops_the_night_naming_the_folder_and_a_rerun_finishes(
    small_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a full outputs folder failed brand after brand ("OSError: [Errno 28] ..." in each
    # record, exit 3) with no folder or fix named (ops red-team): the night stops, exit 2
    # names the folder's config key, and the rerun after space is freed finishes it
    import errno

    import tabtune.refresh.decisions as decisions
    from tests.conftest import run_cli

    assert run_cli(capsys, "synth")[0] == 0
    assert run_cli(capsys, "pretrain")[0] == 0
    real = decisions.atomic_write_parquet
    written: list[str] = []

    def full(frame, path):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(str(path))
        return real(frame, path)

    monkeypatch.setattr(decisions, "atomic_write_parquet", full)
    date = "2024-03-30"
    code, out = run_cli(capsys, "refresh", "--date", date)
    assert code == 2, out
    assert "Traceback" not in out and "No space left on device" in out
    assert "outputs_dir" in out and "free some space" in out
    monkeypatch.setattr(decisions, "atomic_write_parquet", real)
    code, out = run_cli(capsys, "refresh", "--date", date)
    assert code == 0, out


def test_new_rows_with_zoned_or_shifted_dates_are_refused_before_any_write(
    small_config: Path,
) -> None:
    # refresh(new_rows=...) skipped the date checks `refresh --input` applies to a file:
    # Paris midnights written in UTC (22:00 the day before) were stored a day early, and
    # zoned timestamps were appended before the night failed in pandas (Python red-team)
    from tabtune.config import load_config
    from tabtune.data.store import CampaignStore
    from tabtune.errors import TabTuneInputError
    from tabtune.refresh import refresh
    from tests.test_hardening import digest_tree

    obs, last = _stored_but_the_last_day()
    day = obs[obs["date"] == last].copy()
    cfg = load_config(small_config)
    before = digest_tree(small_config.parent / "data")
    zoned = day.assign(date=day["date"].dt.tz_localize("Europe/Paris"))
    with pytest.raises(TabTuneInputError, match="holds timestamps in time zone Europe/Paris"):
        refresh(cfg, str(last.date()), new_rows=zoned)
    shifted = day.assign(date=day["date"] - pd.Timedelta(hours=2))  # 22:00 UTC the day before
    with pytest.raises(TabTuneInputError, match="22:00"):
        refresh(cfg, str(last.date()), new_rows=shifted)
    assert digest_tree(small_config.parent / "data") == before  # the store: nothing appended
    assert CampaignStore("data/campaigns").read()["date"].max() < last
    assert not (small_config.parent / "runs").exists()


def test_new_rows_dated_a_year_after_the_run_are_refused_before_any_write(
    small_config: Path,
) -> None:
    # one brand's rows of a day file dated next year were appended with a note: bids then
    # decided for a day a year ahead, and the real nights were refused as out of order
    # (refresh red-team)
    from tabtune.config import load_config
    from tabtune.errors import TabTuneInputError
    from tabtune.refresh import refresh
    from tests.test_hardening import digest_tree

    obs, last = _stored_but_the_last_day()
    day = obs[obs["date"] == last].copy()
    brand = str(day["brand_id"].iloc[0])
    typo = day.copy()
    typo.loc[typo["brand_id"] == brand, "date"] += pd.DateOffset(years=1)
    cfg = load_config(small_config)
    before = digest_tree(small_config.parent / "data")
    with pytest.raises(
        TabTuneInputError, match=rf"brand\(s\) {brand} are dated from .* more than 7"
    ):
        refresh(cfg, str(last.date()), new_rows=typo)
    assert digest_tree(small_config.parent / "data") == before
    assert not (small_config.parent / "runs").exists()
    ahead = day.assign(date=day["date"] + pd.Timedelta(days=1))  # a file a day ahead: appended
    report = refresh(cfg, str(last.date()), new_rows=pd.concat([day, ahead]))
    assert any("dated after the run date" in n for n in report.notes)


def test_refresh_brands_must_be_a_non_empty_list(small_config: Path) -> None:
    # brands=[] ran an empty night (0 brands, 0 failures, no decisions) and brands="b001"
    # was read as ['b', '0', '0', '1'] (Python red-team)
    from tabtune.config import load_config
    from tabtune.errors import TabTuneInputError
    from tabtune.refresh import refresh

    obs, last = _stored_but_the_last_day()
    cfg, date = load_config(small_config), str((last - pd.Timedelta(days=1)).date())
    brand = str(obs["brand_id"].iloc[0])
    with pytest.raises(TabTuneInputError, match="names no brand"):
        refresh(cfg, date, brands=[])
    with pytest.raises(TabTuneInputError, match=rf"is one string: .*brands=\['{brand}'\]"):
        refresh(cfg, date, brands=brand)
    assert not (small_config.parent / "runs").exists()
