"""report.html opens in a real browser and shows its plots (headless Chromium).

A run report is built the way the refresh builds it (``BrandRecord`` -> state -> ``build_report``
-> ``write_report`` with the earlier runs as history), then Chromium renders the page: the DOM
holds both embedded PNGs, each decodes to an image of non-zero natural size, and a screenshot
shows them (plot colours present, not a blank page).

Needs Chromium (Debian: ``apt-get install -y chromium``). Without it the test skips, except
under ``CI=true``, where a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tabtune.refresh import BrandRecord, build_report, new_state, record_brand
from tabtune.report import _STATUS_COLOURS, write_report

pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install tabtune[plot]")

DATES = ["2024-04-27", "2024-04-28", "2024-04-29"]
IMG = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,[A-Za-z0-9+/=]+"')
WIDTH, HEIGHT = 1200, 2000
# Reports the natural size of every image once the page has loaded (in a copy of the page).
PROBE = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = Array.from(document.images)
    .map((im) => `${im.alt}:${im.complete}:${im.naturalWidth}x${im.naturalHeight}`)
    .join(";");
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    message = "Chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


def browse(browser: str, tmp: Path, page: Path, *action: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        *action,
        page.absolute().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def run_report(date: str, night: int) -> dict:
    """One night's report as the refresh writes it: errors fall a little every night."""
    rng = np.random.default_rng(night)
    state = new_state(
        dt.date.fromisoformat(date),
        "bid",
        started_at=f"{date}T01:00:00.000+00:00",
        global_model="global/bid/v0001",
        global_note="",
    )
    brands = [
        ("b000", "promoted", 12000),
        ("b001", "cold_start", 40),
        ("b002", "kept", 800),
        ("b003", "promoted", 3000),
        ("b004", "kept", 150),
        ("b005", "promoted", 450),
        ("b006", "failed", 0),
    ]
    for i, (brand, status, rows) in enumerate(brands):
        glob = float(2.0 + i) * (1 - 0.05 * night)
        rec = BrandRecord(brand_id=brand, status=status, rows=rows, reason=f"{status} because")
        if status == "cold_start":
            rec.scores = {"champion": None, "challenger": None, "global": glob}
            rec.served_by, rec.model_id = "global", "global/bid/v0001"
        elif status != "failed":
            chall = glob * float(rng.uniform(0.6, 0.95))
            champ = chall * (1.05 if status == "promoted" else 0.97)
            rec.scores = {"champion": champ, "challenger": chall, "global": glob}
            rec.strategy = "refit+continue"
            rec.served_by = "challenger" if status == "promoted" else "champion"
            rec.model_id = f"brands/{brand}/bid/v{night + 1:04d}"
        else:
            rec.reason = "ValueError: broken partition"
        rec.timings = {"load": 0.05, "train": 0.4, "evaluate": 0.06, "write": 0.03}
        rec.seconds = 0.55
        state = record_brand(state, rec)
    state["finished_at"] = f"{date}T01:00:42.000+00:00"
    return build_report(state).to_dict()


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / DATES[-1]
    history = [run_report(date, night) for night, date in enumerate(DATES)]
    return write_report(run_dir, history[-1], history=history)["html"]


def rgb255(colour) -> np.ndarray:
    from matplotlib.colors import to_rgb

    return 255 * np.array(to_rgb(colour), dtype=float)


def near(pixels: np.ndarray, colour, alpha: float = 1.0, tol: float = 12.0) -> int:
    """Pixels of ``colour`` drawn with ``alpha`` over white."""
    target = alpha * rgb255(colour) + (1 - alpha) * 255
    return int((np.abs(pixels - target).max(axis=-1) <= tol).sum())


def test_report_renders_in_chromium_with_both_plots(report_html: Path, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    browser = chromium()
    source = report_html.read_text(encoding="utf-8")
    assert [alt for alt in IMG.findall(source)] == ["error trend", "uplift by size"]

    # The DOM the browser built: both images, each decoded to a non-empty picture.
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(source.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = browse(browser, tmp_path, probe_page, "--dump-dom", "--virtual-time-budget=5000")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(IMG.findall(dom.stdout)) == 2, dom.stdout[:2000]
    found = re.search(r'<pre id="probe">([^<]*)</pre>', dom.stdout)
    assert found, "the page's load handler did not run:\n" + dom.stdout[-2000:]
    sizes = {}
    for item in found.group(1).split(";"):
        alt, complete, size = item.rsplit(":", 2)
        w, h = (int(v) for v in size.split("x"))
        assert complete == "true" and w > 100 and h > 100, item
        sizes[alt] = (w, h)
    assert sorted(sizes) == ["error trend", "uplift by size"]

    # What a person sees: the untouched report, screenshotted.
    shot = tmp_path / "report.png"
    res = browse(browser, tmp_path, report_html, f"--screenshot={shot}")
    assert res.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000, res.stderr[
        -2000:
    ]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    pixels = np.round(pixels * 255 if pixels.dtype.kind == "f" else pixels).astype(float)
    non_white = (pixels.min(axis=-1) < 245).mean()
    assert non_white > 0.03, f"only {non_white:.1%} of the page is not white"
    colours = len(np.unique(pixels.astype(np.uint8).reshape(-1, 3), axis=0))
    assert colours > 200, f"{colours} distinct colours: the plots are not drawn"
    # Plot colours on screen: one line per brand in the error trend (matplotlib's colour
    # cycle, alpha 0.85 over white) and the status colours of the uplift plot's markers.
    import matplotlib

    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    lines = {c: near(pixels, c, alpha=0.85) for c in cycle[:6]}
    assert sum(n > 50 for n in lines.values()) >= 5, f"error-trend lines not visible: {lines}"
    for status in ("promoted", "kept", "cold_start"):
        assert near(pixels, _STATUS_COLOURS[status]) > 20, f"{status} markers not visible"
