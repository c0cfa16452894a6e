"""``tabtune load`` and ``tabtune check``: several files and folders, dry runs, re-loads,
the empty-store message, the doctor's findings, and the README's walkthrough on
``data/examples/`` run exactly as written."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tabtune.config import load_config
from tabtune.data.check import check_data
from tabtune.data.folders import folder_values
from tabtune.data.load import export_files, load_exports, prepare_exports
from tabtune.data.schema import validate_campaigns
from tabtune.data.store import CampaignStore
from tabtune.errors import ContractError, TabTuneInputError
from tests.conftest import assert_refused

REPO = Path(__file__).resolve().parents[1]


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _rows(
    brand: str, start: str, days: int, channels: tuple[str, ...] = ("search",)
) -> pd.DataFrame:
    dates = pd.date_range(start, periods=days)
    return pd.DataFrame(
        [
            {
                "Account": brand,
                "Day": d.strftime("%d-%m-%Y"),
                "Net": ch,
                "Cost": 10.0,
                "Clicks": 5,
                "Conv": 1,
                "Sales": 20.0,
            }
            for d in dates
            for ch in channels
        ]
    )


DATA = {
    "store": "store",
    "date_format": "%d-%m-%Y",
    "columns": {
        "brand_id": "Account",
        "date": "Day",
        "channel": "Net",
        "spend": "Cost",
        "clicks": "Clicks",
        "conversions": "Conv",
        "revenue": "Sales",
    },
}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "export.yaml"
    cfg = {
        "data": DATA,
        "tasks": {"bid": str(REPO / "configs/tasks/bid.yaml")},
        "adaptation": {"min_rows_to_adapt": 50},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_folder_of_files_dry_run_then_load_then_reload(
    config: Path, tmp_path: Path, capsys
) -> None:
    (tmp_path / "exports").mkdir()
    _rows("acme", "2024-01-01", 60, ("search", "social")).to_csv("exports/a.csv", index=False)
    _rows("globex", "2024-02-01", 10).to_parquet("exports/b.parquet")
    # what a Mac copy leaves beside each file, and a hidden folder: not exports
    (tmp_path / "exports" / "._a.csv").write_bytes(b"\x00\x05\x16\x07binary")
    (tmp_path / "exports" / ".cache").mkdir()
    _rows("initech", "2024-02-01", 3).to_csv("exports/.cache/c.csv", index=False)
    assert [p.name for p in export_files(["exports"])] == ["a.csv", "b.parquet"]
    # one path given as a string is one path, not a sequence of one-letter paths ('.' read
    # every file under the working folder)
    assert [p.name for p in export_files("exports")] == ["a.csv", "b.parquet"]
    rows, _ = prepare_exports("exports/a.csv", load_config(config).data)
    assert len(rows) == 120

    code, out = _run(capsys, "--config", str(config), "load", "exports", "--dry-run")
    assert code == EXIT_OK, out
    assert "dry run: 130 rows would be written" in out
    assert "acme" in out and "2024-01-01" in out and "2024-02-10" in out
    assert not (tmp_path / "store").exists()

    code, out = _run(capsys, "--config", str(config), "load", "exports/a.csv", "exports/b.parquet")
    assert code == EXIT_OK, out
    assert "130 rows written" in out
    before = _snapshot(tmp_path / "store")
    code, out = _run(capsys, "--config", str(config), "load", "exports")
    assert code == EXIT_OK, out
    assert "0 rows written" in out and "130 already stored" in out
    assert _snapshot(tmp_path / "store") == before


def test_load_library_summary(config: Path) -> None:
    _rows("007", "2024-01-01", 3).to_csv("a.csv", index=False)
    summary = load_exports(["a.csv"], load_config(config).data)
    assert summary.rows_read == 3 and summary.rows_written == 3
    assert CampaignStore("store").brands() == ["007"]  # an id stays text
    assert summary.brands.loc[0, "new_rows"] == 3
    assert summary.brands.loc[0, "last"] == pd.Timestamp("2024-01-03")


def test_a_bad_file_among_several_writes_nothing(config: Path, tmp_path: Path, capsys) -> None:
    _rows("acme", "2024-01-01", 5).to_csv("a.csv", index=False)
    bad = _rows("globex", "2024-01-01", 5)
    bad.loc[3, "Cost"] = -1.0
    bad.to_csv("b.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv", "b.csv")
    assert code == EXIT_BAD_INPUT
    assert "b.csv" in out and "column 'spend': must be >= 0" in out and "row 3:" in out
    assert "data.invalid_rows" in out
    assert not (tmp_path / "store").exists()


def test_missing_file_and_unknown_type(config: Path, capsys) -> None:
    code, out = _run(capsys, "--config", str(config), "load", "nope.csv")
    assert code == EXIT_BAD_INPUT and "nope.csv" in out
    Path("x.txt").write_text("a")
    code, out = _run(capsys, "--config", str(config), "load", "x.txt")
    assert code == EXIT_BAD_INPUT and "unsupported file type" in out
    Path("x.zip").write_bytes(b"PK\x03\x04")
    code, out = _run(capsys, "--config", str(config), "load", "x.zip")
    assert code == EXIT_BAD_INPUT and "loads when named .csv.zip" in out


def test_a_missing_required_column_names_the_mapping_key(config: Path, capsys) -> None:
    _rows("acme", "2024-01-01", 5).drop(columns="Net").to_csv("a.csv", index=False)
    cfg = yaml.safe_load(config.read_text())
    del cfg["data"]["columns"]["channel"]
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_BAD_INPUT
    assert "column 'channel': required column is missing" in out
    assert "data.columns.channel" in out and "data.constants.channel" in out
    assert "the export's columns: 'brand_id', 'date', 'spend'" in " ".join(out.split())


def test_a_near_match_of_a_missing_column_is_named(config: Path, capsys) -> None:
    # the export's header says "Cost " and "clicks" where the mapping expects "Cost" / "Clicks"
    rows = _rows("acme", "2024-01-01", 5).rename(columns={"Cost": "Cost ", "Clicks": "clicks"})
    cfg = yaml.safe_load(config.read_text())
    del cfg["data"]["columns"]["spend"], cfg["data"]["columns"]["clicks"]
    cfg["data"]["columns"]["revenue"] = "Sales"
    config.write_text(yaml.safe_dump(cfg))
    rows.rename(columns={"Cost ": "spend "}).to_csv("a.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_BAD_INPUT
    out = " ".join(out.split())
    assert "fix: data.columns.spend: 'spend ' (the export has 'spend '" in out
    cfg["data"]["columns"]["spend"] = "spend "
    config.write_text(yaml.safe_dump(cfg))
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK


def test_empty_store_messages_name_tabtune_load(config: Path, capsys) -> None:
    for command in (["check"], ["pretrain"], ["bids"]):
        code, out = _run(capsys, "--config", str(config), *command)
        assert code == EXIT_BAD_INPUT, (command, out)
        assert "tabtune load" in out, (command, out)


def test_check_finds_sizes_inactive_and_one_channel_brands(config: Path, capsys) -> None:
    _rows("acme", "2024-01-01", 90, ("search", "social")).to_csv("a.csv", index=False)
    _rows("globex", "2024-01-01", 20).to_csv("b.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv", "b.csv")[0] == EXIT_OK
    report = check_data(load_config(config))
    assert report.adapted == ["acme"] and report.global_served == ["globex"]
    assert list(report.inactive) == ["globex"] and list(report.one_channel) == ["globex"]
    (bid,) = [t for t in report.tasks if t.task == "bid"]
    assert bid.configured and bid.runs
    assert "reference_bid" in bid.missing and "audience" in bid.missing
    assert {"revenue", "clicks", "channel"} <= set(bid.uses)
    code, out = _run(capsys, "--config", str(config), "check")
    assert code == EXIT_OK, out
    assert "served by the global model's trees (< 50 stored rows): 1 (globex)" in " ".join(
        out.split()
    )
    assert "globex (last 2024-01-20)" in out and "globex (search)" in out
    assert "fix:" in out and "configs/tasks/bid.yaml" in out


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Bring your own export", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("tabtune ")]


def test_readme_walkthrough_on_the_example_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The README's "Bring your own export" commands, exactly as written, from a fresh copy."""
    shutil.copytree(REPO / "data" / "examples", tmp_path / "data" / "examples")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    commands = _readme_commands()
    assert [c.split()[3] for c in commands] == [
        "load",
        "load",
        "check",
        "pretrain",
        "bids",
        "budget",
        "refresh",
        "load",  # the agency report's dry run
    ]
    outputs = []
    for command in commands:
        code, out = _run(capsys, *shlex.split(command)[1:])
        assert code == EXIT_OK, (command, out)
        outputs.append(out)
    dry, load, check, pretrain, bids, budget, refresh, agency = outputs
    agency = " ".join(agency.split())
    assert "dry run: 124 rows would be written" in agency
    assert "124 row(s) of 'conversions' held fractions" in agency and "skipped 1 row(s)" in agency
    assert "feature 'relative_bid' dropped" in pretrain
    assert "observed cost per click" in " ".join(bids.split())  # rich wraps lines
    bid_files = sorted(Path("outputs/shop/2025-04-01/bids").rglob("*.parquet"))
    assert len(bid_files) == 3
    assert set(pd.read_parquet(bid_files[0])["reference"]) == {"observed_cpc"}
    assert len(list(Path("outputs/shop/2025-04-01/budgets").rglob("*.parquet"))) == 2
    assert "Fabrikam Tools" in budget and "skipped" in budget and "response" in budget
    report = json.loads(Path("runs/shop/2025-03-31/report.json").read_text(encoding="utf-8"))
    assert report["metric"] == "tweedie deviance"
    statuses = {b["brand_id"]: b["status"] for b in report["brands"]}
    assert statuses["Fabrikam Tools"] == "cold_start" and len(statuses) == 3
    assert "brand notes" in refresh and "tweedie deviance" in " ".join(refresh.split())
    assert "dry run: 486 rows would be written" in dry
    assert "486 rows written" in load and "skipped 3 row(s)" in load
    assert "must be >= 0: 2 row(s)" in load
    assert "4 row(s) with more conversions than clicks" in load
    stored = CampaignStore("data/shop/campaigns").read()
    assert len(stored) == 486 and "bid" not in stored.columns
    assert (stored["spend"] >= 0).all()
    assert "Fabrikam Tools" in check and "served by the global model" in check
    assert "inactive brands" in check and "one-channel brands: Fabrikam Tools" in check
    # counts of stored rows, said as such: the refresh counts usable rows (numbers audit)
    flat = " ".join(check.split())
    assert "stored rows, enough to adapt (the refresh counts usable rows" in flat
    assert "no rows in the store's last 28 days" in flat
    # loading the same export again changes nothing
    before = _snapshot(tmp_path / "data" / "shop")
    code, out = _run(capsys, *shlex.split(commands[1])[1:])
    assert code == EXIT_OK and "0 rows written" in out
    assert _snapshot(tmp_path / "data" / "shop") == before


def _own_revenue(frame: pd.DataFrame) -> pd.DataFrame:
    """The export with its own ``revenue`` column beside ``Sales`` (mapped to revenue)."""
    return frame.assign(revenue=frame["Sales"] * 2)


def _conversions_above_clicks(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(Conv=[9] + [1] * (len(frame) - 1))


def _negative_cost(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(Cost=[-1.0] + [10.0] * (len(frame) - 1))


@pytest.mark.parametrize(
    ("mutate", "data", "accepted"),
    [
        (_own_revenue, {"drop": ["revenue"]}, True),
        (_own_revenue, {}, False),
        (_conversions_above_clicks, {"conversions_above_clicks": "reject"}, False),
        (_conversions_above_clicks, {"conversions_above_clicks": "clip"}, True),
        (_negative_cost, {"invalid_rows": "skip"}, True),
        (_negative_cost, {}, False),
        (lambda f: f.assign(Day=f["Day"].str.replace("-", "/")), {}, False),
    ],
    ids=["drop", "clash", "reject", "clip", "skip", "refuse", "date-format"],
)
def test_validate_file_agrees_with_load(
    config: Path, capsys, mutate, data: dict, accepted: bool
) -> None:
    """``validate FILE`` goes through load's preparation: same verdict, same rows, same notes."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"].update(data)
    config.write_text(yaml.safe_dump(cfg))
    mutate(_rows("acme", "2024-01-01", 4, ("search", "social"))).to_csv("a.csv", index=False)
    code, checked = _run(capsys, "--config", str(config), "validate", "a.csv")
    load_code, loaded = _run(capsys, "--config", str(config), "load", "--dry-run", "a.csv")
    assert (code, load_code) == ((EXIT_OK, EXIT_OK) if accepted else (EXIT_BAD_INPUT,) * 2), (
        checked,
        loaded,
    )
    if accepted:
        rows = int(re.search(r"dry run: (\d+) rows", loaded).group(1))
        assert f"OK, {rows} rows" in checked
        assert [n for n in checked.splitlines() if n.startswith(("note:", "skipped"))] == [
            n for n in loaded.splitlines() if n.startswith(("note:", "skipped"))
        ]
    else:
        assert checked.split("error:", 1)[1] == loaded.split("error:", 1)[1]


def test_overlapping_exports_keep_a_repeated_row_once(config: Path, tmp_path: Path, capsys) -> None:
    """Rolling exports (each holds the last days again, same values) load as one folder."""
    (tmp_path / "exports").mkdir()
    _rows("acme", "2024-01-01", 5).to_csv("exports/a.csv", index=False)
    _rows("acme", "2024-01-03", 5).to_csv("exports/b.csv", index=False)  # 3 days again
    _rows("acme", "2024-01-01", 7).to_parquet("exports/c.parquet")  # every day again
    code, out = _run(capsys, "--config", str(config), "load", "exports")
    assert code == EXIT_OK, out
    assert "read 17 rows from 3 files; 7 rows written" in out
    said = " ".join(out.split())  # rich wraps lines
    assert "10 row(s) appear in more than one file with the same key and the same values" in said
    assert len(CampaignStore("store").read()) == 7
    summary = load_exports(["exports"], load_config(config).data, dry_run=True)
    assert summary.rows_repeated == 10 and summary.rows_already_stored == 7


def test_the_same_key_with_other_values_in_two_files_is_refused(
    config: Path, tmp_path: Path, capsys
) -> None:
    _rows("acme", "2024-01-01", 5).to_csv("a.csv", index=False)
    restated = _rows("acme", "2024-01-04", 3)
    restated.loc[0, "Sales"] = 99.0  # 2024-01-04 restated
    restated.to_csv("b.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv", "b.csv")
    assert code == EXIT_BAD_INPUT
    assert "1 row key(s) (brand_id, date, channel) appear in more than one file" in out
    assert "brand_id=acme date=2024-01-04 channel=search:" in out
    assert "a.csv: revenue=20.0" in out and "b.csv: revenue=99.0" in out
    assert "fix: keep one version of these rows" in out and "nothing was written" in out
    assert not (tmp_path / "store").exists()


def test_one_brand_stays_one_across_unicode_forms_and_float_ids(config: Path) -> None:
    """ "Café" composed (NFC) and decomposed (NFD), and 7.0 from Parquet beside the CSV's 7."""
    nfc, nfd = "Caf\u00e9", "Cafe\u0301"
    _rows(nfc, "2024-01-01", 3).to_csv("nfc.csv", index=False)
    _rows(nfd, "2024-01-04", 3).to_csv("nfd.csv", index=False)
    _rows("7", "2024-01-01", 3).to_csv("seven.csv", index=False)
    _rows("7", "2024-01-04", 3).assign(Account=7.0).to_parquet("seven.parquet")
    data = load_config(config).data
    summary = load_exports(["nfc.csv", "nfd.csv", "seven.csv", "seven.parquet"], data)
    assert summary.rows_written == 12
    assert CampaignStore("store").brands() == ["7", nfc]
    stored = CampaignStore("store").read(brands=[nfc])
    assert len(stored) == 6 and set(stored["channel"]) == {"search"}


def test_ids_stored_before_read_as_they_were_written(config: Path) -> None:
    """Normalising is for files on the way in: a decomposed id or "7.0" already in the store
    keeps its folder and its rows (no migration)."""
    old = _rows("x", "2024-01-01", 2).rename(
        columns={"Account": "brand_id", "Net": "channel", "Cost": "spend", "Clicks": "clicks"}
    )
    old = old.rename(columns={"Conv": "conversions", "Sales": "revenue"}).drop(columns="Day")
    old["date"] = pd.date_range("2024-01-01", periods=2)
    store = CampaignStore("store")
    store.append(pd.concat([old.assign(brand_id="Cafe\u0301"), old.assign(brand_id="7.0")]))
    assert store.brands() == ["7.0", "Cafe\u0301"]
    rows = validate_campaigns(store.read())
    assert set(rows["brand_id"]) == {"7.0", "Cafe\u0301"}


def _skipping(config: Path) -> None:
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["invalid_rows"] = "skip"
    config.write_text(yaml.safe_dump(cfg))


def test_a_brand_whose_every_row_is_skipped_is_named(config: Path, capsys) -> None:
    acme = _rows("acme", "2024-01-01", 4).assign(Cost=-5.0)  # a refund line each day
    pd.concat([acme, _rows("globex", "2024-01-01", 4)]).to_csv("a.csv", index=False)
    _skipping(config)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv", "--dry-run")
    assert code == EXIT_OK, out
    out = " ".join(out.split())
    assert "every row of brand(s) acme (4 row(s)) is skipped" in out
    assert "skipped 4 row(s)" in out and "column 'spend' must be >= 0" in out


def test_skip_never_leaves_out_numbers_written_in_another_format(
    config: Path, tmp_path: Path, capsys
) -> None:
    """Under invalid_rows: skip, "1,272.07" was skipped and "316.76" loaded: the largest
    amounts were left out without the fix. The load is refused naming the keys that read them."""
    rows = _rows("acme", "2024-01-01", 4).astype({"Cost": object})
    rows.loc[[0, 2], "Cost"] = ["1,272.07", "2,050.00"]
    rows.loc[[1, 3], "Cost"] = ["316.76", "400.00"]
    rows.to_csv("a.csv", index=False)
    _skipping(config)
    out = assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "a.csv"],
        "fix: data.thousands: ','",
        "does not leave out numbers written in another format",
    )
    assert "skipped" not in out


def test_every_row_skipped_does_not_suggest_skip_again(
    config: Path, tmp_path: Path, capsys
) -> None:
    _rows("acme", "2024-01-01", 4).assign(Cost="$1,234.00").to_csv("a.csv", index=False)
    _skipping(config)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_BAD_INPUT, out
    out = " ".join(out.split())
    assert "does not leave out numbers written in another format" in out
    assert "nothing was written" in out
    assert "data.invalid_rows: skip to leave them out" not in out
    # the values read as numbers with the keys the fix names (tests/test_number_text.py)
    assert "fix: data.thousands: ',' and data.currency: ['$']" in out
    assert not (tmp_path / "store").exists()


def test_a_brand_spelled_in_another_case_is_refused(config: Path, tmp_path: Path, capsys) -> None:
    _rows("acme", "2024-01-01", 3).to_csv("a.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK
    before = _snapshot(tmp_path / "store")
    _rows("ACME", "2024-01-04", 3).to_csv("b.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "b.csv")
    assert code == EXIT_BAD_INPUT, out
    out = " ".join(out.split())
    assert "column 'brand_id'" in out and "'ACME' vs 'acme'" in out
    assert "only in case" in out and "nothing was written" in out and "fix:" in out
    assert _snapshot(tmp_path / "store") == before
    # two spellings within one load are refused as well
    _rows("Globex", "2024-01-01", 3).to_csv("c.csv", index=False)
    _rows("globex", "2024-01-04", 3).to_csv("d.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "c.csv", "d.csv", "--dry-run")
    assert code == EXIT_BAD_INPUT and "'Globex' vs 'globex'" in out


def test_a_channel_spelled_in_another_case_is_noted(config: Path, capsys) -> None:
    _rows("acme", "2024-01-01", 3).to_csv("a.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK
    _rows("globex", "2024-01-01", 3, ("Search",)).to_csv("b.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "b.csv", "--dry-run")
    assert code == EXIT_OK, out
    out = " ".join(out.split())
    assert "1 channel(s) differ from a stored or loaded one only in case" in out
    assert "'Search' vs 'search'" in out


def test_validate_file_agrees_with_load_beside_the_store(
    config: Path, tmp_path: Path, capsys
) -> None:
    # `validate FILE` accepted a brand id that differs from a stored one only in case, which
    # `load` refuses: it now makes load's checks against the store (one function for both)
    _rows("acme", "2024-01-01", 3).to_csv("a.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK
    before = _snapshot(tmp_path / "store")
    _rows("ACME", "2024-01-04", 3).to_csv("b.csv", index=False)
    code, checked = _run(capsys, "--config", str(config), "validate", "b.csv")
    load_code, loaded = _run(capsys, "--config", str(config), "load", "b.csv")
    assert (code, load_code) == (EXIT_BAD_INPUT, EXIT_BAD_INPUT), checked
    assert "'ACME' vs 'acme'" in checked and "Traceback" not in checked
    assert checked.split("error:", 1)[1] == loaded.split("error:", 1)[1]
    # a channel spelled in another case: the same note
    _rows("globex", "2024-01-01", 3, ("Search",)).to_csv("c.csv", index=False)
    code, checked = _run(capsys, "--config", str(config), "validate", "c.csv")
    load_code, loaded = _run(capsys, "--config", str(config), "load", "c.csv", "--dry-run")
    assert (code, load_code) == (EXIT_OK, EXIT_OK), checked
    notes = [n for n in checked.splitlines() if n.startswith("note:")]
    assert notes and notes == [n for n in loaded.splitlines() if n.startswith("note:")]
    assert "'Search' vs 'search'" in " ".join(checked.split())
    assert _snapshot(tmp_path / "store") == before


def test_a_missing_measure_is_never_fixed_with_a_constant(config: Path, capsys) -> None:
    _rows("acme", "2024-01-01", 5).drop(columns="Cost").to_csv("a.csv", index=False)
    cfg = yaml.safe_load(config.read_text())
    del cfg["data"]["columns"]["spend"]
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_BAD_INPUT
    out = " ".join(out.split())
    assert "column 'spend': required column is missing" in out
    assert "data.columns.spend" in out and "data.constants.spend" not in out


def test_an_export_without_revenue_is_told_how_to_value_conversions(config: Path, capsys) -> None:
    """Meta's export counts conversions without their value: the fix names data.scale, and
    following it loads revenue = conversions x value."""
    rows = _rows("acme", "2024-01-01", 5).drop(columns="Sales").assign(Purchases=2)
    rows.to_csv("a.csv", index=False)
    cfg = yaml.safe_load(config.read_text())
    del cfg["data"]["columns"]["revenue"]
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_BAD_INPUT
    assert "data.columns.revenue: <that column> with data.scale.revenue" in " ".join(out.split())
    cfg["data"]["columns"]["revenue"] = "Purchases"
    cfg["data"]["scale"] = {"revenue": 30.0}
    config.write_text(yaml.safe_dump(cfg))
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK
    stored = CampaignStore("store").read()
    assert set(stored["revenue"]) == {60.0} and set(stored["conversions"]) == {1}


def test_check_never_suggests_a_constant_bid(config: Path, capsys) -> None:
    _rows("acme", "2024-01-01", 5).to_csv("a.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK
    code, out = _run(capsys, "--config", str(config), "check")
    assert code == EXIT_OK, out
    out = " ".join(out.split())
    assert "'bid'" in out and "data.constants.<name> for ['audience', 'device', 'vertical'])" in out


def test_a_hive_partitioned_export_keeps_its_folder_columns(config: Path) -> None:
    """``export/Account=<id>/part.parquet`` (pandas ``partition_cols``): the brand is the folder
    name, percent-decoded as Arrow writes it; a file also holding the column keeps its own."""
    brands = ["acme corp", "Caf\u00e9", "007"]
    rows = pd.concat([_rows(brand, "2024-01-01", 4) for brand in brands])
    rows.to_parquet("export", partition_cols=["Account"])
    assert not {"Account"} & set(pd.read_parquet(next(Path("export").rglob("*.parquet"))).columns)

    summary = load_exports(["export"], load_config(config).data)

    assert summary.rows_written == 12
    store = CampaignStore("store")
    assert store.brands() == sorted(brands)
    # the store is itself such a folder: it validates as an export, brand by brand
    plain = load_config(config).data.model_copy(update={"columns": {}, "date_format": None})
    again, _ = prepare_exports(["store"], plain)
    assert sorted(again["brand_id"].unique()) == store.brands() and len(again) == 12


def test_folder_values_come_only_from_folders_below_the_one_named(tmp_path: Path) -> None:
    (tmp_path / "team=ads" / "export" / "brand_id=b%2F1").mkdir(parents=True)
    file = tmp_path / "team=ads" / "export" / "brand_id=b%2F1" / "part.csv"
    file.write_text("x\n")

    assert folder_values(file, [tmp_path / "team=ads" / "export"]) == {"brand_id": "b/1"}
    assert folder_values(file, [tmp_path]) == {"team": "ads", "brand_id": "b/1"}
    assert folder_values(file, [file]) == {}


def _with_title(path: Path, body: pd.DataFrame, total: bool = False) -> None:
    text = body.to_csv(index=False)
    if total:
        text += "Total: Account,--,--,100.0,5,1,20.0\n"
    path.write_text('Campaign performance report\n"January 1, 2024 - January 4, 2024"\n' + text)


def test_report_title_lines_are_named_then_skipped(config: Path, tmp_path: Path, capsys) -> None:
    body = _rows("acme", "2024-01-01", 4)
    _with_title(tmp_path / "titled.csv", body)
    body.to_csv(tmp_path / "plain.csv", index=False)

    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "titled.csv"])
    assert "fix: data.skip_lines: 2" in " ".join(out.split())

    data = load_config(config).data
    titled, _ = prepare_exports(["titled.csv"], data.model_copy(update={"skip_lines": 2}))
    plain, _ = prepare_exports(["plain.csv"], data)
    pd.testing.assert_frame_equal(titled, plain)


def test_a_totals_line_names_skip_and_the_csv_line_counts_the_title(
    config: Path, tmp_path: Path, capsys
) -> None:
    _with_title(tmp_path / "titled.csv", _rows("acme", "2024-01-01", 4), total=True)
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["skip_lines"] = 2
    config.write_text(yaml.safe_dump(cfg))

    out = " ".join(
        assert_refused(capsys, tmp_path, ["--config", str(config), "load", "titled.csv"]).split()
    )
    assert "row 4: Day=--" in out
    assert "fix: data.invalid_rows: skip (the report's totals or footer lines" in out
    assert "line in the CSV file = row + 4" in out  # row 4 is line 8: two title lines, a header

    skipping = load_config(config).data.model_copy(update={"invalid_rows": "skip"})
    rows, summary = prepare_exports(["titled.csv"], skipping)
    assert len(rows) == 4 and summary.rows_skipped == 1


def test_a_32_bit_float_parquet_copy_is_the_same_rows_as_the_csv(config: Path) -> None:
    rows = _rows("acme", "2024-01-01", 5).assign(Cost=[19.22, 0.1, 1234.56, 7.0, 99.99])
    rows.to_csv("a.csv", index=False)
    rows.astype({"Cost": "float32", "Sales": "float32"}).to_parquet("a32.parquet")
    # bit for bit, the 32-bit copy holds other numbers than the CSV
    assert (pd.read_parquet("a32.parquet")["Cost"].astype(float) != rows["Cost"]).any()

    summary = load_exports(["a.csv", "a32.parquet"], load_config(config).data)

    assert summary.rows_written == 5 and summary.rows_repeated == 5
    stored = CampaignStore("store").read()
    assert stored["spend"].tolist() == [19.22, 0.1, 1234.56, 7.0, 99.99]
    again = load_exports(["a32.parquet"], load_config(config).data)
    assert again.rows_written == 0 and not again.restated


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda df: df.assign(Audience=""), "fix: data.drop: ['Audience'] (every value is empty"),
        (lambda df: df.iloc[:0], "fix: the export: it has a header and no data row"),
        (
            lambda df: df.assign(Day=[45292 + i for i in range(len(df))]),
            "Excel serial day numbers (45292 is 2024-01-01)",
        ),
    ],
    ids=["empty optional column", "header only", "excel serial dates"],
)
def test_shapes_no_row_policy_helps_name_their_own_fix(
    config: Path, tmp_path: Path, capsys, change, needle
) -> None:
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["columns"]["audience"] = "Audience"
    config.write_text(yaml.safe_dump(cfg))
    change(_rows("acme", "2024-01-01", 4).assign(Audience="all")).to_csv("x.csv", index=False)

    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "x.csv"])

    out = " ".join(out.split())
    assert needle in out and "invalid_rows: skip" not in out


def test_a_nullable_float32_column_reads_as_its_decimals(config: Path) -> None:
    rows = _rows("acme", "2024-01-01", 3).assign(Cost=[19.22, None, 0.1])
    rows.astype({"Cost": "Float32"}).to_parquet("a.parquet")
    data = load_config(config).data.model_copy(update={"invalid_rows": "skip"})
    got, _ = prepare_exports(["a.parquet"], data)
    assert got["spend"].tolist() == [19.22, 0.1]  # the missing one is skipped, as from a CSV


@pytest.mark.parametrize("title", [["Campaign report"], ["Report", '"Jan 1 - Jan 4, 2024"']])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_title_lines_are_found_in_compressed_files_and_alone(
    config: Path, tmp_path: Path, capsys, title, suffix
) -> None:
    body = "\n".join(title) + "\n" + _rows("acme", "2024-01-01", 4).to_csv(index=False)
    path = tmp_path / f"t{suffix}"
    if suffix.endswith(".gz"):
        import gzip

        path.write_bytes(gzip.compress(body.encode()))
    else:
        path.write_text(body)

    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", path.name])
    assert f"fix: data.skip_lines: {len(title)}" in " ".join(out.split())


def test_skip_lines_past_the_end_names_the_setting(config: Path, tmp_path: Path) -> None:
    (tmp_path / "short.csv").write_text("a,b\n1,2\n")
    data = load_config(config).data.model_copy(update={"skip_lines": 10})
    with pytest.raises(
        TabTuneInputError, match=r"nothing is left to read after data.skip_lines: 10"
    ):
        prepare_exports(["short.csv"], data)


def test_hive_folders_missing_values_outermost_root_and_conflicts(config: Path) -> None:
    rows = _rows("acme", "2024-01-01", 2)
    plain = load_config(config).data
    Path("exp/Account=acme").mkdir(parents=True)
    rows.drop(columns="Account").to_parquet("exp/Account=acme/part.parquet")
    # the folder named second still sees the brand folder of the one named first
    got, _ = prepare_exports(["exp/Account=acme", "exp"], plain)
    assert got["brand_id"].tolist() == ["acme", "acme"]

    Path("exp/Account=__HIVE_DEFAULT_PARTITION__").mkdir()
    rows.drop(columns="Account").to_parquet("exp/Account=__HIVE_DEFAULT_PARTITION__/p.parquet")
    with pytest.raises(ContractError, match="brand_id'?: must not be missing"):
        prepare_exports(["exp"], plain)

    shutil.rmtree("exp/Account=__HIVE_DEFAULT_PARTITION__")
    rows.assign(Account="other").to_parquet("exp/Account=acme/part.parquet")
    with pytest.raises(
        TabTuneInputError, match="folder says Account='acme' but its rows' brand_id"
    ):
        prepare_exports(["exp"], plain)


def test_excel_serial_dates_name_the_configured_format(
    config: Path, tmp_path: Path, capsys
) -> None:
    _rows("acme", "2024-01-01", 2).assign(Day=[45292, 45293]).to_csv("x.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "x.csv"])
    assert "format the column as dates before exporting (%d-%m-%Y" in " ".join(out.split())


def test_check_names_the_task_file_the_config_names(config: Path, tmp_path: Path, capsys) -> None:
    shutil.copy(REPO / "configs/tasks/bid.yaml", tmp_path / "my_bid_task.yaml")
    cfg = yaml.safe_load(config.read_text())
    cfg["tasks"] = {"bid": str(tmp_path / "my_bid_task.yaml")}
    config.write_text(yaml.safe_dump(cfg))
    _rows("acme", "2024-01-01", 60).to_csv("a.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK

    code, out = _run(capsys, "--config", str(config), "check")

    assert code == EXIT_OK and "my_bid_task.yaml" in " ".join(out.split())
    assert load_config(config).task_file("bid") == str(tmp_path / "my_bid_task.yaml")


@pytest.mark.parametrize(
    ("folder", "update"),
    [
        ("brand_id=acme", {}),  # the mapped Account column agrees with the folder
        ("date=2024-01", {}),  # monthly folders: the rows' own dates stand
        ("Net=facebook", {"constants": {"Net": "facebook"}}),  # the config sets it
        ("channel=Search", {}),  # the rows say "search": theirs stands
        ("spend=x", {}),  # the rows hold spend
        ("region=emea", {}),  # not a contract column: not a column at all
    ],
)
def test_folders_never_override_what_the_file_or_config_says(
    config: Path, folder: str, update: dict
) -> None:
    data = load_config(config).data
    data = data.model_copy(update=update)
    if "constants" in update:
        data = data.model_copy(update={"drop": ["Net"]})
    Path("e", folder).mkdir(parents=True)
    _rows("acme", "2024-01-01", 3).to_csv(Path("e", folder, "r.csv"), index=False)

    by_folder, _ = prepare_exports(["e"], data)
    by_file, _ = prepare_exports([Path("e", folder, "r.csv")], data)

    pd.testing.assert_frame_equal(by_folder, by_file)


def test_the_agency_report_example_loads_as_an_independent_parse_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """data/examples/agency_report.csv through its config, against Python's csv module with
    the currency sign and separators removed by hand (conversions rounded half to even)."""
    import csv

    shutil.copytree(REPO / "data" / "examples", tmp_path / "data" / "examples")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    example = Path("data/examples/agency_report.csv")
    config = Path("data/examples/agency_report.yaml")
    code, out = _run(capsys, "--config", str(config), "load", str(example))
    assert code == EXIT_OK, out
    assert "124 row(s) of 'conversions' held fractions" in " ".join(out.split())

    with open(example, newline="") as handle:
        lines = list(csv.reader(handle))[2:]
    body = [dict(zip(lines[0], r, strict=True)) for r in lines[1:]]
    body = [r for r in body if not r["Account name"].startswith("Total")]
    plain = lambda v: float(v.replace("$", "").replace(",", ""))  # noqa: E731
    stored = CampaignStore("data/agency/campaigns").read()
    stored = stored.sort_values(["brand_id", "date", "channel"]).reset_index(drop=True)
    body.sort(key=lambda r: (r["Account name"], r["Day"], r["Network"]))
    assert len(stored) == len(body) == 124
    assert stored["spend"].tolist() == [plain(r["Cost"]) for r in body]
    assert stored["revenue"].tolist() == [plain(r["Conv. value"]) for r in body]
    assert stored["impressions"].tolist() == [int(plain(r["Impr."])) for r in body]
    assert stored["conversions"].tolist() == [round(float(r["Conversions"])) for r in body]


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip"])
@pytest.mark.parametrize("command", ["validate", "load"])
def test_a_cut_off_compressed_file_is_named_as_damaged(
    config: Path, tmp_path: Path, capsys, suffix: str, command: str
) -> None:
    """An interrupted download ends inside the compressed stream: the decompressor's EOFError
    (BadZipFile for a zip) was a traceback."""
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    body = _rows("acme", "2024-01-01", 200).to_csv(index=False).encode()
    if suffix == ".csv.zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("t.csv", body)
        whole = buffer.getvalue()
    else:
        compress = {".csv.gz": gzip.compress, ".csv.bz2": bz2.compress, ".csv.xz": lzma.compress}
        whole = compress[suffix](body)
    (tmp_path / f"t{suffix}").write_bytes(whole[: len(whole) // 2])
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), command, f"t{suffix}"],
        "the compressed file is incomplete or damaged",
        "download or export it again",
    )


@pytest.mark.parametrize("written", ["2024-01", "2024"])
def test_a_month_is_not_stored_as_its_first_day(
    config: Path, tmp_path: Path, capsys, written: str
) -> None:
    """ISO 8601 reads "2024-01" as 2024-01-01: a month's totals were stored as one day."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"].pop("date_format", None)
    config.write_text(yaml.safe_dump(cfg))
    _rows("acme", "2024-01-01", 1).assign(Day=written).to_csv("a.csv", index=False)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "a.csv"],
        "column 'date'",
        f"{written!r} is a month or a year, not a day",
        "export one row per day",
    )


def test_rows_of_a_longer_period_are_refused(config: Path, tmp_path: Path, capsys) -> None:
    """A Meta export of a month's totals, its ``Reporting starts`` (or ``Reporting ends``)
    mapped to the date, was stored as one day."""
    rows = _rows("acme", "2024-01-01", 2).rename(columns={"Day": "Reporting starts"})
    rows["Reporting ends"] = ["30-01-2024", "02-01-2024"]  # the first row covers 30 days
    rows.to_csv("a.csv", index=False)
    cfg = yaml.safe_load(config.read_text())
    for mapped, shown in (
        ("Reporting starts", "2024-01-01, 'Reporting ends' 2024-01-30"),
        ("Reporting ends", "2024-01-30, 'Reporting starts' 2024-01-01"),
    ):
        cfg["data"]["columns"]["date"] = mapped
        config.write_text(yaml.safe_dump(cfg))
        assert_refused(
            capsys,
            tmp_path,
            ["--config", str(config), "load", "a.csv"],
            "1 row(s) cover more than one day",
            f"date ({mapped!r}) {shown}",
            "export one row per day",
        )
    cfg["data"]["columns"]["date"] = "Reporting starts"
    config.write_text(yaml.safe_dump(cfg))
    daily = rows.assign(**{"Reporting ends": rows["Reporting starts"]})
    daily.to_csv("b.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "b.csv", "--dry-run")[0] == EXIT_OK


def test_a_meta_summary_line_of_the_whole_period_is_a_totals_line(
    config: Path, tmp_path: Path, capsys
) -> None:
    """Meta's export starts with a summary row whose period is the report's whole range,
    beside daily rows: it refused the file with 'export one row per day' (which it was),
    even under invalid_rows: skip (exports red-team)."""
    rows = _rows("acme", "2024-01-01", 3).rename(columns={"Day": "Reporting starts"})
    rows["Reporting ends"] = rows["Reporting starts"]
    total = rows.iloc[[0]].assign(**{"Reporting ends": "03-01-2024", "Cost": 30.0})
    pd.concat([total, rows]).to_csv("meta.csv", index=False)
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["columns"]["date"] = "Reporting starts"
    config.write_text(yaml.safe_dump(cfg))
    out = assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "meta.csv"],
        "not the report's summary line",
        "fix: data.invalid_rows: skip",
    )
    assert "cover more than one day" not in out
    cfg["data"]["invalid_rows"] = "skip"
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "--config", str(config), "load", "meta.csv")
    assert code == EXIT_OK, out
    stored = CampaignStore(tmp_path / "store").read()
    assert stored["spend"].tolist() == [10.0, 10.0, 10.0]  # the days, not the summary's 30
    # a row of several days that is not the whole report's is still refused
    rows.iloc[[0]].assign(**{"Reporting ends": "02-01-2024"}).to_csv("two.csv", index=False)
    assert_refused(
        capsys, tmp_path, ["--config", str(config), "load", "two.csv"], "cover more than one day"
    )
    # the report's range may start before delivery does (review); a row spanning the days
    # whose spend is not their sum is another channel's, refused as before (not skipped)
    wide = total.assign(**{"Reporting starts": "28-12-2023"})
    pd.concat([wide, rows]).to_csv("wide.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "wide.csv", "--dry-run")[0] == EXIT_OK
    other = total.assign(Cost=99.0, Net="social")
    pd.concat([other, rows]).to_csv("other.csv", index=False)
    assert_refused(
        capsys, tmp_path, ["--config", str(config), "load", "other.csv"], "cover more than one day"
    )


def test_a_day_breakdown_beside_the_reports_range_loads(config: Path, capsys) -> None:
    """Meta's daily breakdown keeps the report's range in Reporting starts/ends beside a Day
    column; a Google Ads campaign's End date is no period either: neither is compared."""
    rows = _rows("acme", "2024-01-01", 3)
    rows["Reporting starts"], rows["Reporting ends"] = "01-01-2024", "03-01-2024"
    rows["End date"] = "31-03-2024"
    rows.to_csv("a.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_OK, out
    assert len(CampaignStore("store").read()) == 3


def test_amounts_grouped_by_dots_are_not_read_as_decimals(
    config: Path, tmp_path: Path, capsys
) -> None:
    """ "1.250" euros beside "980" was stored as 1.25 without a word (red-team H2)."""
    rows = _rows("acme", "2024-01-01", 2).astype({"Cost": object, "Sales": object})
    rows["Cost"], rows["Sales"] = ["1.250", "980"], ["20", "30"]
    rows.to_csv("a.csv", index=False)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "a.csv"],
        "column 'Cost': its amounts look grouped by dots ('1.250')",
        "fix: data.thousands: '.'",
    )
    cfg = yaml.safe_load(config.read_text())
    for thousands, spend in ((".", [1250.0, 980.0]), (",", [1.25, 980.0])):
        cfg["data"]["thousands"] = thousands
        config.write_text(yaml.safe_dump(cfg))
        code, out = _run(capsys, "--config", str(config), "load", "a.csv", "--dry-run")
        assert code == EXIT_OK, out
        got, _ = prepare_exports(["a.csv"], load_config(config).data)
        assert got["spend"].tolist() == spend
    rows.assign(Cost=["0.125", "1.375"]).to_csv("b.csv", index=False)  # not groupings
    assert prepare_exports(["b.csv"], load_config(config).data)[0]["spend"].tolist() == [
        0.125,
        1.375,
    ]


def test_a_folders_other_files_are_named(config: Path, tmp_path: Path, capsys) -> None:
    """A folder's .tsv or .txt exports were left out without a word (red-team M1)."""
    folder = tmp_path / "exports"
    (folder / ".hidden").mkdir(parents=True)
    _rows("acme", "2024-01-01", 2).to_csv(folder / "a.csv", index=False)
    _rows("acme", "2024-01-03", 2).to_csv(folder / "b.tsv", index=False, sep="\t")
    (folder / "notes.txt").write_text("exported by hand\n")
    _rows("acme", "2024-01-05", 2).to_csv(folder / ".hidden" / "h.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "exports", "--dry-run")
    assert code == EXIT_OK, out
    out = " ".join(out.split())
    assert "2 file(s) not read" in out and "b.tsv, notes.txt" in out and "h.csv" not in out


def test_rows_of_today_are_noted_as_a_running_day(config: Path, tmp_path: Path, capsys) -> None:
    """Today's partial rows loaded silently; the complete export later is a restatement
    (red-team M10)."""
    today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    rows = _rows("acme", f"{today - pd.Timedelta(days=1):%Y-%m-%d}", 2)
    rows.to_csv("a.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv", "--dry-run")
    assert code == EXIT_OK, out
    out = " ".join(out.split())
    assert f"1 row(s) dated today (UTC) or later ({today:%Y-%m-%d})" in out
    rows.head(1).to_csv("b.csv", index=False)  # yesterday only: no note
    code, out = _run(capsys, "--config", str(config), "load", "b.csv", "--dry-run")
    assert code == EXIT_OK and "dated today" not in out


def _month_first(start: str, days: int, path: str | Path) -> pd.DataFrame:
    """Rows of ``days`` days from ``start``, their dates written month first (%m-%d-%Y)."""
    rows = _rows("acme", start, days)
    rows["Day"] = pd.date_range(start, periods=days).strftime("%m-%d-%Y")
    rows.to_csv(path, index=False)
    return rows


def test_day_and_month_swapped_on_every_row_are_refused(
    config: Path, tmp_path: Path, capsys
) -> None:
    """A week of 01..07/12 written month first, read with the config's day-first format, was
    stored as seven rows a month apart: every day was 12 or less, so both formats read every
    row and the existing check (a format that fails on some rows) never fired (red-team H6)."""
    rows = _month_first("2024-12-01", 7, "a.csv")
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "a.csv"],
        "its days lie a month or more apart (2024-01-12 .. 2024-07-12)",
        "reads them as consecutive days (2024-12-01 .. 2024-12-07)",
        "if the rows are days in a row, data.date_format: '%m-%d-%Y'",
    )
    rows["Day"] = pd.date_range("2024-12-01", periods=7).strftime("%d-%m-%Y")  # as configured
    rows.to_csv("b.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "b.csv", "--dry-run")[0] == EXIT_OK


def test_a_nightly_day_read_with_day_and_month_swapped_is_refused_beside_the_store(
    config: Path, tmp_path: Path, capsys
) -> None:
    """Nightly one-day files of a US export (month first) with a day-first date_format: the
    night after 2024-12-04, '12-05-2024' was stored as May 12 (a backfill, in silence); one
    file has one day, so the within-load check (three days) never fired."""
    _rows("acme", "2024-11-20", 15).to_csv("history.csv", index=False)  # to 2024-12-04
    assert _run(capsys, "--config", str(config), "load", "history.csv")[0] == EXIT_OK
    _month_first("2024-12-05", 1, "night.csv")
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "night.csv"],
        "brand 'acme''s days (2024-05-12) lie 206 days or more from its newest stored day "
        "(2024-12-04)",
        "'%m-%d-%Y' (day and month swapped) reads them next to it (2024-12-05)",
        "if these are the days after the stored ones, data.date_format: '%m-%d-%Y'",
    )
    _rows("acme", "2024-12-05", 1).to_csv("right.csv", index=False)  # as configured: loads
    assert _run(capsys, "--config", str(config), "load", "right.csv")[0] == EXIT_OK
    # a real backfill whose swapped reading is not next to the newest day still loads
    _rows("acme", "2024-06-03", 1).to_csv("backfill.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "backfill.csv")[0] == EXIT_OK
    assert len(CampaignStore(tmp_path / "store").read()) == 17
    # a year-first format is never taken for swapped (review: '%Y-%m-%d' was refused, with
    # '%Y-%d-%m' as the fix); nor is another brand's newest day compared
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["date_format"] = "%Y-%m-%d"
    config.write_text(yaml.safe_dump(cfg))
    iso = _rows("acme", "2024-05-12", 1).assign(Day="2024-05-12")
    iso.to_csv("iso.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "iso.csv")[0] == EXIT_OK


def test_account_totals_are_not_added_to_stored_campaigns(
    config: Path, tmp_path: Path, capsys
) -> None:
    """Campaign rows A (10) and B (30) stored, then the account-level export of the same day
    (40) given campaign_id 'all' by data.constants, as a refusal's fix suggests: the day held
    80 (red-team H5)."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["columns"]["campaign_id"] = "Campaign"
    config.write_text(yaml.safe_dump(cfg))
    campaigns = pd.concat(
        [
            _rows("acme", "2024-01-01", 2).assign(Campaign=c, Cost=v)
            for c, v in (("A", 10), ("B", 30))
        ]
    )
    campaigns.to_csv("campaigns.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "campaigns.csv")[0] == EXIT_OK
    del cfg["data"]["columns"]["campaign_id"]
    cfg["data"]["constants"] = {"campaign_id": "all"}
    config.write_text(yaml.safe_dump(cfg))
    _rows("acme", "2024-01-02", 2).assign(Cost=40).to_csv("account.csv", index=False)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "account.csv"],
        "1 brand day(s) and channel(s) (e.g. 'acme' 2024-01-02 'search')",
        "campaigns ('A', 'B')",
        "counting those days twice",
    )
    _rows("acme", "2024-01-03", 2).assign(Cost=40).to_csv("later.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "later.csv")[0] == EXIT_OK  # new days


def test_an_extra_column_of_another_type_names_the_column(
    config: Path, tmp_path: Path, capsys
) -> None:
    """An extra column stored as int64, then given 7.5: "Failed to parse string: '7.5' as a
    scalar of type int64" named no column and no fix (red-team M9)."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["extra_columns"] = ["geo_rank"]
    config.write_text(yaml.safe_dump(cfg))
    _rows("acme", "2024-01-01", 2).assign(geo_rank=3).to_csv("a.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK
    _rows("acme", "2024-01-03", 2).assign(geo_rank=7.5).to_csv("b.csv", index=False)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "b.csv"],
        "column 'geo_rank' is stored as int64 in this store",
        "fix: write the export's 'geo_rank' as the stored type",
    )


def test_a_measure_left_blank_for_zero_is_read_with_fill(
    config: Path, tmp_path: Path, capsys
) -> None:
    """Meta leaves Purchases blank on a day without any and Google Ads writes '--': refused as
    missing, with skip (dropping the row's real spend) the only way round (red-team M2)."""
    rows = _rows("acme", "2024-01-01", 3).astype({"Conv": object, "Sales": object})
    rows["Conv"], rows["Sales"] = ["2", "", "--"], ["40", "", " -- "]
    rows.to_csv("a.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "a.csv"])
    out = " ".join(out.split())
    assert "fix: data.fill: {conversions: 0}" in out and "fix: data.fill: {revenue: 0}" in out
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["fill"] = {"conversions": 0, "revenue": 0}
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_OK, out
    assert "2 empty or '--' value(s) of 'Conv' set to 0 (data.fill.conversions)" in " ".join(
        out.split()
    )
    stored = CampaignStore("store").read()
    assert stored["conversions"].tolist() == [2, 0, 0] and stored["revenue"].tolist() == [40, 0, 0]
    assert stored["spend"].tolist() == [10.0, 10.0, 10.0]  # the rows' spend is kept
    rows.assign(Conv="").to_csv("b.csv", index=False)  # a measure the export does not hold
    code, out = _run(capsys, "--config", str(config), "load", "b.csv", "--dry-run")
    assert code == EXIT_OK and "check that the export holds this measure" in out, out
    cfg["data"]["fill"] = {"bid": 1.0}
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_BAD_INPUT and "fillable" in out


@pytest.mark.parametrize(
    ("twin", "shown"),
    [("Acme  Shoes", "only in case or spacing"), ("Acme\u00a0Shoes", "'Acme\\xa0Shoes'")],
)
def test_a_brand_spelled_with_other_spacing_is_refused(
    config: Path, tmp_path: Path, capsys, twin: str, shown: str
) -> None:
    """A double space made a second brand beside 'Acme Shoes'; a no-break space was refused
    with an example that looked like 'Acme Shoes' (red-team M8)."""
    _rows("Acme Shoes", "2024-01-01", 2).to_csv("a.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv")[0] == EXIT_OK
    _rows(twin, "2024-01-03", 2).to_csv("b.csv", index=False)
    assert_refused(capsys, tmp_path, ["--config", str(config), "load", "b.csv"], shown)


def test_empty_rows_at_the_end_of_a_csv_are_skipped_with_a_note(
    config: Path, tmp_path: Path, capsys
) -> None:
    """A spreadsheet saved as CSV ends with ',,,,,,' lines: refused as one problem per column,
    while the same empty rows of a workbook were skipped (red-team M11)."""
    rows = _rows("acme", "2024-01-01", 2)
    body = rows.to_csv(index=False) + ("," * (rows.shape[1] - 1) + "\n") * 2
    Path("a.csv").write_text(body)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_OK, out
    assert "2 empty row(s) at the end of the file" in " ".join(out.split())
    assert len(CampaignStore("store").read()) == 2


@pytest.mark.parametrize("every_line", [True, False])
def test_a_value_with_an_unquoted_comma_is_named(
    config: Path, tmp_path: Path, capsys, every_line: bool
) -> None:
    """1,234.56 written without quotes: on every line pandas took the first column for an
    index and the refusal showed shifted values; on one line its raw tokenizer error (M7)."""
    rows = _rows("acme", "2024-01-01", 2)
    lines = rows.to_csv(index=False).splitlines()
    bad = [line.replace(",10.0,", ",1,234.56,", 1) for line in lines[1:]]
    body = [lines[0], *(bad if every_line else [lines[1], bad[1]])]
    Path("a.csv").write_text("\n".join(body) + "\n")
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "a.csv"],
        "has more fields than the header",
        "a value with an unquoted comma",
    )


@pytest.mark.parametrize("space", [" ", "\u00a0", "\u202f"])
def test_space_grouped_numbers_with_a_decimal_comma_load(
    config: Path, tmp_path: Path, capsys, space: str
) -> None:
    """French and Nordic exports write 1 234,56 € (a space, no-break space or narrow no-break
    space between groups, the comma for decimals): refused even with thousands: ' ' (M3)."""
    rows = _rows("acme", "2024-01-01", 2).astype({"Cost": object})
    rows["Cost"] = [f"1{space}234,56 €", "980,50 €"]
    Path("a.csv").write_text(rows.to_csv(index=False), encoding="utf-8")
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "a.csv"])
    assert "fix: data.thousands: ' ' and data.currency: ['€']" in " ".join(out.split())
    cfg = yaml.safe_load(config.read_text())
    cfg["data"].update(thousands=" ", currency=["€"])
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    got, _ = prepare_exports(["a.csv"], load_config(config).data)
    assert got["spend"].tolist() == [1234.56, 980.5]


def test_skip_leaves_out_a_formatted_totals_line(config: Path, tmp_path: Path, capsys) -> None:
    """Under invalid_rows: skip, a totals line (no date) whose amount is written "1,630.50"
    was refused as numbers in another format, though it is skipped for its date anyway; the
    day rows' plain numbers load."""
    rows = _rows("acme", "2024-01-01", 2).astype({"Cost": object, "Day": object})
    total = rows.iloc[[0]].assign(Account="Total", Day="", Net="", Cost="1,630.50")
    pd.concat([rows, total]).to_csv("a.csv", index=False)
    _skipping(config)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_OK, out
    assert CampaignStore("store").read()["spend"].tolist() == [10.0, 10.0]


def test_dot_grouped_amounts_are_found_behind_symbols_and_placeholders(
    config: Path, tmp_path: Path, capsys
) -> None:
    """A currency symbol or a '--' cell made the column text, so "1.250" beside "980" was
    stored as 1.25 (following the '--' refusal's data.fill fix too); bids, dropped columns
    and three-decimal amounts with nothing saying the dots group thousands load."""
    cfg = yaml.safe_load(config.read_text())

    def load(costs, **data):
        rows = _rows("acme", "2024-01-01", len(costs)).astype({"Cost": object, "Sales": object})
        rows["Cost"], rows["Sales"] = costs, "20"
        rows.to_csv("a.csv", index=False)
        config.write_text(yaml.safe_dump({**cfg, "data": {**cfg["data"], **data}}))
        return _run(capsys, "--config", str(config), "load", "a.csv", "--dry-run")

    for costs, data in (
        (["€1.250", "€980"], {"currency": ["€"]}),
        (["1.250", "980", "--"], {"fill": {"spend": 0}}),
    ):
        code, out = load(costs, **data)
        assert code == EXIT_BAD_INPUT and "its amounts look grouped by dots" in out, out
    code, out = load(["1.000", "980"])  # a whole amount grouped: 1.0 without a fraction
    assert code == EXIT_BAD_INPUT and "'1.000'" in out, out
    for costs in (["2.500", "30"], ["1.125", "12.50"]):  # nothing says the dots group
        code, out = load(costs)
        assert code == EXIT_OK, out


def test_lines_ending_with_a_comma_the_header_lacks_load(config: Path, capsys) -> None:
    """Every data line ends with ',' and the header does not: refused as an unquoted comma,
    though pandas' index_col=False reads it as meant (review helper, B6)."""
    lines = _rows("acme", "2024-01-01", 2).to_csv(index=False).splitlines()
    Path("a.csv").write_text("\n".join([lines[0], *(f"{line}," for line in lines[1:])]) + "\n")
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_OK, out
    assert CampaignStore("store").read()["spend"].tolist() == [10.0, 10.0]


@pytest.mark.parametrize("written", ["2024 01", "2024.01"])
def test_a_month_with_another_separator_is_not_a_day(config: Path, capsys, written: str) -> None:
    cfg = yaml.safe_load(config.read_text())
    cfg["data"].pop("date_format", None)
    config.write_text(yaml.safe_dump(cfg))
    rows = _rows("acme", "2024-01-01", 1).astype({"Day": object})
    rows["Day"] = written
    rows.to_csv("a.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_BAD_INPUT and "column 'date'" in out, out


def test_day_and_month_swapped_across_nightly_files_are_refused(
    config: Path, tmp_path: Path, capsys
) -> None:
    """A folder of one-day files (or a file with a 'Total' line skipped) passed the per-file
    check, which needed three days in one file and no unreadable cell (review helper A2): the
    days were stored a month apart. Two days a month apart (a backfill) still load."""
    folder = tmp_path / "nightly"
    folder.mkdir()
    for day in pd.date_range("2024-12-01", periods=3):
        _month_first(f"{day:%Y-%m-%d}", 1, folder / f"{day:%d}.csv")
    assert_refused(
        capsys, tmp_path, ["--config", str(config), "load", "nightly"], "consecutive days"
    )
    three = _month_first("2024-12-01", 3, "three.csv")
    _skipping(config)
    total = three.iloc[[0]].assign(Account="Total", Day="Total", Net="")
    pd.concat([three, total]).to_csv("total.csv", index=False)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "total.csv"],
        "consecutive days (2024-12-01 .. 2024-12-03)",
    )
    _month_first("2024-12-05", 2, "backfill.csv")  # two days, a month apart as configured
    assert _run(capsys, "--config", str(config), "load", "backfill.csv")[0] == EXIT_OK


def test_amounts_grouped_by_dots_in_a_parquet_text_column_are_refused(
    config: Path, tmp_path: Path, capsys
) -> None:
    """A Parquet export's text column "1.250" beside "980" was stored as 1.25 (review helper)."""
    rows = _rows("acme", "2024-01-01", 2).astype({"Cost": object})
    rows["Cost"] = ["1.250", "980"]
    rows.to_parquet("a.parquet")
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "a.parquet"],
        "column 'Cost': its amounts look grouped by dots ('1.250')",
    )


def test_a_trailing_comma_is_told_from_an_unquoted_one(
    config: Path, tmp_path: Path, capsys
) -> None:
    """Review: counts with fractions were read as missing on trailing-comma lines (the re-read
    as written took the first column for an index again), and one line with an unquoted comma
    beside an empty last column was read shifted."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["round"] = ["conversions"]
    config.write_text(yaml.safe_dump(cfg))
    rows = _rows("acme", "2024-01-01", 2).assign(Conv=[1.5, 2.0])
    lines = rows.to_csv(index=False).splitlines()
    Path("a.csv").write_text("\n".join([lines[0], *(f"{line}," for line in lines[1:])]) + "\n")
    code, out = _run(capsys, "--config", str(config), "load", "a.csv")
    assert code == EXIT_OK, out
    assert CampaignStore("store").read()["conversions"].tolist() == [2, 2]
    shifted = rows.assign(Notes="")
    lines = shifted.to_csv(index=False).splitlines()
    lines[1] = lines[1].replace(",10.0,", ",1,234.0,", 1)
    Path("b.csv").write_text("\n".join(lines) + "\n")
    assert_refused(
        capsys, tmp_path, ["--config", str(config), "load", "b.csv"], "a value with an unquoted"
    )


def test_skip_never_leaves_out_formatted_amounts_beside_a_placeholder(
    config: Path, tmp_path: Path, capsys
) -> None:
    """Review: a '--' in the column hid the format key, so "1,234.50" was skipped again."""
    rows = _rows("acme", "2024-01-01", 4).astype({"Cost": object})
    rows["Cost"] = ["10.50", "1,234.50", "--", "11.50"]
    rows.to_csv("a.csv", index=False)
    _skipping(config)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "a.csv"],
        "does not leave out numbers written in another format",
        "data.thousands: ','",
    )


def test_a_skipped_totals_line_is_not_called_a_brand(config: Path, capsys) -> None:
    """Under skip, the note said "every row of brand(s) Total: Account ... is skipped"."""
    rows = _rows("acme", "2024-01-01", 2)
    total = rows.iloc[[0]].assign(Account="Total: Account", Day="", Net="")
    pd.concat([rows, total]).to_csv("a.csv", index=False)
    _skipping(config)
    code, out = _run(capsys, "--config", str(config), "load", "a.csv", "--dry-run")
    assert code == EXIT_OK, out
    out = " ".join(out.split())
    assert "1 skipped line(s) name no brand ('Total: Account')" in out
    assert "every row of brand(s)" not in out


def _date_from(config: Path, path: Path, column: str, *, iso: bool = False) -> None:
    """Write at ``path`` the test config with the date mapped from ``column`` (ISO dates:
    without the config's date_format)."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["columns"]["date"] = column
    if iso:
        del cfg["data"]["date_format"]
    path.write_text(yaml.safe_dump(cfg))


def test_a_weekly_report_is_not_stored_as_days(config: Path, tmp_path: Path, capsys) -> None:
    """Weekly totals (a Monday per row) loaded as one day each, without a word (new-user
    red-team): refused under a column that says week, noted under another (a brand that runs
    on Mondays only)."""
    rows = _rows("acme", "2024-01-01", 1)
    weekly = pd.concat([rows.assign(Day=d.strftime("%d-%m-%Y")) for d in pd.date_range(
        "2024-01-01", periods=5, freq="7D")])  # fmt: skip
    weekly.rename(columns={"Day": "Week"}).to_csv("w.csv", index=False)
    _date_from(config, tmp_path / "week.yaml", "Week")
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(tmp_path / "week.yaml"), "load", "w.csv"],
        "whole weeks apart, every one a Monday (2024-01-01 .. 2024-01-29)",
        "under column 'Week'",
        "export one row per day",
    )
    weekly.to_csv("mondays.csv", index=False)  # under 'Day': loads, with a note
    code, out = _run(capsys, "--config", str(config), "load", "mondays.csv", "--dry-run")
    assert code == EXIT_OK and "if this is a weekly report" in " ".join(out.split())
    weekly.head(3).to_csv("short.csv", index=False)  # three dates: not enough to tell
    code, out = _run(capsys, "--config", str(config), "load", "short.csv", "--dry-run")
    assert code == EXIT_OK and "weekly report" not in out
    # a week without spend leaves a gap of two weeks: still a weekly report (exports red-team)
    weekly.iloc[[0, 1, 3, 4]].rename(columns={"Day": "Week"}).to_csv("gap.csv", index=False)
    assert_refused(
        capsys, tmp_path, ["--config", str(tmp_path / "week.yaml"), "load", "gap.csv"], "a weekly"
    )
    # under 'Week' one date says it (a nightly file of one week, three weeks): red-team
    for n in (1, 3):
        weekly.head(n).rename(columns={"Day": "Week"}).to_csv("few.csv", index=False)
        assert_refused(
            capsys, tmp_path, ["--config", str(tmp_path / "week.yaml"), "load", "few.csv"], "weekly"
        )


def test_a_monthly_report_is_not_stored_as_days(config: Path, tmp_path: Path, capsys) -> None:
    """A report by month (the 1st of each month under 'Month') loaded each month's totals as
    one day, without a word (exports red-team)."""
    rows = _rows("acme", "2024-01-01", 1)
    firsts = pd.date_range("2024-01-01", periods=4, freq="MS")
    monthly = pd.concat([rows.assign(Day=d.strftime("%Y-%m-%d")) for d in firsts])  # ISO
    monthly.rename(columns={"Day": "Month"}).to_csv("m.csv", index=False)
    _date_from(config, tmp_path / "month.yaml", "Month", iso=True)
    _date_from(config, tmp_path / "day.yaml", "Day", iso=True)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(tmp_path / "month.yaml"), "load", "m.csv"],
        "each the 1st of a month (2024-01-01 .. 2024-04-01)",
        "a monthly report",
        "not by month",
    )
    monthly.to_csv("firsts.csv", index=False)  # under 'Day': loads, with a note
    day = str(tmp_path / "day.yaml")
    code, out = _run(capsys, "--config", day, "load", "firsts.csv", "--dry-run")
    assert code == EXIT_OK and "if this is a monthly report" in " ".join(out.split())
    # day-first months (01/09/2024 ..) under the right date_format: refused as a monthly
    # report, not as day and month swapped (that fix stored 2024-01-09 .. as days: red-team)
    months = monthly.assign(Day=firsts.strftime("%d-%m-%Y")).rename(columns={"Day": "Month"})
    months.head(2).to_csv("two.csv", index=False)
    _date_from(config, tmp_path / "month-dmy.yaml", "Month")
    out = assert_refused(
        capsys,
        tmp_path,
        ["--config", str(tmp_path / "month-dmy.yaml"), "load", "two.csv"],
        "a monthly report",
    )
    assert "swapped" not in out
    # under 'Day' the 1st of four months is also January 1-4 written month first (review:
    # they loaded as months with a note): refused naming both readings
    months.rename(columns={"Month": "Day"}).to_csv("dmy.csv", index=False)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "dmy.csv"],
        "every date is the 1st of a month (2024-01-01 .. 2024-04-01): a monthly report, or days",
        "'%m-%d-%Y' reads them as 2024-01-01 .. 2024-01-04",
        "if it is a monthly report, export one row per day",
    )


def test_footer_lines_name_skip_and_no_brand(config: Path, tmp_path: Path, capsys) -> None:
    """DV360's 'Report Time:' / 'Group By:' lines and Microsoft's copyright line were given
    data.fill or date_format fixes, and 'Date' (a Group By cell) was called a brand whose
    rows are all skipped (new-user red-team)."""
    text = _rows("acme", "2024-01-01", 4).to_csv(index=False)
    text += "\nReport Time:,2024/01/05 04:00\nGroup By:,Date,Account\n"
    text += '"\u00a92024 Microsoft Corporation. All rights reserved."\n'
    (tmp_path / "footer.csv").write_text(text)
    out = " ".join(
        assert_refused(capsys, tmp_path, ["--config", str(config), "load", "footer.csv"]).split()
    )
    assert out.count("fix: data.invalid_rows: skip (the report's totals or footer lines") >= 1
    assert "data.fill" not in out and "fix: data.date_format" not in out
    skipping = load_config(config).data.model_copy(update={"invalid_rows": "skip"})
    rows, summary = prepare_exports(["footer.csv"], skipping)
    assert len(rows) == 4 and summary.rows_skipped == 3
    assert not any("every row of brand(s)" in n for n in summary.notes), summary.notes
    assert any("3 skipped line(s) name no brand" in n for n in summary.notes), summary.notes
    # a brand whose name merely starts like a footer is still named when all its rows go
    legal = _rows("copyright-legal", "2024-01-01", 2).assign(Day="someday")
    pd.concat([_rows("acme", "2024-01-01", 2), legal]).to_csv("legal.csv", index=False)
    _, summary = prepare_exports(["legal.csv"], skipping)
    assert any("every row of brand(s) copyright-legal" in n for n in summary.notes), summary.notes


def test_pretrain_says_each_dropped_feature_once(
    config: Path, capsys, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI printed a feature the data lacks twice: the library's warning and its note."""
    import logging

    from tabtune import features
    from tabtune.pipeline import pretrain

    _rows("acme", "2024-01-01", 60, ("search", "social")).to_csv("a.csv", index=False)
    _rows("globex", "2024-01-01", 60, ("search", "social")).to_csv("b.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "a.csv", "b.csv")[0] == EXIT_OK
    needle = "feature 'audience' dropped"
    monkeypatch.setattr(features, "_NOTICED", set())
    with caplog.at_level(logging.WARNING, logger="tabtune"):
        code, out = _run(capsys, "--config", str(config), "pretrain")
    assert code == EXIT_OK, out
    logged = [r for r in caplog.records if needle in r.getMessage()]
    assert " ".join(out.split()).count(needle) == 1 and not logged
    # finetune --all too (new-user red-team: the note and a WARNING line)
    monkeypatch.setattr(features, "_NOTICED", set())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tabtune"):
        code, out = _run(capsys, "--config", str(config), "finetune", "--all")
    assert code == EXIT_OK, out
    logged = [r for r in caplog.records if needle in r.getMessage()]
    assert " ".join(out.split()).count(needle) == 1 and not logged, out
    # from Python, where no note is printed, the warning is logged
    monkeypatch.setattr(features, "_NOTICED", set())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tabtune"):
        pretrain(load_config(config), "bid")
    assert [r for r in caplog.records if needle in r.getMessage()]


def test_a_dated_totals_row_is_not_loaded_as_a_channel(
    config: Path, tmp_path: Path, capsys
) -> None:
    """A report's per-day ``Total`` row (brand and date filled, "Total" as the channel) was
    stored as one more channel, doubling the brand's spend (exports red-team)."""
    rows = _rows("acme", "2024-01-01", 2, channels=("search", "display", "Total", "Total Wine"))
    rows.to_csv("export.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "export.csv")
    said = " ".join(out.split())
    assert code == EXIT_BAD_INPUT
    assert "column 'channel': must not be a totals row (the sum of other rows" in said
    assert "fix: data.invalid_rows: skip (the report's totals" in said
    assert not (tmp_path / "store").exists()
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["invalid_rows"] = "skip"
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "--config", str(config), "load", "export.csv")
    assert code == EXIT_OK, out
    stored = CampaignStore("store").read()
    assert sorted(stored["channel"].unique()) == ["Total Wine", "display", "search"]


def test_dashes_in_a_count_column_get_the_fill_fix(config: Path, tmp_path: Path, capsys) -> None:
    """'--' in conversions (a whole-number column) got skip as its only fix, which drops the
    row's real spend; revenue's '--' got data.fill (exports red-team)."""
    rows = _rows("acme", "2024-01-01", 3).astype({"Conv": object})
    rows["Conv"] = ["1", "--", "1"]
    rows.to_csv("a.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "a.csv"])
    assert "fix: data.fill: {conversions: 0} ('--' is how the export writes none)" in " ".join(
        out.split()
    )


def test_a_very_wide_export_names_twenty_columns_not_stored(config: Path, capsys) -> None:
    """3,000 unmapped columns were all listed in the note (about 21 kB; exports red-team)."""
    rows = _rows("acme", "2024-01-01", 2)
    wide = pd.concat([rows, pd.DataFrame({f"x{i}": [0, 0] for i in range(30)})], axis=1)
    wide.to_csv("wide.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "wide.csv", "--dry-run")
    said = " ".join(out.split())
    assert code == EXIT_OK and "x19 and 10 more (map them in data.columns" in said
    assert "x20" not in said


def test_a_header_name_with_stray_spaces_is_shown_and_named(config: Path, capsys) -> None:
    """``Account ,  Day`` gave "mapped from 'Account', which is not in the data" with the
    columns unquoted, so the spaces were invisible (exports red-team)."""
    rows = _rows("acme", "2024-01-01", 2).rename(columns={"Account": "Account "})
    rows.to_csv("padded.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "padded.csv")
    said = " ".join(out.split())
    assert code == EXIT_BAD_INPUT
    assert "(columns: 'Account ', 'Day'," in said
    assert "the export's 'Account ' has spaces around its name" in said


def test_a_brand_named_total_something_is_a_brand_not_a_footer(
    config: Path, tmp_path: Path, capsys
) -> None:
    """'Total Wine & More', every row skipped, was called "a skipped line that names no brand
    ... totals or footer lines" (exports red-team)."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["invalid_rows"] = "skip"
    config.write_text(yaml.safe_dump(cfg))
    rows = pd.concat([_rows("acme", "2024-01-01", 2), _rows("Total Wine & More", "2024-01-01", 2)])
    rows.loc[rows["Account"] == "Total Wine & More", "Cost"] = -1.0  # broken: skipped
    rows.to_csv("tw.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "tw.csv")
    said = " ".join(out.split())
    assert code == EXIT_OK and "every row of brand(s) Total Wine & More (2 row(s))" in said
    assert "name no brand" not in said


def test_rows_repeated_exactly_get_their_own_fix(config: Path) -> None:
    # rows pasted twice were told to map campaign_id, audience or device (red-team)
    plain = load_config(config).data
    rows = _rows("acme", "2024-01-01", 3)
    pd.concat([rows, rows.head(2)]).to_csv("twice.csv", index=False)
    with pytest.raises(ContractError, match=r"repeated exactly, in every column.*drop_duplicates"):
        prepare_exports(["twice.csv"], plain)
    pd.concat([rows, rows.head(2).assign(Cost=11.0)]).to_csv("clash.csv", index=False)
    with pytest.raises(ContractError, match="duplicate rows for the same key") as info:
        prepare_exports(["clash.csv"], plain)  # same key, other values: the key's fix stands
    assert "repeated exactly" not in str(info.value)


def test_an_extra_column_of_numbers_and_text_is_refused_by_name(
    config: Path, tmp_path: Path, capsys
) -> None:
    """An extra column written as numbers in one export and with '--' in another: the two
    files together failed as 'Expected bytes, got a float object' (pyarrow's words); one
    stored as text ('< 10%') loaded, `check` said its task runs, and pretrain ended in a
    NumPy traceback (red-team)."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["extra_columns"] = ["share"]
    cfg["tasks"]["share"] = {
        "name": "share",
        "kind": "regression",
        "target": {"numerator": "revenue", "denominator": "clicks"},
        "categorical": ["channel"],
        "numeric": ["share"],
    }
    config.write_text(yaml.safe_dump(cfg))
    _rows("acme", "2024-01-01", 3).assign(share=0.5).to_csv("a.csv", index=False)
    b = _rows("acme", "2024-01-04", 3).assign(share=["0.4", "--", "0.3"])
    b.to_csv("b.csv", index=False)
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "load", "a.csv", "b.csv"],
        "column 'share': must be numbers on every row or text on every row",
        "fix: the export: write 'share' as plain numbers on every row",
    )
    # a column that is not stored may mix them (a campaign named 2024 beside 'Summer')
    mixed = validate_campaigns(
        _rows("acme", "2024-01-01", 2)
        .rename(columns={"Account": "brand_id", "Net": "channel", "Cost": "spend"})
        .rename(columns={"Clicks": "clicks", "Conv": "conversions", "Sales": "revenue"})
        .assign(date=["2024-01-01", "2024-01-02"], Campaign=[2024, "Summer"])
        .drop(columns="Day")
    )
    assert mixed["Campaign"].tolist() == [2024, "Summer"]
    b.assign(share=["0.4", "0.2", "0.3"]).to_csv("b.csv", index=False)  # numbers as text
    assert _run(capsys, "--config", str(config), "load", "a.csv", "b.csv")[0] == EXIT_OK
    stored = CampaignStore(tmp_path / "store").read()
    assert stored["share"].tolist() == [0.5, 0.5, 0.5, 0.4, 0.2, 0.3]

    shutil.rmtree(tmp_path / "store")
    _rows("acme", "2024-01-01", 60).assign(share="< 10%").to_csv("text.csv", index=False)
    assert _run(capsys, "--config", str(config), "load", "text.csv")[0] == EXIT_OK
    code, out = _run(capsys, "--config", str(config), "check")
    out = " ".join(out.split())
    assert "task 'share': its numeric feature 'share' is stored as text, 60 value(s)" in out
    assert_refused(
        capsys,
        tmp_path,
        ["--config", str(config), "pretrain", "--task", "share"],
        "numeric feature 'share' holds 60 value(s) that are not numbers (e.g. '< 10%')",
    )


def test_a_brand_named_with_a_slash_is_named_not_called_a_footer(
    config: Path, tmp_path: Path, capsys
) -> None:
    """'Acme US/CA' (a path separator: no folder can be named so) vanished under
    invalid_rows: skip with a note calling it a totals or footer line, and the refusal's fix
    offered nothing that loads it (red-team)."""
    rows = pd.concat([_rows("acme", "2024-01-01", 3), _rows("Acme US/CA", "2024-01-01", 2)])
    rows.to_csv("x.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "x.csv"], "US/CA")
    out = " ".join(out.split())
    assert "rename the brand in the export" in out
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["invalid_rows"] = "skip"
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run(capsys, "--config", str(config), "load", "x.csv")
    out = " ".join(out.split())
    assert code == EXIT_OK
    assert "every row of brand(s) Acme US/CA (2 row(s): it contains a path separator)" in out
    assert "footer" not in out


def test_a_header_only_file_among_others_is_noted_not_refused(
    config: Path, tmp_path: Path, capsys
) -> None:
    """A paused account's nightly export (a header, no row) in a folder refused every other
    account's rows (red-team); alone it is still refused."""
    (tmp_path / "night").mkdir()
    _rows("acme", "2024-01-01", 3).to_csv("night/acme.csv", index=False)
    _rows("globex", "2024-01-01", 1).iloc[0:0].to_csv("night/a_globex.csv", index=False)
    code, out = _run(capsys, "--config", str(config), "load", "night")
    assert code == EXIT_OK, out
    assert "a_globex.csv: a header and no data row: nothing to load from it" in " ".join(
        out.split()
    )
    assert len(CampaignStore(tmp_path / "store").read()) == 3
    assert_refused(
        capsys, tmp_path, ["--config", str(config), "load", "night/a_globex.csv"], "no data row"
    )
    # a conflict between two later files names those files (review: the files after the
    # header-only one were named one place off)
    (tmp_path / "night" / "acme.csv").rename(tmp_path / "night" / "b.csv")
    _rows("acme", "2024-01-01", 3).assign(Cost=99.0).to_csv("night/c.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "night"], "c.csv")
    assert "b.csv: spend=10.0" in out and "c.csv: spend=99.0" in out, out
    for name in ("b.csv", "c.csv"):
        (tmp_path / "night" / name).unlink()
    assert_refused(capsys, tmp_path, ["--config", str(config), "load", "night"], "no data row")


def test_a_date_the_config_cannot_read_gets_the_format_that_reads_it(
    config: Path, tmp_path: Path, capsys
) -> None:
    """'Dec 01, 2024' was refused with the example fix "data.date_format (e.g. '%d-%m-%Y')",
    which does not read it (red-team): the fix names the format that reads the refused dates;
    following it stores the right days."""
    rows = _rows("acme", "2024-11-29", 3)
    rows["Day"] = pd.date_range("2024-11-29", periods=3).strftime("%b %d, %Y")
    rows.to_csv("x.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "x.csv"], "Nov 29")
    assert "data.date_format: '%b %d, %Y'" in out
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["date_format"] = "%b %d, %Y"
    config.write_text(yaml.safe_dump(cfg))
    assert _run(capsys, "--config", str(config), "load", "x.csv")[0] == EXIT_OK
    stored = CampaignStore(tmp_path / "store").read()
    assert stored["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-11-29",
        "2024-11-30",
        "2024-12-01",
    ]


def test_an_hour_of_day_column_names_the_hourly_export(
    config: Path, tmp_path: Path, capsys
) -> None:
    """Rows segmented by 'Hour of day' (a column of its own) were refused as duplicate keys
    with the fix 'map campaign_id' (exports red-team): the fix names the hourly column."""
    rows = pd.concat([_rows("acme", "2024-01-01", 2).assign(**{"Hour of day": h}) for h in (0, 1)])
    rows.to_csv("hourly.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "hourly.csv"], "")
    assert "per hour (column 'Hour of day')" in " ".join(out.split())
    # a column named for hours that holds no hour of the day is not taken for one (review)
    watch = rows.rename(columns={"Hour of day": "Watch hours"})
    watch.assign(**{"Watch hours": [12.5, 3.25, 7.0, 1.5]}).to_csv("watch.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "watch.csv"], "")
    assert "per hour" not in out


@pytest.mark.parametrize(
    ("hint", "needle"), [(",", "data.skip_lines: 1"), (";", "sep=';', skiprows=1")]
)
def test_a_spreadsheets_separator_line_names_its_fix(
    config: Path, tmp_path: Path, capsys, hint: str, needle: str
) -> None:
    """Excel's 'sep=,' first line was blamed on an unquoted comma, and 'sep=;' got a pandas
    line without skiprows=1 (exports red-team)."""
    body = _rows("acme", "2024-01-01", 2).to_csv(index=False, sep=hint)
    Path("x.csv").write_text(f"sep={hint}\n{body}")
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "x.csv"], "'sep=")
    assert needle in out and "separator hint" in out
    if hint == ",":
        cfg = yaml.safe_load(config.read_text())
        cfg["data"]["skip_lines"] = 1
        config.write_text(yaml.safe_dump(cfg))
        assert _run(capsys, "--config", str(config), "load", "x.csv")[0] == EXIT_OK


@pytest.mark.parametrize("blank", ["--", ""])
def test_measures_left_empty_are_not_skipped_away(
    config: Path, tmp_path: Path, capsys, blank: str
) -> None:
    """Under invalid_rows: skip, conversions written '--' (or left empty) on the days without
    any were skipped: a brand kept only its days with conversions, its return doubled
    (ops red-team). They are refused, naming data.fill; a totals line is still skipped."""
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["invalid_rows"] = "skip"
    config.write_text(yaml.safe_dump(cfg))
    rows = _rows("acme", "2024-01-01", 4).astype({"Conv": object, "Sales": object})
    rows.loc[[1, 3], ["Conv", "Sales"]] = blank
    rows.loc[2, ["Conv", "Sales"]] = "\u2014"  # another token beside them (review: .all())
    total = rows.iloc[[0]].assign(Account="Total", Day="", Net="")
    pd.concat([rows, total]).to_csv("x.csv", index=False)
    out = assert_refused(capsys, tmp_path, ["--config", str(config), "load", "x.csv"], "")
    out = " ".join(out.split())
    assert "every day without conversions" in out  # the fix lines depend on the tokens
    cfg["data"]["fill"] = {"conversions": 0, "revenue": 0}
    config.write_text(yaml.safe_dump(cfg))
    assert _run(capsys, "--config", str(config), "load", "x.csv")[0] == EXIT_OK
    stored = CampaignStore(tmp_path / "store").read()
    assert stored["conversions"].tolist() == [1, 0, 0]  # the em-dash row is skipped, listed
