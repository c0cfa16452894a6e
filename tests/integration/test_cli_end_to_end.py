"""synth -> validate -> pretrain -> finetune -> predict -> models, through the CLI, on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, main


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_walking_skeleton(small_config: Path, capsys) -> None:
    c = ["--config", str(small_config)]
    code, out = _run(capsys, *c, "synth")
    assert code == EXIT_OK, out
    assert Path("data/truth/params.json").exists()
    brands = sorted(p.name.split("=", 1)[1] for p in Path("data/campaigns").glob("brand_id=*"))
    assert len(brands) == 6

    # synth again with the same seed: idempotent, nothing new written
    code, out = _run(capsys, *c, "synth")
    assert code == EXIT_OK and "0 rows written" in out

    code, out = _run(capsys, *c, "validate")
    assert code == EXIT_OK, out

    code, out = _run(capsys, *c, "pretrain")
    assert code == EXIT_OK, out
    assert (Path("models/global/bid/CHAMPION")).read_text().strip() == "v0001"

    code, out = _run(capsys, *c, "finetune", "--all")
    assert code == EXIT_OK, out
    for brand in brands:
        assert brand in out

    code, out = _run(capsys, *c, "finetune", "--brand", "no-such-brand")
    assert code == EXIT_BAD_INPUT and "no-such-brand" in out

    code, out = _run(capsys, *c, "predict", "--output", "preds.parquet")
    assert code == EXIT_OK, out
    preds = pd.read_parquet("preds.parquet")
    assert set(preds["brand_id"]) == set(brands)
    assert preds["prediction"].notna().all()

    code, out = _run(capsys, *c, "models", "list", "--json")
    assert code == EXIT_OK
    rows = json.loads(out)
    assert any(r.get("task") == "bid" and not r.get("brand") for r in rows)

    code, out = _run(capsys, *c, "models", "show", "--task", "bid", "--json")
    assert code == EXIT_OK
    manifest = json.loads(out)
    assert manifest["rows"] > 0 and "files" in manifest
