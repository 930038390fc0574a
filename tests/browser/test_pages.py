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


def test_it_draws_charts_that_arrive_before_the_chart_library(browser, demo, live_server):
    """plotly.js loads async so the page does not wait for it; a chart fragment swapped in before
    the library has loaded waits for it, and is drawn once it arrives."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server)
    held = []
    page.route("**/vendor/plotly/**", lambda route: held.append(route))  # held back until released below
    deployment = ModelDeployment.objects.get(cluster=demo, name="llama-3-8b")

    with page.expect_response(lambda r: "/charts/" in r.url):
        page.goto(f"{live_server.url}/deployments/{deployment.id}/?range=1h", wait_until="domcontentloaded")
    page.wait_for_selector("#deployment-figure", state="attached")  # the fragment is in the page

    assert len(held) == 1  # asked for once
    assert page.locator(".js-plotly-plot").count() == 0
    assert "could not load" not in page.inner_text("#deployment-charts")
    held[0].continue_()
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20000)
    assert errors == []
    page.close()
