"""Helpers shared by the benchmark scripts: sections of docs/benchmarks.md, timing, metrics."""

from __future__ import annotations

import json
import platform
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
RAW_DIR = ROOT / "docs" / "benchmarks"

HEADER = """# Benchmarks

Figures measured by `make bench` on simulated data with known ground truth (and, for the
transfer benchmark, real iPinYou auctions when `../shared/data` exists). Each section says
what was measured, on what data, on which machine, and the command that reproduces it. Sections
are rewritten by their benchmark script; nothing here is typed by hand.
"""


def machine() -> str:
    """One line describing where the figures came from."""
    import os

    import lightgbm
    import xgboost

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, LightGBM {lightgbm.__version__}, XGBoost {xgboost.__version__}"
    )


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    DOC.write_text(text)


def write_raw(name: str, payload: dict[str, Any]) -> Path:
    """Raw figures as JSON beside the markdown."""
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    path = RAW_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path


@contextmanager
def timer(store: dict[str, float], key: str):
    """Add the elapsed wall time of the block to ``store[key]``."""
    t0 = time.perf_counter()
    yield
    store[key] = store.get(key, 0.0) + time.perf_counter() - t0


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Minimum wall time of ``repeat`` calls (seconds)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def weighted_mae(pred: np.ndarray, truth: np.ndarray, weight: np.ndarray) -> float:
    """Weighted mean absolute error."""
    return float(np.sum(weight * np.abs(pred - truth)) / np.sum(weight))


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


@dataclass
class SimulatedBidTask:
    """The bid task on a simulation, split by one time cut."""

    X: pd.DataFrame
    y: np.ndarray
    weight: np.ndarray
    truth: np.ndarray  #: the simulator's true value per click of each row
    before: np.ndarray  #: rows dated before the cut
    cut: pd.Timestamp
    objective: str | None  #: the bid task's configured objective


def simulated_bid_task(n_brands: int, n_days: int, seed: int, test_days: int) -> SimulatedBidTask:
    """Simulate, build the bid task's rows, and cut ``test_days`` before the last day."""
    from tabtune.config import default_config
    from tabtune.data.synth import simulate
    from tabtune.features import task_data

    task = default_config().task("bid")
    sim = simulate(n_brands=n_brands, n_days=n_days, seed=seed)
    obs = sim.observations.assign(true_value_per_click=sim.truth["true_value_per_click"].to_numpy())
    data = task_data(obs, task)
    dates = pd.to_datetime(data.X["date"])
    cut = dates.max() - pd.Timedelta(days=test_days - 1)
    return SimulatedBidTask(
        X=data.X,
        y=data.y,
        weight=data.weight,
        truth=data.rows["true_value_per_click"].to_numpy(),
        before=(dates < cut).to_numpy(),
        cut=cut,
        objective=task.objective,
    )


def regression_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` rows of 8 normal features and one 8-level categorical, with a known response."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(8)})
    X["c"] = pd.Categorical(rng.choice(list("abcdefgh"), size=n))
    y = X["x0"] * 2 + np.sin(X["x1"]) + (X["c"].cat.codes % 3) + rng.normal(scale=0.5, size=n)
    return X, y
