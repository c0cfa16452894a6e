"""Real data for the transfer benchmark: market prices of five iPinYou advertisers.

Data: ``../shared/data/ipinyou/<advertiser>.validation.txt.gz`` (see the README there): real
RTB auctions in episodes, each auction ``click price pctr``. Task: predict an auction's market
price (``price``, the second price) from the upstream model's ``pctr`` and time (the episode's
number and the auction's position in its episode). For each advertiser in turn: the global model
is pooled on the other four; the advertiser's first 1,000 or 10,000 auctions are its training
rows (every method's: brand-only, the pooled model with ``brand_id``, ``auto`` adapting the
global model); every auction after them is scored. No truth exists: the score is the MAE
against the observed prices divided by their mean.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import ROOT
from benchmarks.fair import Task, Unit, run_task

__all__ = ["DATA_DIR", "load_advertiser", "run_ipinyou", "available"]

#: Where the data live: the workspace's shared folder, beside the repository.
DATA_DIR = ROOT.parent / "shared" / "data" / "ipinyou"
ADVERTISERS = ("1458", "2259", "2261", "2821", "2997")
SIZES = (1_000, 10_000)


def available(data_dir: Path = DATA_DIR) -> list[str]:
    """The advertisers whose file is present (empty when the folder is absent)."""
    return [a for a in ADVERTISERS if (data_dir / f"{a}.validation.txt.gz").exists()]


def load_advertiser(advertiser: str, data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """One advertiser's auctions in time order: episode, position, pctr, click, price."""
    episodes, clicks, prices, pctrs = [], [], [], []
    episode = 0
    with gzip.open(data_dir / f"{advertiser}.validation.txt.gz", "rt") as fh:
        next(fh)  # total auctions, auctions per episode
        for line in fh:
            parts = line.split()
            if len(parts) == 1:
                episode = int(parts[0])
            elif len(parts) == 3:
                episodes.append(episode)
                clicks.append(int(parts[0]))
                prices.append(float(parts[1]))
                pctrs.append(float(parts[2]))
    frame = pd.DataFrame(
        {"episode": episodes, "click": clicks, "price": prices, "pctr": pctrs},
    )
    frame["position"] = frame.groupby("episode").cumcount()
    frame["position"] = frame["position"] / frame.groupby("episode")["position"].transform("max")
    frame["t"] = np.arange(len(frame), dtype=float)
    frame.insert(0, "brand_id", advertiser)
    return frame


def _frame(
    target: str,
    frames: dict[str, pd.DataFrame],
    pool_rows: int | None,
    test_rows: int | None,
    rng: np.random.Generator,
) -> pd.DataFrame:
    parts = []
    for adv, frame in frames.items():
        if adv == target:
            keep = frame.iloc[: max(SIZES)]
            rest = frame.iloc[max(SIZES) :]
            if test_rows is not None and len(rest) > test_rows:
                rest = rest.iloc[np.sort(rng.choice(len(rest), test_rows, replace=False))]
            parts.append(pd.concat([keep, rest]))
        elif pool_rows is not None and len(frame) > pool_rows:
            parts.append(frame.iloc[np.sort(rng.choice(len(frame), pool_rows, replace=False))])
        else:
            parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def run_ipinyou(
    params: dict[str, Any],
    *,
    objective: str = "tweedie",
    gpboost: bool = True,
    advertisers: list[str] | None = None,
    sizes: tuple[int, ...] = SIZES,
    pool_rows: int | None = None,
    test_rows: int | None = None,
    data_dir: Path = DATA_DIR,
) -> dict[str, Any] | None:
    """Every advertiser adapted from the other four; None (with a message) without the data.

    ``pool_rows`` / ``test_rows`` subsample each pooled advertiser / the scored auctions
    (``--quick``); ``advertisers`` limits the advertisers adapted to.
    """
    found = available(data_dir)
    if len(found) < 2:
        print(
            f"iPinYou data not found under {data_dir} (see ../shared/data/README.md): "
            "skipping the real-data benchmark",
            flush=True,
        )
        return None
    frames = {adv: load_advertiser(adv, data_dir) for adv in found}
    rng = np.random.default_rng(0)
    brands: list[dict[str, Any]] = []
    notes: list[str] = []
    rounds: dict[str, dict[str, int]] = {}
    for target in advertisers or found:
        data = _frame(target, frames, pool_rows, test_rows, rng)
        X = data[["brand_id", "t", "pctr", "episode", "position"]]
        y = data["price"].to_numpy(dtype=float)
        is_target = (data["brand_id"] == target).to_numpy()
        order = np.cumsum(is_target) - 1  # the auction's index among the target's rows
        glob = None
        for size in sizes:
            train = is_target & (order < size)
            test = is_target & (order >= size)
            task = Task(
                X=X,
                y=y,
                weight=None,
                truth=y,
                pool=~is_target,
                pooled=~is_target | train,
                units=[Unit(f"{size:,} auctions", target, train, test)],
                objective=objective,
                time_column="t",
            )
            one = run_task(
                task, params, gpboost=gpboost, global_model=glob, label=f"ipinyou {target} "
            )
            glob = one["global"]
            brands += one["brands"]
            rounds[f"{target}/{size}"] = one["rounds"]
            notes += [n for n in one["notes"] if n not in notes]
    return {
        "brands": brands,
        "rounds": rounds,
        "notes": notes,
        "buckets": [f"{s:,} auctions" for s in sizes],
        "advertisers": advertisers or found,
        "pool_rows": pool_rows,
        "test_rows": test_rows,
    }
