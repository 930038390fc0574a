"""A real browser raises a floor from the deployment page and sees it land (Playwright + Chromium)."""

from __future__ import annotations

import pytest

from core.errors import ApplicationError
from fleet.models import ModelDeployment
from scaling.models import ScaleAction
from scaling.services import Actor, prescale_rule_create, scale_action_request
from tests.browser_fixtures import SCREENSHOTS, log_in

pytestmark = pytest.mark.browser


def test_an_operator_raises_a_floor_for_an_hour_from_the_deployment_page(browser, demo, live_server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server)
    deployment = ModelDeployment.objects.get(cluster=demo, name="llama-3-8b")

    page.goto(f"{live_server.url}/deployments/{deployment.id}/")
    form = page.wait_for_selector("form.scale-form", timeout=15000)
    page.fill("form.scale-form input[name=replicas]", "13")
    page.fill("form.scale-form input[name=reason]", "too many")
    form.eval_on_selector("button[type=submit]", "b => b.click()")
    page.wait_for_selector("form.scale-form .has-error", timeout=15000)
    assert "max (12)" in page.inner_text("form.scale-form")
    page.locator(".scale-controls").screenshot(path=str(SCREENSHOTS / "scaling-controls-refused.png"))
    form = page.wait_for_selector("form.scale-form")
    page.fill("form.scale-form input[name=replicas]", "4")
    page.select_option("form.scale-form select[name=duration]", "60")
    page.fill("form.scale-form input[name=reason]", "launch at 10:00")
    form.eval_on_selector("button[type=submit]", "b => b.click()")
    page.wait_for_selector(".action-progress .badge.ok", timeout=15000)

    page.screenshot(path=str(SCREENSHOTS / "scaling-controls.png"), full_page=True)
    action = ScaleAction.objects.get(status="succeeded")
    assert (action.status, action.after, action.actor_label) == ("succeeded", {"min_replicas": 4}, "sre")
    assert "Floor (min replicas): 2 → 4" in page.inner_text(".action-progress")
    panel = page.inner_text(".scale-controls")
    assert "pending" not in panel and f"#{action.id} succeeded" in panel  # box and recent list agree
    assert page.inner_text(".scale-controls dl dd strong") == "4"  # the floor, refreshed with them

    page.on("dialog", lambda dialog: dialog.accept())
    page.click(".scale-controls .overrides button")
    page.wait_for_selector(f"#action-{action.id}-progress", state="detached", timeout=15000)
    page.wait_for_selector(".action-progress .badge.ok", timeout=15000)
    restore = ScaleAction.objects.get(operation="restore")
    assert restore.status == "succeeded" and restore.actor_label == "sre" and restore.after == {"min_replicas": 2}
    assert "Active overrides" not in page.inner_text(".scale-controls")
    assert errors == []
    page.close()


def test_the_rule_form_previews_the_next_firings_while_typing(browser, demo, live_server):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    log_in(page, live_server)

    page.goto(f"{live_server.url}/scaling/rules/new/")
    page.fill("#id_timezone", "Europe/Berlin")
    page.fill("#id_cron", "45 8 * * weekdays")
    page.wait_for_function("document.querySelector('#rule-preview').innerText.includes('day-of-week')")
    page.fill("#id_cron", "45 8 * * 1-5")
    page.wait_for_selector("#rule-preview ol.firings li", timeout=10000)

    assert page.locator("#rule-preview ol.firings li").count() == 5
    assert "08:45" in page.inner_text("#rule-preview")
    page.close()


def test_the_audit_and_rules_pages_render(browser, demo, live_server):
    deployment = ModelDeployment.objects.get(cluster=demo, name="llama-3-8b")
    prescale_rule_create(
        deployment=deployment, cron="0 9 * * 1-5", timezone_name="Europe/Berlin", min_replicas=6, duration_minutes=120
    )
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    log_in(page, live_server)

    page.goto(f"{live_server.url}/scaling/rules/")
    assert page.locator("ol.firings li").count() == 5
    page.screenshot(path=str(SCREENSHOTS / "scaling-rules.png"), full_page=True)
    with pytest.raises(ApplicationError):
        scale_action_request(
            deployment=deployment,
            replicas=99,
            reason="too many",
            actor=Actor(label="bot:chat", key="token:1"),
            source="api",
        )
    scale_action_request(
        deployment=deployment,
        replicas=3,
        reason="launch",
        actor=Actor(label="sre", key="user:1"),
        source="ui",
        ttl_minutes=120,
    )
    page.goto(f"{live_server.url}/scaling/actions/")
    assert page.locator("table.actions tbody tr").count() == 2
    page.screenshot(path=str(SCREENSHOTS / "scaling-audit.png"), full_page=True)
    page.goto(f"{live_server.url}/scaling/quotas/")
    assert "requests.nvidia.com/gpu" in page.inner_text("table")
    page.screenshot(path=str(SCREENSHOTS / "scaling-quotas.png"), full_page=True)
    page.close()
