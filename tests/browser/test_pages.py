"""A real browser (Playwright driving Debian's Chromium) logs in and sees the pages work."""

import pytest
from django.urls import reverse

from core.charts.deployment import PANELS
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

    asked = []
    page.on("request", lambda request: asked.append(request.url.removeprefix(live_server.url)))
    deployment = ModelDeployment.objects.get(cluster=demo, name="llama-3-8b")
    page.goto(f"{live_server.url}/deployments/{deployment.id}/?range=1h")
    page.wait_for_selector(".chart-panel[data-drawn] .main-svg", timeout=15000)

    # One chart per panel, every one drawn (those out of view too), each with its lines.
    panels = page.locator(".chart-panel")
    assert panels.count() == len(PANELS)
    page.wait_for_function(
        f"document.querySelectorAll('.chart-panel[data-drawn]').length === {len(PANELS)}", timeout=20000
    )
    assert page.locator(".chart-panel").first.locator("path.js-line").count() >= 3
    assert [panels.nth(i).get_attribute("aria-label") for i in range(panels.count())] == [t for t, _ in PANELS]
    page.screenshot(path=str(SCREENSHOTS / "deployment.png"), full_page=True)

    # Zooming the time axis of one panel zooms them all, as one figure with shared axes did.
    zoomed = ["2026-01-01 10:00:00", "2026-01-01 10:05:00"]
    page.evaluate("(range) => Plotly.relayout(document.querySelector('.chart-panel'), {'xaxis.range': range})", zoomed)
    page.wait_for_function("(range) => [...document.querySelectorAll('.chart-panel')].every("
                           "p => p.layout.xaxis.range[0] === range[0] && p.layout.xaxis.range[1] === range[1])",
                           arg=zoomed, timeout=10000)  # fmt: skip
    # The charts were asked first, every other box of the page once, after them; the Cost tile says
    # what 1M tokens cost.
    page.wait_for_selector("#deployment-charts .tile:has-text('per 1M')", timeout=10000)
    page.wait_for_function("!document.querySelector('main .loading')", timeout=10000)
    fragments = [url for url in asked if url.startswith(("/deployments/", "/scaling/", "/mig/", "/costs/"))][1:]
    assert fragments[0] == f"/deployments/{deployment.id}/charts/?range=1h"
    assert len(fragments) == len(set(fragments)) >= 4
    assert errors == []
    page.close()


def test_it_draws_the_panels_in_view_before_those_out_of_view(browser, demo, live_server):
    """The first panel is drawn at once; then those in view, then the others: a reader scrolled down
    to the cost panel does not wait for the ten above it."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server)
    page.add_init_script("""window.__drawn = [];
      new MutationObserver(ms => ms.forEach(m => window.__drawn.push(m.target.getAttribute('aria-label'))))
        .observe(document, {subtree: true, attributes: true, attributeFilter: ['data-drawn']});""")
    held = []
    page.route("**/vendor/plotly/**", lambda route: held.append(route))  # until the panels are laid out
    deployment = ModelDeployment.objects.get(cluster=demo, name="llama-3-8b")
    page.goto(f"{live_server.url}/deployments/{deployment.id}/?range=1h", wait_until="domcontentloaded")
    page.locator(".chart-panel").nth(len(PANELS) - 1).wait_for(state="attached", timeout=15000)
    page.locator(".chart-panel").last.scroll_into_view_if_needed()
    assert page.locator(".chart-panel[data-drawn]").count() == 0

    held[0].continue_()
    page.wait_for_function(
        f"document.querySelectorAll('.chart-panel[data-drawn]').length === {len(PANELS)}", timeout=20000
    )
    order = page.evaluate("window.__drawn")
    assert sorted(order) == sorted(t for t, _ in PANELS)  # each drawn once
    assert order[0] == PANELS[0][0]
    assert order.index("Cost") < order.index("Inter-token latency (ITL)")  # in view before out of view
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
    page.wait_for_selector("#deployment-panels", state="attached")  # the fragment is in the page

    assert len(held) == 1  # asked for once
    assert page.locator(".js-plotly-plot").count() == 0
    assert "could not load" not in page.inner_text("#deployment-charts")
    held[0].continue_()
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20000)
    assert errors == []
    page.close()


def test_a_refused_filter_s_notice_is_swapped_in_by_htmx(browser, demo, live_server):
    page = browser.new_page()
    log_in(page, live_server)
    actions = reverse("scaling:audit")
    page.goto(f"{live_server.url}{actions}")

    # What a filter form's request does when the server refuses a parameter: 400 with the notice.
    page.evaluate(f"htmx.ajax('GET', '{actions}?status=nope', {{target: '#audit-table'}})")
    page.wait_for_selector("#audit-table :text('Filter not applied')", timeout=10000)

    assert "status: Select a valid choice" in page.inner_text("#audit-table")
    page.close()
