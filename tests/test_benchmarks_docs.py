"""docs/benchmarks.md says what the committed raw figures say.

Every section of docs/benchmarks.md is written by its benchmark script from the figures it
also writes to ``docs/benchmarks/<name>.json``. Rendering each section again from its JSON
must give the committed text: a section copied in from an older checkout (or edited by hand)
then fails here instead of contradicting its own raw figures.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import (  # noqa: E402
    bids,
    budget,
    dask_transfer,
    device,
    facebook,
    refit_schedule,
    refresh,
    run_state,
    scale,
    transfer,
    tuning,
)
from benchmarks.common import DOC, RAW_DIR  # noqa: E402


def _section(name: str) -> str:
    match = re.search(
        rf"<!-- section:{re.escape(name)} -->\n(.*?)\n<!-- /section:{re.escape(name)} -->",
        DOC.read_text(),
        re.S,
    )
    assert match, f"docs/benchmarks.md has no section {name!r}"
    return match.group(1)


def _raw(name: str) -> dict[str, Any]:
    return json.loads((RAW_DIR / f"{name}.json").read_text())


def _bench_command(name: str) -> str:
    """The command line the section was written with (its first backquoted `make bench`)."""
    match = re.search(r"`(make bench  # [^`]*)`", _section(name))
    assert match, f"section {name!r} names no `make bench` command"
    return match.group(1)


def _refresh_raws() -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text())
        for path in sorted(RAW_DIR.glob("refresh*.json"))
        if path.stem != "refresh-quick"
    ]


RENDERERS: dict[str, Callable[[], str]] = {
    "transfer": lambda: transfer.render(
        _raw("transfer"), "make bench  # python -m benchmarks.transfer"
    ),
    "transfer-fresh": lambda: transfer.render(
        _raw("transfer-fresh"), _bench_command("transfer-fresh")
    ),
    "transfer-pooled": lambda: transfer.render_pooled(
        {name: _raw(name) for name in transfer.POOLED_RUNS}
    ),
    "tuning": lambda: tuning.render(_raw("tuning"), "make bench  # python -m benchmarks.tuning"),
    "refit-schedule": lambda: refit_schedule.render(
        _raw("refit-schedule"), "make bench  # python -m benchmarks.refit_schedule"
    ),
    "refresh": lambda: refresh.render(
        _raw("refresh"), "make bench  # python -m benchmarks.refresh"
    ),
    "refresh-scaling": lambda: refresh.render_scaling(_refresh_raws()),
    "bids": lambda: bids.render(_raw("bids"), "python -m benchmarks.bids"),
    "budget": lambda: budget.render(_raw("budget")),
    "facebook": lambda: facebook.render(_raw("facebook")),
    "dask-transfer": lambda: dask_transfer.render(
        _raw("dask-transfer"), _bench_command("dask-transfer")
    ),
    "run-state": lambda: run_state.render(_raw("run-state"), _bench_command("run-state")),
    "scale": lambda: scale.render(_raw("scale"), _bench_command("scale")),
    "device": lambda: device.render(_raw("device"), "python -m benchmarks.device"),
}


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_section_is_what_its_script_renders_from_the_raw_figures(name):
    assert RENDERERS[name]().rstrip() == _section(name)


def test_every_section_is_checked():
    names = set(re.findall(r"<!-- section:(\S+) -->", DOC.read_text()))
    assert names == set(RENDERERS)
