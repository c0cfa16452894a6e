"""``bids``, ``budget`` and ``predict`` at the command line: options checked before anything
is written, all-or-nothing decisions, and notes on stale rows.

Each case runs ``tabtune`` in-process on a copy of one small workspace (simulated store,
pretrained global models, one run of each command) and checks the exit code, the message and
that a refused command changed no file (:func:`~tests.test_hardening.digest_tree`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK
from tabtune.config import load_config
from tabtune.data.store import CampaignStore
from tabtune.errors import TabTuneInputError
from tabtune.tasks.bid import BidRecommender
from tests.conftest import assert_refused, build_workspace, copy_workspace, run_cli

LAST = "2024-02-09"  # the store's last day: 40 simulated days from 2024-01-01
NEXT = "2024-02-10"  # the day decided for by default


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    return run_cli(capsys, *argv)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 simulated brands over 40 days, with bids, budgets and predictions already written."""
    commands = [["synth"], ["bids"], ["budget"], ["predict"]]
    return build_workspace(tmp_path_factory.mktemp("decisions"), commands)


@pytest.fixture
def ws(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the template workspace; the test runs inside it."""
    return copy_workspace(template, tmp_path, monkeypatch)


_refused = assert_refused


# ---------------------------------------------------------------------------- budget --total
def test_budget_total_that_misfits_a_later_brand_writes_no_plan(ws: Path, capsys) -> None:
    plans = pd.read_parquet(Path("outputs") / NEXT / "budgets")
    first = CampaignStore("data/campaigns").brands()[0]
    mine = plans[plans["brand_id"] == first]
    total = 1.01 * float(mine["spend"].sum())  # fits the first brand, changes its plan
    sums = plans.groupby("brand_id")[["lower", "upper"]].sum()
    misfit = sums[(sums["lower"] > total) | (sums["upper"] < total)].index.tolist()
    assert misfit, f"setup: every brand fits {total}"
    out = _refused(
        capsys,
        ws,
        ["budget", f"--total={total:.2f}"],
        f"brand {misfit[0]!r}",
        "--total to at ",
        "budget.relative_bounds",
        "--brands",
        "nothing was written",
    )
    assert "the sum of its channels'" in out


@pytest.mark.parametrize("command", ["bids", "budget"])
def test_a_damaged_global_model_is_refused_not_replaced(ws: Path, capsys, command: str) -> None:
    """bids/budget pretrained a new global champion over a damaged one (a read-only decision
    command changed what the next refresh runs on; registry red-team)."""
    from tabtune.registry import ModelRegistry
    from tests.test_hardening import digest_tree

    task = "bid" if command == "bids" else "budget"
    reg = ModelRegistry("models")
    model_file = next(
        p for p in sorted(reg.champion(task).path.rglob("*")) if p.name.startswith("model.")
    )
    model_file.write_bytes(model_file.read_bytes() + b"\n# damaged\n")
    before = digest_tree(Path("models")), digest_tree(Path("outputs"))
    out = _refused(
        capsys,
        ws,
        [command],
        f"no version of the global {task} model verifies",
        "tabtune models rollback",
        "nothing was written",
    )
    assert "pretraining it on the store first" not in out
    assert (digest_tree(Path("models")), digest_tree(Path("outputs"))) == before


def test_a_refused_total_says_the_budget_model_it_pretrained_stays(ws: Path, capsys) -> None:
    # with no budget model, `budget` pretrains one first; a --total refused after that must
    # not say "nothing was written": the model is published (and the next command uses it)
    import shutil

    from tests.test_hardening import digest_tree

    shutil.rmtree(Path("models") / "global" / "budget")
    outputs = digest_tree(Path("outputs"))
    code, out = _run(capsys, "budget", "--total=0.01")
    assert code == EXIT_BAD_INPUT, out
    text = " ".join(out.split())
    assert "no plan was written" in text and "nothing was written" not in text, text
    assert "global budget model global/budget/v0001 was pretrained" in text, text
    assert (Path("models") / "global" / "budget" / "CHAMPION").exists()
    assert digest_tree(Path("outputs")) == outputs  # no plan


def test_budget_names_unplanned_channels_and_a_zero_revenue_brand(ws: Path, capsys) -> None:
    # a channel without recent spend vanished from the plan, and a brand without revenue
    # showed "+0.00 (+nan%)", both without a word
    store = CampaignStore("data/campaigns")
    rows = store.read(brands=[store.brands()[-1]])
    channels = rows.groupby("channel", observed=True)["spend"].sum().sort_values()
    assert len(channels) >= 2, "setup: a brand with two channels"
    quiet = str(channels.index[0])
    recent = rows["date"] > pd.Timestamp(LAST) - pd.Timedelta(days=35)
    paused = rows[~(recent & (rows["channel"].astype(str) == quiet))].assign(brand_id="paused")
    store.append(paused)
    store.append(rows.assign(brand_id="norevenue", revenue=0.0, conversions=0))
    code, out = _run(capsys, "budget", "--brands", "paused,norevenue")
    assert code == EXIT_OK, out
    text = " ".join(out.split())
    assert f"paused: {quiet} not planned: no spend in the 28 days" in text, text
    assert "norevenue: predicted revenue 0 on every channel" in text, text
    assert "nan" not in text.lower()


def test_a_brand_without_recent_spend_gets_fixes_that_work(ws: Path, capsys) -> None:
    """Its refusal named budget.relative_bounds and, from Python, bounds=..., neither of which
    plans a brand that spent nothing (red-team)."""
    store = CampaignStore("data/campaigns")
    other = store.brands()[0]
    plans = pd.read_parquet(Path("outputs") / NEXT / "budgets")
    total = float(plans.loc[plans["brand_id"] == other, "spend"].sum())  # fits the other
    rows = store.read(brands=[store.brands()[-1]])
    recent = rows["date"] > pd.Timestamp(LAST) - pd.Timedelta(days=35)
    store.append(rows.assign(brand_id="idle", spend=rows["spend"].where(~recent, 0.0)))
    out = _refused(
        capsys,
        ws,
        ["budget", f"--total={total:.2f}", "--brands", f"idle,{other}"],
        "no channel spent anything in the recent window",
        "Load the brand's recent rows, or plan without it",
        f"plan the other brands with --brands {other}",
    )
    text = " ".join(out.split())
    assert "relative_bounds" not in text and "pass bounds" not in text, text


def test_budget_total_for_the_brands_it_fits_is_planned(ws: Path, capsys) -> None:
    plans = pd.read_parquet(Path("outputs") / NEXT / "budgets")
    first = CampaignStore("data/campaigns").brands()[0]
    total = 1.01 * float(plans.loc[plans["brand_id"] == first, "spend"].sum())
    code, out = _run(capsys, "budget", f"--total={total:.2f}", "--brands", first)
    assert code == EXIT_OK, out
    plan = pd.read_parquet(Path("outputs") / NEXT / "budgets" / f"brand_id={first}")
    assert plan["spend"].sum() == pytest.approx(round(total, 2), rel=1e-6)


def test_bids_write_nothing_when_a_later_brand_fails(ws: Path, capsys, monkeypatch) -> None:
    real = BidRecommender.recommend
    last = CampaignStore("data/campaigns").brands()[-1]

    def failing(self, contexts, *args, **kwargs):
        if (contexts["brand_id"] == last).any():
            raise TabTuneInputError(f"brand {last!r}: refused for the test")
        return real(self, contexts, *args, **kwargs)

    monkeypatch.setattr(BidRecommender, "recommend", failing)
    _refused(capsys, ws, ["bids", "--target-roas", "2.5"], "refused for the test")


# ---------------------------------------------------------------------------- --date
@pytest.mark.parametrize("command", ["bids", "budget"])
def test_a_decision_date_far_in_the_future_is_refused(ws: Path, capsys, command: str) -> None:
    _refused(
        capsys,
        ws,
        [command, "--date", "2099-01-01"],
        "--date 2099-01-01",
        "TABTUNE_MAX_FUTURE_DAYS",
        "leave --date out",
    )


@pytest.mark.parametrize("command", ["bids", "budget"])
def test_a_non_iso_decision_date_is_refused(ws: Path, capsys, command: str) -> None:
    _refused(capsys, ws, [command, "--date", "02/10/2024"], "--date", "YYYY-MM-DD")


@pytest.mark.parametrize(("command", "rule"), [("bids", "28"), ("budget", "budget.lookback_days")])
def test_decisions_from_stale_rows_are_noted_per_brand(
    ws: Path, capsys, command: str, rule: str
) -> None:
    code, out = _run(capsys, command, "--date", "2024-04-01")
    assert code == EXIT_OK, out
    flat = " ".join(out.split())
    for brand in CampaignStore("data/campaigns").brands():
        assert f"{brand}: stale rows: its last stored day is {LAST}" in flat, flat
    assert rule in flat


@pytest.mark.parametrize("command", ["bids", "budget"])
def test_decisions_for_the_next_day_have_no_stale_note(ws: Path, capsys, command: str) -> None:
    code, out = _run(capsys, command)
    assert code == EXIT_OK, out
    assert "stale rows" not in out


@pytest.mark.parametrize(("command", "kind"), [("bids", "bids"), ("budget", "budgets")])
def test_decisions_written_over_earlier_ones_say_so(ws: Path, capsys, command, kind) -> None:
    """A refresh's decisions for the day were replaced without a word (ops red-team)."""
    brands = CampaignStore("data/campaigns").brands()
    code, out = _run(capsys, command, "--date", "2024-02-05")  # a day no file holds yet
    assert code == EXIT_OK, out
    assert "replaced the files" not in out
    code, out = _run(capsys, command)  # the template wrote this day's files
    flat = " ".join(out.split())
    assert code == EXIT_OK and f"replaced the files of {len(brands)} brand(s)" in flat, flat
    assert str(Path("outputs") / NEXT / kind) in flat


# ---------------------------------------------------------------------------- predict
def _contexts_csv() -> str:
    rows = CampaignStore("data/campaigns").read(start=LAST)
    rows.to_csv("contexts.csv", index=False)
    return "contexts.csv"


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--brands", "zzz"], ["unknown brand", "zzz"]),
        (["--start", "01/02/2024"], ["--start", "YYYY-MM-DD"]),
        (["--end", "2024/02/01x"], ["--end", "YYYY-MM-DD"]),
        (["--start", "2024-02-05", "--end", "2024-02-01"], ["--start 2024-02-05 is after --end"]),
        (["--start", "2030-01-01"], ["no stored rows", "widen --start/--end"]),
        (["--output", "outputs"], ["--output outputs is a folder", "file path"]),
        (["--output", "newdir/"], ["--output newdir/ is a folder", "file path"]),
        (["--output", "p2.csv"], ["predict writes Parquet", "'.csv'", "p2.parquet"]),
        (["--output", "tabtune.yaml/p.parquet"], ["tabtune.yaml is a file, not a folder"]),
    ],
)
def test_predict_options_are_checked_before_writing(ws: Path, capsys, argv, needles) -> None:
    assert Path("outputs/predictions/bid.parquet").exists()
    _refused(capsys, ws, ["predict", *argv], *needles)


@pytest.mark.parametrize("flag", ["--brands", "--start", "--end"])
def test_predict_input_refuses_store_row_options(ws: Path, capsys, flag: str) -> None:
    path = _contexts_csv()
    value = "b001" if flag == "--brands" else LAST
    _refused(
        capsys,
        ws,
        ["predict", "--input", path, flag, value, "--output", "p.parquet"],
        flag,
        "cannot be combined with --input",
    )


def test_predict_brands_and_iso_dates_choose_the_rows(ws: Path, capsys) -> None:
    brand = CampaignStore("data/campaigns").brands()[0]
    code, out = _run(
        capsys,
        "predict",
        "--brands",
        brand,
        "--start",
        LAST,
        "--end",
        LAST,
        "--output",
        "p.parquet",
    )
    assert code == EXIT_OK, out
    preds = pd.read_parquet("p.parquet")
    assert set(preds["brand_id"]) == {brand}
    assert set(pd.to_datetime(preds["date"]).dt.date.astype(str)) == {LAST}


def test_predict_names_a_brand_without_rows_in_the_dates(ws: Path, capsys) -> None:
    """A brand asked for without rows in --start/--end was left out without a word."""
    rows = CampaignStore("data/campaigns").read()
    days = rows.groupby("brand_id", observed=True)["date"].agg(["min", "max"])
    late = days["min"].idxmax()  # the brand whose history starts last
    early = days.index[days["min"] < days.loc[late, "min"]][0]
    before = (days.loc[late, "min"] - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    first = days["min"].min().strftime("%Y-%m-%d")
    code, out = _run(
        capsys, "predict", "--brands", f"{early},{late}", "--start", first, "--end", before,
        "--output", "p.parquet",
    )  # fmt: skip
    assert code == EXIT_OK, out
    assert f"no stored rows of {late} in the dates asked" in " ".join(out.split())
    assert set(pd.read_parquet("p.parquet")["brand_id"].astype(str)) == {str(early)}


@pytest.mark.parametrize("task", ["bid", "budget"])
def test_a_stored_row_predicts_the_same_in_any_window_and_from_a_file(
    ws: Path, capsys, task: str
) -> None:
    # features from a row's past (reference bids, trailing spend) used to be computed from
    # the rows asked for only: one stored day predicted differently alone than in the store
    keys = ["brand_id", "date", "channel", "campaign_id", "audience", "device"]
    code, out = _run(capsys, "predict", "--task", task, "--output", "all.parquet")
    assert code == EXIT_OK, out
    code, out = _run(capsys, "predict", "--task", task, "--start", LAST, "--output", "day.parquet")
    assert code == EXIT_OK, out
    day = CampaignStore("data/campaigns").read(start=LAST)
    day.assign(date=day["date"].dt.strftime("%Y-%m-%d")).to_csv("day.csv", index=False)
    code, out = _run(
        capsys, "predict", "--task", task, "--input", "day.csv", "--output", "file.parquet"
    )
    assert code == EXIT_OK, out

    def read(name: str) -> pd.DataFrame:
        frame = pd.read_parquet(name)
        frame["brand_id"] = frame["brand_id"].astype(str)
        on = [k for k in keys if k in frame.columns]
        return (
            frame[pd.to_datetime(frame["date"]) == pd.Timestamp(LAST)]
            .sort_values(on)[[*on, "prediction"]]
            .reset_index(drop=True)
        )

    whole = read("all.parquet")
    assert len(whole) > 0
    for name in ("day.parquet", "file.parquet"):
        pd.testing.assert_frame_equal(read(name), whole, check_dtype=False, obj=name)
    # a file of two days with stored days between them (red-team: the history stopped at
    # the file's first day, so the second day's rows missed the days in between)
    stored = CampaignStore("data/campaigns").read()
    gap = stored[stored["date"].isin(pd.to_datetime(["2024-01-20", LAST]))]
    gap.assign(date=gap["date"].dt.strftime("%Y-%m-%d")).to_csv("gap.csv", index=False)
    code, out = _run(
        capsys, "predict", "--task", task, "--input", "gap.csv", "--output", "gap.parquet"
    )
    assert code == EXIT_OK, out
    every = pd.read_parquet("all.parquet").assign(date=lambda f: pd.to_datetime(f["date"]))
    asked = pd.read_parquet("gap.parquet").assign(date=lambda f: pd.to_datetime(f["date"]))
    on = [k for k in keys if k in asked.columns]
    for frame in (every, asked):
        frame["brand_id"] = frame["brand_id"].astype(str)
    merged = asked.merge(every, on=on, suffixes=("", "_store"), validate="one_to_one")
    assert len(merged) == len(asked) > 0 and merged["date"].nunique() == 2
    np.testing.assert_allclose(merged["prediction"], merged["prediction_store"], rtol=1e-12)


def test_a_brand_newer_than_the_global_model_is_named_in_bids_and_predict(ws: Path, capsys) -> None:
    # a brand loaded after pretraining is served without a brand context: bids said nothing
    store = CampaignStore("data/campaigns")
    first = store.brands()[0]
    clone = store.read(brands=[first]).assign(brand_id="newcomer")
    store.append(clone)
    code, out = _run(capsys, "bids", "--brands", f"{first},newcomer")
    assert code == EXIT_OK, out
    text = " ".join(out.split())
    assert "newcomer: the global model holds no brand context for it (the brand is newer" in text, (
        text
    )
    assert f"{first}: newer than" not in text
    bids = pd.read_parquet(Path("outputs") / NEXT / "bids")
    reasons = bids.assign(brand_id=bids["brand_id"].astype(str)).groupby("brand_id")["reason"]
    assert reasons.apply(lambda r: r.str.startswith("unknown brand").all())["newcomer"]
    assert not reasons.apply(lambda r: r.str.startswith("unknown brand").any())[first]

    day = store.read(brands=[first], start=LAST)
    day = day.assign(date=day["date"].dt.strftime("%Y-%m-%d"), brand_id=day["brand_id"].astype(str))
    day.assign(brand_id="stranger").to_csv("stranger.csv", index=False)
    code, out = _run(capsys, "predict", "--input", "stranger.csv", "--output", "s.parquet")
    assert code == EXIT_OK and "not in the store (stranger)" in " ".join(out.split()), out

    day.assign(brand_id=day["brand_id"].str.upper()).to_csv("upper.csv", index=False)
    out = _refused(
        capsys,
        ws,
        ["predict", "--input", "upper.csv", "--output", "u.parquet"],
        "only in case",
        repr(first.upper()),
        "spell each brand as stored",
    )


def test_predict_input_without_bids_names_bid_once(
    ws: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the rows are built for the serving models' features, so the bid-derived ones are not
    # dropped with a warning (as if the prediction could go on) before the refusal names `bid`
    import tabtune.pipeline as pipeline

    asked: list = []
    original = pipeline.task_data

    def spy(*args, **kwargs):
        asked.append(kwargs.get("features"))
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "task_data", spy)
    rows = CampaignStore("data/campaigns").read(start=LAST).drop(columns="bid")
    rows.to_csv("nobid.csv", index=False)
    code, out = _run(capsys, "predict", "--input", "nobid.csv", "--output", "p.parquet")
    assert code == EXIT_BAD_INPUT, out
    assert "bid" in " ".join(out.split())
    assert asked and asked[0] is not None and "relative_bid" in asked[0], asked
    assert not Path("p.parquet").exists()


def test_predict_input_without_a_learnt_optional_column_is_refused_once(
    ws: Path, capsys, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # red-team F09: a file without `vertical` (a feature the serving model learnt) got a
    # warning that the feature was dropped, as if the prediction could go on, then an error
    # asking for it; now one refusal names the columns the file needs and the fix
    import tabtune.features as features

    monkeypatch.setattr(features, "_NOTICED", set())  # notices are logged once per process
    rows = CampaignStore("data/campaigns").read(start=LAST).drop(columns=["vertical", "bid"])
    rows.to_csv("novertical.csv", index=False)
    with caplog.at_level("WARNING", logger="tabtune"):
        out = _refused(
            capsys,
            ws,
            ["predict", "--input", "novertical.csv", "--output", "v.parquet"],
            "['vertical', 'bid']",
            "data.columns",
        )
    text = " ".join(out.split())
    assert "derives ['reference_bid', 'relative_bid']" in text, text
    assert "dropped" not in text + caplog.text, caplog.text


def test_the_default_decision_day_is_allowed_as_an_explicit_date(tmp_path: Path) -> None:
    # rows dated tomorrow (allowed: today + 1) make the default day today + 2; passing that
    # same day as --date must not be refused, a day after it is
    import datetime as dt

    import pandas as pd

    from tabtune.cli.decisions import check_decision_date, decision_date
    from tabtune.errors import TabTuneInputError

    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    store = CampaignStore(tmp_path / "s")
    store.append(
        pd.DataFrame(
            [{"brand_id": "a", "date": pd.Timestamp(tomorrow), "channel": "search",
              "spend": 1.0, "clicks": 1, "conversions": 0, "revenue": 0.0}]
        )
    )  # fmt: skip
    default = decision_date(store, None)
    assert default.date() == tomorrow + dt.timedelta(days=1)
    assert decision_date(store, default.date().isoformat()) == default
    with pytest.raises(TabTuneInputError, match="is after"):
        check_decision_date(store, default + pd.Timedelta(days=1))


def test_campaigns_sharing_a_context_are_said_to_get_its_value() -> None:
    """Prospecting and Retargeting on one channel were valued alike by a task without
    campaign_id, and bids moved apart by their own bids only, without a word (new-user
    red-team); decided from the task's features, not from equal values (review)."""
    from tabtune.cli.decisions import _shared_context_note

    recs = pd.DataFrame(
        {
            "campaign_id": ["prospecting", "retargeting", "brand"],
            "channel": ["meta", "meta", "search"],
            "predicted_value_per_click": [2.316, 2.9, 4.07],
        }
    )
    features = ["channel", "audience", "device", "vertical"]
    (note,) = _shared_context_note("acme", recs, features)
    assert note.startswith("acme: 2 campaign(s) share their channel with another")
    assert "add campaign_id to the categorical features" in note
    assert _shared_context_note("acme", recs, [*features, "campaign_id"]) == []  # learnt
    assert _shared_context_note("acme", recs.drop(columns="campaign_id"), features) == []
    alone = recs.assign(channel=["meta", "social", "search"])  # one campaign per context
    assert _shared_context_note("acme", alone, features) == []


@pytest.mark.parametrize(("command", "kind"), [("bids", "bids"), ("budget", "budgets")])
def test_csv_holds_the_decisions_the_parquet_files_hold(ws: Path, capsys, command, kind) -> None:
    """Per-campaign bids and plans were only in per-brand Parquet files: pandas was needed
    to read them (new-user red-team)."""
    code, out = _run(capsys, command, "--csv", "out/decisions.csv")
    assert code == EXIT_OK, out
    assert "also written to out/decisions.csv" in " ".join(out.split())
    got = pd.read_csv("out/decisions.csv")
    assert got.columns[0] == "brand_id"
    want = pd.read_parquet(Path("outputs") / NEXT / kind)
    assert len(got) == len(want) and set(got["brand_id"]) == set(want["brand_id"].astype(str))
    numeric = [c for c in want.columns if pd.api.types.is_float_dtype(want[c])]
    assert numeric
    key = ["brand_id", *[c for c in ("channel", "campaign_id") if c in want.columns]]
    mine = got.sort_values(key).reset_index(drop=True)
    theirs = want.assign(brand_id=want["brand_id"].astype(str)).sort_values(key)
    for column in numeric:
        np.testing.assert_allclose(mine[column], theirs[column].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("command", ["bids", "budget"])
@pytest.mark.parametrize(
    ("value", "needle"), [("x.parquet", "name it .csv"), ("outputs", "is a folder")]
)
def test_a_bad_csv_path_is_refused_before_anything_is_written(
    ws: Path, capsys, command: str, value: str, needle: str
) -> None:
    _refused(capsys, ws, [command, "--csv", value], f"--csv {value}", needle)


def test_each_brand_bids_to_its_own_target_in_the_cli_and_the_refresh(ws: Path, capsys) -> None:
    """One --target-roas served every client (new-user red-team): bids.target_roas_by_brand
    sets a brand's own, in `tabtune bids` and in the refresh's decisions alike."""
    from tabtune.pipeline import model_for_brand
    from tabtune.refresh.decisions import _bid_decisions

    first, *others = CampaignStore("data/campaigns").brands()
    cfg = yaml.safe_load(Path("tabtune.yaml").read_text())
    cfg.setdefault("bids", {})["target_roas_by_brand"] = {first: 1.5}
    Path("tabtune.yaml").write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "bids", "--csv", "bids.csv")
    assert code == EXIT_OK, out
    assert "1 brand(s) their own, bids.target_roas_by_brand" in " ".join(out.split())
    bids = pd.read_csv("bids.csv")
    default = load_config("tabtune.yaml").bids.target_roas
    assert set(bids.loc[bids["brand_id"] == first, "target_roas"]) == {1.5}
    assert set(bids.loc[bids["brand_id"].isin(others), "target_roas"]) == {default}
    # the refresh's decisions for the same day take the same target
    config = load_config("tabtune.yaml")
    model_id, model = model_for_brand(config, "bid", first)
    rows = CampaignStore("data/campaigns").read(brands=[first])
    night = _bid_decisions(config, first, model, model_id, rows, pd.Timestamp(LAST).date())
    assert night is not None and set(night["target_roas"]) == {1.5}
    code, out = _run(capsys, "bids", "--target-roas", "3", "--csv", "all.csv")  # overrides all
    assert code == EXIT_OK and set(pd.read_csv("all.csv")["target_roas"]) == {3.0}


def test_cli_bids_are_the_refresh_bids_for_a_context_seen_every_few_days(
    small_config: Path, capsys
) -> None:
    """`tabtune bids` read 56 days of history for the reference bids, which are a context's
    last 28 observations: a context seen every third day got another reference than in the
    refresh (bids apart by up to 25%; decisions red-team). Both read every earlier row now."""
    from tabtune.pipeline import model_for_brand
    from tabtune.refresh.decisions import _bid_decisions

    cfg = yaml.safe_load(small_config.read_text())
    cfg["synth"] = {"n_brands": 2, "n_days": 150, "seed": 4}
    small_config.write_text(yaml.safe_dump(cfg))
    assert _run(capsys, "synth")[0] == EXIT_OK
    store = CampaignStore("data/campaigns")
    rows = store.read()
    brand = sorted(rows["brand_id"].unique())[0]
    day = (pd.to_datetime(rows["date"]) - pd.to_datetime(rows["date"]).min()).dt.days
    last = pd.to_datetime(rows["date"]).max()
    # the brand's contexts every third day, and on its last day (the contexts decided on)
    keep = (rows["brand_id"] != brand) | (day % 3 == 0) | (pd.to_datetime(rows["date"]) == last)
    rows = rows[keep]
    rows = rows.assign(bid=rows["bid"] * (1 + 0.01 * day[keep]))  # drifting bids
    import shutil

    shutil.rmtree("data/campaigns")
    CampaignStore("data/campaigns").append(rows)
    code, out = _run(capsys, "bids", "--brands", brand, "--csv", "bids.csv")
    assert code == EXIT_OK, out
    cli = pd.read_csv("bids.csv")
    config = load_config("tabtune.yaml")
    model_id, model = model_for_brand(config, "bid", brand)
    history = CampaignStore("data/campaigns").read(brands=[brand])
    night = _bid_decisions(config, brand, model, model_id, history, last.date())
    assert night is not None and len(night) == len(cli) > 0
    keys = [c for c in ("channel", "campaign_id", "audience", "device") if c in cli.columns]
    both = cli.merge(night, on=keys, suffixes=("_cli", "_night"))
    assert len(both) == len(cli)
    for column in ("reference_bid", "bid"):
        np.testing.assert_allclose(both[f"{column}_cli"], both[f"{column}_night"], rtol=1e-6)


def test_a_channel_that_stopped_spending_is_noted_in_the_budget(ws: Path, capsys) -> None:
    """A channel paused for the last 10 days was planned at +30% of its diluted recent spend,
    as if it still ran, without a word (decisions red-team)."""
    from tabtune.tasks.budget_notes import paused_channel_notes

    store = CampaignStore("data/campaigns")
    rows = store.read()
    brand = sorted(rows["brand_id"].unique())[0]
    mine = rows[rows["brand_id"] == brand]
    channel = sorted(mine["channel"].unique())[0]
    last = pd.Timestamp(LAST)
    idle = (rows["brand_id"] == brand) & (rows["channel"] == channel)
    idle &= pd.to_datetime(rows["date"]) > last - pd.Timedelta(days=10)
    assert paused_channel_notes(rows[~idle], brand, pd.Timestamp(NEXT), [channel])
    assert not paused_channel_notes(rows, brand, pd.Timestamp(NEXT), [channel])
    import shutil

    shutil.rmtree("data/campaigns")
    CampaignStore("data/campaigns").append(rows[~idle])
    code, out = _run(capsys, "budget", "--brands", brand)
    assert code == EXIT_OK, out
    text = " ".join(out.split())
    assert f"{brand}: {channel} (last spend " in text and "as if it still ran" in text
    # the refresh's budget night says the same (one path)
    import json

    code, out = _run(capsys, "refresh", "--date", LAST, "--task", "budget", "--brands", brand)
    assert code in (EXIT_OK, 3), out
    report = json.loads((Path("runs") / LAST / "budget" / "report.json").read_text())
    notes = [n for b in report["brands"] for n in b.get("notes", [])] + report.get("notes", [])
    assert any(f"{channel} (last spend " in n for n in notes), notes


def test_the_shared_context_note_says_costs_per_click_without_a_bid_column() -> None:
    """Without a bid column the note said the campaigns' bids 'differ by their own bids only'
    right after the note that there are no bids (new-user red-team)."""
    from tabtune.cli.decisions import _shared_context_note

    recs = pd.DataFrame(
        {"channel": ["fb", "fb"], "campaign_id": ["a", "b"], "reference": "observed_cpc"}
    )
    (note,) = _shared_context_note("acme", recs, ["channel"])
    assert "by their own observed costs per click only" in note
    (note,) = _shared_context_note("acme", recs.assign(reference="bid"), ["channel"])
    assert "by their own bids only" in note


def test_a_channel_at_a_lower_bound_of_zero_is_not_said_below_zero() -> None:
    # budget.relative_bounds: 3 put a channel at its lower bound (0) and the note said
    # "recent spend -300%" (CLI red-team)
    from tabtune.cli.decisions import _plan_notes
    from tabtune.config import default_config

    base = default_config()
    cfg = base.model_copy(update={"budget": base.budget.model_copy(update={"relative_bounds": 3})})
    plan = pd.DataFrame(
        {"channel": ["search", "social"], "spend": [0.0, 40.0], "lower": [0.0, 0.0],
         "upper": [40.0, 40.0]}
    )  # fmt: skip
    notes = " ".join(_plan_notes(cfg, "acme", plan))
    assert "search at its lower bound (recent spend -100%" in notes
    assert "social at its upper bound (recent spend +300%" in notes
    assert "-300%" not in notes
