"""The path a new user takes, in a real browser (Playwright + Debian chromium, no `playwright install`):

demo corpus (ready on start) → Train: baseline, λ = 0.5 and λ = 1 → Compare, opened while the job runs: what is
training, and the aligned topics as they land, by themselves → Compare: both sides aligned, another λ trained from
there, the slider, the chart tabs (λ curve, λ = 1 next to λ = 0, downstream, the teacher's word shift) →
pyLDAvis: baseline and BAT side by side, rendered offline.

Fails if any request leaves 127.0.0.1 or the page shows an exception. Screenshots go to
``tests/artifacts/screenshots`` (or ``$BAT_SCREENSHOT_DIR``). By default it trains with a tiny random BERT and a few
epochs; ``BAT_E2E_REAL=1`` uses the app's real defaults (MiniLM teacher, 200 epochs) and prints the time from
pressing Train to the first aligned table: that run made the screenshots in docs/screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
REAL = os.environ.get("BAT_E2E_REAL") == "1"

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")]

CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
               "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
               "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(tmp: Path) -> Iterator[str]:
    """A fresh ``streamlit run app.py`` on a free loopback port with its own cache; yields its URL."""
    env = dict(os.environ, BAT_CACHE_DIR=str(tmp / "cache"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    if not REAL:
        from teacher_fixtures import FAST_ENV, make_tiny_bert

        # 40 epochs, not 4: the runs land a few seconds apart, so Compare can be seen filling in while the job runs
        env.update(FAST_ENV, BAT_N_TOPICS="8", BAT_LAMBDAS="0.5,1", BAT_STUDENT_EPOCHS="40",
                   BAT_TEACHER_MODEL=str(make_tiny_bert(tmp / "tiny-bert")))
    port = _free_port()
    log = open(tmp / "server.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.seek(0)
            proc.kill()
            pytest.fail(f"streamlit did not start:\n{log.read()}")
        time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("e2e")) as url:
        yield url


@contextmanager
def browser_page(blocked: list[str]) -> Iterator:
    """A Playwright page in Debian's chromium that aborts (and records) every request off 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        ctx = browser.new_context(viewport={"width": 1600, "height": 1200})
        ctx.route(re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1[:/]|localhost[:/])"),
                  lambda route: (blocked.append(route.request.url), route.abort()))
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            browser.close()


def wait_idle(page, settle_ms: int = 300, timeout: int = 60_000) -> None:
    page.wait_for_timeout(settle_ms)  # let the last action reach the server
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


def no_exception(page) -> None:
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()


def test_new_user_path(server):
    from playwright.sync_api import expect

    shots = Path(os.environ.get("BAT_SCREENSHOT_DIR", ROOT / "tests" / "artifacts" / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    with browser_page(blocked) as page:
        # 1. first start: the demo corpus is ready
        page.goto(server)
        wait_idle(page)
        expect(page.get_by_role("heading", name="Corpus", exact=True)).to_be_visible()
        expect(page.get_by_text("Lee news corpus", exact=False).first).to_be_visible()
        expect(page.locator('[data-testid="stMetric"]').first).to_contain_text("Documents")
        no_exception(page)
        expect(page.locator(".js-plotly-plot")).to_have_count(2)
        page.screenshot(path=str(shots / "corpus.png"))

        # 2. train the baseline and one λ with the page's defaults
        page.get_by_role("link", name="Train", exact=True).click()
        wait_idle(page)
        expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
        no_exception(page)
        t0 = time.time()
        page.get_by_role("button", name="Train", exact=True).click()
        wait_idle(page)
        expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()  # no second press meanwhile

        # 2b. Compare while the job runs: it says what is training and fills in by itself (no reload, no click): the
        # first look (provisional while γ is chosen), then the chosen γ's runs; λ = 1 lands last, at the job's end
        page.get_by_role("link", name="Compare", exact=True).click()
        live = page.get_by_text(re.compile(r"^Training.*runs done$"))
        expect(live.first).to_be_visible(timeout=10_000)  # the job is still running
        one_lam = page.get_by_text("Only one λ trained so far", exact=False)
        heads = page.locator("table.bat-align thead")
        seen: list[str] = []
        deadline = time.time() + (900 if REAL else 240)
        t_first = None
        while time.time() < deadline and not page.get_by_text("finished in", exact=False).count():
            head = " ".join(heads.first.inner_text().split()) if heads.count() else ""
            if head and head not in seen and live.count():  # shown while the job still runs
                seen.append(head)
                t_first = t_first or time.time() - t0
                if "provisional" in head:
                    page.screenshot(path=str(shots / "compare-provisional.png"))
            page.wait_for_timeout(100)
        t_job = time.time() - t0
        wait_idle(page)
        no_exception(page)
        print(f"\nCompare while training, tables seen: {seen}; the first {t_first or float('nan'):.1f} s after Train")
        assert seen, "no aligned table showed up on Compare while the job ran"
        header = heads.first.inner_text()
        assert "provisional" not in header and "BAT (λ=0.5)" in header, header
        expect(one_lam).to_have_count(0)  # λ = 1 landed while the page was open: the slider grew by itself
        expect(live).to_have_count(0)

        page.get_by_role("link", name="Train", exact=True).click()
        wait_idle(page)
        expect(page.get_by_text("finished in", exact=False).first).to_be_visible()
        if REAL:  # the job's own account: its time, the teacher's, the γ step's
            print("\n" + page.locator('[data-testid="stAlert"]').first.inner_text())
        no_exception(page)
        expect(page.get_by_text("Trained runs for this corpus")).to_be_visible()
        page.locator(".js-plotly-plot").first.wait_for()
        page.screenshot(path=str(shots / "train.png"))

        # 3. Compare: baseline and BAT side by side, topics aligned
        page.get_by_role("link", name="Compare", exact=True).click()
        wait_idle(page)
        expect(page.locator("table.bat-align")).to_be_visible()
        print(f"\nfrom pressing Train to the first aligned table on Compare: {t_first or float('nan'):.1f} s "
              f"({'real defaults' if REAL else 'tiny'}); to the job's end: {t_job:.1f} s")
        no_exception(page)
        k = int(os.environ.get("BAT_N_TOPICS", "20" if REAL else "8"))
        expect(page.locator("table.bat-align tbody tr")).to_have_count(k)
        header = page.locator("table.bat-align thead").inner_text()
        assert "Baseline (λ=0)" in header and "BAT (λ=0.5)" in header
        expect(page.get_by_text("Aligned pairs won by BAT")).to_be_visible()
        expect(page.get_by_text("Background correction:", exact=False).first).to_be_visible()  # γ: which and why
        expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
        page.set_viewport_size({"width": 1600, "height": 2000})
        wait_idle(page)
        page.locator(".js-plotly-plot").first.wait_for()
        page.screenshot(path=str(shots / "compare.png"))
        page.set_viewport_size({"width": 1600, "height": 1200})

        # 3b. train another λ from the Compare page (teacher and baseline from the cache), then slide back
        page.get_by_text("Train another λ with these settings").click()
        button = page.get_by_role("button", name=re.compile(r"^Train λ = "))
        offered = button.inner_text().split("=")[1].strip()  # an untrained λ: grid value, else between grid points
        button.click()
        # (while the page reruns, Streamlit may still show the previous λ's table, faded, next to the new one)
        expect(page.locator("table.bat-align thead").filter(has_text=f"BAT (λ={offered})").first).to_be_visible(
            timeout=600_000)
        wait_idle(page)
        no_exception(page)
        expect(page.locator("table.bat-align")).to_have_count(1)  # once idle, the new λ's table alone
        expect(page.locator("table.bat-align thead")).to_contain_text(f"BAT (λ={offered})")
        slider = page.get_by_role("slider").first
        slider.focus()
        t1 = time.time()
        slider.press("ArrowRight")
        trained = [round(0.1 * i, 1) for i in range(1, 11)] if REAL else [0.5, 1.0]  # the page's λ defaults
        expect(page.locator("table.bat-align thead").filter(
            has_text=f"BAT (λ={min(x for x in trained if x > float(offered)):g})").first).to_be_visible()
        wait_idle(page, settle_ms=0)
        print(f"slider to an already-trained λ: {time.time() - t1:.2f} s in the browser")
        no_exception(page)

        # 3c. the views behind the tabs: the whole λ curve, λ = 1 next to λ = 0, the teacher's word shift
        for tab, shows in (("Against λ", page.locator('[data-testid="stPlotlyChart"]')),
                           ("λ = 1 next to λ = 0", page.get_by_text("λ = 1 (teacher only)")),
                           ("Downstream: θ → labels", page.get_by_text("No downstream check for this corpus")),
                           ("Teacher's word shift", page.get_by_text("Raised most:"))):
            page.get_by_role("tab", name=tab).click()
            wait_idle(page)
            no_exception(page)
            expect(shows.first).to_be_visible()
        page.locator(".js-plotly-plot").first.wait_for()
        page.screenshot(path=str(shots / "compare-word-shift.png"))

        # 4. pyLDAvis: rendered offline inside the iframe
        page.get_by_role("link", name="pyLDAvis", exact=True).click()
        wait_idle(page)
        no_exception(page)
        expect(page.locator("iframe")).to_have_count(2)  # baseline and BAT side by side
        for i in range(2):
            frame = page.frame_locator("iframe").nth(i)
            expect(frame.get_by_text("Intertopic Distance Map", exact=False)).to_be_visible(timeout=30_000)
        frame.get_by_role("button", name="Next Topic").click()
        page.set_viewport_size({"width": 1800, "height": 1300})
        wait_idle(page)
        page.screenshot(path=str(shots / "ldavis.png"))
        no_exception(page)
    assert blocked == [], f"requests left 127.0.0.1: {blocked}"


def test_deep_link_first_request_on_a_fresh_server(tmp_path):
    """The first request a fresh server sees is /compare: only the declared pages, the demo corpus, no exception."""
    from playwright.sync_api import expect

    blocked: list[str] = []
    with running_app(tmp_path) as url, browser_page(blocked) as page:
        page.goto(url + "/compare")
        wait_idle(page)
        no_exception(page)
        expect(page.get_by_role("heading", name="Compare: baseline vs BAT")).to_be_visible()
        expect(page.get_by_text("Nothing to compare yet", exact=False)).to_be_visible()
        nav = page.locator('[data-testid="stSidebarNav"] a')
        expect(nav).to_have_count(4)
        assert [t.strip() for t in nav.all_inner_texts()] == ["Corpus", "Train", "Compare", "pyLDAvis"]
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "demo" in sidebar and "documents" in sidebar, sidebar  # the demo corpus was loaded
        page.get_by_role("link", name="Corpus", exact=True).click()  # and it is the session's corpus
        wait_idle(page)
        expect(page.get_by_text("In use: you can go straight to training", exact=False)).to_be_visible()
        no_exception(page)
        for path in ("/corpus", ""):  # the Corpus page by its own address, and the root, which opens it
            page.goto(url + path)
            wait_idle(page)
            expect(page.get_by_role("heading", name="Corpus", exact=True)).to_be_visible()
            expect(page.get_by_text("Page not found")).to_have_count(0)
            assert urlparse(page.url).path.rstrip("/").endswith("/corpus"), page.url
    assert blocked == [], f"requests left 127.0.0.1: {blocked}"
