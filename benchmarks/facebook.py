"""Real data through the command line: the public Facebook ads export, from the file to a plan.

Data: ``../shared/data/facebook_ads/KAG_conversion_data.csv`` (see the README there): one row
per ad, three advertiser campaigns (``xyz_campaign_id``, standing for the brands), August 2023,
dates as DD-MM-YYYY, no channel, no bid and **no revenue** column. It is read through
``benchmarks/configs/facebook_ads.yaml`` alone (transforms and mapping, no pandas), into a store in
a temporary folder, and then every step runs as a user would run it, through
:func:`tabtune.cli.main`: ``load``, ``check``, ``pretrain`` and ``finetune --all`` for the bid and
budget tasks, ``bids`` and ``budget``. What each step produced (or why it could not) is read back
from the store, the model registry and the output files, and written to the ``facebook``
section of docs/benchmarks.md.

Nothing is scored against truth here (a real export has none): the section says what ran, what
it produced and how long it took. Run: ``python -m benchmarks.facebook`` (skips, with a message,
when ``../shared/data`` is absent).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import ROOT, machine, md_table, write_raw, write_section

__all__ = ["CONFIG", "EXPORT", "Step", "available", "render", "run_facebook", "main"]

#: Where the export lives: the workspace's shared folder, beside the repository.
DATA_DIR = ROOT.parent / "shared" / "data" / "facebook_ads"
EXPORT = DATA_DIR / "KAG_conversion_data.csv"
#: The config that reads it (transforms and mapping only).
CONFIG = ROOT / "benchmarks" / "configs" / "facebook_ads.yaml"
TASKS = ("bid", "budget")


@dataclass
class Step:
    """One command line run: its arguments, exit code, wall time and what it printed."""

    name: str
    argv: list[str]
    code: int
    seconds: float
    output: str

    def error(self) -> str:
        """The command's ``error:`` line (empty when it succeeded)."""
        if self.code == 0:
            return ""
        lines = [ln for ln in self.output.splitlines() if ln.startswith(("error:", "internal"))]
        return lines[-1] if lines else f"exit code {self.code}"


def _shown(arg: str) -> str:
    """An argument as the docs show it: the shared folder as ``../shared/...``."""
    path = Path(arg)
    if path.is_absolute() and path.is_relative_to(ROOT.parent):
        return "../" + path.relative_to(ROOT.parent).as_posix()
    return arg


def available(export: Path | None = None) -> bool:
    """Whether the export (default :data:`EXPORT`) is present (the shared folder exists only in
    this workspace)."""
    return (EXPORT if export is None else export).is_file()


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _cli(name: str, config: Path, argv: Sequence[str]) -> Step:
    """``tabtune --config CONFIG ARGV...`` in this process, its output captured."""
    from tabtune.cli import main as tabtune_main

    buffer = io.StringIO()
    t0 = time.perf_counter()
    with redirect_stdout(buffer), redirect_stderr(buffer):
        code = tabtune_main(["--config", str(config), *argv])
    return Step(name, list(argv), code, time.perf_counter() - t0, buffer.getvalue())


def _manifest(registry: Any, task: str, brand: str | None = None) -> dict[str, Any] | None:
    ref = registry.champion(task, brand)
    return None if ref is None else registry.manifest(ref)


def _models(cfg: Any, brands: list[str]) -> dict[str, Any]:
    """The champion global model of each task and each brand's own champion (if any)."""
    from tabtune.evaluation import loss_name, score_objective
    from tabtune.registry import ModelRegistry

    registry = ModelRegistry(cfg.models_dir)
    out: dict[str, Any] = {}
    for task in TASKS:
        spec = cfg.task(task)
        glob = _manifest(registry, task)
        brand_models = {}
        for brand in brands:
            own = _manifest(registry, task, brand)
            brand_models[brand] = (
                {"strategy": None}
                if own is None
                else {"strategy": own.get("strategy"), "reason": own.get("reason")}
            )
        out[task] = {
            "metric": loss_name(score_objective(spec.objective, spec.kind)),
            "global": None
            if glob is None
            else {
                "id": glob["id"],
                "rows": glob.get("rows"),
                "holdout": glob.get("metrics", {}).get("holdout"),
                "features": glob.get("features", []),
            },
            "brands": brand_models,
        }
    return out


def _outputs(cfg: Any) -> dict[str, Any]:
    """Per brand: the bids' rows, reference and mean change; the budget plan per channel."""
    out: dict[str, Any] = {"bids": {}, "budgets": {}, "date": None}
    days = sorted(p for p in Path(cfg.outputs_dir).glob("*") if p.is_dir())
    if not days:
        return out
    day = days[-1]
    out["date"] = day.name
    if (day / "bids").is_dir():
        bids = pd.read_parquet(day / "bids")
        for brand, rows in bids.groupby("brand_id", observed=True):
            out["bids"][str(brand)] = {
                "rows": len(rows),
                "reference": sorted(set(rows["reference"].astype(str))),
                "mean_change": float(rows["change"].mean()),
                "up": int((rows["change"] > 0).sum()),
                "down": int((rows["change"] < 0).sum()),
                "mean_bid": float(rows["bid"].mean()),
                "mean_current": float(rows["current_bid"].mean()),
            }
    if (day / "budgets").is_dir():
        plans = pd.read_parquet(day / "budgets")
        for brand, rows in plans.groupby("brand_id", observed=True):
            out["budgets"][str(brand)] = {
                "channels": len(rows),
                "recent_spend": float(rows["recent_spend"].sum()),
                "planned_spend": float(rows["spend"].sum()),
                "change": float(rows["spend"].sum() / rows["recent_spend"].sum() - 1.0),
                "uplift": float(rows["uplift"].sum()),
                "response": sorted(set(rows["response"].astype(str))),
            }
    return out


def run_facebook(
    export: Path | None = None, config: Path = CONFIG, workdir: Path | None = None
) -> dict[str, Any]:
    """Load the export through ``config`` into a fresh folder and run every step on it.

    Parameters
    ----------
    export : Path, optional
        The CSV export (default :data:`EXPORT`).
    config : Path
        The tabtune config that reads it (its relative paths resolve in ``workdir``).
    workdir : Path, optional
        Where the store, models and outputs go; a temporary folder (removed) when None.

    Returns
    -------
    dict
        ``load``, ``check``, ``steps`` (name, command, exit code, seconds, error), ``models``
        and ``outputs``: JSON-ready.
    """
    export = EXPORT if export is None else export
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="tabtune-facebook-") as tmp:
            return run_facebook(export, config, Path(tmp))
    from tabtune.config import load_config
    from tabtune.data.check import check_data
    from tabtune.data.load import load_exports

    config = config.resolve()
    shutil.copytree(ROOT / "configs", workdir / "configs", dirs_exist_ok=True)  # the task files
    steps: list[Step] = []
    with _inside(workdir):
        cfg = load_config(config)
        steps.append(_cli("load", config, ["load", str(export)]))
        # The same load again, as a dry run: what was read, skipped and already stored.
        again = load_exports([export], cfg.data, dry_run=True)
        steps.append(_cli("check", config, ["check"]))
        report = check_data(cfg) if steps[0].code == 0 else None
        for task in TASKS:
            steps.append(_cli(f"pretrain {task}", config, ["pretrain", "--task", task]))
        for task in TASKS:
            steps.append(_cli(f"finetune {task}", config, ["finetune", "--all", "--task", task]))
        steps.append(_cli("bids", config, ["bids"]))
        steps.append(_cli("budget", config, ["budget"]))
        brands = sorted(report.rows_per_brand) if report is not None else []
        models = _models(cfg, brands)
        outputs = _outputs(cfg)
    return {
        "export": export.name,
        "config": str(config.relative_to(ROOT)) if config.is_relative_to(ROOT) else str(config),
        "load": {
            "rows_read": again.rows_read,
            "rows_stored": again.rows_already_stored,
            "rows_skipped": again.rows_skipped,
            "skipped": [f"{s.column} {s.rule}: {s.count}" for s in again.skipped],
            "notes": again.notes,
        },
        "check": None
        if report is None
        else {
            "rows_per_brand": report.rows_per_brand,
            "first": f"{report.first:%Y-%m-%d}",
            "last": f"{report.last:%Y-%m-%d}",
            "adapted": report.adapted,
            "global_served": report.global_served,
            "one_channel": sorted(report.one_channel),
            "tasks": {t.task: {"runs": t.runs, "missing": t.missing} for t in report.tasks},
            "min_rows_to_adapt": report.min_rows_to_adapt,
        },
        "steps": [
            {
                "name": s.name,
                "command": "tabtune " + " ".join(_shown(a) for a in s.argv),
                "code": s.code,
                "seconds": s.seconds,
                "error": s.error(),
            }
            for s in steps
        ],
        "models": models,
        "outputs": outputs,
    }


def _pct(value: float) -> str:
    return f"{value:+.1%}"


def _brand_rows(result: dict[str, Any]) -> list[list[Any]]:
    check, models, outputs = result["check"], result["models"], result["outputs"]
    rows = []
    for brand, n in sorted(check["rows_per_brand"].items(), key=lambda kv: -kv[1]):
        bids = outputs["bids"].get(brand)
        plan = outputs["budgets"].get(brand)
        rows.append(
            [
                brand,
                f"{n:,}",
                "adapted" if brand in check["adapted"] else "global model (too few rows)",
                models["bid"]["brands"].get(brand, {}).get("strategy") or "- (global model)",
                models["budget"]["brands"].get(brand, {}).get("strategy") or "- (global model)",
                "-"
                if bids is None
                else f"{bids['rows']} contexts, {bids['mean_current']:.2f} -> "
                f"{bids['mean_bid']:.2f} ({_pct(bids['mean_change'])}; "
                f"{bids['up']} up / {bids['down']} down)",
                "-"
                if plan is None
                else f"{plan['recent_spend']:,.2f} -> {plan['planned_spend']:,.2f} "
                f"({_pct(plan['change'])}, {plan['channels']} channel, "
                f"response {'/'.join(plan['response'])})",
            ]
        )
    return rows


def _step_rows(result: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            f"`{s['command']}`",
            s["code"],
            f"{s['seconds']:.1f}",
            "ok" if s["code"] == 0 else s["error"].replace("|", "/"),
        ]
        for s in result["steps"]
    ]


def _model_rows(result: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for task, info in result["models"].items():
        glob = info["global"]
        if glob is None:
            rows.append([task, "none", "-", "-", "-"])
            continue
        holdout = glob["holdout"]
        rows.append(
            [
                task,
                glob["id"],
                f"{glob['rows']:,}",
                "-" if holdout is None else f"{info['metric']} {holdout:.4g}",
                ", ".join(glob["features"]),
            ]
        )
    return rows


def render(result: dict[str, Any]) -> str:
    """The ``facebook`` section of docs/benchmarks.md for one :func:`run_facebook` result."""
    load, check = result["load"], result["check"]
    total = sum(s["seconds"] for s in result["steps"])
    if check is None:
        failed = result["steps"][0]
        return (
            "## Real data: a Facebook ads export through the command line\n\n"
            f"`{failed['command']}` failed: {failed['error']}\n"
        )
    missing = {t: i["missing"] for t, i in check["tasks"].items() if t in TASKS and i["missing"]}
    budget_rows = (result["models"]["budget"]["global"] or {}).get("rows")
    date = result["outputs"]["date"] or "-"
    budget_brands = result["models"]["budget"]["brands"].values()
    budget_note = (
        f", every brand under `adaptation.min_rows_to_adapt` ({check['min_rows_to_adapt']}), so"
        " every plan comes from the global budget model"
        if budget_brands and all(b["strategy"] is None for b in budget_brands)
        else ""
    )
    lines = [
        "## Real data: a Facebook ads export through the command line",
        "",
        f"The public Facebook ads export `{result['export']}` (`../shared/data/facebook_ads/`: one",
        "row per ad, three advertiser campaigns standing for the brands, August 2023, dates as",
        f"DD-MM-YYYY, no channel, no bid, no revenue) read through `{result['config']}` alone",
        '(`constants: {channel: facebook}`, `date_format: "%d-%m-%Y"`, `brand_id: '
        "xyz_campaign_id`,",
        "`campaign_id: ad_id`, `audience: age`; no pandas), into a temporary store, then every step",
        "run through `tabtune.cli.main` as a user would. Nothing is scored: a real export has no",
        "truth. Reproduce: `python -m benchmarks.facebook` (skips when `../shared/data` is absent).",
        f"Machine: {machine()}.",
        "",
        f"**Load**: {load['rows_read']:,} rows read, {load['rows_stored']:,} stored, "
        f"{load['rows_skipped']:,} skipped; {len(check['rows_per_brand'])} brands, "
        f"{check['first']} .. {check['last']}.",
        *[f"- {note}" for note in load["notes"]],
        *[f"- skipped: {s}" for s in load["skipped"]],
        "",
        '**What "revenue" is here.** The export has no revenue. `Approved_Conversion` (the',
        "conversions the advertiser approved) is mapped to `revenue` as a *count*, one unit per",
        "approved conversion, and `Total_Conversion` to `conversions`. The bid task's value per",
        "click is therefore approved conversions per click, ROAS is approved conversions per unit",
        "of spend (the config's `bids.target_roas: 0.02` = at most 50 spent per approved",
        'conversion), and the budget plan\'s "revenue" is approved conversions. Without a `bid`',
        "column the bids are target CPCs on the observed cost per click (spend / clicks), not a",
        "response to a bid change. Every brand has one channel, so a budget plan has nothing to",
        "move between channels: +0% by construction.",
        "",
        md_table(
            [
                "brand",
                "rows",
                "check",
                "bid model (auto's choice)",
                "budget model",
                f"bids for {date}",
                f"budget plan for {date}",
            ],
            _brand_rows(result),
        ),
        "",
        md_table(["task", "global model", "rows", "holdout", "features"], _model_rows(result)),
        "",
        "Task features the export lacks (dropped with a notice): "
        + "; ".join(f"{t}: {', '.join(m)}" for t, m in missing.items())
        + f". The budget task sums rows per brand and day and needs each channel's trailing"
        f" 28 days: {budget_rows or 0} brand-days in all{budget_note}.",
        "",
        md_table(["step", "exit", "seconds", "result"], _step_rows(result)),
        "",
        f"Total: {total:.1f} s.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run on the shared export and write the ``facebook`` section; skip when it is absent."""
    argparse.ArgumentParser(
        prog="python -m benchmarks.facebook",
        description="Load ../shared/data/facebook_ads/ through benchmarks/configs/facebook_ads.yaml"
        " into a temporary store, run check, pretrain, finetune, bids and budget through the CLI,"
        " and write the 'facebook' section of docs/benchmarks.md.",
    ).parse_args(argv)
    if not available():
        print(
            f"benchmarks.facebook: skipped, {EXPORT} is absent (the shared data exists only in "
            "this workspace); docs/benchmarks.md left as it is"
        )
        return 0
    result = run_facebook()
    write_raw("facebook", result)
    write_section("facebook", render(result))
    print(render(result))
    failed = [s["command"] for s in result["steps"] if s["code"] != 0]
    if failed:
        print(f"failed steps: {failed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
