"""Fault and bad-input matrix at the command line's boundary (issue 15), part two.

Each case runs ``tabtune`` in-process on a copy of one small refreshed workspace and asserts
the exit code, the message (what, the rule, the fix) and that nothing was written or changed
(sha256 of every file of the workspace before and after, :func:`digest_tree`). The store,
registry, leaf-cache and config cases are in ``tests/test_hardening.py``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabtune.cli import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_OK, EXIT_PARTIAL, main
from tabtune.cli.guards import os_error_message
from tabtune.data.store import CampaignStore
from tabtune.optional import is_available
from tabtune.registry import ModelRegistry
from tests.conftest import (
    assert_refused,
    build_workspace,
    copy_workspace,
    run_cli,
    write_small_config,
)
from tests.test_hardening import digest_tree

D0 = "2024-02-05"  # the date the template workspace was refreshed for
D1 = "2024-02-06"


def _run(capsys, *argv: str) -> tuple[int, str]:
    return run_cli(capsys, *argv)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 simulated brands over 40 days, refreshed once for :data:`D0`."""
    commands = [["synth"], ["refresh", "--date", D0]]
    return build_workspace(tmp_path_factory.mktemp("workspace"), commands)


@pytest.fixture
def ws(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the template workspace; the test runs inside it."""
    return copy_workspace(template, tmp_path, monkeypatch)


def _new_rows(brand: str = "b001") -> Path:
    """A CSV of one valid new day for ``brand``: its last stored day, copied to the next."""
    rows = CampaignStore("data/campaigns").read(brands=[brand])
    last = rows[rows["date"] == rows["date"].max()].copy()
    last["date"] = last["date"] + pd.Timedelta(days=1)
    path = Path("new.csv").absolute()
    last.to_csv(path, index=False)
    return path


_refused = assert_refused


# ================================================================== arguments refused by the parser


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["synth", "--brands", "0"], "--brands: must be at least 1, got 0"),
        (["synth", "--days", "0"], "--days: must be at least 1, got 0"),
        (["synth", "--brands", "-3"], "--brands: must be at least 1, got -3"),
        (["synth", "--brands", "many"], "'many' is not a whole number"),
        (["demo", "--brands", "0"], "--brands: must be at least 1"),
        (["tune", "--trials", "0"], "--trials: must be at least 1"),
        (["tune", "--jobs", "0"], "--jobs: must be at least 1"),
    ],
)
def test_counts_below_one_are_refused(ws: Path, capsys, argv, needle) -> None:
    _refused(capsys, ws, argv, needle)


@pytest.mark.parametrize("command", ["synth", "demo"])
def test_days_below_the_configs_minimum_are_refused_with_its_rule(
    small_config: Path, capsys, command: str
) -> None:
    # `synth --days 1..6` simulated though the config refuses synth.n_days below 7
    rule = "synth.n_days: Input should be greater than or equal to 7 (got 6)"
    code, out = run_cli(capsys, command, "--days", "6")
    text = " ".join(out.split())
    assert code == EXIT_BAD_INPUT and "Traceback" not in out, out
    assert f"--days 6 is refused: {rule}" in text and "pass --days 7 or more" in text, text
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["tabtune.yaml"]  # nothing written
    write_small_config(Path.cwd(), synth={"n_days": 6})  # the config says the same rule
    code, out = run_cli(capsys, command)
    assert code == EXIT_BAD_INPUT and rule in " ".join(out.split()), out


# ================================================================== synth into a store with data


def test_synth_refuses_to_mix_into_a_store_with_other_data(ws: Path, capsys) -> None:
    _refused(capsys, ws, ["synth", "--seed", "5"], "already holds 3 brand(s)", "--append")


def test_synth_refuses_more_brands_into_an_existing_store(ws: Path, capsys) -> None:
    _refused(capsys, ws, ["synth", "--brands", "5"], "2 new brand(s)", "--append")


def test_synth_append_adds_on_purpose(ws: Path, capsys) -> None:
    code, out = _run(capsys, "synth", "--brands", "5", "--append")
    assert code == EXIT_OK, out
    assert len(CampaignStore("data/campaigns").brands()) == 5


@pytest.mark.parametrize("command", ["synth", "demo"])
def test_the_simulator_refuses_a_truth_dir_inside_the_store(
    small_config: Path, capsys, command: str
) -> None:
    # the truth Parquet written into the store made every later command refuse it as damaged;
    # other commands never write the truth, so such a config is theirs to use
    write_small_config(Path.cwd(), data={"store": "data", "truth_dir": "data/truth"})
    code, out = run_cli(capsys, command)
    assert code == EXIT_BAD_INPUT and "Traceback" not in out, out
    assert "data.store (data) and data.truth_dir (data/truth) overlap" in out
    assert "nothing was written" in out and not Path("data").exists()


def test_synth_repeated_writes_nothing_and_is_allowed(ws: Path, capsys) -> None:
    before = digest_tree(ws / "data" / "campaigns")
    code, out = _run(capsys, "synth")
    assert code == EXIT_OK and "0 rows written" in out
    assert digest_tree(ws / "data" / "campaigns") == before


# ================================================================== path escape through --task


@pytest.mark.parametrize("task", ["ABS", "../runs", ".hidden", "a/b"])
def test_report_task_cannot_name_a_path(ws: Path, capsys, tmp_path: Path, task: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(ws / "runs" / D0 / "report.json", outside / "report.json")
    task = str(outside) if task == "ABS" else task
    before = digest_tree(outside)
    _refused(capsys, ws, ["report", "--task", task], "--task", "plain name", "bid")
    assert digest_tree(outside) == before  # no report.html written there


def test_refresh_task_cannot_name_a_path(ws: Path, capsys, tmp_path: Path) -> None:
    _refused(capsys, ws, ["refresh", "--date", D1, "--task", str(tmp_path)], "task")


# ================================================================== damaged report.json


_REPORT_DAMAGE = {
    "not json": lambda text: text[: len(text) // 2],
    "a list": lambda text: "[1, 2]",
    "brands not a list": lambda text: json.dumps({**json.loads(text), "brands": {"a": 1}}),
    "brand without id": lambda text: json.dumps({**json.loads(text), "brands": [{"x": 1}]}),
    "scores not numbers": lambda text: json.dumps(
        {**json.loads(text), "brands": [{"brand_id": "b", "scores": {"global": "x"}}]}
    ),
    "timings not numbers": lambda text: json.dumps({**json.loads(text), "timings": {"wall": "x"}}),
}


@pytest.mark.parametrize("damage", sorted(_REPORT_DAMAGE))
def test_a_damaged_report_json_is_named(ws: Path, capsys, damage: str) -> None:
    path = ws / "runs" / D0 / "report.json"
    path.write_text(_REPORT_DAMAGE[damage](path.read_text()))
    _refused(capsys, ws, ["report"], str(Path("runs") / D0 / "report.json"), "refresh --date")


# ================================================================== damaged or foreign state.json


def _state_only(ws: Path) -> Path:
    """Make the template's run unfinished: its report gone, its state kept."""
    for name in ("report.json", "report.html"):
        (ws / "runs" / D0 / name).unlink()
    return ws / "runs" / D0 / "state.json"


_STATE_DAMAGE = {
    "not json": lambda s: "{",
    "a list": lambda s: [s],
    "no global model": lambda s: {k: v for k, v in s.items() if k != "global_model"},
    "brands a list": lambda s: {**s, "brands": list(s["brands"])},
    "unknown status": lambda s: {
        **s,
        "brands": {b: {**r, "status": "done"} for b, r in s["brands"].items()},
    },
}


@pytest.mark.parametrize("command", ["report", "refresh"])
@pytest.mark.parametrize("damage", sorted(_STATE_DAMAGE))
def test_a_damaged_state_json_is_named(ws: Path, capsys, command: str, damage: str) -> None:
    if command == "report" and damage == "no global model":
        pytest.skip("report shows counts per status only; refresh needs the global model")
    path = _state_only(ws)
    new = _STATE_DAMAGE[damage](json.loads(path.read_text()))
    path.write_text(new if isinstance(new, str) else json.dumps(new))
    argv = ["report"] if command == "report" else ["refresh", "--date", D0]
    _refused(capsys, ws, argv, "state.json", "move" if command == "refresh" else "state")


def _foreign_state(ws: Path, case: str) -> list[str]:
    """Plant a ``state.json`` that belongs elsewhere; returns the refresh command."""
    state = json.loads((ws / "runs" / D0 / "state.json").read_text())
    date, task = D1, "bid"
    if case == "other date":
        pass  # D0's finished state copied into D1's folder
    elif case == "other task":
        date, task = D0, "budget"
        state = {**state, "finished_at": None}
    elif case == "other global model":
        date, state = D0, {**state, "global_model": "global/bid/v0099", "finished_at": None}
    elif case == "brand not in the store":
        date = D0
        state["brands"]["ghost"] = {**state["brands"]["b000"], "brand_id": "ghost"}
    elif case == "model not in the registry":
        date = D0
        state["brands"]["b001"] = {**state["brands"]["b001"], "model_id": "brands/b001/bid/v0042"}
    run_dir = ws / "runs" / date if task == "bid" else ws / "runs" / date / task
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "state.json").write_text(json.dumps(state))
    return ["refresh", "--date", date, "--task", task]


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("other date", f"records the run of {D0}, not {D1}"),
        ("other task", "belongs to task 'bid', not 'budget'"),
        ("other global model", "global/bid/v0099 is not in the registry"),
        ("brand not in the store", "brands the store does not have: ['ghost']"),
        ("model not in the registry", "brands/b001/bid/v0042 is not in the registry"),
    ],
)
def test_a_foreign_state_json_is_refused_not_trusted(ws: Path, capsys, case, needle) -> None:
    argv = _foreign_state(ws, case)
    _refused(capsys, ws, argv, "state.json", "does not belong to this run", needle, "Move it away")


# ================================================================== every argument before any write


@pytest.mark.parametrize(
    ("brands", "needle"),
    [("nosuchbrand", "nosuchbrand"), ("b001,a..b", "contains '..'"), ("b001, x" * 1, "'x'")],
)
def test_refresh_input_checks_brands_before_appending(ws: Path, capsys, brands, needle) -> None:
    new = _new_rows()
    _refused(capsys, ws, ["refresh", "--date", D1, "--input", str(new), "--brands", brands], needle)


def test_refresh_input_may_name_a_brand_it_brings(ws: Path, capsys) -> None:
    rows = pd.read_csv(_new_rows()).assign(brand_id="newco")
    rows.to_csv("new.csv", index=False)
    code, out = _run(capsys, "refresh", "--date", D1, "--input", "new.csv", "--brands", "newco")
    assert code == EXIT_OK, out


def test_refresh_input_refuses_a_brand_spelled_as_a_stored_one(ws: Path, capsys) -> None:
    """``refresh --input`` appended a brand id ``load`` refuses (``B001`` beside the stored
    ``b001``): the checks beside the store are the load's (``check_against_store``)."""
    rows = pd.read_csv(_new_rows()).assign(brand_id="B001")
    rows.to_csv("new.csv", index=False)
    _refused(
        capsys, ws, ["refresh", "--date", D1, "--input", "new.csv"], "'B001' vs 'b001'", "case"
    )


def test_refresh_input_goes_through_the_configs_transforms(ws: Path, capsys) -> None:
    """``--input`` is prepared as ``tabtune load`` prepares it: the config's drop and mapping
    (refused before as a clash with the export's own revenue column)."""
    rows = pd.read_csv(_new_rows()).rename(columns={"revenue": "sales"}).assign(revenue=-1.0)
    rows.to_csv("new.csv", index=False)
    cfg = yaml.safe_load(Path("tabtune.yaml").read_text())
    cfg["data"].update(drop=["revenue"], columns={"revenue": "sales"})
    Path("tabtune.yaml").write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "refresh", "--date", D1, "--input", "new.csv", "--brands", "b001")
    assert code == EXIT_OK, out
    stored = CampaignStore("data/campaigns").read(brands=["b001"], start=rows["date"].iloc[0])
    assert len(stored) == len(rows)
    assert sorted(stored["revenue"]) == sorted(rows["sales"])


_MEASURES = ["spend", "clicks", "conversions", "revenue", "impressions"]


def test_predict_input_needs_the_features_not_the_measures(ws: Path, capsys) -> None:
    contexts = pd.read_csv(_new_rows()).drop(columns=_MEASURES, errors="ignore")
    contexts.to_csv("contexts.csv", index=False)
    code, out = _run(capsys, "predict", "--input", "contexts.csv", "--output", "p.parquet")
    assert code == EXIT_OK, out
    assert "rows" in out and "mean prediction" in out  # the summary's columns say what
    preds = pd.read_parquet("p.parquet")
    assert len(preds) == len(contexts) and preds["prediction"].notna().all()
    # the bid model is trained on the bid: a file without it is refused, naming it
    contexts.drop(columns="bid").to_csv("contexts.csv", index=False)
    _refused(
        capsys, ws, ["predict", "--input", "contexts.csv", "--output", "q.parquet"], "relative_bid"
    )
    # the row key is still required
    contexts.drop(columns="channel").to_csv("contexts.csv", index=False)
    _refused(
        capsys,
        ws,
        ["predict", "--input", "contexts.csv", "--output", "q.parquet"],
        "column 'channel': required column is missing",
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["predict", "--output", "data/campaigns/x.parquet"], "inside data.store"),
        (["predict", "--output", "models/global/x.parquet"], "inside models_dir"),
        (["predict", "--output", "runs/x.parquet"], "inside runs_dir"),
        (["bids", "--csv", "data/campaigns/bids.csv"], "inside data.store"),
        (["budget", "--csv", "models/plan.csv"], "inside models_dir"),
    ],
)
def test_outputs_are_refused_inside_the_folders_tabtune_manages(
    ws: Path, capsys, argv: list[str], needle: str
) -> None:
    # predict --output into the store exited 0 and left a store every command refused as
    # damaged; into the registry, a corrupt champion (tune/predict red-team)
    _refused(capsys, ws, argv, needle, "nothing was written")


def test_outputs_dir_inside_another_configured_folder_stays_writable(tmp_path: Path) -> None:
    # truth_dir: outputs made every predict exit 2 (review); a link into the store is seen
    from tabtune.cli.guards import outside_managed_folders
    from tabtune.config import Config
    from tabtune.errors import TabTuneInputError

    cfg = Config.model_validate(
        {"data": {"store": str(tmp_path / "st"), "truth_dir": str(tmp_path / "out")},
         "outputs_dir": str(tmp_path / "out"), "models_dir": str(tmp_path / "m")}
    )  # fmt: skip
    outside_managed_folders(tmp_path / "out" / "predictions" / "bid.parquet", cfg, "x")
    outside_managed_folders(tmp_path / "st" / ".." / "preds.parquet", cfg, "x")
    (tmp_path / "st").mkdir()
    (tmp_path / "lnk").symlink_to(tmp_path / "st")
    with pytest.raises(TabTuneInputError, match="inside data.store"):
        outside_managed_folders(tmp_path / "lnk" / "x.parquet", cfg, "x")


def test_predict_refuses_to_write_over_its_input(ws: Path, capsys) -> None:
    pd.read_csv(_new_rows()).to_parquet("rows.parquet")
    _refused(
        capsys, ws, ["predict", "--input", "rows.parquet", "--output", "rows.parquet"],
        "is the input file",
    )  # fmt: skip


def test_refresh_bad_date_writes_nothing(ws: Path, capsys) -> None:
    new = _new_rows()
    _refused(capsys, ws, ["refresh", "--date", "2024-13-01", "--input", str(new)], "YYYY-MM-DD")


@pytest.mark.parametrize("end", ["2024", "02/01/2024", "Feb 1 2024"])
@pytest.mark.parametrize("command", [["pretrain"], ["finetune", "--all"]])
def test_a_vague_end_date_is_refused_not_guessed(ws: Path, capsys, command, end) -> None:
    # pandas would read "2024" as 2024-01-01 and publish a global model of that window
    _refused(capsys, ws, [*command, "--end", end], "is not an ISO date")


def test_an_end_before_the_store_names_the_window_it_holds(ws: Path, capsys) -> None:
    first, last = CampaignStore("data/campaigns").date_range()

    _refused(
        capsys,
        ws,
        ["pretrain", "--end", "2020-01-01"],
        f"dates up to 2020-01-01; it holds {first.date()} .. {last.date()}",
    )


# ================================================================== read-only folders, full disk


def _deny_writes_under(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """``os.access`` says ``folder`` (and below) is read-only (tests may run as root)."""
    real = os.access
    folder = folder.absolute()

    def access(path, mode, *args, **kwargs):
        p = Path(path).absolute()
        if mode & os.W_OK and (p == folder or folder in p.parents):
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize(
    ("folder", "argv", "key"),
    [
        ("data/campaigns", ["load", "NEW"], "data.store"),
        ("data/campaigns", ["synth", "--append", "--brands", "4"], "data.store"),
        ("data/campaigns", ["refresh", "--date", D1, "--input", "NEW"], "data.store"),
        ("models", ["pretrain"], "models_dir"),
        ("models", ["refresh", "--date", D1], "models_dir"),
        ("runs", ["refresh", "--date", D1], "runs_dir"),
        ("outputs", ["bids"], "outputs_dir"),
    ],
)
def test_a_read_only_folder_is_refused_before_any_write(
    ws: Path, capsys, monkeypatch, folder: str, argv: list[str], key: str
) -> None:
    new = str(_new_rows())
    argv = [new if a == "NEW" else a for a in argv]
    _deny_writes_under(monkeypatch, ws / folder)
    _refused(capsys, ws, argv, key, "not writable", "make it writable", "Nothing was written")


def test_load_dry_run_needs_no_write_access(ws: Path, capsys, monkeypatch) -> None:
    new = str(_new_rows())
    _deny_writes_under(monkeypatch, ws / "data" / "campaigns")
    code, out = _run(capsys, "load", new, "--dry-run")
    assert code == EXIT_OK, out


def _fail_writes(monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    """Every atomic write fails with ``err`` while writing its temporary file."""
    import tabtune.atomic as atomic

    real = atomic.os.fsync

    def fsync(fd):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    assert real is not fsync


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["load", "NEW"], "data.store"),
        (["refresh", "--date", D1, "--input", "NEW"], "data.store"),
        (["synth", "--append", "--brands", "4"], "data.store"),
    ],
)
def test_disk_full_during_an_append_exits_2_and_leaves_no_trace(
    ws: Path, capsys, monkeypatch, argv: list[str], key: str
) -> None:
    new = str(_new_rows())
    argv = [new if a == "NEW" else a for a in argv]
    _fail_writes(monkeypatch, errno.ENOSPC)
    _refused(capsys, ws, argv, "No space left on device", "free some space", "atomically")


def test_permission_denied_at_write_time_exits_2(ws: Path, capsys, monkeypatch) -> None:
    new = str(_new_rows())
    _fail_writes(monkeypatch, errno.EROFS)
    _refused(capsys, ws, ["load", new], "Read-only file system", "make it writable")


def test_os_error_messages_name_the_configured_folder(ws: Path) -> None:
    from tabtune.config import load_config

    cfg = load_config("tabtune.yaml")
    exc = OSError(errno.ENOSPC, "No space left on device", "models/global/bid/.x.tmp")
    message = os_error_message(exc, cfg)
    assert message is not None and "models_dir" in message and "free some space" in message
    assert os_error_message(OSError(errno.EIO, "I/O error"), cfg) is None  # a real fault
    # the store's .lock made a folder: remove it (the fix named tuning.storage; red-team)
    lock = OSError(errno.EISDIR, "Is a directory", "data/campaigns/.lock")
    message = os_error_message(lock, cfg)
    assert message is not None and "data.store" in message and "remove that folder" in message
    assert "tuning.storage" not in message


def test_a_folder_where_a_file_belongs_is_refused(ws: Path, capsys) -> None:
    # tuning.storage: journal:<a folder> reached the entry point as IsADirectoryError (exit 1)
    Path("journal_dir").mkdir()
    cfg = yaml.safe_load(Path("tabtune.yaml").read_text())
    cfg.setdefault("tuning", {})["storage"] = "journal:journal_dir"
    Path("journal.yaml").write_text(yaml.safe_dump(cfg))
    before = digest_tree(ws)
    code = main(["--config", "journal.yaml", "tune", "--trials", "1"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_BAD_INPUT, err
    assert "journal_dir is a folder where tabtune needs a file" in err and "Traceback" not in err
    assert digest_tree(ws) == before


def test_a_closed_output_pipe_ends_quietly(ws: Path, capsys, monkeypatch) -> None:
    # `tabtune models list --json | true` printed a BrokenPipeError traceback (exit 1)
    import tabtune.cli.app as app

    def closed_pipe(args, cfg):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(app, "_handler", lambda name: closed_pipe)
    code = main(["models", "list", "--json"])
    assert code == EXIT_BROKEN_PIPE
    assert "Traceback" not in capsys.readouterr().err
    script = "import sys; from tabtune.cli import main; sys.exit(main(['models', 'list']))"
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.close()  # the reader goes away before the first line
        err = proc.stderr.read().decode() if proc.stderr else ""
        proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == EXIT_BROKEN_PIPE, (proc.returncode, err)


def test_a_file_where_a_folder_belongs_is_refused(ws: Path, capsys) -> None:
    shutil.rmtree(ws / "outputs")
    (ws / "outputs").write_text("not a folder")
    _refused(capsys, ws, ["bids"], "outputs_dir", "is a file, not a folder")


# ================================================================== config paths (already handled)


def test_a_config_path_that_is_a_folder_exits_2(ws: Path, capsys) -> None:
    before = digest_tree(ws)
    code = main(["--config", str(ws), "report"])
    out = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "is a directory" in out
    assert digest_tree(ws) == before


def test_a_non_utf8_config_exits_2(ws: Path, capsys) -> None:
    Path("bad.yaml").write_bytes(b"models_dir: \xff\xfe\n")
    before = digest_tree(ws)
    code = main(["--config", "bad.yaml", "report"])
    out = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "not UTF-8" in out
    assert digest_tree(ws) == before


# ================================================================== failure isolation that degrades


def _zero_revenue_brand() -> Path:
    rows = CampaignStore("data/campaigns").read(brands=["b001"])
    rows = rows.assign(brand_id="zero", revenue=0.0, conversions=0)
    rows.to_csv("zero.csv", index=False)
    return Path("zero.csv")


def _report(date: str = D1) -> dict:
    return json.loads(Path("runs", date, "report.json").read_text())


def _brand(report: dict, brand: str) -> dict:
    return next(b for b in report["brands"] if b["brand_id"] == brand)


def test_a_zero_revenue_brand_is_served_by_the_global_trees_without_a_fit_error(
    ws: Path, capsys
) -> None:
    # Tweedie cannot fit rows whose revenue is zero everywhere (LightGBM: "sum of labels is
    # zero"): the brand gets the global model's trees with its context, as a choice of
    # 'auto' (not an adaptation failure served by a fallback).
    zero = _zero_revenue_brand()
    code, out = _run(capsys, "refresh", "--date", D1, "--input", str(zero))
    assert code == EXIT_OK, out
    rec = _brand(_report(), "zero")
    assert rec["strategy"] == "global" and rec["status"] in ("promoted", "kept"), rec
    assert "sum of labels" not in json.dumps(rec) and "adaptation failed" not in out
    assert not any("could not be adapted" in n for n in rec["notes"])
    assert Path(rec["outputs"]["bids"]).exists()
    chosen = ModelRegistry(ws / "models").versions("bid", "zero")[-1]
    assert "zero on every one of the" in ModelRegistry(ws / "models").manifest(chosen)["reason"]


def test_refresh_input_rows_after_the_run_date_are_noted(ws: Path, capsys) -> None:
    store = CampaignStore("data/campaigns")
    last = store.date_range()[1]
    rows = store.read(brands=["b001"])
    later = rows[rows["date"] == last].assign(date=last + pd.Timedelta(days=1))
    later.to_csv("later.csv", index=False)
    day = f"{last:%Y-%m-%d}"
    code, out = _run(capsys, "refresh", "--date", day, "--input", "later.csv")
    assert code in (EXIT_OK, EXIT_PARTIAL), out
    notes = _report(day)["notes"]
    message = f"row(s) dated after the run date {day} (from {last + pd.Timedelta(days=1):%Y-%m-%d}"
    assert any(message in n and "were appended" in n for n in notes), notes
    assert store.date_range()[1] == last + pd.Timedelta(days=1)  # appended, as it says


def test_refresh_notes_restated_input_rows_and_stale_brands_in_the_report(ws: Path, capsys) -> None:
    store = CampaignStore("data/campaigns")
    last = store.date_range()[1]
    rows = store.read(brands=["b001"])
    restated = rows[rows["date"] == last].assign(revenue=lambda f: f["revenue"] * 2 + 1.0)
    restated.to_csv("restated.csv", index=False)
    day = f"{last:%Y-%m-%d}"
    code, out = _run(capsys, "refresh", "--date", day, "--input", "restated.csv")
    assert code in (EXIT_OK, 3), out
    notes = _report(day)["notes"]
    assert any("already stored with other values (b001: " + day in n for n in notes), notes
    # a run date well after the store's last day: every brand says its rows are stale
    later = f"{last + pd.Timedelta(days=10):%Y-%m-%d}"
    code, out = _run(capsys, "refresh", "--date", later)
    assert code in (EXIT_OK, 3), out
    for rec in _report(later)["brands"]:
        assert any(n.startswith(f"no rows since {day} (10 days before") for n in rec["notes"]), rec


def test_a_brand_without_a_click_is_served_by_the_global_model_with_the_reason(
    ws: Path, capsys
) -> None:
    # value per click needs clicks > 0: no row of the brand has a usable target, so nothing is
    # fitted (it used to fail inside a fit: "Found array with 0 sample(s)", then a fallback)
    rows = CampaignStore("data/campaigns").read(brands=["b001"])
    rows.assign(brand_id="noclicks", clicks=0, conversions=0, revenue=0.0).to_csv(
        "noclicks.csv", index=False
    )
    code, out = _run(capsys, "refresh", "--date", D1, "--input", "noclicks.csv")
    assert code == EXIT_OK, out
    rec = _brand(_report(), "noclicks")
    assert rec["status"] == "cold_start" and rec["served_by"] == "global", rec
    assert rec["reason"].startswith("no row with a usable target (it needs clicks > 0)"), rec
    assert "Found array" not in json.dumps(rec) and "adaptation failed" not in json.dumps(rec)
    assert ModelRegistry(ws / "models").versions("bid", "noclicks") == []
    assert Path(rec["outputs"]["predictions"]).exists()


def test_finetune_all_fits_every_brand_and_names_the_refused_one(ws: Path, capsys) -> None:
    # A brand without a click has no usable target (revenue / clicks): it is refused by name,
    # writes nothing, and the brands after it in store order are still fitted and published.
    store = CampaignStore("data/campaigns")
    rows = store.read(brands=["b001"])
    store.append(rows.assign(brand_id="a_noclicks", clicks=0, conversions=0, revenue=0.0))
    registry = ModelRegistry(ws / "models")
    before = {b: len(registry.versions("bid", b)) for b in ("b000", "b001", "b002")}
    code, out = _run(capsys, "finetune", "--all")
    assert code == EXIT_BAD_INPUT, out
    assert "Traceback" not in out
    assert "1 of 4 brand(s) refused" in out
    assert "brand 'a_noclicks': task 'bid': no rows with a usable target (the target" in out
    assert registry.versions("bid", "a_noclicks") == []
    assert not (ws / "models" / "brands" / "a_noclicks").exists()
    for brand, n in before.items():
        assert len(registry.versions("bid", brand)) == n + 1, brand
        assert brand in out  # in the table of adapted brands


def test_finetune_of_good_brands_exits_0(ws: Path, capsys) -> None:
    code, out = _run(capsys, "finetune", "--brand", "b000,b002")
    assert code == EXIT_OK, out
    assert "refused" not in out and "b000" in out and "b002" in out


def test_pretrain_on_a_zero_target_store_names_it_and_writes_nothing(ws: Path, capsys) -> None:
    # Every row's revenue is zero: a Tweedie model has nothing to learn (LightGBM refuses the
    # rows). The error names the target as the task does and the fix; no model is published.
    store = CampaignStore("data/campaigns")
    for brand in store.brands():
        rows = store.read(brands=[brand])
        shutil.rmtree(store.partition_dir(brand))
        store.append(rows.assign(revenue=0.0, conversions=0))
    _refused(
        capsys,
        ws,
        ["pretrain"],
        "the target revenue / clicks is zero on every usable row",
        "nothing to learn",
        "objective: squared_error",
    )


def test_a_requested_tree_strategy_on_a_zero_revenue_brand_exits_2(ws: Path, capsys) -> None:
    store = CampaignStore("data/campaigns")
    store.append(store.read(brands=["b001"]).assign(brand_id="zero", revenue=0.0, conversions=0))
    config = yaml.safe_load(Path("tabtune.yaml").read_text())
    config["adaptation"]["strategy"] = "continue"
    Path("tabtune.yaml").write_text(yaml.safe_dump(config))
    _refused(
        capsys,
        ws,
        ["finetune", "--brand", "zero"],
        "brand 'zero', task 'bid': the target revenue / clicks is zero on every usable row",
        "strategy 'continue' cannot refit or grow trees",
        "adaptation.strategy: auto",
        "1 of 1 brand(s) refused",
    )


def _break_adaptation(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    import tabtune.refresh.brand as brand_module

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(brand_module, "challenge", broken)


def test_a_brand_that_cannot_be_adapted_keeps_its_champion(ws: Path, capsys, monkeypatch) -> None:
    # b001 needs a brand champion: promote the challenger the first night published (whether
    # it won that night's out-of-time comparison depends on the data, not on this test).
    registry = ModelRegistry(ws / "models")
    registry.promote(registry.versions("bid", "b001")[-1])
    _new_rows()
    _break_adaptation(monkeypatch, ValueError("all labels are zero"))
    code, out = _run(capsys, "refresh", "--date", D1, "--input", "new.csv", "--brands", "b001")
    assert code == EXIT_OK, out
    rec = _brand(_report(), "b001")
    champion = (ws / "models" / "brands" / "b001" / "bid" / "CHAMPION").read_text().strip()
    assert rec["status"] == "kept" and rec["served_by"] == "champion"
    assert rec["model_id"] == f"brands/b001/bid/{champion}"
    assert "all labels are zero" in rec["reason"] and Path(rec["outputs"]["bids"]).exists()


def test_an_internal_error_still_fails(ws: Path, capsys, monkeypatch) -> None:
    _new_rows()
    _break_adaptation(monkeypatch, KeyError("bug"))
    code, out = _run(capsys, "refresh", "--date", D1, "--input", "new.csv", "--brands", "b001")
    assert code == EXIT_PARTIAL, out
    rec = _brand(_report(), "b001")
    assert rec["status"] == "failed" and "KeyError" in rec["reason"]


def _make_champion(ws: Path, brand: str) -> None:
    """Promote the challenger the first night published for ``brand`` (whether it won that
    night's out-of-time comparison depends on the data, not on the test using it)."""
    registry = ModelRegistry(ws / "models")
    registry.promote(registry.versions("bid", brand)[-1])


def test_lost_history_of_a_brand_with_a_champion_is_reported(ws: Path, capsys) -> None:
    _make_champion(ws, "b002")
    store = CampaignStore("data/campaigns")
    rows = store.read(brands=["b002"])
    shutil.rmtree(store.partition_dir("b002"))
    store.append(rows[rows["date"] >= rows["date"].max() - pd.Timedelta(days=3)])
    code, out = _run(capsys, "refresh", "--date", D1)
    assert code == EXIT_OK, out
    rec = _brand(_report(), "b002")
    assert rec["status"] == "kept" and rec["served_by"] == "champion", rec
    assert "history is missing" in rec["reason"]
    assert any("store history shrank" in n for n in rec["notes"])


def test_a_brand_whose_history_is_gone_is_noted_in_the_report(ws: Path, capsys) -> None:
    _make_champion(ws, "b002")
    shutil.rmtree(CampaignStore("data/campaigns").partition_dir("b002"))
    code, out = _run(capsys, "refresh", "--date", D1)
    assert code == EXIT_OK, out
    notes = " ".join(_report()["notes"])
    assert "brand b002 has a champion" in notes and "history is missing" in notes
    assert "brand b002 has a champion" in out


# ================================================================== no orphaned workers


_PARENT = textwrap.dedent(
    """
    import os, sys, time
    from tabtune.parallel import ProcessExecutor
    ex = ProcessExecutor(n_workers=2, threads_per_worker=1)
    for outcome in ex.run(time.sleep, {"a": (0.1,), "b": (0.1,)}):
        assert outcome.ok, outcome.error
    pool = ex._ensure_pool()
    futures = [pool.submit(time.sleep, 60) for _ in range(2)]  # busy workers
    print(" ".join(str(p) for p in pool._processes), flush=True)
    time.sleep(120)
    """
)


_DASK_PARENT = textwrap.dedent(
    """
    import os, time
    from tabtune.parallel import DaskExecutor
    ex = DaskExecutor(n_workers=2)
    for outcome in ex.run(time.sleep, {"a": (0.1,), "b": (0.1,)}):
        assert outcome.ok, outcome.error
    pids = ex._client.run(os.getpid)
    for _ in range(2):
        ex._client.submit(time.sleep, 60, pure=False)  # busy workers
    print(" ".join(str(p) for p in pids.values()), flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _workers_outlive_a_sigkilled_parent(script: str) -> list[int]:
    """Run ``script`` (which prints its worker pids, then waits), SIGKILL it, and return the
    workers still alive 15 seconds later (killed afterwards, so none is left behind)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    workers: list[int] = []
    try:
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        return [p for p in workers if _alive(p)]
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_sigkilled_parent_leaves_no_process_pool_workers() -> None:
    assert not _workers_outlive_a_sigkilled_parent(_PARENT), "orphaned workers survived"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.skipif(not is_available("dask.distributed"), reason="needs dask.distributed")
def test_sigkilled_parent_leaves_no_local_dask_workers() -> None:
    """The local cluster's worker processes exit when the refresh that started them is
    SIGKILLed (its nannies get no chance to stop them). Two mechanisms ensure it: Dask's own
    (a worker whose nanny's connection drops exits; this test passes without the next one)
    and tabtune's watchdog, registered as a worker callback."""
    assert not _workers_outlive_a_sigkilled_parent(_DASK_PARENT), "orphaned Dask workers"


def test_models_name_an_unknown_task_and_a_rollback_to_the_champion_changes_nothing(
    ws: Path, capsys
) -> None:
    _refused(capsys, ws, ["models", "show", "--task", "nosuch"], "--task 'nosuch': no such task")
    _refused(capsys, ws, ["models", "rollback", "--task", "nosuch", "--brand", "b000"], "no such")
    champion = ModelRegistry("models").champion("bid")
    assert champion is not None
    before = digest_tree(ws)
    code, out = run_cli(capsys, "models", "rollback", "--version", champion.version)
    assert code == EXIT_OK and "is already the champion" in out and "nothing changed" in out, out
    assert digest_tree(ws) == before  # it said "rolled back from v0001 to v0001" before
    # --json prints JSON (it printed the text); a rollback waits for a running refresh
    code, out = run_cli(capsys, "models", "rollback", "--version", champion.version, "--json")
    assert code == EXIT_OK and json.loads(out)["champion"] == champion.id, out
    with ModelRegistry("models").lock("refresh", timeout=0):
        _refused(
            capsys,
            ws,
            ["models", "rollback"],
            "a refresh is running (or a command that writes: pretrain, bids, ...); roll back",
        )
    assert digest_tree(ws) == before


#: A command that runs long enough to be signalled.
_SYNTH = "from tabtune.cli import main; raise SystemExit(main(['synth', '--brands', '400']))"


def _signalled_synth(folder: Path, signum: int) -> tuple[int, str]:
    """Exit code and stderr of a ``synth`` sent ``signum`` once past its imports (skipped
    when it finished first)."""
    with subprocess.Popen(
        [sys.executable, "-c", _SYNTH], cwd=folder, stderr=subprocess.PIPE, text=True
    ) as proc:
        time.sleep(2.0)  # past the imports: the handler is installed in main()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    if proc.returncode == EXIT_OK:
        pytest.skip("synth finished before the signal (a fast machine)")
    return proc.returncode, err


def test_sigterm_ends_a_command_as_ctrl_c_does_with_its_own_code(tmp_path: Path) -> None:
    """SIGTERM (Airflow's on_kill) ended a command with -15, no message and a leaked
    semaphore warning (executors red-team): it unwinds as after Ctrl-C and exits 143."""
    from tabtune.cli.exit_codes import EXIT_TERMINATED

    code, err = _signalled_synth(tmp_path, signal.SIGTERM)
    assert code == EXIT_TERMINATED == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err, err


def test_sighup_ends_a_command_as_sigterm_does_unless_ignored(tmp_path: Path) -> None:
    """A dropped ssh session (SIGHUP) killed a refresh with exit 129 and no word (refresh
    red-team): it unwinds as after SIGTERM; under nohup (SIGHUP ignored) it runs on."""
    code, err = _signalled_synth(tmp_path, signal.SIGHUP)
    assert code == 129, err
    assert "terminated (SIGHUP)" in err and "Traceback" not in err, err
    again = tmp_path / "nohup"
    again.mkdir()
    ignored = "import signal; signal.signal(signal.SIGHUP, signal.SIG_IGN); " + _SYNTH
    with subprocess.Popen(
        [sys.executable, "-c", ignored], cwd=again, stderr=subprocess.PIPE, text=True
    ) as proc:
        time.sleep(2.0)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        alive = proc.poll() is None  # nohup: it outlived the signal
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert alive or proc.returncode == EXIT_OK, err


@pytest.mark.parametrize(
    "argv",
    [["pretrain"], ["finetune", "--all"], ["bids"], ["budget"], ["load", "export.csv"]],
)
def test_commands_that_write_are_refused_while_a_refresh_runs(
    small_config: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # a pretrain promoted a global model mid-night and `bids` rewrote part of the night's
    # decisions from it; `models rollback` and `models gc` were already refused (red-team)
    from tabtune.refresh.run import LOCK_NAME
    from tabtune.registry import ModelRegistry
    from tests.conftest import run_cli
    from tests.test_hardening import digest_tree

    registry = ModelRegistry(small_config.parent / "models")
    with registry.lock(LOCK_NAME, timeout=0):  # the night's lock, as `tabtune refresh` holds it
        before = digest_tree(small_config.parent)
        code, out = run_cli(capsys, *argv)
        assert digest_tree(small_config.parent) == before
    assert code == 2 and "Traceback" not in out, out
    assert f"a refresh is running: `tabtune {argv[0]}`" in out and "after the refresh" in out


def test_commands_that_write_run_side_by_side_but_not_beside_a_refresh(tmp_path: Path) -> None:
    # the guard took the refresh lock exclusively: `bids` and `budget` run by a scheduler at
    # once refused each other, and a long pretrain was reported as "a refresh is running"
    from tabtune.cli.guards import between_refreshes
    from tabtune.refresh.run import LOCK_NAME
    from tabtune.registry import ModelRegistry, RegistryLockedError

    registry = ModelRegistry(tmp_path / "models")
    with registry.lock(LOCK_NAME, timeout=0):  # makes the lock folder, as a first night does
        pass
    with between_refreshes(tmp_path / "models", "bids"):
        with between_refreshes(tmp_path / "models", "budget"):  # side by side
            pass
        with pytest.raises(RegistryLockedError, match="held shared"):
            with registry.lock(LOCK_NAME, timeout=0):  # a refresh now: refused
                pass
    with registry.lock(LOCK_NAME, timeout=0):  # released: the refresh runs
        pass


def test_pretrain_without_a_holdout_says_why(ws: Path, capsys) -> None:
    # The holdout score was printed as "-" with no reason: early stopping off, or one day.
    config = yaml.safe_load(Path("tabtune.yaml").read_text())
    config.setdefault("model", {})["early_stopping_rounds"] = None
    config["model"]["n_estimators"] = 5
    Path("tabtune.yaml").write_text(yaml.safe_dump(config))
    code, out = _run(capsys, "pretrain")
    assert code == EXIT_OK, out
    said = " ".join(out.split())
    assert "holdout tweedie deviance - (model.early_stopping_rounds is null" in said

    store = CampaignStore("data/campaigns")
    last = store.read()["date"].max()
    config["model"]["early_stopping_rounds"] = 5
    Path("tabtune.yaml").write_text(yaml.safe_dump(config))
    code, out = _run(capsys, "pretrain", "--end", str(last.date()))
    assert code == EXIT_OK and "holdout tweedie deviance - " not in out, out  # a split: a score
    for brand in store.brands():  # one day left: no split by day
        rows = store.read(brands=[brand])
        shutil.rmtree(store.partition_dir(brand))
        store.append(rows[rows["date"] == last])
    code, out = _run(capsys, "pretrain")
    assert code == EXIT_OK, out
    assert "(no holdout: the rows could not be split by day" in " ".join(out.split())


def test_rollback_repairs_a_broken_champion_pointer_as_models_list_says(ws: Path, capsys) -> None:
    # `models list` says to roll back to a version that verifies; the command read the broken
    # pointer first and exited 2 with the same error (CLI red-team)
    registry = ModelRegistry(ws / "models")
    brand = next(b for b in ("b000", "b001", "b002") if registry.versions("bid", b))
    good = registry.versions("bid", brand)[-1].version
    (ws / "models" / "brands" / brand / "bid" / "CHAMPION").write_text("v0009\n")
    code, out = _run(capsys, "models", "rollback", "--task", "bid", "--brand", brand)
    assert code == EXIT_BAD_INPUT and "Traceback" not in out, out
    assert f"name the version to serve with --version (versions: {good}" in " ".join(out.split())
    code, out = _run(
        capsys, "models", "rollback", "--task", "bid", "--brand", brand, "--version", good
    )
    assert code == EXIT_OK, out
    assert registry.champion("bid", brand).version == good


@pytest.mark.parametrize("command", ["bids", "budget"])
def test_a_decision_date_before_the_store_is_refused(ws: Path, capsys, command: str) -> None:
    # --date 1999-01-01 (a typo in the year) exited 0 with no decision, and `budget` first
    # pretrained and published a global budget model (CLI red-team)
    before = digest_tree(ws)
    code, out = _run(capsys, command, "--date", "1999-01-01")
    assert code == EXIT_BAD_INPUT and "Traceback" not in out, out
    said = " ".join(out.split())
    assert "--date 1999-01-01 is on or before 2024-01-01, the first stored day of the store" in said
    assert digest_tree(ws) == before
    # a brand of --brands whose own rows start later: no decision from rows it does not have
    first = CampaignStore("data/campaigns").read(brands=["b001"])["date"].min().date()
    code, out = _run(capsys, command, "--brands", "b001", "--date", str(first))
    said = " ".join(out.split())
    assert code == EXIT_BAD_INPUT and "the first stored day of the brands decided for" in said
    assert digest_tree(ws) == before


def test_finetune_on_a_damaged_global_model_says_it_is_damaged(ws: Path, capsys) -> None:
    # it said "no global model ... run `tabtune pretrain` first", which `bids` does not say
    for path in (ws / "models" / "global" / "bid").glob("v*/model/*.txt"):
        path.write_text(path.read_text()[:1000])
    code, out = _run(capsys, "finetune", "--brand", "b001")
    said = " ".join(out.split())
    assert code == EXIT_BAD_INPUT and "Traceback" not in out, out
    assert "no version of the global bid model verifies (damaged files" in said
    assert "run `tabtune pretrain` first" not in said


def test_pretrain_end_before_the_champion_says_it_replaces_newer_rows(ws: Path, capsys) -> None:
    # `pretrain --end` for a back-test promoted a model of a few early days without a word,
    # and every brand was served by it from then on (CLI red-team)
    champion = ModelRegistry(ws / "models").champion("bid")
    code, out = _run(capsys, "pretrain", "--end", "2024-01-20")
    said = " ".join(out.split())
    assert code == EXIT_OK, out
    assert f"this model learnt rows up to 2024-01-20, older than those of {champion.id}" in said
    assert f"`tabtune models rollback --task bid` restores {champion.id}" in said
    code, out = _run(capsys, "pretrain")  # all rows again: nothing to say
    assert code == EXIT_OK and "older than those of" not in " ".join(out.split()), out


def test_report_date_that_is_not_a_date_says_so(ws: Path, capsys) -> None:
    # "--date yesterday" answered "no refresh run ... for yesterday" (CLI red-team)
    code, out = _run(capsys, "report", "--date", "yesterday")
    assert code == EXIT_BAD_INPUT and "Traceback" not in out, out
    assert "--date: 'yesterday' is not an ISO date" in out
    code, out = _run(capsys, "report", "--date", D0)
    assert code == EXIT_OK, out


def test_finetune_end_before_the_brand_says_so(ws: Path, capsys) -> None:
    # "brand 'b001' has no rows in the store" for a brand with rows, none up to --end
    code, out = _run(capsys, "finetune", "--brand", "b001", "--end", "2023-01-01")
    said = " ".join(out.split())
    assert code == EXIT_BAD_INPUT and "Traceback" not in out, out
    assert "has no rows up to --end 2023-01-01 (its rows start on 2024-01-" in said


def test_a_global_version_never_promoted_is_not_called_damaged(ws: Path, capsys) -> None:
    # a version published without promotion (Python: pretrain(..., promote=False)) was
    # reported as "no version verifies (damaged files)" (review)
    (ws / "models" / "global" / "bid" / "CHAMPION").unlink()
    code, out = _run(capsys, "finetune", "--brand", "b001")
    said = " ".join(out.split())
    assert code == EXIT_BAD_INPUT and "Traceback" not in out, out
    assert "damaged" not in said and "no global model for task 'bid'" in said
