"""How long the deployment page takes to draw its charts in a real browser, on a cold cache.

    .venv/bin/python bench/page_load.py [-n 5] [--chromium /usr/bin/chromium]

Builds the demo exactly as `make demo` does (migrate, demo_seed, collectstatic, `manage.py
runserver`) in a scratch data folder, then opens the deployment page in headless Chromium
(Playwright) N times, each in a fresh browser context so nothing is cached, as someone who opens it
to read its charts: the Metrics section is scrolled into view as soon as the page has it.

The charts arrive in an HTMX fragment after the page loads, one panel per metric, drawn by
static/js/scaledeck.js one at a time (each drawn panel gets `data-drawn`). Measured from
navigation start:
- charts in view drawn (the target): every panel in the browser window is drawn;
- first panel drawn, and all eleven drawn (those out of view are drawn while the browser is idle);
- where the time goes: DOMContentLoaded, when the charts fragment was asked and answered, when the
  chart library had run, and how many bytes of it the browser received (compressed and cached?).

Prints the median and worst of each, and the load average before and after (the machine is
shared; compare runs at similar load). Target: charts in view drawn within 1.5 s. Not a test;
nothing outside the scratch folder is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-page-load"
TARGET_SECONDS = 1.5
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Records, in page time (ms since navigation start), when panels are drawn and when the chart
# library has run; scrolls the Metrics section into view once the page has it.
CHARTS_DRAWN_PROBE = """
(() => {
  const panels = () => Array.from(document.querySelectorAll('.chart-panel'));
  const inView = (el) => { const r = el.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; };
  const mark = () => {
    const all = panels(), drawn = all.filter(p => p.hasAttribute('data-drawn'));
    if (!drawn.length) return;
    const now = performance.now();
    window.__firstPanelAt ??= now;
    if (all.filter(inView).every(p => p.hasAttribute('data-drawn'))) window.__inViewAt ??= now;
    if (drawn.length === all.length) window.__allPanelsAt ??= now;
  };
  new MutationObserver(mark).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-drawn']});
  document.addEventListener('DOMContentLoaded', () => document.querySelector('section.charts').scrollIntoView());
  document.addEventListener('load', (e) => {
    if (e.target && e.target.src && e.target.src.includes('/vendor/plotly/')) window.__libraryAt = performance.now();
  }, true);
})();
"""
TIMINGS = """() => {
  const charts = performance.getEntriesByType('resource').find(e => e.name.includes('/charts/'));
  return {
    in_view: window.__inViewAt, first: window.__firstPanelAt, all: window.__allPanelsAt,
    library: window.__libraryAt ?? null,
    dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
    fragment_start: charts ? charts.startTime : null,
    fragment_end: charts ? charts.responseEnd : null,
  };
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )


def wait_for_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 - our own local server
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not answer within {timeout:.0f} s")


def measure(browser, base: str, path: str, storage_state: dict) -> dict:
    """One cold-cache visit: a fresh context shares nothing with the previous one."""
    context = browser.new_context(storage_state=storage_state)
    page = context.new_page()
    page.add_init_script(CHARTS_DRAWN_PROBE)
    received = {"plotly_bytes": 0, "plotly_requests": 0}

    def on_response(response):
        if "/vendor/plotly/" in response.url:
            received["plotly_requests"] += 1
            sizes = response.request.sizes()
            received["plotly_bytes"] += sizes["responseBodySize"] or len(response.body())
            received["encoding"] = response.headers.get("content-encoding", "identity")
            received["cache_control"] = response.headers.get("cache-control", "")

    page.on("response", on_response)
    page.goto(base + path)
    page.wait_for_function("window.__allPanelsAt !== undefined && window.__inViewAt !== undefined", timeout=60_000)
    timings = page.evaluate(TIMINGS)
    context.close()
    return {**received, **{key: (value or 0) / 1000 for key, value in timings.items()}}


def summarize(runs: list[dict]) -> float:
    def median(key):
        return statistics.median(r[key] for r in runs)

    last = runs[-1]
    print(
        f"charts in view drawn: median {median('in_view'):.2f} s, worst {max(r['in_view'] for r in runs):.2f} s"
        f" | first panel {median('first'):.2f} s | all panels {median('all'):.2f} s\n"
        f"  DOMContentLoaded {median('dcl'):.2f} s | charts fragment asked at {median('fragment_start'):.2f} s,"
        f" answered at {median('fragment_end'):.2f} s | chart library ready at {median('library'):.2f} s"
        f" | chart library: {last['plotly_requests']} request(s), {last['plotly_bytes'] / 1e6:.2f} MB received"
        f" ({last.get('encoding', '?')}; Cache-Control: {last.get('cache_control') or 'none'})",
        flush=True,
    )
    return median("in_view")


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help="cold-cache visits per round")
    parser.add_argument("--chromium", default=os.environ.get("SCALEDECK_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    if not shutil.which(args.chromium):
        raise SystemExit(f"Chromium not found at {args.chromium}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    data_dir = Path(tempfile.mkdtemp(prefix="scaledeck-page-load-"))
    port = free_port()
    # As `make demo` runs it: collected static files, hashed and compressed.
    env = {
        **os.environ,
        "SCALEDECK_DATA_DIR": str(data_dir),
        "SCALEDECK_DEMO_PASSWORD": PASSWORD,
        "SCALEDECK_STATIC_MANIFEST": "1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    server = None
    try:
        print("building the demo (migrate, demo_seed, collectstatic)...", flush=True)
        manage(env, "migrate", "--noinput")
        manage(env, "demo_seed")
        manage(env, "collectstatic", "--noinput")
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/healthz")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            context = browser.new_context()
            page = context.new_page()
            page.goto(base + "/accounts/login/")
            page.fill("input[name=username]", "viewer")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            deployments = json.loads(page.evaluate("() => fetch('/api/v1/deployments/?limit=1').then(r => r.text())"))
            path = f"/deployments/{deployments['results'][0]['id']}/"
            state = context.storage_state()
            context.close()
            print(f"deployment page {path}, {args.runs} cold-cache visits; load average {load_average()}", flush=True)
            runs = [measure(browser, base, path, state) for _ in range(args.runs)]
            median = summarize(runs)
            browser.close()
        verdict = "meets" if median < TARGET_SECONDS else "MISSES"
        print(f"{verdict} the {TARGET_SECONDS} s target; load average {load_average()}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
