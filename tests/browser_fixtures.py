"""Browser-test fixtures: Playwright driving Debian's Chromium, a demo cluster, and logging in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.services import user_ensure
from costing.catalog import price_catalog_seed
from fleet.models import Cluster
from fleet.services import cluster_refresh
from fleet.world_store import DbWorldStore
from simulator.demo import demo_world
from tests.services import missing_service

SCREENSHOTS = Path(os.environ.get("SCALEDECK_SCREENSHOT_DIR", "/tmp"))
CHROMIUM = os.environ.get("SCALEDECK_CHROMIUM", "/usr/bin/chromium")
# Chromium's own background traffic is refused on closed networks; these flags keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        missing_service(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls stay
    # synchronous. Restored afterwards: a leaked value fails `check --deploy` in later tests.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def demo(transactional_db):
    """A simulated cluster with two hours of history, priced and synced; an operator `sre`."""
    price_catalog_seed()
    cluster = Cluster.objects.create(name="demo", backend=Cluster.Backend.SIMULATED, namespaces=["llm-prod"])
    DbWorldStore(cluster).replace(demo_world(seed=5, now=timezone.now(), warmup_hours=2), seed=5)
    result = cluster_refresh(cluster=cluster)
    assert result.ok, result.error
    user_ensure(username="sre", role="operator", password=PASSWORD)
    return cluster


def log_in(page, live_server, username: str = "sre"):
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
