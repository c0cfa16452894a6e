"""Refit-schedule benchmark: brand champions refitted nightly against on a schedule.

A brand champion that repeats its own choice is refitted on every row only every
``refresh.refit_every_days`` days (sooner once its new rows reach
``refresh.refit_when_rows_grow`` of those it learned); in between it serves as it is. This
measures what that costs in quality and saves in CPU, with the refresh itself as it runs.

Data: the simulator (``tabtune.data.synth.simulate``), ``--brands`` brands x 365 days. Every day
before the last ``--nights`` + 1 is in a campaign store and the global bid model is pretrained on
it; a first night (every brand chooses its strategy) is run. Then the next ``--nights`` - 1
nights run from that state once per schedule (``--every``: the ``refit_every_days`` values,
default 1 = nightly and 7), each on its own copy: ``refresh(cfg, day, new_rows=<that day's
rows>)``, inline. After each night the model that serves each brand (the report's
``model_id``: its champion, or the global model) is scored on the next day's rows (the day the
next night appends) with the task's own loss (Tweedie deviance for the bid task, weighted by
clicks), summed per brand over the nights. Per brand, the mean loss of each schedule is set
against the nightly one (paired ratios, :mod:`benchmarks.paired`). CPU: the ``refresh()`` call
(``os.times``, this process).

Run: ``python -m benchmarks.refit_schedule`` (``make bench``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import machine, md_table, write_raw, write_section
from benchmarks.paired import summarise_ratios
from benchmarks.refresh import _config, _cpu
from tabtune.config import Config
from tabtune.data.store import CampaignStore
from tabtune.data.synth import simulate
from tabtune.evaluation import model_losses, score_objective
from tabtune.features import TIME_COLUMN, model_features
from tabtune.pipeline import load_model, pretrain, registry_for
from tabtune.refresh import RunReport, refresh
from tabtune.refresh.challenger import usable_rows

SECTION = "refit-schedule"


def _serving_losses(
    cfg: Config, report: RunReport, obs: pd.DataFrame, day: pd.Timestamp
) -> dict[str, tuple[float, float]]:
    """Brand -> (weighted loss sum, weight sum) of the model serving it on ``day``'s rows."""
    task = cfg.task("bid")
    objective = score_objective(task.objective, task.kind)
    registry = registry_for(cfg)
    models: dict[str, Any] = {}
    out = {}
    for b in report.brands:
        if not b.model_id:
            continue
        if b.model_id not in models:
            models[b.model_id] = load_model(registry.from_id(b.model_id), task)
        model = models[b.model_id]
        rows = obs[(obs["brand_id"] == b.brand_id) & (obs["date"] <= day)]
        data = usable_rows(rows, task, model_features(model))
        on_day = (pd.to_datetime(data.X[TIME_COLUMN]) == day).to_numpy()
        if not on_day.any():
            continue
        weight = np.ones(int(on_day.sum())) if data.weight is None else data.weight[on_day]
        losses = model_losses(model, data.X.loc[on_day], np.asarray(data.y)[on_day], objective)
        out[b.brand_id] = (float(np.sum(losses * weight)), float(np.sum(weight)))
    return out


def _schedule(
    base: Path, root: Path, every: int, obs: pd.DataFrame, days: list[pd.Timestamp]
) -> dict[str, Any]:
    """The nights after the first on a copy of ``base`` with ``refit_every_days: every``."""
    shutil.copytree(base, root, ignore=shutil.ignore_patterns(".locks"))
    _, cfg = _config(root, None, {"refit_every_days": every})
    loss: dict[str, float] = {}
    weight: dict[str, float] = {}
    cpu, statuses = [], {}
    for day, following in zip(days[:-1], days[1:], strict=True):
        c = _cpu()
        report = refresh(cfg, str(day.date()), new_rows=obs[obs["date"] == day])
        cpu.append(_cpu() - c)
        for b in report.brands:
            statuses[b.status] = statuses.get(b.status, 0) + 1
        for brand, (lsum, wsum) in _serving_losses(cfg, report, obs, following).items():
            loss[brand] = loss.get(brand, 0.0) + lsum
            weight[brand] = weight.get(brand, 0.0) + wsum
        print(f"  every {every}: {day.date()} {cpu[-1]:.1f} CPU s", flush=True)
    return {
        "every": every,
        "cpu": cpu,
        "statuses": statuses,
        "brand_loss": {b: loss[b] / weight[b] for b in sorted(loss) if weight[b] > 0},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    obs = simulate(n_brands=args.brands, n_days=args.days, seed=args.seed).observations
    days = [pd.Timestamp(d) for d in sorted(obs["date"].unique())[-(args.nights + 1) :]]
    first = days[0]
    out: dict[str, Any] = {"args": vars(args), "first_night": str(first.date()), "schedules": []}
    with tempfile.TemporaryDirectory(prefix="tabtune-bench-refit-") as tmp:
        base = Path(tmp) / "base"
        _, cfg = _config(base)
        out["refit_when_rows_grow"] = cfg.refresh.refit_when_rows_grow
        history = obs[obs["date"] < first]
        CampaignStore(cfg.data.store).append(history)
        pretrain(cfg, "bid", end=history["date"].max())
        c = _cpu()
        report = refresh(cfg, str(first.date()), new_rows=obs[obs["date"] == first])
        out["first_night_cpu"] = _cpu() - c
        out["rows_median"] = float(np.median([b.rows for b in report.brands]))
        print(f"first night {first.date()}: {out['first_night_cpu']:.0f} CPU s", flush=True)
        for every in args.every:
            root = Path(tmp) / f"every-{every}"
            out["schedules"].append(_schedule(base, root, every, obs, days[1:]))
            shutil.rmtree(root)
    out["seconds"] = time.perf_counter() - t0
    return out


def render(out: dict[str, Any], command: str) -> str:
    """The section: CPU and statuses per schedule, and each schedule's paired ratios."""
    a = out["args"]
    nightly = next(s for s in out["schedules"] if s["every"] == 1)
    rows = []
    for s in out["schedules"]:
        brands = sorted(set(s["brand_loss"]) & set(nightly["brand_loss"]))
        mine = [s["brand_loss"][b] for b in brands]
        theirs = [nightly["brand_loss"][b] for b in brands]
        summary = summarise_ratios(mine, theirs)
        ratios = np.asarray(mine) / np.asarray(theirs)
        worst = int(np.argmax(ratios)) if len(ratios) else None
        rows.append(
            [
                f"{s['every']} day{'s' if s['every'] > 1 else ''}",
                f"{np.mean(s['cpu']):.1f}",
                f"{np.mean(s['cpu']) / np.mean(nightly['cpu']):.2f}x",
                ", ".join(f"{k} {v}" for k, v in s["statuses"].items()),
                f"{np.mean(mine):.4f}",
                "-" if s is nightly else summary.cell(),
                "-"
                if s is nightly or worst is None
                else f"{brands[worst]} {ratios[worst]:.3f}x; {int((ratios > 1).sum())} worse",
            ]
        )
    nights = a["nights"] - 1
    return "\n".join(
        [
            "## Refresh: brand champions refitted nightly or on a schedule",
            "",
            f"Command: `{command}`. Machine: {machine()}.",
            "",
            f"Data: simulator, {a['brands']} brands x {a['days']} days, seed {a['seed']} (median "
            f"brand {out['rows_median']:,.0f} usable bid rows). A first night "
            f"({out['first_night']}, every brand chooses its strategy: "
            f"{out['first_night_cpu']:.0f} CPU s), then the next {nights} nights run from it "
            "once per schedule, inline (`configs/default.yaml` on the CPU, "
            f"`refresh.refit_when_rows_grow`: {out['refit_when_rows_grow']:.0%}). After each "
            "night the model serving each brand (its champion, or the global model) is scored "
            "on the next day's rows with the task's loss (Tweedie deviance, click-weighted), "
            "summed per brand over the nights. Ratio: a brand's mean loss under the schedule / "
            "under nightly refits (geometric mean [bootstrap 95% interval over brands], median, "
            "brands where the schedule scores better). CPU: the `refresh()` call, per night.",
            "",
            md_table(
                [
                    "refit_every_days",
                    "CPU s / night",
                    "CPU / nightly",
                    f"statuses over {nights} nights",
                    "mean brand loss",
                    "loss / nightly",
                    "worst brand",
                ],
                rows,
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--brands", type=int, default=120)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--nights", type=int, default=8, help="the first night and the ones after")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--every", type=int, nargs="+", default=[1, 7])
    p.add_argument("--quick", action="store_true", help="small smoke run (not written to docs)")
    args = p.parse_args(argv)
    if 1 not in args.every:
        p.error("--every must include 1 (nightly refits, the reference)")
    if args.quick:
        args.brands, args.nights = 12, 3
    out = run(args)
    command = "make bench  # python -m benchmarks.refit_schedule"
    text = render(out, command)
    print(text)
    if not args.quick:
        write_raw(SECTION, out)
        write_section(SECTION, text)
        print("wrote docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
