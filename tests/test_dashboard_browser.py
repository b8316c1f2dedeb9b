"""The dashboard seen in a real browser: headless Chromium renders every chart with no script error.

No Python browser driver: Chromium's own --dump-dom (the DOM after scripts ran) and --screenshot.
The page records script errors on <html data-js-errors> (see report_dashboard.ERROR_HOOK).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines import report
from pipelines.store import connect

from test_report import AS_OF, PEOPLE, build_store

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); the dashboard was not opened in a browser")


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
           "--virtual-time-budget=10000", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _rendered(dom: str) -> dict:
    root = re.search(r"<html[^>]*>", dom).group(0)
    attr = lambda name: (re.search(rf'{name}="([^"]*)"', root) or [None, None])[1]  # noqa: E731
    return {
        "errors": attr("data-js-errors"), "messages": attr("data-js-error-messages"),
        "figures": int(attr("data-figures")), "rendered": attr("data-plots-rendered"),
        "containers": dom.count('class="plot-container plotly"'),
        "svgs": len(re.findall(r'<svg[^>]*class="main-svg"', dom)),
        "bars": len(re.findall(r'class="point"', dom)),
    }


@needs_chromium
@pytest.mark.parametrize("empty", [False, True], ids=["with-suspects", "empty-store"])
def test_every_chart_renders_in_chromium_without_script_errors(tmp_path, empty):
    con = connect(build_store(tmp_path / "fundwatch.duckdb", empty=empty))
    paths = report.write_report(con, tmp_path / "out", AS_OF)
    done = chromium(tmp_path, paths.dashboard, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    seen = _rendered(dom)
    assert seen["errors"] == "0", seen["messages"]
    assert seen["figures"] == 6
    assert seen["containers"] == seen["figures"] and seen["rendered"] == str(seen["figures"])
    assert seen["svgs"] >= seen["figures"]  # plotly draws at least one main-svg per chart
    if not empty:
        assert seen["bars"] > 20  # bar elements exist, not just empty axes
        assert "服刑人员违规领取养老金" in dom or "PAID_DURING_CUSTODY" in dom
    for secret in PEOPLE:
        assert secret not in dom


@needs_chromium
def test_dashboard_screenshot_is_written(tmp_path):
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    paths = report.write_report(con, tmp_path / "out", AS_OF)
    shot = tmp_path / "dashboard.png"
    done = chromium(tmp_path, paths.dashboard, f"--screenshot={shot}", "--window-size=1400,4000", "--hide-scrollbars")
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1400, 4000)
    # A blank page compresses to a few KB; charts, tables and CJK text do not.
    assert len(data) > 100_000


@needs_chromium
def test_the_demo_dashboard_renders_with_identifiers_masked(tmp_path, demo_run):
    assert demo_run.returncode == 0, demo_run.stderr
    done = chromium(tmp_path, demo_run.out / "dashboard.html", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    seen = _rendered(done.stdout)
    assert seen["errors"] == "0", seen["messages"]
    assert seen["containers"] == seen["figures"] > 0 and seen["bars"] > 20
    con = connect(demo_run.db, read_only=True)
    try:
        people = [p for (p,) in con.execute("select distinct person_id from suspects where person_id is not null").fetchall()]
    finally:
        con.close()
    assert people and not [p for p in people if p in done.stdout]  # the province page masks every ID


@needs_chromium
def test_the_dashboard_prints_on_a4_landscape(tmp_path):
    """Printed from a browser it was as many portrait pages as the printer's default gave, charts cut
    at the page's edge and split between pages (a probe of the dashboard as leaders print it)."""
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    paths = report.write_report(con, tmp_path / "out", AS_OF)
    pdf = tmp_path / "dashboard.pdf"
    done = chromium(tmp_path, paths.dashboard, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert pdf.exists(), done.stderr[-2000:]
    sizes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf.read_bytes())
    assert sizes and all(abs(float(w) - 841.9) < 2 and abs(float(h) - 595.3) < 2 for w, h in sizes), sizes[:3]


@needs_chromium
def test_an_agency_named_with_markup_draws_no_link_in_the_charts(tmp_path):
    """plotly reads a label as its own HTML: an agency named `<a href=…>` in the agencies extract
    drew a clickable link in the by-agency chart, `<b>` bold (a security probe). It shows as text."""
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    con.execute("update agencies set agency_name = ? where agency_code = '360702'",
                ['<a href="https://phish.invalid/x">章贡区社保局（点此核对）</a><b>粗</b>'])
    paths = report.write_report(con, tmp_path / "out", AS_OF)
    done = chromium(tmp_path, paths.dashboard, "--dump-dom")
    dom = done.stdout
    assert _rendered(dom)["errors"] == "0"
    svgs = "".join(re.findall(r"<svg.*?</svg>", dom, flags=re.S))
    assert not re.search(r"<a\b[^>]*href", svgs)  # no link drawn
    assert "<b>" not in svgs
    assert "&lt;a href=" in svgs  # (the name as delivered, shown as text — cut on the axis, whole in the hover)
    assert '"&lt;a href=\\"https:' in paths.dashboard.read_text(encoding="utf-8")
    assert "&gt;章贡区社保局（点此核对）&lt;" in paths.dashboard.read_text(encoding="utf-8")
