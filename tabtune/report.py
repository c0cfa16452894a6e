"""Run reports of the nightly refresh: ``report.json``, a self-contained ``report.html``, and
the one-screen summary printed at the end of a run and by ``tabtune report``.

This module works on the JSON form of a run report (``RunReport.to_dict()``), so it can render
any stored run without the refresh machinery. Plots are PNGs embedded as base64 in the HTML;
matplotlib is imported only when a report is rendered (``pip install tabtune[plot]``), and
without it the HTML says so and keeps the tables.

Run folders: ``<runs_dir>/<date>/`` for the default task (``bid``), ``<runs_dir>/<date>/<task>/``
for the others (:func:`run_dir_for`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabtune.atomic import atomic_write_bytes
from tabtune.errors import TabTuneInputError
from tabtune.optional import install_hint, optional_import
from tabtune.registry.layout import check_name

__all__ = [
    "DEFAULT_TASK",
    "IN_SAMPLE_STATUSES",
    "JOURNAL_NAME",
    "StoredRun",
    "check_run_file",
    "find_run",
    "load_history",
    "load_run",
    "render_html",
    "replay_journal",
    "run_dir_for",
    "served_score",
    "state_lines",
    "metric_of",
    "summary_lines",
    "earlier_reports",
    "finished_run_dates",
    "write_report",
]

logger = logging.getLogger(__name__)

DEFAULT_TASK = "bid"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
STATE_JSON = "state.json"
#: Beside ``state.json``: one line per brand recorded since the state was last written whole
#: (:func:`tabtune.refresh.state.append_record`). Appending a line costs the record; rewriting
#: the state after every brand cost the whole state, which grows with the brands (about 1 kB
#: each): quadratic in a night of thousands.
JOURNAL_NAME = "state.journal"
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STATUS_ORDER = ("promoted", "kept", "cold_start", "skipped", "failed")
_STATUS_COLOURS = {
    "promoted": "#2a9d8f",
    "kept": "#457b9d",
    "cold_start": "#e9c46a",
    "skipped": "#8d99ae",
    "failed": "#e63946",
}
PLOT_HINT = install_hint("matplotlib", extra="plot", purpose="plotting")


# ---------------------------------------------------------------------------- locations


def run_dir_for(runs_dir: str | Path, date: str, task: str = DEFAULT_TASK) -> Path:
    """The folder of one refresh run: ``runs/<date>/`` (``runs/<date>/<task>/`` for non-bid).

    Raises
    ------
    TabTuneInputError
        ``date`` is not ``YYYY-MM-DD`` or ``task`` is not a plain name (a path such as
        ``/any/dir`` or ``../x``): the folder always stays inside ``runs_dir``.
    """
    if not _DATE_DIR.match(str(date)):
        raise TabTuneInputError(f"run date {str(date)[:40]!r} is not YYYY-MM-DD")
    check_name(task, "task")
    base = Path(runs_dir) / str(date)
    return base if task == DEFAULT_TASK else base / task


def _run_dates(runs_dir: Path, task: str, name: str) -> list[str]:
    if not runs_dir.is_dir():
        return []
    return sorted(
        d.name
        for d in runs_dir.iterdir()
        if _DATE_DIR.match(d.name) and (run_dir_for(runs_dir, d.name, task) / name).is_file()
    )


def find_run(runs_dir: str | Path, task: str = DEFAULT_TASK, date: str | None = None) -> Path:
    """The folder of the run of ``date`` (default: the latest run that has a report or state).

    Raises
    ------
    TabTuneInputError
        No such run; the message lists the runs there are.
    """
    runs_dir = Path(runs_dir)
    dates = sorted(
        set(_run_dates(runs_dir, task, REPORT_JSON)) | set(_run_dates(runs_dir, task, STATE_JSON))
    )
    if not dates:
        raise TabTuneInputError(
            f"no refresh runs of task {task!r} in {runs_dir}; run `tabtune refresh --date D"
            + ("" if task == DEFAULT_TASK else f" --task {task}")
            + "` first"
        )
    if date is None:
        return run_dir_for(runs_dir, dates[-1], task)
    if str(date) not in dates:
        shown = ", ".join(dates[-10:])
        raise TabTuneInputError(
            f"no refresh run of task {task!r} for {date} in {runs_dir}; runs: {shown}"
        )
    return run_dir_for(runs_dir, str(date), task)


def load_history(
    runs_dir: str | Path, task: str = DEFAULT_TASK, *, upto: str | None = None
) -> list[dict[str, Any]]:
    """Stored run reports of a task, oldest first (up to ``upto`` inclusive); unreadable ones
    are skipped."""
    dates = _run_dates(Path(runs_dir), task, REPORT_JSON)
    return _read_reports(runs_dir, task, [d for d in dates if upto is None or d <= str(upto)])


def finished_run_dates(runs_dir: str | Path, task: str = DEFAULT_TASK) -> list[str]:
    """The dates of a task's finished runs (their ``report.json`` written), oldest first."""
    return _run_dates(Path(runs_dir), task, REPORT_JSON)


def earlier_reports(
    runs_dir: str | Path, task: str = DEFAULT_TASK, *, since: str, before: str
) -> list[dict[str, Any]]:
    """The stored run reports of a task dated from ``since`` to before ``before``, newest
    first; unreadable ones are skipped."""
    dates = _run_dates(Path(runs_dir), task, REPORT_JSON)
    return _read_reports(runs_dir, task, [d for d in reversed(dates) if since <= d < before])


def _read_reports(runs_dir: str | Path, task: str, dates: list[str]) -> list[dict[str, Any]]:
    """The run reports of ``dates``, in that order; unreadable ones are skipped (logged)."""
    reports = []
    for date in dates:
        path = run_dir_for(runs_dir, date, task) / REPORT_JSON
        try:
            reports.append(check_run_file(json.loads(path.read_text(encoding="utf-8")), path))
        except (OSError, ValueError):
            logger.warning("skipping unreadable report %s", path)
    return reports


_RUN_FIX = (
    "restore it from a backup, or move the run folder away and rerun "
    "`tabtune refresh --date D` to redo the date"
)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _run_file_problem(data: Any, kind: str) -> str | None:
    """What is wrong with a parsed ``report.json`` / ``state.json``, or None."""
    if not isinstance(data, dict):
        return f"it is a JSON {type(data).__name__}, not an object"
    want = list if kind == "report" else dict
    brands = data.get("brands", want())
    if not isinstance(brands, want):
        return f"'brands' is not a JSON {'list' if want is list else 'object'}"
    for entry in brands if isinstance(brands, list) else brands.values():
        if not isinstance(entry, dict):
            return "a brand entry is not an object"
        if kind == "state":  # shown as counts per status only
            if entry.get("status") not in _STATUS_ORDER:
                return f"a brand has status {str(entry.get('status'))[:40]!r}"
            continue
        if not isinstance(entry.get("brand_id"), str):
            return "a brand entry has no 'brand_id'"
        scores = entry.get("scores") or {}
        if not isinstance(scores, dict) or not all(map(_is_number, scores.values())):
            return f"brand {entry['brand_id']!r}: 'scores' is not an object of numbers"
        if not _is_number(entry.get("seconds")) or not _is_number(entry.get("rows")):
            return f"brand {entry['brand_id']!r}: 'seconds' or 'rows' is not a number"
        if not isinstance(entry.get("notes") or [], list):
            return f"brand {entry['brand_id']!r}: 'notes' is not a list"
    for key in ("date", "task"):
        if (key in data or kind == "state") and not isinstance(data.get(key), str):
            return f"{key!r} is not a string"
    for key in ("summary", "timings"):
        value = data.get(key) or {}
        if not isinstance(value, dict):
            return f"{key!r} is not an object"
    if not all(map(_is_number, (data.get("timings") or {}).values())):
        return "'timings' holds something that is not a number"
    if not _is_number((data.get("summary") or {}).get("median_uplift_vs_global")):
        return "'summary.median_uplift_vs_global' is not a number"
    if not isinstance(data.get("notes") or [], list):
        return "'notes' is not a list"
    return None


def check_run_file(data: Any, path: Path, kind: str = "report") -> dict[str, Any]:
    """Return a parsed run ``report.json`` (or ``state.json``, ``kind="state"``) if its shape
    is right.

    Parameters
    ----------
    data : Any
        The parsed JSON.
    path : Path
        Where it was read, for the message.
    kind : {"report", "state"}

    Returns
    -------
    dict

    Raises
    ------
    TabTuneInputError
        Naming the file, what is wrong and the fix.
    """
    problem = _run_file_problem(data, kind)
    if problem is not None:
        raise TabTuneInputError(f"{path} is not a tabtune run {kind} ({problem}); {_RUN_FIX}")
    return data


# ---------------------------------------------------------------------------- summaries


def served_score(brand: Mapping[str, Any]) -> float | None:
    """Holdout error of the model that serves the brand after the run (``None`` if unknown)."""
    served = brand.get("served_by")
    value = (brand.get("scores") or {}).get(served) if served else None
    return None if value is None or not math.isfinite(value) else float(value)


#: Statuses whose serving model is scored on a window it learnt from (a cold start's
#: offsets, a champion kept without new rows): left out of the median uplift.
IN_SAMPLE_STATUSES = frozenset({"cold_start", "skipped"})


def _uplift(brand: Mapping[str, Any]) -> float | None:
    if brand.get("status") in IN_SAMPLE_STATUSES:
        return None  # scored in sample: it learnt from the window's rows
    served, base = served_score(brand), (brand.get("scores") or {}).get("global")
    if served is None or not base:
        return None
    return (base - served) / base


def _fmt(value: Any, digits: int = 6) -> str:  # 6: a promotion by 0.01% shows
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def summary_lines(report: Mapping[str, Any], *, slowest: int = 5, failures: int = 10) -> list[str]:
    """The one-screen summary of a run as plain lines.

    Counts per status, the global model, the median uplift over the global model, the slowest
    brands and the failures with their reasons.
    """
    brands = list(report.get("brands", []))
    summary = report.get("summary", {})
    timings = report.get("timings", {})
    lines = [
        f"refresh {report.get('task')} {report.get('date')}: {len(brands)} brands, "
        f"global model {report.get('global_model') or '-'}"
        + (f", {timings['wall']:.1f}s" if timings.get("wall") is not None else "")
    ]
    counts = {s: sum(1 for b in brands if b.get("status") == s) for s in _STATUS_ORDER}
    lines.append("  " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    uplift = summary.get("median_uplift_vs_global")
    if uplift is not None:
        scored = [b for b in brands if _uplift(b) is not None]
        by_global = sum(1 for b in scored if b.get("served_by") == "global")
        lines.append(
            f"  median change in {metric_of(report)}, serving model relative to the global "
            "model (negative: a lower loss), on each brand's out-of-time rows: "
            f"{0.0 - uplift:+.2%} (over {len(scored)} brand{'' if len(scored) == 1 else 's'}"
            + (f"; the {by_global} the global model serves count as 0)" if by_global else ")")
        )
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    # a brand's seconds may be null (unknown): counted as 0
    timed = sorted(brands, key=lambda b: b.get("seconds") or 0.0, reverse=True)[:slowest]
    if timed:
        lines.append(
            "  slowest: "
            + ", ".join(f"{b['brand_id']} {b.get('seconds') or 0.0:.1f}s" for b in timed)
        )
    failed = [b for b in brands if b.get("status") == "failed"]
    if failed:
        lines.append(f"  FAILED ({len(failed)}):")
        for b in failed[:failures]:
            lines.append(f"    {b['brand_id']}: {b.get('reason', '')}")
        if len(failed) > failures:
            lines.append(f"    ... and {len(failed) - failures} more (see report.json)")
    return lines


# ---------------------------------------------------------------------------- plots


def _matplotlib(module: str) -> Any:
    """A matplotlib module, imported now (an ImportError naming ``tabtune[plot]`` if missing)."""
    return optional_import(module, extra="plot", purpose="plotting")


def _png(fig: Any) -> str:
    _matplotlib("matplotlib.backends.backend_agg").FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def metric_of(report: Mapping[str, Any]) -> str:
    """The name of the loss a run's scores are in (older reports: "holdout error")."""
    return str(report.get("metric") or "holdout error")


def error_trend_png(history: Sequence[Mapping[str, Any]]) -> str | None:
    """Base64 PNG: each brand's serving holdout error over the runs (``None`` without data).

    The y axis names the loss of the newest run (:func:`metric_of`).
    """
    Figure = _matplotlib("matplotlib.figure").Figure

    series: dict[str, list[tuple[Any, float]]] = {}
    for run in history:
        for b in run.get("brands", []):
            score = served_score(b)
            if score is not None and score > 0:
                series.setdefault(b["brand_id"], []).append((run["date"], score))
    if not series:
        return None
    dates = sorted({d for points in series.values() for d, _ in points})
    pos = {d: i for i, d in enumerate(dates)}
    fig = Figure(figsize=(7.5, 3.6))
    ax = fig.add_subplot()
    labelled = len(series) <= 12
    for brand, points in sorted(series.items()):
        xs = [pos[d] for d, _ in points]
        ys = [v for _, v in points]
        ax.plot(
            xs,
            ys,
            marker="o",
            ms=3,
            lw=1,
            alpha=0.85 if labelled else 0.35,
            label=brand if labelled else None,
        )
    ax.set_yscale("log")
    step = max(1, len(dates) // 8)
    ax.set_xticks(
        range(0, len(dates), step),
        [dates[i] for i in range(0, len(dates), step)],
        rotation=30,
        ha="right",
        fontsize=8,
    )
    ax.set_ylabel(f"{metric_of(history[-1])} of the serving model (cold starts: in sample)")
    ax.set_title("Error trend over runs")
    ax.grid(alpha=0.3)
    if labelled:
        ax.legend(fontsize=7, ncol=2, loc="best")
    return _png(fig)


def uplift_png(report: Mapping[str, Any]) -> str | None:
    """Base64 PNG: error reduction of the serving model over the global one, by brand size."""
    Figure = _matplotlib("matplotlib.figure").Figure

    # A cold start is drawn on the zero line: its score on the window is in sample (its model
    # learnt from those rows), so it has no out-of-time uplift to show.
    measured = [
        (
            b.get("rows") or 0,
            0.0 if b.get("status") == "cold_start" else _uplift(b),
            b.get("status"),
        )
        for b in report.get("brands", [])
    ]
    points = [(r, u, s) for r, u, s in measured if u is not None and r > 0]
    if not points:
        return None
    fig = Figure(figsize=(7.5, 3.6))
    ax = fig.add_subplot()
    for status in _STATUS_ORDER:
        sel = [(r, 100 * u) for r, u, s in points if s == status]
        if sel:
            ax.scatter(
                [r for r, _ in sel],
                [u for _, u in sel],
                s=22,
                color=_STATUS_COLOURS[status],
                label=status,
            )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("brand rows (usable, up to the run date)")
    ax.set_ylabel("loss reduction vs global (%, +: lower loss)")
    ax.set_title("Uplift of the adapted model over the global model by brand size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em} td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} .status{font-weight:600}
.failed{color:#c1121f} .note{color:#555;font-size:.85em} img{max-width:100%}
"""


def _cell(value: Any, *, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in (("num" if num else ""), cls) if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{html.escape(_fmt(value))}</td>"


#: Decision plots embedded in a run report (the others are listed with their paths).
MAX_EMBEDDED_PLOTS = 24


def _decision_plot_parts(report: Mapping[str, Any]) -> list[str]:
    """HTML of the brands' decision plots (``refresh.plots``): embedded PNGs, then paths."""
    plotted = [
        b
        for b in report.get("brands", [])
        if (b.get("outputs") or {}).get("plot") and Path(b["outputs"]["plot"]).is_file()
    ]
    if not plotted:
        return []
    parts = [
        "<h2>Brand decisions</h2>",
        f'<p class="note">decision plots of {len(plotted)} brands (refresh.plots); '
        f"PNG files beside the decisions under outputs/</p>",
    ]
    for b in plotted[:MAX_EMBEDDED_PLOTS]:
        path = Path(b["outputs"]["plot"])
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = (
            f"{b.get('brand_id')}: {b.get('status', '')}, served by {b.get('model_id', '')}"
            f" ({b.get('strategy') or 'global'})"
        )
        parts.append(
            f"<h3>{html.escape(str(b.get('brand_id')))}</h3>"
            f'<p class="note">{html.escape(caption)} | {html.escape(str(path))}</p>'
            f'<p><img alt="{html.escape(str(b.get("brand_id")))} decisions" '
            f'src="data:image/png;base64,{data}"></p>'
        )
    rest = plotted[MAX_EMBEDDED_PLOTS:]
    if rest:
        parts.append(
            '<p class="note">more plots: '
            + html.escape(", ".join(str(b["outputs"]["plot"]) for b in rest))
            + "</p>"
        )
    return parts


def render_html(
    report: Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None = None
) -> str:
    """A self-contained HTML page for a run: summary, plots (embedded PNG) and a brand table.

    Parameters
    ----------
    report : mapping
        The run report (``report.json`` content).
    history : sequence of mapping, optional
        Reports of earlier runs (oldest first, this one included) for the error trend;
        default this run only.
    """
    history = list(history) if history else [report]
    title = f"tabtune refresh {report.get('task')} {report.get('date')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<pre>" + html.escape("\n".join(summary_lines(report))) + "</pre>",
    ]
    meta = {
        "started": report.get("started_at"),
        "finished": report.get("finished_at"),
        "global model": report.get("global_model"),
        **{
            f"time {k} (s)"
            if k in ("wall", "pretrain")  # one each: the night's clock, the global pretraining
            else f"time {k}, summed over brands and attempts (s)": v
            for k, v in (report.get("timings") or {}).items()
        },
    }
    parts.append(
        "<table>"
        + "".join(f"<tr><th>{html.escape(k)}</th>{_cell(v)}</tr>" for k, v in meta.items())
        + "</table>"
    )

    parts.append("<h2>Plots</h2>")
    try:
        images = [("error trend", error_trend_png(history)), ("uplift by size", uplift_png(report))]
    except ImportError:
        parts.append(f'<p class="note">{html.escape(PLOT_HINT)}</p>')
    else:
        for alt, png in images:
            if png is None:
                parts.append(f'<p class="note">{alt}: no scored brands to plot</p>')
            else:
                parts.append(f'<p><img alt="{alt}" src="data:image/png;base64,{png}"></p>')

    parts.extend(_decision_plot_parts(report))
    parts.extend(_brand_table_parts(report))
    parts.append("</body></html>")
    return "\n".join(parts)


def _brand_table_parts(report: Mapping[str, Any]) -> list[str]:
    """The HTML of the per-brand table; the score columns are headed by the run's metric."""
    metric = html.escape(metric_of(report))
    headers = [
        "brand",
        "status",
        "rows",
        "strategy",
        f"champion ({metric})",
        "challenger",
        "global",
        "loss change vs global (-: lower)",
        "model",
        "seconds",
        "reason",
    ]
    parts = ["<h2>Brands</h2><table><tr>", "".join(f"<th>{h}</th>" for h in headers) + "</tr>"]
    for b in report.get("brands", []):
        scores = b.get("scores") or {}
        uplift = _uplift(b)
        reason = b.get("reason", "")
        if b.get("notes"):
            reason += " | " + " | ".join(b["notes"])
        status = b.get("status", "")
        parts.append(
            "<tr>"
            + _cell(b.get("brand_id"))
            + _cell(status, cls=f"status {status}")
            + _cell(b.get("rows"), num=True)
            + _cell(b.get("strategy"))
            + _cell(scores.get("champion"), num=True)
            + _cell(scores.get("challenger"), num=True)
            + _cell(scores.get("global"), num=True)
            + _cell(None if uplift is None else f"{-uplift:+.2%}", num=True)
            + _cell(b.get("model_id"))
            + _cell(None if b.get("seconds") is None else round(float(b["seconds"]), 2), num=True)
            + _cell(reason, cls="note")
            + "</tr>"
        )
    parts.append("</table>")
    return parts


def write_report(
    run_dir: str | Path,
    report: Mapping[str, Any],
    *,
    history: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write ``report.json`` and ``report.html`` into a run folder, each atomically.

    Parameters
    ----------
    run_dir : str or Path
        The run's folder (created if missing).
    report : mapping
        JSON-ready run report.
    history : sequence of mapping, optional
        Earlier reports for the error-trend plot (see :func:`render_html`).

    Returns
    -------
    dict of str to Path
        ``{"json": ..., "html": ...}``.
    """

    run_dir = Path(run_dir)
    paths = {"json": run_dir / REPORT_JSON, "html": run_dir / REPORT_HTML}
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(paths["json"], text.encode("utf-8"))
    atomic_write_bytes(paths["html"], render_html(report, history).encode("utf-8"))
    return paths


# ---------------------------------------------------------------------------- stored runs


@dataclass(frozen=True)
class StoredRun:
    """A refresh run on disk: its report, or its state while it is not finished.

    Attributes
    ----------
    run_dir : Path
    report : dict or None
        ``report.json``; ``None`` when the run has not finished.
    state : dict or None
        ``state.json`` of an unfinished run (``None`` when ``report`` is set).
    """

    run_dir: Path
    report: dict[str, Any] | None
    state: dict[str, Any] | None

    @property
    def report_path(self) -> Path:
        """``report.json`` of the run."""
        return self.run_dir / REPORT_JSON

    @property
    def html_path(self) -> Path:
        """``report.html`` of the run."""
        return self.run_dir / REPORT_HTML

    @property
    def state_path(self) -> Path:
        """``state.json`` of the run."""
        return self.run_dir / STATE_JSON


def load_run(runs_dir: str | Path, task: str = DEFAULT_TASK, date: str | None = None) -> StoredRun:
    """Read a run (default the latest) and rewrite its ``report.html`` when it is missing.

    Parameters
    ----------
    runs_dir : str or Path
    task : str, default "bid"
    date : str, optional
        The run date; default the latest run of the task.

    Returns
    -------
    StoredRun

    Raises
    ------
    TabTuneInputError
        No run for that date (or no runs at all), or a ``report.json`` that is not JSON.
    """
    run_dir = find_run(runs_dir, task, date)
    report_path = run_dir / REPORT_JSON
    if not report_path.is_file():
        state_path = run_dir / STATE_JSON
        state = check_run_file(_read_json(state_path), state_path, "state")
        state = check_run_file(replay_journal(state_path, state), state_path, "state")
        return StoredRun(run_dir=run_dir, report=None, state=state)
    report = check_run_file(_read_json(report_path), report_path)
    if not (run_dir / REPORT_HTML).is_file():
        history = load_history(runs_dir, task, upto=report.get("date"))
        try:
            write_report(run_dir, report, history=history)
        except OSError as exc:  # a full disk: the summary is still read and shown
            logger.warning("%s could not be written again (%s)", run_dir / REPORT_HTML, exc)
    return StoredRun(run_dir=run_dir, report=report, state=None)


def _read_json(path: Path) -> Any:
    """A JSON file of a run; a damaged one raises naming the file and the fix."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TabTuneInputError(f"{path} is not valid JSON ({exc}); {_RUN_FIX}") from None


def replay_journal(path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (read from ``path``, a ``state.json``) with the records of its journal.

    Only the lines of this run (their ``run`` is the state's ``started_at``) count, later
    lines over earlier ones. A last line cut short (a run killed while appending it) is
    skipped: that brand is done again.

    Raises
    ------
    TabTuneInputError
        A line before the last is not a record (the journal was edited or damaged).
    """
    journal = Path(path).with_name(JOURNAL_NAME)
    try:
        raw = journal.read_bytes()
    except FileNotFoundError:
        return state
    lines = raw.split(b"\n")
    brands = dict(state.get("brands", {}))
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            record = entry["record"] if entry.get("run") == state.get("started_at") else None
            brand = None if record is None else str(record["brand_id"])
        except (ValueError, TypeError, KeyError, AttributeError):
            if i == len(lines) - 1:
                continue  # cut short while it was appended: not recorded
            raise TabTuneInputError(
                f"run journal {journal} is damaged (line {i + 1} is not a brand record); "
                f"move it and {Path(path).name} away to start the date over"
            ) from None
        if brand is not None:
            brands[brand] = record
    return {**state, "brands": brands}


def state_lines(state: Mapping[str, Any], path: Path, later: str | None = None) -> list[str]:
    """What an unfinished run has recorded in its state, and how to resume it, as lines;
    ``later``: the date of a later finished run of its task, which superseded it (it no longer
    resumes)."""
    brands = state.get("brands", {})
    counts = {s: sum(1 for b in brands.values() if b.get("status") == s) for s in _STATUS_ORDER}
    how = (
        f"  the night of {later} has finished since, so it no longer resumes; to clear it, move "
        f"{path.parent.absolute()} out of the runs folder"
        if later is not None
        else f"  rerun `tabtune refresh --date {state.get('date')}` to resume it"
    )
    return [
        f"refresh {state.get('task')} {state.get('date')} is not finished "
        f"({len(brands)} brands recorded in {path} and its journal)",
        "  " + ", ".join(f"{s} {n}" for s, n in counts.items()),
        how,
    ]
