"""A real browser (Playwright driving Debian's Chromium) logs in and sees the pages work."""


import pytest

from fleet.models import ModelDeployment
from tests.browser_fixtures import SCREENSHOTS, log_in

pytestmark = pytest.mark.browser


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
