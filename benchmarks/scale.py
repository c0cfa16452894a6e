"""Scaling benchmark: pooled pretraining time, CPU and peak memory against the store's rows.

For each size a simulated store (``tabtune synth``, 730 days, about 4,600 rows per brand) is
written, then ``tabtune.pipeline.pretrain`` of the bid task runs in a fresh process per mode,
measured from outside (wall time, CPU time and peak RSS of that process, from
``getrusage(RUSAGE_CHILDREN)`` of a wrapper that runs only it):

* ``batched``: the default path (brand batches, float32 matrix; ``pooled_batches``);
* ``in-memory``: the estimator's ``fit`` on all rows read at once (the path before batching),
  for comparison, up to ``--in-memory-max`` rows;
* ``dask``: ``pipeline.pretrain(cfg, task, scheduler=...)`` on a local two-worker cluster, once
  that keyword exists (skipped with a message otherwise);
* ``batched-xgboost``, ``dask-xgboost``: the same two with ``backend: xgboost``
  (``xgboost.train`` in one process, ``xgboost.dask`` on the cluster), to choose the
  distributed learner by measurement.

Quality: the early-stopping holdout score (Tweedie deviance on the newest 10% of rows; above
``model.early_stopping_max_rows`` training rows, of the fit on a sample of brands) and
the weighted relative error of the predicted revenue per click against the simulator's true
value per click on the newest 10% of days (rows the regrown model has seen).

    python -m benchmarks.scale                 # 1M and 5M rows -> docs/benchmarks.md
    python -m benchmarks.scale --large         # also 10M and 20M
    python -m benchmarks.scale --quick         # 0.1M rows, printed only
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.common import ROOT, machine, md_table, write_raw, write_section

ROWS_PER_BRAND = 4_600  # the simulator's rows per brand over 730 days (9.2M rows / 2,000)
DAYS = 730
MODES = ("batched", "in-memory", "dask", "batched-xgboost", "dask-xgboost")
#: A mode's suffix that switches the config's backend.
XGBOOST_SUFFIX = "-xgboost"
TASK = "bid"


def _config(root: Path, threads: int | None) -> Path:
    """configs/default.yaml with every path inside ``root``, CPU only."""
    raw = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    raw["data"] = {
        **raw.get("data", {}),
        "store": str(root / "data" / "campaigns"),
        "truth_dir": str(root / "data" / "truth"),
    }
    for key in ("models_dir", "runs_dir", "outputs_dir", "cache_dir"):
        raw[key] = str(root / key.removesuffix("_dir"))
    raw["device"] = "cpu"
    if threads is not None:
        raw.setdefault("model", {})["n_jobs"] = threads
    raw["tasks"] = {name: str(ROOT / path) for name, path in raw["tasks"].items()}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "tabtune.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _measured(command: list[str], out: Path) -> dict[str, Any]:
    """Run ``command`` under a wrapper process; its wall, CPU and peak RSS."""
    subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "_measure", str(out), "--", *command],
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.read_text())


def _measure(out: str, command: list[str]) -> int:
    """The wrapper: runs one child and writes what getrusage says of it."""
    t0 = time.perf_counter()
    code = subprocess.run(command).returncode
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(out).write_text(
        json.dumps(
            {
                "returncode": code,
                "wall": time.perf_counter() - t0,
                "cpu": usage.ru_utime + usage.ru_stime,
                "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9,  # ru_maxrss: KiB on Linux
            }
        )
    )
    return code


def _child(config: str, mode: str, out: str) -> int:
    """The measured process: pretrain the bid task one way, write its figures (the model's
    quality is measured afterwards, in another process, so that its reads do not count)."""
    from tabtune import pipeline
    from tabtune.config import load_config

    cfg = load_config(config)
    if mode.endswith(XGBOOST_SUFFIX):
        cfg = cfg.model_copy(update={"backend": "xgboost"})
        mode = mode.removesuffix(XGBOOST_SUFFIX)
    t0 = time.perf_counter()
    if mode == "batched":
        result = pipeline.pretrain(cfg, TASK)
    elif mode == "in-memory":
        result, est = _in_memory_pretrain(cfg)
        est.save(Path(out).with_suffix(".model"))
    else:
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster):
            result = pipeline.pretrain(cfg, TASK, scheduler=cluster.scheduler_address)  # type: ignore[call-arg]
    seconds = time.perf_counter() - t0
    figures = {
        "rows": result.rows,
        "brands": result.brands,
        "seconds": seconds,
        "holdout": result.holdout_score,
    }
    Path(out).write_text(json.dumps(figures))
    return 0


def _quality(config: str, model_dir: str, out: str) -> int:
    """Add the model's error against the truth to the figures in ``out`` (``model_dir``:
    a saved estimator, or ``-`` for the global champion)."""
    from tabtune import pipeline
    from tabtune.config import load_config

    cfg = load_config(config)
    model = None
    if model_dir != "-":
        model = pipeline.estimator_class(cfg.task(TASK)).load(model_dir)
    figures = json.loads(Path(out).read_text())
    figures["truth_error"] = _truth_error(cfg, model)
    Path(out).write_text(json.dumps(figures))
    return 0


def _in_memory_pretrain(cfg: Any) -> tuple[Any, Any]:
    """The path before batching: every row read, turned into task features and fitted at once."""
    from tabtune import pipeline

    task = cfg.task(TASK)
    data = pipeline.task_data(pipeline.store_for(cfg).read(), task)
    est = pipeline.global_estimator(cfg, task).fit(data.X, data.y, sample_weight=data.weight)
    result = pipeline.PretrainResult(
        task=TASK,
        model_id="",
        rows=len(data),
        brands=int(data.X["brand_id"].nunique()),
        seconds=0.0,
        holdout_score=est.holdout_scores_.get("global"),
        data_window=("", ""),
    )
    return result, est


def _truth_error(cfg: Any, model: Any = None) -> float | None:
    """Weighted relative error of ``model`` (default: the global champion) in revenue per
    click against the true value per click, on the newest 10% of days of a 200-brand sample
    (clicks as weights)."""
    from tabtune import pipeline

    if model is None:
        ref = pipeline.registry_for(cfg).resolve(TASK)
        if ref is None:
            return None
        model = pipeline.load_model(ref, cfg.task(TASK))
    store = pipeline.store_for(cfg)
    brands = store.brands()
    sample = [brands[i] for i in np.linspace(0, len(brands) - 1, min(200, len(brands))).astype(int)]
    first, last = store.date_range()
    start = last - (last - first) * 0.1
    rows = store.read(brands=sample, start=start)
    data = pipeline.task_data(rows, cfg.task(TASK))
    import pandas as pd

    truth = pd.read_parquet(Path(cfg.data.truth_dir) / "truth.parquet")
    keys = ["brand_id", "date", "channel", "campaign_id", "audience", "device"]
    merged = data.rows[keys].merge(truth[[*keys, "true_value_per_click"]], on=keys, how="left")
    true_vpc = merged["true_value_per_click"].to_numpy()
    pred = model.predict(pipeline.align_features(data.X, model))
    w = data.weight if data.weight is not None else np.ones(len(pred))
    ok = np.isfinite(true_vpc)
    return float(np.sum(w[ok] * np.abs(pred[ok] - true_vpc[ok])) / np.sum(w[ok] * true_vpc[ok]))


def _dask_available() -> bool:
    from tabtune import pipeline

    return "scheduler" in inspect.signature(pipeline.pretrain).parameters


def _with_earlier_sizes(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` plus the earlier run's figures (docs/benchmarks/scale.json) for the (size, mode)
    pairs not run now, marked with that run's note, so that a run of the large sizes alone
    keeps the small ones in the table."""
    path = ROOT / "docs" / "benchmarks" / "scale.json"
    if not path.exists():
        return out
    earlier = json.loads(path.read_text())
    done = {(r["millions"], r["mode"]) for r in out["results"]}
    kept = [r for r in earlier.get("results", []) if (r["millions"], r["mode"]) not in done]
    if not kept:
        return out
    for r in kept:
        r.setdefault("earlier_run", earlier.get("args", {}).get("note") or "earlier run")
    results = sorted([*kept, *out["results"]], key=lambda r: (r["millions"], r["mode"]))
    notes = [
        *out["notes"],
        *(
            n if n.startswith("earlier run: ") else f"earlier run: {n}"
            for n in earlier.get("notes", [])
        ),
    ]
    sizes = sorted({f"{r['millions']:g}M" for r in kept})
    notes.append(
        f"Rows of {', '.join(sizes)} not rerun: from the earlier run "
        f"({earlier.get('args', {}).get('note') or 'no note'})"
    )
    return {**out, "results": results, "notes": notes}


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [float(s) for s in args.sizes.split(",")] + ([10.0, 20.0] if args.large else [])
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="tabtune-scale-"))
    for millions in sizes:
        brands = max(1, round(millions * 1e6 / ROWS_PER_BRAND))
        root = work / f"rows-{millions:g}M"
        config = _config(root, args.threads)
        recorded = root / "synth.json"
        if args.reuse_store and recorded.exists():
            # The store of an earlier run, and that run's figures of writing it.
            synth = json.loads(recorded.read_text()) | {"reused": True}
            print(f"reusing the store in {root} (synth figures from when it was written)")
        else:
            synth = _measured(
                [
                    sys.executable, "-m", "tabtune.cli", "--config", str(config), "synth",
                    "--brands", str(brands), "--days", str(DAYS), "--seed", str(args.seed),
                ],
                recorded,
            )  # fmt: skip
        for mode in modes:
            if mode.startswith("dask") and not _dask_available():
                notes.append("dask: skipped (pipeline.pretrain has no `scheduler` keyword yet)")
                continue
            if mode == "in-memory" and millions > args.in_memory_max:
                continue
            out = root / f"{mode}.json"
            usage = _measured(
                [sys.executable, "-m", "benchmarks.scale", "_child", str(config), mode, str(out)],
                root / f"{mode}-usage.json",
            )
            figures: dict[str, Any] = {}
            if usage["returncode"] == 0:
                model = str(out.with_suffix(".model")) if mode == "in-memory" else "-"
                subprocess.run(
                    [sys.executable, "-m", "benchmarks.scale", "_quality", str(config), model,
                     str(out)],
                    check=True,
                    cwd=ROOT,
                )  # fmt: skip
                figures = json.loads(out.read_text())
            results.append(
                {"millions": millions, "brands": brands, "mode": mode, "synth": synth}
                | usage
                | figures
            )
            print(json.dumps(results[-1], default=float), flush=True)
    return {
        "machine": machine(),
        "results": results,
        "notes": sorted(set(notes)),
        "args": vars(args),
    }


def render(out: dict[str, Any], command: str) -> str:
    rows = []
    for r in out["results"]:
        rows.append(
            [
                f"{r.get('rows', 0) / 1e6:.2f}M",
                r["brands"],
                r["mode"] + (" (earlier run)" if r.get("earlier_run") else ""),
                f"{r['wall']:.0f}",
                f"{r['cpu']:.0f}",
                f"{r['peak_rss_gb']:.2f}",
                "" if r.get("holdout") is None else f"{r['holdout']:.4f}",
                "" if r.get("truth_error") is None else f"{r['truth_error']:.3f}",
                f"{r['synth']['wall']:.0f} s / {r['synth']['peak_rss_gb']:.2f} GB",
            ]
        )
    header = [
        "rows", "brands", "mode", "wall s", "CPU s", "peak RSS GB", "holdout deviance",
        "rel. error vs truth", "synth (wall / peak)",
    ]  # fmt: skip
    lines = [
        "## Scale: pooled pretraining against rows",
        "",
        f"`{command}` on {out['machine']}; bid task, 730 days, default model settings, each "
        "pretrain in a fresh process (wall, CPU and peak RSS of that process). `batched` is "
        "`tabtune pretrain` (brand batches into a float32 matrix); `in-memory` is the "
        "estimator's `fit` on all rows read at once (the path before); `dask` is `tabtune "
        "pretrain --scheduler` on a local cluster (`lightgbm.dask`); a `-xgboost` mode is the "
        "same with `backend: xgboost` (`xgboost.train`, `xgboost.dask`). Relative error: "
        "predicted revenue per click against the simulator's true value per click on the newest "
        "10% of days of 200 brands (clicks as weights), computed afterwards in another process, "
        "of the final model (regrown on every row). Holdout deviance: the early-stopped fit's, "
        "on the newest rows; above 1M training rows that fit learns from, and is scored on, a "
        "seeded sample of brands holding about 1M of them (`model.early_stopping_max_rows`), "
        "so the column compares sizes only loosely.",
        "",
        md_table(header, rows),
    ]
    notes = list(out["notes"])
    if out.get("args", {}).get("note"):
        notes.insert(0, out["args"]["note"])
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_measure"]:
        return _measure(argv[1], argv[3:])
    if argv[:1] == ["_child"]:
        return _child(*argv[1:4])
    if argv[:1] == ["_quality"]:
        return _quality(*argv[1:4])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1,5", help="millions of rows, comma-separated")
    p.add_argument("--large", action="store_true", help="also 10M and 20M rows")
    p.add_argument("--modes", default="batched,in-memory,dask", help=f"any of {MODES}")
    p.add_argument(
        "--in-memory-max", type=float, default=5.0, help="largest size (M rows) for in-memory"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="model.n_jobs (default: all cores)")
    p.add_argument("--workdir", default=None, help="where stores are written (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="0.1M rows, printed only")
    p.add_argument(
        "--reuse-store",
        action="store_true",
        help="with --workdir: pretrain on the stores an earlier run wrote there (no synth)",
    )
    p.add_argument("--note", default=None, help="a line on the conditions (e.g. a busy machine)")
    p.add_argument(
        "--fresh", action="store_true", help="drop the figures of sizes and modes not run now"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.large = "0.1", False
    out = run(args)
    if not args.quick and not args.fresh:
        out = _with_earlier_sizes(out)
    write_raw("scale" + ("-quick" if args.quick else ""), out)
    command = "python -m benchmarks.scale" + (" --large" if args.large else "")
    if args.sizes != "1,5":
        command += f" --sizes {args.sizes}"
    if args.threads is not None:
        command += f" --threads {args.threads}"
    if args.quick:
        print(render(out, command + " --quick"))
    else:
        write_section("scale", render(out, f"make bench  # {command}"))
        print("wrote docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    raise SystemExit(main())
