"""Repeated keys in a YAML config: refused with both lines named (tabtune.safe_yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabtune.cli import EXIT_BAD_INPUT, main
from tabtune.errors import ConfigError
from tabtune.safe_yaml import load_yaml_file


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tabtune.yaml"
    path.write_text(text)
    return path


def test_a_second_top_level_block_is_refused_naming_both_lines(tmp_path: Path) -> None:
    text = "data:\n  store: /keep/this\nbackend: lightgbm\ndata:\n  invalid_rows: skip\n"
    path = _write(tmp_path, text)
    # The motivation: a plain YAML load keeps the last block and drops the store silently.
    assert yaml.safe_load(text)["data"] == {"invalid_rows": "skip"}

    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)

    message = str(caught.value)
    assert "line 4" in message and "first on line 1" in message and "'data'" in message


def test_a_repeated_nested_key_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "data:\n  columns: {brand_id: Account}\n  columns: {spend: Cost}\n")

    with pytest.raises(ConfigError, match=r"line 3: key 'columns' appears twice.*line 2"):
        load_yaml_file(path)


def test_the_same_key_in_different_mappings_and_merge_overrides_are_allowed(
    tmp_path: Path,
) -> None:
    text = (
        "base: &base {n_jobs: 1, learning_rate: 0.1}\n"
        "model: {<<: *base, n_jobs: 2}\n"
        "adaptation: {n_jobs: 1}\n"
        "items: [{a: 1}, {a: 2}]\n"
    )
    path = _write(tmp_path, text)

    assert load_yaml_file(path) == yaml.safe_load(text)
    assert load_yaml_file(path)["model"] == {"n_jobs": 2, "learning_rate": 0.1}


def test_the_cli_exits_2_on_a_repeated_key_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "backend: lightgbm\nbackend: xgboost\n")

    code = main(["--config", str(path), "check"])

    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "key 'backend' appears twice" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "text",
    [
        "data: {columns: {brand_id: Advertiser, brand_id: Account}}\n",  # one line
        "1: a\n0x1: b\n",  # one integer
        "yes: 1\ntrue: 2\n",  # one boolean
        "1.0: a\n1: b\n",  # one dict key
        "b: &m {c: 1}\nd: {<<: *m, <<: *m}\n",  # two merge keys
    ],
)
def test_keys_equal_as_the_loader_reads_them_are_refused(tmp_path: Path, text: str) -> None:
    assert len(yaml.safe_load(text)) <= 2  # plain YAML keeps one of the two silently
    with pytest.raises(ConfigError, match="appears twice in the same mapping"):
        load_yaml_file(_write(tmp_path, text))
