"""Pooled pretraining and the nightly refresh on a real multi-process Dask cluster.

A ``dask scheduler`` and two ``dask worker`` processes (one thread each) are started over TCP
on 127.0.0.1, each a separate Python process that imports this checkout's tabtune; then
``tabtune pretrain --scheduler tcp://...`` pretrains on a small simulated store, the model it
trains is scored against the simulator's truth next to the single-process model on the same
rows, and ``tabtune refresh --scheduler tcp://...`` runs the nightly refresh through the same
cluster.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabtune.cli import EXIT_OK, main
from tabtune.config import Config, load_config
from tabtune.distributed import pretrain_on_dask
from tabtune.features import align_features
from tabtune.optional import is_available
from tabtune.pipeline import (
    load_global,
    load_model,
    load_task_data,
    pretrain,
    registry_for,
    store_for,
)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from conftest import write_small_config  # noqa: E402

pytestmark = pytest.mark.skipif(
    not is_available("dask.distributed"),
    reason="dask.distributed is not installed (pip install tabtune[dask])",
)

#: Seconds to wait for the scheduler and both workers.
START_TIMEOUT = 60
#: Store of the tests: enough rows that the two fits' errors are not noise.
SYNTH = {"n_brands": 12, "n_days": 120, "seed": 3}
#: Days at the end of the store that neither model sees (the quality check's rows).
HELD_OUT_DAYS = 20
#: Seeds of the quality check (the first is the config's, used by the CLI fit).
SEEDS = (0, 1, 2)
#: Seeds of the XGBoost quality check: one seed's ratio of the two errors spreads by about 3%
#: (measured over these eight: 0.96 to 1.05, mean 1.001), three seeds' mean by about 2%.
XGBOOST_SEEDS = tuple(range(8))
TRUTH_KEYS = ["brand_id", "date", "channel", "campaign_id", "audience", "device"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *args],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
    )


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in reversed(processes):  # workers first, then the scheduler
        if proc.poll() is None:
            proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def tcp_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a scheduler with two single-threaded workers, each its own process."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask-logs")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    processes: list[subprocess.Popen] = []
    try:
        processes.append(
            _start(
                ["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
                logs / "scheduler.log",
                env,
                logs,
            )
        )
        for i in range(2):
            processes.append(
                _start(
                    [
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--memory-limit",
                        "0",
                        "--name",
                        f"w{i}",
                    ],
                    logs / f"worker{i}.log",
                    env,
                    logs,
                )
            )
        deadline = time.monotonic() + START_TIMEOUT
        with Client(address, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
            # The workers import this checkout's tabtune, not an installed copy.
            where = client.run(lambda: __import__("tabtune").__file__)
        assert all(str(REPO) in path for path in where.values()), where
        yield address
    except Exception:
        for log in sorted(logs.glob("*.log")):
            sys.stderr.write(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        _stop(processes)


@pytest.fixture
def store_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small config with a simulated store, in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    path = write_small_config(tmp_path, synth=SYNTH)
    assert main(["--config", str(path), "synth"]) == EXIT_OK
    return path


def _relative_error(est, cfg, task, start) -> float:
    """Clicks-weighted mean absolute error against the simulator's true value per click,
    over the truth's total, on the rows from ``start``."""
    data = load_task_data(cfg, task, start=start)
    truth = pd.read_parquet(Path(cfg.data.truth_dir) / "truth.parquet")
    rows = data.rows[TRUTH_KEYS].assign(date=pd.to_datetime(data.rows["date"]))
    truth = truth.assign(date=pd.to_datetime(truth["date"]))
    true = rows.merge(truth, on=TRUTH_KEYS, how="left")["true_value_per_click"].to_numpy()
    assert np.isfinite(true).all()
    pred = est.predict(align_features(data.X, est))
    w = np.asarray(data.weight)
    return float(np.sum(w * np.abs(pred - true)) / np.sum(w * true))


def _with_seed(cfg: Config, seed: int) -> Config:
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"random_state": seed})})


def test_pretrain_quality_and_refresh_on_a_tcp_cluster(
    tcp_scheduler: str, store_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(store_config)]
    cfg = load_config(store_config)
    task = cfg.task("bid")
    last = store_for(cfg).date_range()[1]
    end = last - pd.Timedelta(days=HELD_OUT_DAYS)
    start = end + pd.Timedelta(days=1)

    # (a) the CLI pretrains through the cluster and publishes an ordinary global model
    argv = [*c, "pretrain", "--task", "bid", "--end", end.date().isoformat()]
    code = main([*argv, "--scheduler", tcp_scheduler])
    out = capsys.readouterr()
    assert code == EXIT_OK, out.out + out.err
    ref, published = load_global(cfg, "bid")
    manifest = json.loads((Path(ref.path) / "manifest.json").read_text())
    assert manifest["trained_on"] == "dask" and manifest["brands"] == SYNTH["n_brands"]
    train = load_task_data(cfg, task, end=end)
    assert manifest["rows"] == len(train)

    # (b) the same quality as the single-process model (`tabtune pretrain` without a
    # scheduler) on the same rows, against the simulator's truth. Both encode the same rows
    # the same way for a seed; the trees differ where LightGBM's distributed learner bins
    # features on one worker's rows: compare the means over three seeds.
    on_dask = [_relative_error(published, cfg, task, start)]
    for seed in SEEDS[1:]:
        fitted = pretrain_on_dask(_with_seed(cfg, seed), "bid", scheduler=tcp_scheduler, end=end)
        on_dask.append(_relative_error(fitted.estimator, cfg, task, start))
    single = []
    for seed in SEEDS:
        res = pretrain(_with_seed(cfg, seed), "bid", end=end, promote=False)
        model = load_model(registry_for(cfg).from_id(res.model_id), task)
        single.append(_relative_error(model, cfg, task, start))
    print(f"relative error on held-out days: Dask {on_dask}, one process {single}")
    assert np.mean(single) < 0.5, single  # the oracle sees a model that learnt something
    assert abs(np.mean(on_dask) / np.mean(single) - 1) <= 0.02, (on_dask, single)

    # (c) the nightly refresh through the same cluster adapts brands and writes decisions
    brands = sorted(store_for(cfg).brands())[:3]
    day = last.date().isoformat()
    argv = [*c, "refresh", "--task", "bid", "--date", day, "--brands", ",".join(brands)]
    code = main([*argv, "--scheduler", tcp_scheduler])
    out = capsys.readouterr()
    assert code == EXIT_OK, out.out + out.err
    report = json.loads(next(Path(cfg.runs_dir).rglob("report.json")).read_text())
    done = {b["brand_id"]: b for b in report["brands"]}
    assert sorted(done) == brands, report
    for brand in brands:
        assert done[brand]["status"] != "failed", done[brand]
        assert len(pd.read_parquet(done[brand]["outputs"]["bids"])) > 0


def test_xgboost_pretrain_quality_on_a_tcp_cluster(
    tcp_scheduler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``backend: xgboost`` pretrains with ``xgboost.dask`` on the two workers: the same
    quality as ``xgboost.train`` in one process on the same rows (the workers' quantile
    sketches are merged, so the cuts, and the trees, can differ a little)."""
    monkeypatch.chdir(tmp_path)
    path = write_small_config(tmp_path, backend="xgboost", synth=SYNTH)
    assert main(["--config", str(path), "synth"]) == EXIT_OK
    cfg = load_config(path)
    task = cfg.task("bid")
    end = store_for(cfg).date_range()[1] - pd.Timedelta(days=HELD_OUT_DAYS)
    start = end + pd.Timedelta(days=1)
    on_dask, single = [], []
    for seed in XGBOOST_SEEDS:
        fitted = pretrain_on_dask(_with_seed(cfg, seed), "bid", scheduler=tcp_scheduler, end=end)
        assert fitted.rows == len(load_task_data(cfg, task, end=end))
        on_dask.append(_relative_error(fitted.estimator, cfg, task, start))
        res = pretrain(_with_seed(cfg, seed), "bid", end=end, promote=False)
        model = load_model(registry_for(cfg).from_id(res.model_id), task)
        single.append(_relative_error(model, cfg, task, start))
    print(f"xgboost relative error on held-out days: Dask {on_dask}, one process {single}")
    assert np.mean(single) < 0.5, single
    assert abs(np.mean(on_dask) / np.mean(single) - 1) <= 0.02, (on_dask, single)
