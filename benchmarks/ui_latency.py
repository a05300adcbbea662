"""How long the Compare page takes to follow its λ slider, measured in a real browser as a user would see it.

    python benchmarks/ui_latency.py [--cache DIR (default benchmarks/.cache/ui_latency)] [--epochs 20] [--presses 10]

1. Trains (once; later calls reuse ``--cache``) the app's default grid on the demo corpus: λ = 0, 0.1, …, 1.0 ×
   3 seeds, K = 20, with the offline MiniLM teacher (frozen, knn head, max length 64 so it encodes in seconds).
2. Starts ``streamlit run app.py`` on 127.0.0.1 over that cache and opens /compare in Debian's chromium.
3. Presses ArrowRight on the λ slider ``--presses`` times, then ArrowLeft as often; for each press, the time from the
   key press to the aligned-topic table showing the new λ (its header names it), and to the script going idle.

Prints one line per press and the median / max; no thresholds (issue #10 asks for < 0.5 s to the table).
Every request off 127.0.0.1 is aborted and reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bat_core.base.errors import BatError

ROOT = Path(__file__).resolve().parents[1]
CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
               "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
               "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def prepare(cache: Path, epochs: int, n_topics: int) -> None:
    """Train the default grid into ``cache`` (cached runs are read, not retrained)."""
    from bat_core import grid
    from bat_core.config import DEFAULT_APP_SEEDS, DEFAULT_LAMBDA_GRID, DistillConfig, StudentConfig, TeacherConfig
    from bat_core.data.corpus import load_corpus

    corpus = load_corpus("demo")
    tcfg = TeacherConfig(max_length=64, max_chunks=1)
    scfg = StudentConfig(n_topics=n_topics, epochs=epochs)
    plan = grid.plan(corpus, tcfg, scfg, DistillConfig(), list(DEFAULT_LAMBDA_GRID), grid.seed_list(DEFAULT_APP_SEEDS))
    t0 = time.time()
    res = grid.execute(plan, cache)
    print(f"grid: {len(res.runs)} runs ({sum(not c for c in res.cached)} trained) in {time.time() - t0:.0f} s",
          flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(cache: Path, log_path: Path, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, BAT_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    port = _free_port()
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"streamlit did not start; see {log_path}")


def _lams_in_header(page) -> str:
    return page.locator("table.bat-align thead").first.inner_text()


def measure(url: str, presses: int) -> list[tuple[str, float, float]]:
    """(λ shown, seconds to the table, seconds to idle) for each key press."""
    from playwright.sync_api import expect, sync_playwright

    blocked: list[str] = []
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROME_ARGS)
        ctx = browser.new_context(viewport={"width": 1600, "height": 1200})
        ctx.route(re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1[:/]|localhost[:/])"),
                  lambda route: (blocked.append(route.request.url), route.abort()))
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(url + "/compare")
        page.wait_for_selector("table.bat-align")
        page.wait_for_timeout(1500)  # the first run's caches and any follow-up rerun settle
        page.wait_for_selector(IDLE)
        slider = page.get_by_role("slider").first
        for key in ["ArrowRight"] * presses + ["ArrowLeft"] * presses:
            before = _lams_in_header(page)
            slider.focus()
            t0 = time.perf_counter()
            slider.press(key)
            try:
                expect(page.locator("table.bat-align thead").first).not_to_have_text(before, timeout=10_000)
            except AssertionError:
                continue  # the slider is at its end: nothing to update
            t_table = time.perf_counter() - t0
            page.wait_for_selector(IDLE)
            t_idle = time.perf_counter() - t0
            lam = re.search(r"BAT \(λ=([0-9.]+)\)", _lams_in_header(page))
            out.append((lam.group(1) if lam else "?", t_table, t_idle))
            print(f"  λ → {out[-1][0]:>4}: table {t_table * 1000:6.0f} ms · idle {t_idle * 1000:6.0f} ms", flush=True)
            page.wait_for_timeout(300)
        browser.close()
    if blocked:
        print(f"requests left 127.0.0.1 (aborted): {blocked}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache" / "ui_latency")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--presses", type=int, default=10)
    ap.add_argument("--app-root", type=Path, default=ROOT, help="checkout whose app.py is served")
    args = ap.parse_args(argv)
    # what the browser half needs, checked before the grid trains (minutes on a cold cache)
    if importlib.util.find_spec("playwright") is None:
        raise BatError("the browser needs playwright: pip install -r requirements-dev.txt (make test installs it)")
    if shutil.which("chromium") is None:
        raise BatError("the browser is Debian's chromium: apt-get install chromium (make test installs it as root)")
    prepare(args.cache, args.epochs, args.topics)
    proc, url = serve(args.cache, args.cache / "server.log", args.app_root)
    try:
        res = measure(url, args.presses)
    finally:
        proc.terminate()
        proc.wait(10)
    if not res:
        print("no slider move was measured")
        return 1
    table = [r[1] for r in res]
    idle = [r[2] for r in res]
    print(f"slider → updated topic table: median {statistics.median(table) * 1000:.0f} ms, "
          f"max {max(table) * 1000:.0f} ms over {len(res)} moves; "
          f"→ script idle: median {statistics.median(idle) * 1000:.0f} ms, max {max(idle) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BatError as e:  # a user-fixable problem (a missing package or browser): one line, no traceback
        print(f"{Path(__file__).name}: {e}", file=sys.stderr)
        sys.exit(2)
