"""What recording brands costs a refresh run, against the brands of the night.

A refresh records each brand as it is done, so that a killed run resumes where it stopped.
Until 2026-12-06 it rewrote ``runs/<D>/state.json`` whole (atomically, fsynced) after every
brand, which costs the whole state each time: quadratic in the brands. Now it appends the
brand's record to ``runs/<D>/state.journal`` (one JSON line, fsynced) and writes the state
whole when the run starts and ends. This measures both ways for nights of N brands, with
records shaped like a refresh's (a ``cold_start``, a ``promoted`` and a ``kept`` brand with
scores, timings, notes and output paths), on this machine's disk: wall seconds for the whole
night's bookkeeping, and per brand. No model is trained.

    python -m benchmarks.run_state            # -> docs/benchmarks.md
    python -m benchmarks.run_state --quick    # printed only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, md_table, write_raw, write_section
from tabtune.refresh.state import (
    BrandRecord,
    append_record,
    load_state,
    new_state,
    parse_date,
    record_brand,
    save_state,
)

SIZES = (200, 1_000, 5_000)


def _record(i: int) -> BrandRecord:
    """The record of brand ``i``, shaped like a refresh's (three kinds in turn)."""
    brand = f"brand_{i:05d}"
    outputs = {
        kind: f"outputs/2024-12-30/{kind}/brand_id={brand}/part-0.parquet"
        for kind in ("predictions", "bids")
    }
    kinds = [
        {
            "status": "cold_start",
            "served_by": "global",
            "model_id": "global/bid/v0001",
            "reason": "61 usable rows < min_rows_to_adapt=100; served by the global model",
            "scores": {"champion": None, "challenger": None, "global": 0.2191},
        },
        {
            "status": "promoted",
            "served_by": "challenger",
            "model_id": f"brands/{brand}/bid/v0002",
            "challenger_id": f"brands/{brand}/bid/v0002",
            "champion_id": f"brands/{brand}/bid/v0001",
            "strategy": "continue",
            "reason": "repeats the champion's choice (continue) on newer rows; out of time it "
            "scores 0.17342",
            "scores": {"champion": 0.17342, "challenger": 0.17342, "global": 0.20411},
        },
        {
            "status": "kept",
            "served_by": "champion",
            "model_id": f"brands/{brand}/bid/v0001",
            "challenger_id": f"brands/{brand}/bid/v0002",
            "champion_id": f"brands/{brand}/bid/v0001",
            "strategy": "refit",
            "reason": "challenger 0.18 vs champion 0.179 (-0.6%) does not beat the 1.0% margin",
            "scores": {"champion": 0.179, "challenger": 0.18, "global": 0.2},
        },
    ]
    fields: dict[str, Any] = kinds[i % 3]
    return BrandRecord(
        brand_id=brand,
        rows=1346,
        outputs=outputs,
        notes=["decisions written from the model that serves the brand"],
        timings={"load": 0.031, "train": 0.281, "evaluate": 0.004, "write": 0.049},
        seconds=0.37,
        **fields,
    )


def night(n: int, journal: bool, root: Path) -> float:
    """Wall seconds of one night's bookkeeping for ``n`` brands, the one way or the other."""
    path = root / ("journal" if journal else "rewrite") / f"{n}" / "state.json"
    state = new_state(parse_date("2024-12-29"), "bid", started_at="t0", global_model="g")
    t0 = time.perf_counter()
    save_state(path, state)
    for i in range(n):
        rec = _record(i)
        if journal:
            state = append_record(path, state, rec)
        else:
            state = record_brand(state, rec)
            save_state(path, state)
    save_state(path, {**state, "finished_at": "t1"})
    seconds = time.perf_counter() - t0
    loaded = load_state(path)
    assert loaded is not None and len(loaded["brands"]) == n
    return seconds


def run(sizes: list[int]) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tabtune-run-state-") as tmp:
        for n in sizes:
            figures = {"brands": n}
            for journal in (False, True):
                seconds = night(n, journal, Path(tmp))
                key = "journal" if journal else "rewrite"
                figures[key] = seconds
                print(f"{n} brands, {key}: {seconds:.2f}s", flush=True)
            rows.append(figures)
    return {"machine": machine(), "results": rows}


def render(out: dict[str, Any], command: str) -> str:
    table = [
        [
            f"{r['brands']:,}",
            f"{r['rewrite']:.2f}",
            f"{1e3 * r['rewrite'] / r['brands']:.1f}",
            f"{r['journal']:.2f}",
            f"{1e3 * r['journal'] / r['brands']:.1f}",
        ]
        for r in out["results"]
    ]
    header = [
        "brands", "state.json rewritten per brand: s", "ms / brand",
        "journal line per brand: s", "ms / brand",
    ]  # fmt: skip
    return "\n".join(
        [
            "## Refresh: recording each brand (run state)",
            "",
            f"`{command}` on {out['machine']}. The bookkeeping alone of a night of N brands "
            "(records shaped like a refresh's, no model trained), both ways: the state "
            "rewritten whole and fsynced after every brand (the refresh until 2026-12-06), and "
            "one fsynced line per brand appended to `state.journal` with the state written "
            "whole at the start and the end (the refresh now).",
            "",
            md_table(header, table),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    p.add_argument("--quick", action="store_true", help="200 brands, printed only")
    args = p.parse_args(argv)
    sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",")]
    out = run(sizes)
    command = "python -m benchmarks.run_state" + (" --quick" if args.quick else "")
    if args.quick:
        print(render(out, command))
    else:
        write_raw("run-state", out)
        write_section("run-state", render(out, f"make bench  # {command}"))
        print("wrote docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
