"""The CLI: exit codes and messages for bad input, and that bad input writes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, main


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _valid_rows(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "brand_id": ["acme"] * n,
            "date": pd.date_range("2024-03-01", periods=n).strftime("%Y-%m-%d"),
            "channel": ["search"] * n,
            "spend": [10.0] * n,
            "clicks": [5] * n,
            "conversions": [1] * n,
            "revenue": [20.0] * n,
        }
    )


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_help_and_version(capsys) -> None:
    code, out = _run(capsys, "--help")
    assert code == EXIT_OK and "refresh" in out and "finetune" in out


def test_unknown_command_is_usage_error(capsys) -> None:
    code, _ = _run(capsys, "frobnicate")
    assert code == EXIT_BAD_INPUT


def test_validate_good_file(small_config: Path, capsys) -> None:
    _valid_rows().to_csv("good.csv", index=False)
    code, out = _run(capsys, "--config", str(small_config), "validate", "good.csv")
    assert code == EXIT_OK, out
    assert "OK" in out and "4 rows" in out


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (lambda df: df.drop(columns=["revenue"]), ["revenue"]),
        (lambda df: df.assign(spend=["a", "1", "2", "3"]), ["spend"]),
        (lambda df: df.assign(spend=[-1.0, 2.0, 3.0, -4.0]), ["spend", ">= 0", "2 rows"]),
        (
            lambda df: df.assign(date=["2024-13-45", "2024-03-02", "2024-03-03", "2024-03-04"]),
            ["date"],
        ),
    ],
    ids=["missing-column", "wrong-type", "negative-spend", "bad-date"],
)
def test_bad_files_exit_2_and_name_the_problem(small_config: Path, capsys, mutate, needles) -> None:
    mutate(_valid_rows()).to_csv("bad.csv", index=False)
    before = _snapshot(Path.cwd())
    code, out = _run(capsys, "--config", str(small_config), "validate", "bad.csv")
    assert code == EXIT_BAD_INPUT
    for needle in needles:
        assert needle in out
    assert _snapshot(Path.cwd()) == before


def test_missing_file_exits_2(small_config: Path, capsys) -> None:
    code, out = _run(capsys, "--config", str(small_config), "validate", "nope.csv")
    assert code == EXIT_BAD_INPUT and "nope.csv" in out


def test_unknown_config_key_exits_2_and_writes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("synth:\n  n_brand: 3\n")
    code, out = _run(capsys, "--config", "c.yaml", "synth")
    assert code == EXIT_BAD_INPUT
    assert "synth.n_brand: unknown key" in out
    assert _snapshot(tmp_path) == {"c.yaml"}


def test_missing_config_file_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = _run(capsys, "--config", "missing.yaml", "synth")
    assert code == EXIT_BAD_INPUT and "missing.yaml" in out


def test_commands_that_need_a_store_say_so(small_config: Path, capsys) -> None:
    code, out = _run(capsys, "--config", str(small_config), "pretrain")
    assert code == EXIT_BAD_INPUT
    assert "synth" in out  # tells the user how to get data
    code, out = _run(capsys, "--config", str(small_config), "finetune")
    assert code == EXIT_BAD_INPUT


def test_models_list_on_empty_registry(small_config: Path, capsys) -> None:
    code, out = _run(capsys, "--config", str(small_config), "models", "list")
    assert code == EXIT_OK and "no models" in out


def test_models_show_without_a_champion_lists_the_versions(tmp_path: Path) -> None:
    from tabtune.cli.commands import _no_model
    from tabtune.registry import ModelRegistry

    reg = ModelRegistry(tmp_path / "models")
    assert _no_model(reg, "bid", "007") == "no model for task 'bid', brand '007'"
    for _ in range(2):
        reg.publish("bid", lambda d: (Path(d) / "x.txt").write_text("x"), brand="007")
    message = _no_model(reg, "bid", "007")
    assert message.startswith("task 'bid', brand '007' has 2 version(s) but no champion")
    assert message.endswith("--version: v0001, v0002")
    # a brand the global model serves: said so, with the command that shows that model
    reg.promote(reg.publish("bid", lambda d: (Path(d) / "x.txt").write_text("x")))
    message = _no_model(reg, "bid", "008")
    assert message.startswith("no model of its own for task 'bid', brand '008': the global")
    assert "`tabtune models show --task bid`" in message


def test_models_list_and_show_flag_a_corrupt_champion(small_config: Path, capsys) -> None:
    import json

    from tabtune.registry import ModelRegistry

    reg = ModelRegistry("models")  # the small config's models_dir
    for text in ("old", "new"):
        ref = reg.publish(
            "bid", lambda d, t=text: (Path(d) / "model.txt").write_text(t), promote=True
        )
    (ref.path / "model.txt").write_text("altered")  # the champion no longer matches
    c = ("--config", str(small_config))

    code, out = _run(capsys, *c, "models", "list")
    text = " ".join(out.split())
    assert code == EXIT_OK, out
    assert "v0002 v0002 corrupt" in text
    assert "global/bid: champion v0002 is corrupt" in text and "'model.txt' is corrupt" in text
    assert "fix: `tabtune models rollback --task bid`" in text

    code, out = _run(capsys, *c, "models", "list", "--json")
    row = json.loads(out)[0]
    assert code == EXIT_OK and row["status"] == "corrupt" and "rollback" in row["fix"]

    code, out = _run(capsys, *c, "models", "show", "--task", "bid")
    text = " ".join(out.split())
    assert code == EXIT_OK and "integrity: corrupt: global/bid/v0002" in text, out
    assert "fix: `tabtune models rollback --task bid`" in text
    code, out = _run(capsys, *c, "models", "show", "--task", "bid", "--json")
    assert code == EXIT_OK and json.loads(out)["integrity"]["status"] == "corrupt"
    code, out = _run(capsys, *c, "models", "show", "--task", "bid", "--version", "v0001")
    assert code == EXIT_OK and "integrity: ok" in out
    # '1' names v0001 (ops red-team: "no version '1'" without a hint)
    code, out = _run(capsys, *c, "models", "show", "--task", "bid", "--version", "1")
    assert code == EXIT_BAD_INPUT and "did you mean --version v0001?" in out, out
    code, out = _run(capsys, *c, "models", "show", "--task", "bid", "--version", "v0009")
    assert code == EXIT_BAD_INPUT and "(versions: v0001, v0002)" in out, out
    code, out = _run(capsys, *c, "models", "rollback", "--task", "bid", "--version", "1")
    assert code == EXIT_BAD_INPUT and "did you mean --version v0001?" in out, out

    assert _run(capsys, *c, "models", "rollback", "--task", "bid")[0] == EXIT_OK
    code, out = _run(capsys, *c, "models", "list")
    assert "v0001 v0002 ok" in " ".join(out.split()) and "fix:" not in out


@pytest.mark.parametrize("module", ["tabtune", "tabtune.cli"])
def test_python_dash_m_runs_the_command(module: str) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tabtune")


def test_a_backend_parameter_value_the_library_refuses_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``model.backend_params: {max_bin: abc}`` ended in "internal error", a traceback and
    exit 1 (config red-team)."""
    from tests.conftest import SMALL_MODEL, write_small_config

    monkeypatch.chdir(tmp_path)
    model = {**SMALL_MODEL, "backend_params": {"max_bin": "abc"}}
    path = write_small_config(tmp_path, model=model)
    assert main(["--config", str(path), "synth"]) == EXIT_OK
    capsys.readouterr()
    assert main(["--config", str(path), "pretrain"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "lightgbm failed with the config's model.backend_params {'max_bin': 'abc'}" in err
    assert "Parameter max_bin should be of type int" in err
    assert "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "models" / "global").exists()


def test_a_config_without_any_task_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tasks: {}``: pretrain did nothing and exited 0 (config red-team)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("tasks: {}\nsynth: {n_brands: 2, n_days: 30}\n")
    assert main(["--config", "c.yaml", "synth"]) == EXIT_OK
    capsys.readouterr()
    for command in (["pretrain"], ["finetune", "--brand", "b000"], ["predict"]):
        assert main(["--config", "c.yaml", *command]) == EXIT_BAD_INPUT
        assert "the config defines no task" in capsys.readouterr().err


def test_results_written_to_a_log_are_not_cut_to_80_columns(monkeypatch) -> None:
    """A cron or CI log cut the tables to 80 columns ('observed…', 'brands/1…': model ids
    lost; new-user red-team): not a terminal, the results are LOG_WIDTH wide; COLUMNS rules."""
    from tabtune.cli.console import LOG_WIDTH, console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert console().width == LOG_WIDTH  # pytest's stdout is no terminal
    monkeypatch.setenv("COLUMNS", "100")
    assert console().width == 100
