"""Shared fixtures: small configs and tiny simulated stores in temporary directories."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

SMALL_MODEL = {
    "n_estimators": 40,
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_child_samples": 20,
    "early_stopping_rounds": 10,
}


def write_small_config(directory: Path, **overrides) -> Path:
    """A config for fast tests: tiny models, tasks from the repo, paths inside ``directory``."""
    cfg = {
        "data": {"store": "data/campaigns", "truth_dir": "data/truth"},
        "models_dir": "models",
        "runs_dir": "runs",
        "outputs_dir": "outputs",
        "cache_dir": "cache",
        "device": "cpu",
        "tasks": {
            "bid": str(REPO / "configs" / "tasks" / "bid.yaml"),
            "budget": str(REPO / "configs" / "tasks" / "budget.yaml"),
        },
        "model": dict(SMALL_MODEL),
        "adaptation": {"adapt_n_estimators": 20, "min_rows_to_adapt": 100},
        "synth": {"n_brands": 6, "n_days": 90, "seed": 3},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = directory / "tabtune.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``tabtune --config tabtune.yaml ARGV`` in the working directory: exit code and output."""
    from tabtune.cli import main

    code = main(["--config", "tabtune.yaml", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def build_workspace(root: Path, commands: list[list[str]]) -> Path:
    """A workspace of 3 simulated brands over 40 days in ``root`` (small config), after
    running each CLI command of ``commands`` in it (each must exit 0)."""
    import os

    from tabtune.cli import EXIT_OK, main

    write_small_config(root, synth={"n_brands": 3, "n_days": 40, "seed": 3})
    old = Path.cwd()
    os.chdir(root)
    try:
        for argv in commands:
            assert main(["--config", "tabtune.yaml", *argv]) == EXIT_OK, argv
    finally:
        os.chdir(old)
    return root


def copy_workspace(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of a workspace template; the test then runs inside it."""
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def small_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small config in a fresh working directory (the test runs inside it)."""
    monkeypatch.chdir(tmp_path)
    return write_small_config(tmp_path)


@pytest.fixture
def predicted_leaf_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of every prediction of a base model's leaf indices that a LightGBM
    session makes from now on (what a leaf cache saves)."""
    from tabtune.boosting.lightgbm_session import LightGBMSession as _Session

    counts: list[int] = []
    real = _Session._predict_leaves

    def spy(self, rows, *args):
        counts.append(len(rows))
        return real(self, rows, *args)

    monkeypatch.setattr(_Session, "_predict_leaves", spy)
    return counts


def assert_refused(
    capsys: pytest.CaptureFixture[str],
    ws: Path,
    argv: list[str],
    *needles: str,
    code: int | None = None,
) -> str:
    """Run the CLI, expect exit ``code`` (default ``EXIT_BAD_INPUT``) with every needle in
    the output and no traceback, and ``ws`` unchanged, file for file."""
    from tabtune.cli import EXIT_BAD_INPUT
    from tests.test_hardening import digest_tree

    code = EXIT_BAD_INPUT if code is None else code
    before = digest_tree(ws)
    got, out = run_cli(capsys, *argv)
    assert got == code, out
    assert "Traceback" not in out
    for needle in needles:
        assert needle in out, (needle, out)
    assert digest_tree(ws) == before
    return out
