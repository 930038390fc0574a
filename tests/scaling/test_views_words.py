"""The scaling pages speak the page's words: no Python reprs, no API field names."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

HTMX = {"HTTP_HX_REQUEST": "true"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_shows_a_quota_change_as_a_readable_diff(world, admin, run_on_commit):
    quota = world.quota(hard=40, used=4)
    client = login(admin)
    response = run_on_commit(
        client.post, reverse("scaling:quota-edit", args=[quota.id]), {"hard_0": 48, "reason": "new team"}
    )

    html = client.get(response["Location"]).content.decode()

    assert "GPU quota: 40 → <strong>48</strong>" in html
    assert "{&#x27;" not in html and "&#x27;force&#x27;" not in html and "hard:" not in html


def test_it_asks_to_tick_the_box_when_a_quota_would_go_below_usage(world, admin):
    quota = world.quota(hard=16, used=12)

    html = (
        login(admin)
        .post(reverse("scaling:quota-edit", args=[quota.id]), {"hard_0": 8, "reason": "shrink"})
        .content.decode()
    )

    assert "tick “lower below current usage anyway”" in html and "send force" not in html


def test_it_asks_to_tick_raise_the_max_too_above_the_autoscaler_max(world, operator):
    dep = world.deployment(replicas=2)
    world.keda(dep, min_replicas=2, max_replicas=4)

    html = (
        login(operator)
        .post(
            reverse("scaling:deployment-controls", args=[dep.id]),
            {"replicas": 5, "mode": "floor", "reason": "launch", "duration": "60"},
            **HTMX,
        )
        .content.decode()
    )

    assert "5 is above the autoscaler&#x27;s max (4): tick “raise the max too”" in html
    assert "raise_max" not in html.replace('name="raise_max"', "").replace('id="id_raise_max"', "")
