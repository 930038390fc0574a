"""The pre-scale rule form: every field's error at once, a live preview, and the rules on the deployment page."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from scaling.models import PrescaleRule
from scaling.services import prescale_rule_create

HTMX = {"HTTP_HX_REQUEST": "true"}
MONDAY = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_shows_every_fields_error_at_once_in_one_clean_sentence_each(world, operator):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=1, max_replicas=8)

    response = login(operator).post(
        reverse("scaling:rule-create"),
        {
            "deployment": dep.id,
            "cron": "45 8 * * weekdays",
            "timezone": "Berlin",
            "min_replicas": 20,
            "duration_minutes": 60,
            "enabled": "on",
        },
    )

    html = response.content.decode()
    assert response.status_code == 400 and PrescaleRule.objects.count() == 0
    assert "the day-of-week field “weekdays” is not valid: use 0-6 or SUN-SAT" in html
    assert "&#x27;Berlin&#x27; is not an IANA" in html
    assert "the floor (20) is above the autoscaler&#x27;s max (8)" in html
    assert "is not acceptable" not in html and "[45 8" not in html


def test_a_type_error_does_not_hide_the_cron_error(world, operator):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=1, max_replicas=8)

    html = (
        login(operator)
        .post(
            reverse("scaling:rule-create"),
            {
                "deployment": dep.id,
                "cron": "0 25 * * *",
                "timezone": "UTC",
                "min_replicas": "",
                "duration_minutes": 60,
            },
        )
        .content.decode()
    )

    assert "the hour field “25” is not valid" in html and "This field is required." in html


def test_it_previews_the_next_five_firings_while_typing(world, operator):
    client = login(operator)
    form = client.get(reverse("scaling:rule-create")).content.decode()
    assert f'hx-get="{reverse("scaling:rule-preview")}"' in form and 'hx-include="#id_cron, #id_timezone"' in form

    with time_machine.travel(MONDAY, tick=False):
        html = client.get(
            reverse("scaling:rule-preview"), {"cron": "45 8 * * 1-5", "timezone": "Europe/Berlin"}, **HTMX
        ).content.decode()

    assert html.count("<li>") == 5 and "Mon 2025-06-02 08:45 CEST" in html and "(06:45 UTC)" in html
    assert "Fri 2025-06-06 08:45 CEST" in html and "Sat" not in html


def test_the_preview_says_why_there_is_none(world, operator):
    html = (
        login(operator)
        .get(reverse("scaling:rule-preview"), {"cron": "45 8 * * weekdays", "timezone": "UTC"}, **HTMX)
        .content.decode()
    )

    assert "<li>" not in html and "the day-of-week field “weekdays” is not valid" in html


def test_the_deployment_page_lists_its_rules_and_their_next_firing(world, operator, viewer):
    dep = world.deployment(replicas=2)
    other = world.deployment("other", replicas=1)
    world.keda(dep, min_replicas=1, max_replicas=8)
    world.keda(other, min_replicas=1, max_replicas=8)
    rule = prescale_rule_create(
        deployment=dep, cron="45 8 * * 1-5", timezone_name="Europe/Berlin", min_replicas=6, duration_minutes=180
    )
    prescale_rule_create(deployment=other, cron="0 7 * * *", timezone_name="UTC", min_replicas=2, duration_minutes=60)
    url = reverse("scaling:deployment-rules", args=[dep.id])
    assert f'hx-get="{url}"' in login(viewer).get(reverse("fleet:deployment", args=[dep.id])).content.decode()

    with time_machine.travel(MONDAY, tick=False):
        html = login(viewer).get(url, **HTMX).content.decode()

    assert f"#{rule.id}</a>" in html and "at least 6 replicas for 180 min" in html
    assert "next firing Mon 2025-06-02 08:45 CEST" in html and "0 7 * * *" not in html


def test_the_api_names_every_field_at_fault(world, operator):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=1, max_replicas=8)
    api = APIClient()
    api.force_authenticate(operator)

    body = api.post(
        "/api/v1/prescale-rules/",
        {
            "deployment": dep.id,
            "cron": "45 8 * * weekdays",
            "timezone": "Berlin",
            "min_replicas": 20,
            "duration_minutes": 60,
        },
        format="json",
    ).json()

    assert {"cron", "timezone", "min_replicas"} <= set(body)


def test_a_post_without_form_fields_is_refused_not_a_crash(world, operator, admin):
    quota = world.quota()

    rule = login(operator).post(
        reverse("scaling:rule-create"), '{"cron": "0 9 * * *"}', content_type="application/json"
    )
    quota_edit = login(admin).post(
        reverse("scaling:quota-edit", args=[quota.id]), "{}", content_type="application/json"
    )

    assert rule.status_code == 400 and "This field is required." in rule.content.decode()
    assert quota_edit.status_code == 400
