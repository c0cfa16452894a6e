"""Refresh benchmark: how many brands does the nightly refresh handle per minute?

Data: the simulator (``tabtune.data.synth.simulate``), ``--brands`` brands x ``--days`` days.
Every day but the last two goes into a campaign store in a temporary folder, and the global
model of the bid task is pretrained on it (``tabtune.pipeline.pretrain``). Then one nightly
``tabtune.refresh.refresh(cfg, day, new_rows=<that day's rows>)`` refreshes every brand:
append the day, adapt the global model to each brand, evaluate champion vs challenger, write
predictions and bids, write ``report.json``/``report.html``. It is the first night, so no brand
has a champion yet and every brand with enough rows chooses its strategy and trains a
challenger. The second night (the last day) is timed too: brands with a champion repeat its
strategy choice in one fit (``adaptation.reselect_every_days``), as on most nights. Each night
also records the bytes its new brand versions take in the registry: as stored (an adapted
model's trees are a delta on its global model's, its brand-context table an overlay on the
global model's table) and as full copies would have taken (each delta's manifest records its
full model file's size; the overlay is applied to measure the whole table's manifest), per
brand of the night; and the registry's size after the night's retention policy
(``registry.keep_versions``).

The config is ``configs/default.yaml`` with paths moved into the temporary folder and
``device: cpu``: default model and adaptation parameters (``adaptation.n_jobs: 1``, one
thread per brand fit). The night runs once per executor (``--executors``, default the inline
executor and the process pool with ``refresh.n_workers`` workers), each on its own copy of the
same store and global model; the date is then run again to time an idempotent rerun.

Run: ``python -m benchmarks.refresh`` (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks.common import RAW_DIR, ROOT, machine, md_table, write_raw, write_section
from tabtune.config import Config, load_config
from tabtune.data.store import CampaignStore
from tabtune.data.synth import simulate
from tabtune.estimators.context_overlay import apply_context_overlay, is_overlay
from tabtune.estimators.deltas import DELTA_FILE, read_full_model
from tabtune.pipeline import pretrain
from tabtune.refresh import STATUSES, RunReport, refresh
from tabtune.registry import ModelRegistry

DEFAULT_BRANDS = 200  # the store of `make bench` (its own section)
#: The second night run with every brand fitting (contest and refit cycles of 1 day).
EVERY_BRAND_FITS = "second, every brand fits"
STEPS = ("load", "train", "evaluate", "write")


def _config(
    root: Path, threads: int | None = None, refresh_settings: dict[str, Any] | None = None
) -> tuple[Path, Config]:
    """configs/default.yaml with every path inside ``root`` (absolute) and the CPU device;
    ``threads`` sets ``model.n_jobs`` (default: the config's, all cores);
    ``refresh_settings`` overrides keys of its ``refresh`` section."""
    raw = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    raw["refresh"] = {**raw.get("refresh", {}), **(refresh_settings or {})}
    if threads is not None:
        raw.setdefault("model", {})["n_jobs"] = threads
    raw["data"] = {
        **raw.get("data", {}),
        "store": str(root / "data" / "campaigns"),
        "truth_dir": str(root / "data" / "truth"),
    }
    raw["models_dir"] = str(root / "models")
    raw["runs_dir"] = str(root / "runs")
    raw["outputs_dir"] = str(root / "outputs")
    raw["cache_dir"] = str(root / "cache")
    raw["device"] = "cpu"
    raw["tasks"] = {name: str(ROOT / path) for name, path in raw["tasks"].items()}
    raw.setdefault("tuning", {})["storage"] = f"sqlite:///{root / 'models' / 'tuning.db'}"
    root.mkdir(parents=True, exist_ok=True)
    path = root / "tabtune.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, load_config(path)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (worker processes included)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _registry_view(cfg: Config) -> dict[str, tuple[str | None, int]]:
    return {r["id"]: (r["champion"], r["versions"]) for r in ModelRegistry(cfg.models_dir).list()}


def _version_bytes(cfg: Config) -> dict[str, int]:
    """Per brand version folder: bytes as stored."""
    return {
        str(version): sum(f.stat().st_size for f in version.rglob("*") if f.is_file())
        for version in Path(cfg.models_dir).glob("brands/*/*/v*")
    }


def _manifest_text(manifest: dict[str, Any]) -> str:
    """A manifest as :func:`tabtune.boosting.base.write_model_dir` writes it."""
    return json.dumps(manifest, indent=2, sort_keys=True)


def _full_copy_bytes(version: Path, stored: int, contexts: dict[Path, Any]) -> int:
    """Bytes the version would take had its model been a full copy: its native model file
    instead of a delta on the base's trees, its whole brand-context table instead of an
    overlay on the base's (``contexts`` caches the bases' tables)."""
    full = stored
    for path in version.glob("*/manifest.json"):
        manifest = json.loads(path.read_text())
        delta = manifest.get("delta")
        if delta:
            full += int(delta["model_bytes"]) - (path.parent / DELTA_FILE).stat().st_size
        overlay = manifest.get("brand_context")
        if is_overlay(overlay):
            base = (path.parent / overlay["overlay_on"]["path"]).resolve()
            if base not in contexts:
                contexts[base] = read_full_model(base)[0]["brand_context"]
            whole = {**manifest, "brand_context": apply_context_overlay(contexts[base], overlay)}
            full += len(_manifest_text(whole).encode()) - len(_manifest_text(manifest).encode())
    return full


def _storage(cfg: Config, before: dict[str, int], brands: int) -> dict[str, Any]:
    """What a night added to the registry's brand versions, per brand of the night."""
    after = _version_bytes(cfg)
    contexts: dict[Path, Any] = {}
    new = after.keys() - before.keys()
    stored = sum(after[k] for k in new)
    full = sum(_full_copy_bytes(Path(k), after[k], contexts) for k in new)
    total = sum(f.stat().st_size for f in Path(cfg.models_dir).rglob("*") if f.is_file())
    return {
        "versions": len(new),
        "stored_bytes": stored,
        "full_copy_bytes": full,
        "stored_per_brand": stored / max(brands, 1),
        "full_copy_per_brand": full / max(brands, 1),
        "registry_bytes_after_gc": total,
    }


def _night(
    cfg: Config, date: str, new_rows: pd.DataFrame, executor: str, n_workers: int
) -> dict[str, Any]:
    """One timed refresh of every brand, then a timed rerun of the same date."""
    stored_before = _version_bytes(cfg)
    t, c = time.perf_counter(), _cpu()
    report = refresh(cfg, date, new_rows=new_rows, executor=executor)
    wall, cpu = time.perf_counter() - t, _cpu() - c
    storage = _storage(cfg, stored_before, len(report.brands))
    after = _registry_view(cfg)

    t = time.perf_counter()
    again = refresh(cfg, date, new_rows=new_rows, executor=executor)
    rerun = time.perf_counter() - t
    unchanged = _registry_view(cfg) == after and again.to_dict() == report.to_dict()

    return {
        **_summarise(report, executor, n_workers, wall, cpu, rerun, unchanged),
        "storage": storage,
    }


def _next_night(
    cfg: Config, date: str, new_rows: pd.DataFrame, executor: str
) -> tuple[dict[str, Any], RunReport]:
    """One timed refresh of the night after the first (no rerun)."""
    t, c = time.perf_counter(), _cpu()
    report = refresh(cfg, date, new_rows=new_rows, executor=executor)
    wall, cpu = time.perf_counter() - t, _cpu() - c
    return _summarise(
        report, executor, cfg.refresh.n_workers, wall, cpu, float("nan"), True
    ), report


def _summarise(
    report: RunReport,
    executor: str,
    n_workers: int,
    wall: float,
    cpu: float,
    rerun: float,
    unchanged: bool,
) -> dict[str, Any]:
    brands = report.brands
    seconds = np.array([b.seconds for b in brands])
    steps = {s: float(sum(b.timings.get(s, 0.0) for b in brands)) for s in STEPS}
    brand_total = float(seconds.sum())
    steps["other"] = max(0.0, brand_total - sum(steps.values()))
    counts = {s: sum(1 for b in brands if b.status == s) for s in STATUSES}
    strategies = pd.Series([b.strategy for b in brands if b.strategy]).value_counts()
    slowest = max(brands, key=lambda b: b.seconds)
    return {
        "executor": executor,
        "workers": 1 if executor == "inline" else n_workers,
        "brands": len(brands),
        "wall": wall,
        "cpu": cpu,
        "report_wall": report.timings.get("wall"),
        "brands_per_minute": 60.0 * len(brands) / wall,
        "statuses": counts,
        "strategies": {str(k): int(v) for k, v in strategies.items()},
        "brand_seconds": brand_total,
        "steps": steps,
        "shares": {k: v / brand_total for k, v in steps.items()} if brand_total else {},
        "brand_median": float(np.median(seconds)),
        "brand_p90": float(np.percentile(seconds, 90)),
        "slowest": {"brand": slowest.brand_id, "rows": slowest.rows, "seconds": slowest.seconds},
        "rows_median": float(np.median([b.rows for b in brands])),
        "rerun_wall": rerun,
        "rerun_unchanged": unchanged,
        "failed": [f"{b.brand_id}: {b.reason}" for b in report.failed],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    t0 = time.perf_counter()
    obs = simulate(n_brands=args.brands, n_days=args.days, seed=args.seed).observations
    last = obs["date"].max()
    first = last - pd.Timedelta(days=1)
    date, date2 = str(first.date()), str(last.date())
    history, new_rows = obs[obs["date"] < first], obs[obs["date"] == first]
    next_rows = obs[obs["date"] == last]
    print(
        f"simulated {len(obs):,} rows for {args.brands} brands x {args.days} days in "
        f"{time.perf_counter() - t0:.1f}s; run date {date}: {len(new_rows):,} new rows for "
        f"{new_rows['brand_id'].nunique()} brands",
        flush=True,
    )
    out: dict[str, Any] = {
        "args": vars(args),
        "date": date,
        "date2": date2,
        "rows": len(obs),
        "history_rows": len(history),
        "new_rows": len(new_rows),
        "brands_with_new_rows": int(new_rows["brand_id"].nunique()),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="tabtune-bench-refresh-") as tmp:
        base = Path(tmp) / "base"
        _, cfg = _config(base, args.pretrain_threads)
        out["config"] = {
            "model": cfg.model.model_dump(mode="json"),
            "adaptation": cfg.adaptation.model_dump(mode="json"),
            "refresh": cfg.refresh.model_dump(mode="json"),
            "objective": cfg.task("bid").objective,
        }
        t = time.perf_counter()
        CampaignStore(cfg.data.store).append(history)
        out["append_history_seconds"] = time.perf_counter() - t
        t, c = time.perf_counter(), _cpu()
        result = pretrain(cfg, "bid", end=history["date"].max())
        out["pretrain"] = {
            "seconds": time.perf_counter() - t,
            "cpu": _cpu() - c,
            "rows": result.rows,
            "brands": result.brands,
        }
        print(
            f"stored {len(history):,} rows in {out['append_history_seconds']:.1f}s; pretrained "
            f"{result.model_id} on {result.rows:,} rows in {out['pretrain']['seconds']:.1f}s",
            flush=True,
        )
        for executor in executors:
            # Each executor gets a fresh copy of the store and the global model: the same night.
            root = Path(tmp) / executor
            for sub in ("data", "models"):
                shutil.copytree(base / sub, root / sub, ignore=shutil.ignore_patterns(".locks"))
            _, ecfg = _config(root, args.pretrain_threads)
            res = _night(ecfg, date, new_rows, executor, ecfg.refresh.n_workers)
            res["night"] = "first"
            out["runs"].append(res)
            if args.nights < 2:
                print(_night_line(res), flush=True)
                continue
            # The next night, twice. First on a copy with refresh.contest_every_days and
            # refit_every_days 1, as every brand fits on the night its cycle is due: brands
            # repeating a choice that lost contest it again, champions are refitted. Then as
            # the other nights run it (nothing fitted for either).
            copy = Path(tmp) / f"{executor}-every-brand"
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".locks"))
            _, ccfg = _config(
                copy, args.pretrain_threads, {"contest_every_days": 1, "refit_every_days": 1}
            )
            resc, _ = _next_night(ccfg, date2, next_rows, executor)
            resc["night"] = EVERY_BRAND_FITS
            out["runs"].append(resc)
            shutil.rmtree(copy)
            stored_before = _version_bytes(ecfg)
            res2, report = _next_night(ecfg, date2, next_rows, executor)
            res2["night"] = "second"
            res2["storage"] = _storage(ecfg, stored_before, len(report.brands))
            out["runs"].append(res2)
            print(
                _night_line(res)
                + f"; second night {res2['wall']:.1f}s ({res2['brands_per_minute']:.1f}/min)"
                + "; bytes per brand-night "
                + ", ".join(
                    f"{x['storage']['stored_per_brand'] / 1e3:.0f} kB stored vs "
                    f"{x['storage']['full_copy_per_brand'] / 1e3:.0f} kB as full copies"
                    for x in (res, res2)
                ),
                flush=True,
            )
            for line in res["failed"][:5]:
                print(f"    failed {line}", flush=True)
    out["total_seconds"] = time.perf_counter() - t0
    return out


def _night_line(res: dict[str, Any]) -> str:
    """One executor's first night, for the log."""
    return (
        f"  {res['executor']:<8} {res['brands']} brands in {res['wall']:.1f}s "
        f"({res['brands_per_minute']:.1f}/min, CPU {res['cpu']:.0f}s); "
        + ", ".join(f"{k} {v}" for k, v in res["statuses"].items() if v)
        + "; shares "
        + ", ".join(f"{k} {100 * v:.0f}%" for k, v in res["shares"].items())
        + f"; rerun {res['rerun_wall']:.2f}s"
        + ("" if res["rerun_unchanged"] else " (CHANGED SOMETHING)")
    )


def raw_name(brands: int, quick: bool = False) -> str:
    """The raw figures' file: ``refresh`` for the default store, ``refresh-<N>b`` for others."""
    if quick:
        return "refresh-quick"
    return "refresh" if brands == DEFAULT_BRANDS else f"refresh-{brands}b"


def render_scaling(raws: list[dict[str, Any]]) -> str:
    """How a first night grows with the brands of the store, per executor, from every raw
    refresh file present (``docs/benchmarks/refresh*.json``)."""
    rows = []
    for out in sorted(raws, key=lambda o: o["args"]["brands"]):
        p = out["pretrain"]
        for r in out["runs"]:
            if r.get("night", "first") != "first":
                continue
            rows.append(
                [
                    f"{out['args']['brands']:,}",
                    f"{out['rows']:,}",
                    r["executor"]
                    + ("" if r["executor"] == "inline" else f" ({r['workers']} workers)"),
                    f"{r['wall']:.0f}",
                    f"**{r['brands_per_minute']:.0f}**",
                    f"{r['cpu'] / r['brands']:.2f}",
                    f"{p['cpu']:.0f}",
                    f"{p['cpu'] / r['cpu']:.2f}x",
                    _stored_share(r),
                    f"{r['rerun_wall']:.1f}" if r.get("rerun_wall") is not None else "-",
                    out.get("machine_note", ""),
                ]
            )
    if not rows:
        return "No refresh figures yet."
    return "\n".join(
        [
            "### Refresh: a first night against the store's brands",
            "",
            "Every figure is a first night (each brand with enough rows chooses its strategy; "
            "later nights repeat the choice in one fit and run two to three times as fast, see the "
            "table above), from `python -m benchmarks.refresh --brands N --executors ...`, 365 "
            "simulated days per brand. CPU counts the main process and its workers "
            "(`getrusage`); the last columns set a pooled retrain on the same store (the "
            "pretraining, early stopping then the regrow) against the night. Stored: bytes "
            "the night's brand versions took per brand, against full copies (see Model "
            "storage above). Rerun: the same date again (the run found finished).",
            "",
            md_table(
                [
                    "brands",
                    "stored rows",
                    "executor",
                    "wall s",
                    "brands / min",
                    "CPU s / brand",
                    "pooled retrain CPU s",
                    "retrain / night CPU",
                    "kB stored / full per brand (share)",
                    "rerun s",
                    "note",
                ],
                rows,
            ),
        ]
    )


def _stored_share(run: dict[str, Any]) -> str:
    """``stored / full kB (share)`` of a night's brand versions, per brand; ``-`` if unknown."""
    storage = run.get("storage")
    if not storage:
        return "-"
    stored, full = storage["stored_per_brand"], storage["full_copy_per_brand"]
    return f"{stored / 1e3:,.0f} / {full / 1e3:,.0f} ({stored / max(full, 1):.1%})"


def _cost_sentence(
    pretrain: dict[str, Any], runs: list[dict[str, Any]], config: dict[str, Any]
) -> str:
    """Issue 16's cost claim as a refresh runs it: a night adapting every brand of the store
    against one pooled retrain on the same store (the pretraining above: early stopping, then
    the regrow on all rows)."""
    parts = [
        f"{r.get('night', 'first')} night ({r['executor']}) {r['cpu']:.0f} CPU s: "
        f"{pretrain['cpu'] / r['cpu']:.2f}x"
        for r in runs
        if r.get("cpu")
    ]
    if not parts:
        return ""
    text = (
        "A pooled retrain on the same store (that pretraining) costs, in CPU, this many times "
        "a night that adapts, compares and decides for every brand: " + "; ".join(parts) + "."
    )
    reselect = config["adaptation"].get("reselect_every_days")
    refresh_cfg = config.get("refresh", {})
    contest, refit = refresh_cfg.get("contest_every_days"), refresh_cfg.get("refit_every_days")
    cycle = min(contest or 1, refit or 1)
    averages = [
        f"{ex} {avg:.0f} CPU s: **{pretrain['cpu'] / avg:.2f}x**"
        for ex, avg in _average_nights(runs, reselect, cycle).items()
    ]
    if averages:
        text += (
            f" An average night, modelled from the three (each brand chooses once every "
            f"{reselect} days, `adaptation.reselect_every_days`, as on the first night; it "
            f"fits once every {cycle} of the other nights, as on the night where every brand "
            f"fits: a brand champion is refitted every {refit} days, "
            f"`refresh.refit_every_days`, a repeated choice that lost contests again every "
            f"{contest}, `refresh.contest_every_days` (the shorter cycle is taken for both); "
            "the rest as on the second night; brands whose rows grow by 25% choose sooner, and "
            "champions whose rows grow by `refresh.refit_when_rows_grow` refit sooner, which "
            "the model leaves out): " + "; ".join(averages) + "."
        )
    return text


def _average_nights(
    runs: list[dict[str, Any]], reselect: int | None, cycle: int
) -> dict[str, float]:
    """Executor -> CPU s of an average night: first / R + (R - 1) / R x (second x (C - 1) / C
    + every brand fits / C), with R the reselect cycle and C the fitting cycle in days (none
    without R and the three nights)."""
    if not reselect:
        return {}
    by = {(r["executor"], r.get("night", "first")): r["cpu"] for r in runs if r.get("cpu")}
    out = {}
    for ex in dict.fromkeys(r["executor"] for r in runs):
        first, second = by.get((ex, "first")), by.get((ex, "second"))
        every = by.get((ex, EVERY_BRAND_FITS))
        if None in (first, second, every):
            continue
        r, c = reselect, cycle
        out[ex] = first / r + (r - 1) / r * (second * (c - 1) / c + every / c)
    return out


def render(out: dict[str, Any], command: str) -> str:
    a, runs = out["args"], out["runs"]
    m, ad = out["config"]["model"], out["config"]["adaptation"]
    p = out["pretrain"]
    main_rows = [
        [
            r.get("night", "first"),
            r["executor"] + ("" if r["executor"] == "inline" else f" ({r['workers']} workers)"),
            r["brands"],
            f"{r['wall']:.1f}",
            f"**{r['brands_per_minute']:.1f}**",
            f"{r['cpu']:.0f}",
            f"{r['brand_median']:.2f} / {r['brand_p90']:.2f}",
            ", ".join(f"{k} {v}" for k, v in r["statuses"].items() if v),
            "-"
            if r.get("night", "first") != "first"
            else f"{r['rerun_wall']:.2f}" + ("" if r["rerun_unchanged"] else " (changed!)"),
        ]
        for r in runs
    ]
    share_rows = [
        [r.get("night", "first"), r["executor"], f"{r['brand_seconds']:.0f}"]
        + [f"{100 * r['shares'].get(s, 0.0):.0f}% ({r['steps'][s]:.0f}s)" for s in STEPS]
        + [
            f"{100 * r['shares'].get('other', 0.0):.0f}% ({r['steps']['other']:.0f}s)",
            f"{max(0.0, r['wall'] - r['brand_seconds'] / r['workers']):.1f}",
        ]
        for r in runs
    ]
    strategies = "; ".join(
        f"{r['executor']}, {r.get('night', 'first')} night: "
        + ", ".join(f"{k} {v}" for k, v in r["strategies"].items())
        for r in runs
    )
    lines = [
        "## Refresh: brands per minute",
        "",
        f"Command: `{command}`. Machine: {machine()}.",
        "",
        f"Data: simulator, {a['brands']} brands x {a['days']} days, seed {a['seed']} "
        f"({out['rows']:,} rows; median brand {runs[0]['rows_median']:,.0f} usable bid rows). "
        f"Every day before {out['date']} is in the store and the global bid model is "
        f"pretrained on it; then one nightly `refresh(cfg, '{out['date']}', new_rows=...)` "
        f"appends that day ({out['new_rows']:,} rows, {out['brands_with_new_rows']} brands) and "
        "refreshes every brand: adapt the global model, compare challenger, champion and "
        "global model on the brand's newest rows, write predictions and bids for the next day, "
        "and the run's report.json/report.html. First night: no brand has a champion yet, and "
        "`auto` chooses every brand's strategy on 3 rolling folds. Second night "
        f"(`refresh(cfg, '{out.get('date2', '')}', ...)`, one more day): brands with a champion "
        "repeat its strategy choice (`adaptation.reselect_every_days`: "
        f"{ad.get('reselect_every_days')}) and are refitted on every row only every "
        f"`refresh.refit_every_days` ({out['config']['refresh'].get('refit_every_days')}) "
        "days after the newest day they learned (sooner once their new rows reach "
        f"{out['config']['refresh'].get('refit_when_rows_grow', 0):.0%} of those they learned, "
        "`refresh.refit_when_rows_grow`); the other nights they serve as they are, scored on "
        "the new rows; a brand that repeats a choice "
        "which lost its contest on the first night (the global model kept serving it) is not "
        "contested again before `refresh.contest_every_days` "
        f"({out['config']['refresh'].get('contest_every_days')}): nothing is fitted for it. "
        "Second night, every brand fits: the same night on a copy with `contest_every_days: "
        "1` and `refit_every_days: 1`, as the night a brand's cycle is due runs it: a "
        "champion is refitted on every row (one fit, scored prequentially), a repeated choice "
        "that lost is contested again (a fit on the rows before the window, then on every row "
        "if it wins). "
        "Config: `configs/default.yaml` on the CPU — global model "
        f"{m['n_estimators']} trees (early stopping {m['early_stopping_rounds']}, "
        f"{m['n_jobs'] or 'all'} threads), "
        f"{m['num_leaves']} leaves, learning rate {m['learning_rate']}, "
        f"`{out['config']['objective']}` loss; adaptation `{ad['strategy']}`, up to "
        f"{ad['adapt_n_estimators']} trees, {ad['n_jobs']} thread per brand, brands under "
        f"{ad['min_rows_to_adapt']} rows served by the global model.",
        "",
        md_table(
            [
                "night",
                "executor",
                "brands",
                "wall s",
                "brands / minute",
                "CPU s",
                "brand s median / p90",
                "statuses",
                "rerun s",
            ],
            main_rows,
        ),
        "",
        f"Pretraining the global model (once, before the night; not in the figures above): "
        f"{p['seconds']:.1f}s wall, {p['cpu']:.0f} CPU s, {p['rows']:,} rows of {p['brands']} "
        f"brands. {_cost_sentence(p, runs, out['config'])} Wall s is the whole `refresh()` call: appending the day, the executor (worker "
        "start-up included), checkpoints and the report. CPU s counts the worker processes too. "
        "Rerun s: the same call again for the same date, which finds the run finished and "
        "returns its report (checked: the same report, and no registry version or champion "
        "changed). "
        f"Strategies chosen: {strategies}.",
        "",
        "### Where the time goes",
        "",
        "Per-brand step timings from `report.json` (`brands[].timings`, wall clock measured "
        "inside the worker around each step, summed over brands; the run's `timings` holds the "
        "same sums), as shares of the summed per-brand wall time. "
        "load: read the brand's rows up to the date, build the task's features, get the global "
        "model (from a per-process cache of the 8 most recently used models) and "
        "pick the holdout window; train: adapt the global model "
        "(`auto` fits and compares its candidate strategies) and publish the challenger to the "
        "registry; evaluate: load the stored challenger and score champion, challenger and "
        "global model on the holdout; write: predictions and bids for the next day as Parquet. "
        "other: the rest of a brand's job (config validation, registry look-ups). Run overhead: "
        "wall time not inside any brand's job (per worker): appending the day, listing brands, "
        "appending each brand to the run journal, the report with its plots, pool start-up.",
        "",
        md_table(
            ["night", "executor", "brand s (sum)", *STEPS, "other", "run overhead s"],
            share_rows,
        ),
    ]
    lines += _storage_lines(runs)
    if any(r["failed"] for r in runs):
        lines += ["", "Failures: " + "; ".join(f for r in runs for f in r["failed"][:5])]
    return "\n".join(lines)


def _storage_lines(runs: list[dict[str, Any]]) -> list[str]:
    rows = [
        [
            r.get("night", "first"),
            r["executor"],
            r["storage"]["versions"],
            f"{r['storage']['full_copy_per_brand'] / 1e3:.0f}",
            f"**{r['storage']['stored_per_brand'] / 1e3:.0f}**",
            f"{r['storage']['stored_bytes'] / max(r['storage']['full_copy_bytes'], 1):.1%}",
            f"{r['storage']['registry_bytes_after_gc'] / 1e6:.1f}",
        ]
        for r in runs
        if "storage" in r
    ]
    if not rows:
        return []
    return [
        "",
        "### Model storage",
        "",
        "Bytes of the brand versions each night published, per brand of the night: as full "
        "copies of the adapted models (what every version took before deltas) and as stored "
        "(an adapted model is a delta on its global model: refitted leaf values and new "
        "trees, `scratch` trees stay a full copy; its brand-context table is an overlay on "
        "the global model's table, since saved-model format 4). Registry MB: the whole "
        "registry (global model "
        "included) after the night's retention policy (`registry.keep_versions`).",
        "",
        md_table(
            [
                "night",
                "executor",
                "versions",
                "kB / brand-night as full copies",
                "kB / brand-night stored",
                "stored / full",
                "registry MB",
            ],
            rows,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--brands", type=int, default=DEFAULT_BRANDS)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument(
        "--executors",
        default="inline,process",
        help="comma-separated executors to time, each on a fresh copy (inline, process, dask)",
    )
    p.add_argument(
        "--pretrain-threads",
        type=int,
        default=None,
        help="model.n_jobs (default: the config's, all cores; on a busy machine 1 is far faster)",
    )
    p.add_argument(
        "--nights",
        type=int,
        choices=(1, 2),
        default=2,
        help="time the first night only (1), or also the second (2, the default)",
    )
    p.add_argument(
        "--note", default="", help="a remark on the machine for the scaling table (e.g. busy)"
    )
    p.add_argument("--quick", action="store_true", help="small smoke run (not written to docs)")
    args = p.parse_args(argv)
    if not [e for e in args.executors.split(",") if e.strip()]:
        p.error("--executors: name at least one executor")
    if args.quick:
        args.brands = 20
    out = run(args)
    out["machine_note"] = args.note
    write_raw(raw_name(args.brands, args.quick), out)
    if not args.quick:
        if args.brands == DEFAULT_BRANDS:
            write_section("refresh", render(out, "make bench  # python -m benchmarks.refresh"))
        raws = [
            json.loads(path.read_text())
            for path in sorted(RAW_DIR.glob("refresh*.json"))
            if path.stem != "refresh-quick"
        ]
        write_section("refresh-scaling", render_scaling(raws))
        print("wrote docs/benchmarks.md")
    else:
        print(render(out, "python -m benchmarks.refresh --quick"))
    print(f"total {out['total_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
