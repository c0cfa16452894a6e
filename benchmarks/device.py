"""Device benchmark: XGBoost ``device="cuda"`` against ``device="cpu"`` through tabtune.

Needs a CUDA GPU and the CUDA build of xgboost (the ``xgboost`` wheel, not ``xgboost-cpu``);
without them it says so and exits 0 without writing anything. Measured on the same data and
parameters for both devices:

* **pretraining** a global model on simulated campaigns (``tabtune.data.synth.simulate``, bid
  task, brand context on) and on a 1M-row synthetic regression frame: wall time, and how far the
  CUDA model's predictions are from the CPU model's (XGBoost's GPU histograms sum in another
  order, so the trees may differ slightly);
* **adapting** held-out brands with ``strategy="auto"`` (the nightly job): wall time per brand and
  error against the simulator's true value per click, CPU vs CUDA;
* **predicting** 1M rows;
* **round trip**: a CUDA-trained model saved and loaded predicts bit for bit the same, also when
  loaded with ``device="cpu"`` on the CPU (no GPU needed to serve).

Run: ``python -m benchmarks.device`` on a GPU machine (writes the ``device`` section of
docs/benchmarks.md); ``--json PATH`` also keeps the raw figures, ``--render PATH`` writes the
section from figures measured elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    md_table,
    regression_frame,
    simulated_bid_task,
    weighted_mae,
    write_raw,
    write_section,
)
from benchmarks.transfer import PARAMS as TRANSFER_PARAMS
from tabtune.optional import optional_import

#: The transfer benchmark's boosting parameters, on XGBoost (copied before that benchmark sets
#: its objective).
PARAMS: dict[str, Any] = dict(TRANSFER_PARAMS, backend="xgboost")


def _cupy() -> Any:
    """CuPy, imported now (an ImportError naming ``tabtune[gpu]`` when missing)."""
    return optional_import("cupy", extra="gpu", purpose="the CUDA benchmark")


def _timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and its wall time in seconds."""
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - t0


def _rel_rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)) / (np.sqrt(np.mean(b**2)) + 1e-12))


def environment() -> dict[str, Any]:
    """Versions, GPU name and whether tabtune can train XGBoost on CUDA here."""
    import subprocess

    import xgboost as xgb

    from tabtune.boosting import cuda_available

    try:
        gpu = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        gpu = ""
    try:
        cupy_version = _cupy().__version__
    except ImportError:
        cupy_version = None
    return {
        "gpu": gpu,
        "cores": os.cpu_count(),
        "xgboost": xgb.__version__,
        "xgboost_cuda_build": bool(xgb.build_info().get("USE_CUDA", False)),
        "cupy": cupy_version,
        "cuda_usable": cuda_available("xgboost"),
    }


def pretrain_and_adapt(args: argparse.Namespace) -> dict[str, Any]:
    """Simulated campaigns: pretrain on the pool, adapt held-out brands, on both devices."""
    from tabtune import TabTuneRegressor

    sim = simulated_bid_task(args.brands, args.days, args.seed, args.test_days)
    X, y, w, truth, before = sim.X, sim.y, sim.weight, sim.truth, sim.before
    counts = X.loc[before, "brand_id"].value_counts()
    # Held-out brands across sizes: every len(counts) // n-th brand by training rows.
    ranked = counts.sort_values().index.tolist()
    step = max(1, len(ranked) // args.heldout)
    held = [ranked[i] for i in range(step // 2, len(ranked), step)][: args.heldout]
    pool = before & ~X["brand_id"].isin(held).to_numpy()
    params = dict(PARAMS, objective=sim.objective)
    out: dict[str, Any] = {
        "pool_rows": int(pool.sum()),
        "brands": args.brands,
        "days": args.days,
        "objective": sim.objective,
    }
    models = {}
    for device in ("cpu", "cuda"):
        est = TabTuneRegressor(group_column="brand_id", time_column="date", device=device, **params)
        _, seconds = _timed(est.fit, X[pool], y[pool], sample_weight=w[pool])
        models[device] = est
        out[f"pretrain_{device}_s"] = seconds
        out[f"pretrain_{device}_trees"] = int(est.best_iteration_)
        print(f"pretrain {device}: {seconds:.1f}s, {est.best_iteration_} trees", flush=True)
    test_pool = ~before & ~X["brand_id"].isin(held).to_numpy()
    p_cpu = models["cpu"].predict(X[test_pool])
    p_gpu = models["cuda"].predict(X[test_pool])
    out["pretrain_rel_rms_cpu_vs_cuda"] = _rel_rms(p_gpu, p_cpu)
    scale = float(np.average(truth[test_pool], weights=w[test_pool]))
    for device, p in (("cpu", p_cpu), ("cuda", p_gpu)):
        out[f"pretrain_{device}_rel_mae"] = weighted_mae(p, truth[test_pool], w[test_pool]) / scale
    rows = []
    for brand in held:
        b = (X["brand_id"] == brand).to_numpy()
        tr, te = b & before, b & ~before
        if te.sum() == 0:
            continue
        row: dict[str, Any] = {"brand": brand, "train_rows": int(tr.sum())}
        s = float(np.average(truth[te], weights=w[te]))
        for device in ("cpu", "cuda"):
            est = TabTuneRegressor(base_model=models[device], device=device)
            _, seconds = _timed(est.fit, X[tr], y[tr], sample_weight=w[tr])
            row[f"{device}_s"] = seconds
            row[f"{device}_strategy"] = est.strategy_
            row[f"{device}_rel_mae"] = weighted_mae(est.predict(X[te]), truth[te], w[te]) / s
        rows.append(row)
        print(
            f"  {brand} ({row['train_rows']} rows): cpu {row['cpu_s']:.2f}s "
            f"{row['cpu_strategy']} {row['cpu_rel_mae']:.3f} | cuda {row['cuda_s']:.2f}s "
            f"{row['cuda_strategy']} {row['cuda_rel_mae']:.3f}",
            flush=True,
        )
    out["adapt"] = rows
    return out


def large_frame(args: argparse.Namespace) -> dict[str, Any]:
    """Fit and predict a 1M-row frame on both devices; CUDA round trip through save/load."""
    from tabtune import TabTuneRegressor
    from tabtune.estimators import load

    X, y = regression_frame(args.rows)
    params = dict(PARAMS, n_estimators=200, early_stopping_rounds=None)
    out: dict[str, Any] = {"rows": args.rows, "rounds": 200}
    preds = {}
    for device in ("cpu", "cuda"):
        est = TabTuneRegressor(device=device, **params)
        _, out[f"fit_{device}_s"] = _timed(est.fit, X, y)
        preds[device], _ = _timed(est.predict, X)
        _, out[f"predict_{device}_s"] = _timed(est.predict, X)
        if device == "cuda":
            with tempfile.TemporaryDirectory() as tmp:
                est.save(Path(tmp) / "m")
                again = load(Path(tmp) / "m")
                out["roundtrip_cuda_bit_identical"] = bool(
                    np.array_equal(again.predict(X), preds["cuda"])
                )
                on_cpu = load(Path(tmp) / "m")
                on_cpu.device_ = "cpu"  # what load() resolves to on a machine without a GPU
                p_cpu_serve = on_cpu.predict(X)
                out["cuda_model_served_on_cpu_max_abs_diff"] = float(
                    np.max(np.abs(p_cpu_serve - preds["cuda"]))
                )
        print(
            f"{args.rows:,}-row frame {device}: fit {out[f'fit_{device}_s']:.2f}s, "
            f"predict {out[f'predict_{device}_s']:.2f}s",
            flush=True,
        )
    out["rel_rms_cpu_vs_cuda"] = _rel_rms(preds["cuda"], preds["cpu"])
    return out


def scaling(args: argparse.Namespace) -> dict[str, Any]:
    """Raw XGBoost training time against rows, CPU vs CUDA: where the GPU starts to pay off."""
    import xgboost as xgb

    params = {
        "tree_method": "hist",
        "grow_policy": "lossguide",
        "max_leaves": 63,
        "max_depth": 0,
        "learning_rate": 0.1,
        "objective": "reg:squarederror",
    }
    rows = []
    for n in args.scaling_rows:
        X, y = regression_frame(n)
        codes = X.assign(c=X["c"].cat.codes).to_numpy(np.float32)
        row: dict[str, Any] = {"rows": n, "rounds": args.scaling_rounds}
        for device in ("cpu", "cuda"):
            data = codes
            if device == "cuda":
                data = _cupy().asarray(codes)
            _, row[f"matrix_{device}_s"] = _timed(
                xgb.QuantileDMatrix,
                data,
                label=y.to_numpy(),
                feature_types=["q"] * 8 + ["c"],
                enable_categorical=True,
            )
            dtrain = xgb.QuantileDMatrix(
                data, label=y.to_numpy(), feature_types=["q"] * 8 + ["c"], enable_categorical=True
            )
            _, row[f"train_{device}_s"] = _timed(
                xgb.train, dict(params, device=device), dtrain, args.scaling_rounds
            )
        rows.append(row)
        print(
            f"scaling {n:,} rows: train cpu {row['train_cpu_s']:.2f}s cuda "
            f"{row['train_cuda_s']:.2f}s",
            flush=True,
        )
    return {"rows": rows}


def render(out: dict[str, Any], command: str) -> str:
    """The ``device`` section of docs/benchmarks.md."""
    env = out["environment"]
    lines = [
        "## XGBoost on CUDA vs CPU",
        "",
        f"Measured on {env['gpu'] or 'a GPU machine'} with {env['cores']} CPU cores, XGBoost "
        f"{env['xgboost']} (CUDA build), CuPy {env['cupy']}. Same data and parameters on both "
        f"devices; CPU runs use every core. Command: `{command}`.",
        "",
    ]
    for name in ("simulated", "large", "scaling"):
        if "error" in out.get(name, {}):
            lines += [f"- {name}: failed: `{out[name]['error'].splitlines()[-1]}`", ""]
    sim = out.get("simulated", {})
    if "pretrain_cpu_s" in sim:
        lines += [
            f"Pretraining on simulated campaigns ({sim['brands']} brands x {sim['days']} days, "
            f"pool {sim['pool_rows']:,} rows, bid task, {sim['objective']}, brand context, early "
            "stopping on the newest 20%):",
            "",
            md_table(
                ["device", "wall s", "trees", "rel. MAE vs truth (pool brands, test days)"],
                [
                    [
                        d,
                        f"{sim[f'pretrain_{d}_s']:.1f}",
                        sim[f"pretrain_{d}_trees"],
                        f"{sim[f'pretrain_{d}_rel_mae']:.3f}",
                    ]
                    for d in ("cpu", "cuda")
                ],
            ),
            "",
            f"CUDA vs CPU predictions: relative RMS difference "
            f"{sim['pretrain_rel_rms_cpu_vs_cuda']:.4f}.",
            "",
            "Adapting held-out brands (`strategy='auto'`, 3 rolling folds; each device adapts its "
            "own global model):",
            "",
            md_table(
                [
                    "brand",
                    "rows",
                    "CPU s",
                    "CPU choice",
                    "CPU rel. MAE",
                    "CUDA s",
                    "CUDA choice",
                    "CUDA rel. MAE",
                ],
                [
                    [
                        r["brand"],
                        r["train_rows"],
                        f"{r['cpu_s']:.2f}",
                        r["cpu_strategy"],
                        f"{r['cpu_rel_mae']:.3f}",
                        f"{r['cuda_s']:.2f}",
                        r["cuda_strategy"],
                        f"{r['cuda_rel_mae']:.3f}",
                    ]
                    for r in sim["adapt"]
                ],
            ),
            "",
        ]
    big = out.get("large", {})
    if "fit_cpu_s" in big:
        lines += [
            f"A {big['rows']:,}-row synthetic frame (8 numeric + 1 categorical feature, "
            f"{big['rounds']} rounds, 63 leaves): fit CPU {big['fit_cpu_s']:.2f} s vs CUDA "
            f"{big['fit_cuda_s']:.2f} s ({big['fit_cpu_s'] / big['fit_cuda_s']:.1f}x); predict "
            f"CPU {big['predict_cpu_s']:.2f} s vs CUDA {big['predict_cuda_s']:.2f} s; CUDA vs "
            f"CPU predictions: relative RMS difference {big['rel_rms_cpu_vs_cuda']:.4f}. A "
            "CUDA-trained model saved and loaded predicts bit for bit the same: "
            f"{big['roundtrip_cuda_bit_identical']}; served on the CPU (as `load()` does on a machine without a GPU) it "
            f"differs by at most {big['cuda_model_served_on_cpu_max_abs_diff']:.2g}.",
            "",
        ]
    lines += [f"- {note}" for note in out.get("notes", [])] + ([""] if out.get("notes") else [])
    scale = out.get("scaling", {})
    if "rows" in scale:
        lines += [
            "Raw XGBoost (no tabtune), training time against rows, same parameters (63 leaves, "
            "lossguide, histogram matrices built beforehand):",
            "",
            md_table(
                ["rows", "rounds", "CPU s", "CUDA s", "CPU / CUDA"],
                [
                    [
                        f"{r['rows']:,}",
                        r["rounds"],
                        f"{r['train_cpu_s']:.2f}",
                        f"{r['train_cuda_s']:.2f}",
                        f"{r['train_cpu_s'] / r['train_cuda_s']:.1f}x",
                    ]
                    for r in scale["rows"]
                ],
            ),
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--brands", type=int, default=120)
    p.add_argument("--days", type=int, default=730)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--test-days", type=int, default=60)
    p.add_argument("--heldout", type=int, default=6)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument(
        "--scaling-rows", type=int, nargs="+", default=[1_000_000, 4_000_000, 10_000_000]
    )
    p.add_argument("--scaling-rounds", type=int, default=50)
    p.add_argument(
        "--parts",
        nargs="+",
        default=["large", "simulated", "scaling"],
        choices=["large", "simulated", "scaling"],
    )
    p.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    p.add_argument("--render", type=Path, default=None, help="write the section from this JSON")
    args = p.parse_args(argv)
    command = "python -m benchmarks.device"
    if args.render is not None:
        out = json.loads(args.render.read_text())
        write_raw("device", out)
        write_section("device", render(out, command))
        print("wrote docs/benchmarks.md")
        return 0
    out: dict[str, Any] = {"environment": environment(), "args": vars(args)}
    print(json.dumps(out["environment"]), flush=True)
    if not out["environment"]["cuda_usable"]:
        print("no usable CUDA GPU with a CUDA build of xgboost here: nothing measured")
        return 0
    parts = {"large": large_frame, "simulated": pretrain_and_adapt, "scaling": scaling}
    for name in args.parts:
        fn = parts[name]
        try:
            out[name] = fn(args)
        except Exception:  # noqa: BLE001 - keep what the other part measured
            out[name] = {"error": traceback.format_exc()}
            print(out[name]["error"], flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps(out, indent=2, default=str))
    write_raw("device", json.loads(json.dumps(out, default=str)))
    write_section("device", render(out, command))
    print(render(out, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
