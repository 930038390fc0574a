"""How long the deployment page takes to draw its charts in a real browser, on a cold cache.

    .venv/bin/python bench/page_load.py [-n 5] [--chromium /usr/bin/chromium]

Builds the demo exactly as `make demo` does (migrate, demo_seed, collectstatic, `manage.py
runserver`) in a scratch data folder, then opens the deployment page in headless Chromium
(Playwright) N times, each in a fresh browser context so nothing is cached, and measures the time
from navigation start to the moment plotly.js has drawn the charts (the first `.main-svg` inside a
`.plotly-chart`; the charts arrive in an HTMX fragment after the page loads).

Two rounds, printed side by side:
- before: the page as it used to be served, with the browser's request for the chart library
  answered by the `plotly` Python package's full bundle (plotly.min.js, ~4.8 MB), uncompressed
  and without cache headers;
- after: the page as it is served now (the vendored basic partial bundle, compressed, with
  hashed names cached for a year).

Prints median and worst time to charts drawn, the DOMContentLoaded time, and the bytes of chart
library the browser received. Target: charts drawn within 1.5 s. Not a test; nothing outside the
scratch folder is touched.
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
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
# Records, in page time (ms since navigation start), when plotly first draws into a chart box.
CHARTS_DRAWN_PROBE = """
(() => {
  const seen = () => document.querySelector('.plotly-chart .main-svg');
  const mark = () => { if (!window.__chartsDrawnAt && seen()) window.__chartsDrawnAt = performance.now(); };
  new MutationObserver(mark).observe(document, {childList: true, subtree: true});
  // When the chart library has been fetched and run (its script element's load event).
  document.addEventListener('load', (e) => {
    if (e.target && e.target.src && e.target.src.includes('/vendor/plotly/')) window.__libraryAt = performance.now();
  }, true);
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def wait_for_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 - our own local server
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not answer within {timeout:.0f} s")


def full_plotly_bundle() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def measure(browser, base: str, path: str, storage_state: dict, *, before: bool) -> dict:
    """One cold-cache visit: a fresh context shares nothing with the previous one."""
    context = browser.new_context(storage_state=storage_state)
    page = context.new_page()
    page.add_init_script(CHARTS_DRAWN_PROBE)
    received = {"plotly_bytes": 0, "plotly_requests": 0}
    if before:
        bundle = full_plotly_bundle()
        page.route("**/vendor/plotly/**", lambda route: route.fulfill(
            path=str(bundle), content_type="text/javascript", headers={"Cache-Control": "max-age=0"}))

    def on_response(response):
        if "/vendor/plotly/" in response.url:
            received["plotly_requests"] += 1
            sizes = response.request.sizes()
            received["plotly_bytes"] += sizes["responseBodySize"] or len(response.body())
            received["encoding"] = response.headers.get("content-encoding", "identity")
            received["cache_control"] = response.headers.get("cache-control", "")

    page.on("response", on_response)
    page.goto(base + path)
    page.wait_for_function("window.__chartsDrawnAt !== undefined", timeout=60_000)
    timings = page.evaluate("""() => {
        const charts = performance.getEntriesByType('resource').find(e => e.name.includes('/charts/'));
        return {
            drawn: window.__chartsDrawnAt,
            library: window.__libraryAt === undefined ? null : window.__libraryAt,
            dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
            fragment_start: charts ? charts.startTime : null,
            fragment_end: charts ? charts.responseEnd : null,
        };
    }""")
    context.close()
    return {**received, "drawn_ms": timings["drawn"], "dcl_ms": timings["dcl"], "library_ms": timings["library"],
            "fragment_start_ms": timings["fragment_start"], "fragment_end_ms": timings["fragment_end"]}


def summarize(label: str, runs: list[dict]) -> float:
    drawn = [r["drawn_ms"] / 1000 for r in runs]
    dcl = [r["dcl_ms"] / 1000 for r in runs]
    fragment = [(r["fragment_start_ms"] or 0) / 1000 for r in runs]
    fragment_end = [(r["fragment_end_ms"] or 0) / 1000 for r in runs]
    library = [(r["library_ms"] or 0) / 1000 for r in runs]
    last = runs[-1]
    print(
        f"{label:<7} charts drawn: median {statistics.median(drawn):.2f} s, worst {max(drawn):.2f} s"
        f" | DOMContentLoaded median {statistics.median(dcl):.2f} s"
        f" | charts fragment asked at {statistics.median(fragment):.2f} s, answered at"
        f" {statistics.median(fragment_end):.2f} s | chart library ready at {statistics.median(library):.2f} s"
        f" | chart library: {last['plotly_requests']} request(s), {last['plotly_bytes'] / 1e6:.2f} MB received"
        f" ({last.get('encoding', '?')}; Cache-Control: {last.get('cache_control') or 'none'})",
        flush=True,
    )
    return statistics.median(drawn)


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
    env = {**os.environ, "SCALEDECK_DATA_DIR": str(data_dir), "SCALEDECK_DEMO_PASSWORD": PASSWORD,
           "SCALEDECK_STATIC_MANIFEST": "1"}
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
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
            print(f"deployment page {path}, {args.runs} cold-cache visits per round", flush=True)
            medians = {}
            for label, before in (("before", True), ("after", False)):
                runs = [measure(browser, base, path, state, before=before) for _ in range(args.runs)]
                medians[label] = summarize(label, runs)
            browser.close()
        verdict = "meets" if medians["after"] < TARGET_SECONDS else "MISSES"
        print(f"after {verdict} the {TARGET_SECONDS} s target ({medians['before'] / medians['after']:.1f}x faster)")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
