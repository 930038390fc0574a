"""A real browser (Playwright driving Debian's Chromium) logs in and sees the pages work."""

import os
import shutil
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.services import user_ensure
from costing.services import price_catalog_seed
from fleet.models import Cluster, ModelDeployment
from fleet.services import cluster_refresh
from fleet.world_store import DbWorldStore
from simulator.demo import demo_world
from tests.services import missing_service

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("SCALEDECK_SCREENSHOT_DIR", "/tmp"))

CHROMIUM = os.environ.get("SCALEDECK_CHROMIUM", "/usr/bin/chromium")
# Chromium's own background traffic is refused on closed networks; these flags keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        missing_service(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself (not the server) are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def demo(transactional_db):
    price_catalog_seed()
    cluster = Cluster.objects.create(name="demo", backend=Cluster.Backend.SIMULATED, namespaces=["llm-prod"])
    DbWorldStore(cluster).replace(demo_world(seed=5, now=timezone.now(), warmup_hours=2), seed=5)
    result = cluster_refresh(cluster=cluster)
    assert result.ok, result.error
    user_ensure(username="sre", role="operator", password="correct horse battery")
    return cluster


def log_in(page, live_server):
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "sre")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_it_logs_in_and_shows_the_overview_with_every_deployment(browser, demo, live_server):
    page = browser.new_page()
    log_in(page, live_server)

    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)
    table_text = page.inner_text("table")
    for deployment in ModelDeployment.objects.filter(cluster=demo):
        assert deployment.name in table_text
    page.close()


def test_it_draws_the_charts_of_a_deployment(browser, demo, live_server):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server)

    deployment = ModelDeployment.objects.get(cluster=demo, name="llama-3-8b")
    page.goto(f"{live_server.url}/deployments/{deployment.id}/?range=1h")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=15000)

    # One figure, one panel per metric, all on a shared time axis.
    panels = page.locator(".js-plotly-plot .cartesianlayer .subplot")
    assert panels.count() >= 3
    assert page.locator(".js-plotly-plot .cartesianlayer .subplot path.js-line").count() >= 3
    page.screenshot(path=str(SCREENSHOTS / "deployment.png"), full_page=True)
    assert errors == []
    page.close()
