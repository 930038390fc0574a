"""Every write endpoint and page form, fed a corpus of malformed input: never a 5xx, never a write.

The corpus kinds of issue 10: nesting, integers past 64 bits, NaN/Infinity, huge strings, control
characters, wrong types, unknown fields. Each input must be refused (4xx; the admin re-renders
its form), and afterwards the database holds the same actions, rules, quotas, objectives and
clusters as before, and the fake Kubernetes API saw no write.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from fleet.models import Cluster, ModelDeployment, NamespaceQuota
from scaling.models import PrescaleRule, ScaleAction
from tests.factories import ApiTokenFactory, UserFactory

DEEP = "[" * 1100 + "]" * 1100
HUGE = "x" * 100_000
CONTROL = ["a\x00b", "a\x1b[31mred", "a\x07b", "a\x85b"]
BIG_INTS = [2**64, -(2**64), 10**30, 9223372036854775808]
WRONG_TYPES = [[], {}, [1, 2], {"a": 1}]
INT_BAD = [*BIG_INTS, *WRONG_TYPES, None, "many", 1.5, True, HUGE, "1e400"]
TEXT_BAD = [*CONTROL, HUGE, None, *WRONG_TYPES, True]
BOOL_BAD = ["maybe", 2, *WRONG_TYPES, HUGE]
RAW_BODIES = [
    DEEP,
    '{"a": ' * 40 + "1" + "}" * 40,
    "NaN",
    "[NaN]",
    '{"replicas": NaN}',
    '{"replicas": Infinity}',
    '{"replicas": -Infinity}',
    '{"replicas": 1e400}',
    '{"replicas": 123456789012345678901234567890}',
    "not json",
    "[1, 2",
    '"a string"',
    "[]",
    "null",
    "42",
    '{"\\ud800": 1}',
]
# Form posts: every value is a string there.
FORM_INT_BAD = [
    "99999999999999999999999",
    "-99999999999999999999",
    "1e400",
    "NaN",
    "inf",
    "-inf",
    "1.5",
    "many",
    HUGE,
    "\x00",
    "0x10",
]
FORM_TEXT_BAD = [*CONTROL, HUGE]
SECONDS_BAD = [v for v in FORM_INT_BAD if v != "1.5"]  # a fraction of a second is fine there


def state(world) -> tuple:
    """Everything a refused input must leave as it was."""
    return (
        ScaleAction.objects.count(),
        list(PrescaleRule.objects.order_by("id").values()),
        list(NamespaceQuota.objects.order_by("id").values_list("hard", flat=True)),
        list(ModelDeployment.objects.order_by("id").values_list("ttft_slo_seconds", flat=True)),
        list(Cluster.objects.order_by("id").values()),
        len(world.patches()),
    )


def variants(valid: dict, bad: dict[str, list], *, unknown: bool = True) -> list:
    """The valid body with one field made bad at a time, plus unknown fields (the API refuses
    them; an HTML form ignores what it does not know, as browsers send buttons' names too)."""
    bodies = [{**valid, name: value} for name, values in bad.items() for value in values]
    return [*bodies, {**valid, "unknown_field": 1}, {**valid, "replica": 2}] if unknown else bodies


@pytest.fixture
def scene(world):
    dep = world.deployment()
    world.keda(dep, min_replicas=1, max_replicas=8)
    quota = world.quota()
    rule = PrescaleRule.objects.create(
        deployment=dep, cron="0 9 * * *", timezone="Europe/Berlin", min_replicas=2, duration_minutes=60
    )
    return dep, quota, rule


def api(role: str = "admin") -> APIClient:
    token = ApiTokenFactory(role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


def send(client, method: str, url: str, body) -> int:
    data = body if isinstance(body, str) else json.dumps(body)
    return getattr(client, method)(url, data, content_type="application/json").status_code


def api_cases(dep, quota, rule) -> list[tuple[str, str, dict, dict]]:
    scale = {
        "replicas": 3,
        "reason": "launch",
        "mode": "floor",
        "ttl_minutes": 60,
        "raise_max": False,
        "dry_run": False,
    }
    new_rule = {
        "deployment": dep.id,
        "cron": "0 9 * * 1-5",
        "timezone": "Europe/Berlin",
        "min_replicas": 2,
        "duration_minutes": 60,
        "enabled": True,
    }
    quota_patch = {"hard": {"requests.nvidia.com/gpu": 20}, "reason": "more", "force": False}
    return [
        (
            "post",
            f"/api/v1/deployments/{dep.id}/scale/",
            scale,
            {
                "replicas": INT_BAD,
                "reason": [*TEXT_BAD, ""],
                "mode": ["sideways", 5, *WRONG_TYPES, None, HUGE],
                "ttl_minutes": [*BIG_INTS, *WRONG_TYPES, "many", 1.5, True, HUGE, 0, -5],
                "raise_max": BOOL_BAD,
                "dry_run": BOOL_BAD,
            },
        ),
        (
            "post",
            "/api/v1/prescale-rules/",
            new_rule,
            {
                "deployment": [*BIG_INTS, *WRONG_TYPES, "many", 0, -1, HUGE],
                "cron": [*TEXT_BAD, "* * * * * *", "61 * * * *", ""],
                "timezone": [*TEXT_BAD, "EST", "US/Eastern", "../../etc/passwd", "+02:00"],
                "min_replicas": INT_BAD,
                "duration_minutes": [*INT_BAD, 0, 100_000],
                "enabled": BOOL_BAD,
            },
        ),
        (
            "patch",
            f"/api/v1/prescale-rules/{rule.id}/",
            {"min_replicas": 3},
            {
                "min_replicas": INT_BAD,
                "timezone": ["EST", *CONTROL, HUGE],
                "cron": ["nope", *CONTROL],
                "duration_minutes": INT_BAD,
            },
        ),
        (
            "patch",
            f"/api/v1/quotas/{quota.id}/",
            quota_patch,
            {
                "hard": [
                    # (null is no malformed value there: it removes the entry)
                    *({"requests.nvidia.com/gpu": v} for v in INT_BAD if v is not None),
                    {"requests.nvidia.com/gpu": 100_001},
                    *(
                        {key: 4}
                        for key in [
                            "requests.nvidia.com/gpu\x00",
                            "requests.nvidia.com/mig-" + "a" * 300,
                            "requests.cpu",
                            "",
                            "requests.nvidia.com/mig-\n1g",
                            HUGE,
                        ]
                    ),
                    {},
                    [],
                    "16",
                    None,
                ],
                "reason": [*TEXT_BAD, ""],
                "force": BOOL_BAD,
            },
        ),
    ]


def test_it_refuses_the_corpus_on_every_api_write_endpoint(scene, world):
    dep, quota, rule = scene
    client = api("admin")
    before = state(world)
    answers = []
    for method, url, valid, bad in api_cases(dep, quota, rule):
        for body in [*RAW_BODIES, *variants(valid, bad)]:
            answers.append((url, str(body)[:80], send(client, method, url, body)))

    assert [a for a in answers if not 400 <= a[2] < 500] == []
    assert len(answers) > 250
    assert state(world) == before


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_it_refuses_the_corpus_from_roles_that_may_not_write_with_no_5xx(scene, world, role):
    dep, quota, rule = scene
    client = api(role)
    before = state(world)
    for method, url, valid, bad in api_cases(dep, quota, rule):
        for body in [*RAW_BODIES, *variants(valid, bad)][::7]:
            assert 400 <= send(client, method, url, body) < 500, (url, str(body)[:80])
    assert state(world) == before


def test_it_answers_4xx_to_bodies_sent_to_read_only_endpoints(scene, world):
    client = api("admin")
    before = state(world)
    for url in (
        "/api/v1/clusters/",
        "/api/v1/deployments/",
        "/api/v1/nodes/",
        "/api/v1/actions/",
        "/api/v1/costs/",
        "/api/v1/prices/",
        f"/api/v1/deployments/{scene[0].id}/",
    ):
        for body in (DEEP, '{"a": NaN}', {"name": HUGE}):
            for method in ("post", "put", "patch", "delete"):
                assert 400 <= send(client, method, url, body) < 500, (method, url)
    assert state(world) == before


def test_it_answers_400_to_malformed_filters_and_paging(scene):
    client = api("viewer")
    for url in (
        "/api/v1/actions/",
        "/api/v1/deployments/",
        "/api/v1/nodes/",
        "/api/v1/clusters/",
        "/api/v1/costs/",
        "/api/v1/prices/",
    ):
        for params in (
            {"deployment": "9223372036854775808"},
            {"deployment": "1e400"},
            {"offset": str(2**64)},
            {"limit": "-1"},
            {"ready": "maybe"},
            {"status": "\x00"},
            {"start": "2026-13-45"},
            {"group_by": HUGE},
            {"include_gone": [HUGE]},
            {"capacity_type": "\x1b"},
        ):
            response = client.get(url, params)
            assert response.status_code < 500, (url, params)


def page_cases(dep, quota, rule) -> list[tuple[str, dict, dict]]:
    scale = {"replicas": "3", "mode": "floor", "duration": "60", "reason": "launch", "raise_max": ""}
    rule_form = {
        "deployment": str(dep.id),
        "cron": "0 9 * * 1-5",
        "timezone": "Europe/Berlin",
        "min_replicas": "2",
        "duration_minutes": "60",
        "enabled": "on",
    }
    quota_form = {"reason": "more", "hard_0": "20", "new_resource": "", "new_value": ""}
    rule_bad = {
        "deployment": [*FORM_INT_BAD, "0"],
        "cron": [*FORM_TEXT_BAD, "* * * * * *"],
        "timezone": [*FORM_TEXT_BAD, "EST", "../../etc/passwd"],
        "min_replicas": FORM_INT_BAD,
        "duration_minutes": [*FORM_INT_BAD, "0"],
    }
    return [
        (
            f"/scaling/deployments/{dep.id}/controls/",
            scale,
            {
                "replicas": FORM_INT_BAD,
                "mode": ["sideways", HUGE, "\x00"],
                "duration": ["7", HUGE, "\x00", "-1"],
                "reason": [*FORM_TEXT_BAD, ""],
            },
        ),
        ("/scaling/rules/new/", rule_form, rule_bad),
        (f"/scaling/rules/{rule.id}/edit/", rule_form, rule_bad),
        (
            f"/scaling/quotas/{quota.id}/edit/",
            quota_form,
            {
                "hard_0": [*FORM_INT_BAD, "100001"],
                "reason": [*FORM_TEXT_BAD, ""],
                "new_resource": ["requests.nvidia.com/gpu\x00", "requests.cpu", HUGE, "requests.nvidia.com/mig-\n1g"],
            },
        ),
        (
            f"/scaling/deployments/{dep.id}/slo/",
            {"ttft_slo_seconds": "1.5", "reason": "tighter"},
            {
                "ttft_slo_seconds": [*SECONDS_BAD, "0.0001", "601", "-0"],
                "reason": FORM_TEXT_BAD,
            },
        ),
        (
            f"/scaling/deployments/{dep.id}/whatif/",
            {"policies": "keda min=1 max=4", "hours": "2"},
            {
                "policies": [*FORM_TEXT_BAD, "keda min=1 max=100000", "none min=2000", "keda min=nan"],
                "hours": FORM_INT_BAD,
                "spike": FORM_INT_BAD,
            },
        ),
    ]


def test_it_refuses_the_corpus_on_every_page_form(scene, world):
    dep, quota, rule = scene
    client = Client()
    client.force_login(UserFactory(role="admin"))
    before = state(world)
    answers = []
    for url, valid, bad in page_cases(dep, quota, rule):
        for body in variants(valid, bad, unknown=False):
            answers.append((url, str(body)[:80], client.post(url, body).status_code))
        for raw in (DEEP, '{"replicas": NaN}'):
            answers.append((url, raw[:20], client.post(url, raw, content_type="application/json").status_code))

    assert [a for a in answers if not 400 <= a[2] < 500] == []
    assert state(world) == before


def test_it_refuses_the_corpus_in_the_admin(scene, world):
    dep, quota, rule = scene
    client = Client()
    client.force_login(UserFactory(role="admin", is_staff=True, is_superuser=True))
    before = state(world)
    rule_form = {
        "deployment": str(dep.id),
        "cron": "0 9 * * *",
        "timezone": "Europe/Berlin",
        "min_replicas": "2",
        "duration_minutes": "60",
        "enabled": "on",
        "created_by": "",
    }
    for body in variants(
        rule_form,
        {
            "timezone": ["EST", *FORM_TEXT_BAD],
            "cron": ["* * *", *FORM_TEXT_BAD],
            "min_replicas": FORM_INT_BAD,
            "deployment": FORM_INT_BAD,
        },
        unknown=False,
    ):
        response = client.post(f"/admin/scaling/prescalerule/{rule.id}/change/", body)
        assert response.status_code == 200, str(body)[:80]  # the form again, with its errors
    for body in variants(
        {"ttft_slo_seconds": "1.5", "reason": "tighter"},
        {"ttft_slo_seconds": [*SECONDS_BAD, "0.0001", "601"], "reason": FORM_TEXT_BAD},
        unknown=False,
    ):
        response = client.post(f"/admin/fleet/modeldeployment/{dep.id}/change/", body)
        assert response.status_code == 200, str(body)[:80]
    assert state(world) == before


def test_the_admin_saves_a_rule_the_services_accept_with_its_cron_normalised(scene):
    dep, _, rule = scene
    client = Client()
    client.force_login(UserFactory(role="admin", is_staff=True, is_superuser=True))

    response = client.post(
        f"/admin/scaling/prescalerule/{rule.id}/change/",
        {
            "deployment": str(dep.id),
            "cron": "0  8 * *  1-5",
            "timezone": "Europe/Berlin",
            "min_replicas": "3",
            "duration_minutes": "90",
            "enabled": "on",
            "created_by": "",
        },
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.cron, rule.min_replicas) == ("0 8 * * 1-5", 3)


def test_it_refuses_the_corpus_when_ending_an_override_early(scene, world, run_on_commit):
    dep = scene[0]
    client = api("operator")
    started = run_on_commit(
        client.post,
        f"/api/v1/deployments/{dep.id}/scale/",
        {"replicas": 4, "reason": "launch", "ttl_minutes": 60},
        format="json",
    )
    override = ScaleAction.objects.get(id=started.json()["id"])
    assert override.status == ScaleAction.Status.SUCCEEDED
    before = state(world)
    page = Client()
    page.force_login(UserFactory(role="operator"))

    for body in [
        *RAW_BODIES,
        *({"reason": bad} for bad in TEXT_BAD if bad is not None),
        {"reason": None},
        {"reason": "ok", "unknown_field": 1},
    ]:
        code = send(client, "post", f"/api/v1/actions/{override.id}/end/", body)
        assert 400 <= code < 500, str(body)[:80]
    for reason in CONTROL:
        page.post(f"/scaling/actions/{override.id}/end/", {"reason": reason})

    assert state(world) == before
    override.refresh_from_db()
    assert override.restore_action_id is None
