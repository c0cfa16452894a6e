"""LightGBM's messages during Dask pretraining: levels read from the text, and a command's
stdout that holds its own output only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tabtune.distributed.native_logs import LIGHTGBM_LOGGER, LightGBMLogRoute
from tabtune.optional import is_available


def test_native_messages_are_logged_at_the_level_their_text_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = LightGBMLogRoute()
    with caplog.at_level(logging.DEBUG, logger=LIGHTGBM_LOGGER):
        route.info("[LightGBM] [Info] Trying to bind port 12400...\n")
        route.info("[LightGBM] [Warning] There are no meaningful features\n")
        route.info("[LightGBM] [Warning] Connecting to rank 1 failed, waiting for 200 ms\n")
        route.info("[LightGBM] [Fatal] Socket recv error\n")
        route.info("\n")
    assert [(r.levelno, r.getMessage()[:30]) for r in caplog.records] == [
        (logging.INFO, "[LightGBM] [Info] Trying to bi"),
        (logging.WARNING, "[LightGBM] [Warning] There are"),
        (logging.INFO, "[LightGBM] [Warning] Connectin"),
        (logging.WARNING, "[LightGBM] [Fatal] Socket recv"),
    ]
    with pytest.warns(UserWarning, match="Parameter n_jobs will be ignored"):
        route.warning("Parameter n_jobs will be ignored.")


@pytest.mark.skipif(not is_available("dask.distributed"), reason="needs dask.distributed")
def test_pretrain_on_a_two_worker_local_cluster_prints_only_its_result_on_stdout(
    small_config: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two workers set up LightGBM's network, which printed ``[LightGBM] [Info] Trying to bind
    port ...`` on the command's stdout (the workers share it) and ``Finding random open ports
    for workers`` from the client, whatever the verbosity."""
    from tabtune.cli import EXIT_OK, main

    assert main(["--config", str(small_config), "synth"]) == EXIT_OK
    capfd.readouterr()
    assert main(["--config", str(small_config), "pretrain", "--scheduler", "local"]) == EXIT_OK
    out, err = capfd.readouterr()
    assert "global bid model" in out
    assert "LightGBM" not in out and "random open ports" not in out
    assert "[Info]" not in err  # not asked for (no -v)
