"""The HTML lists without shared filters until now (alerts, pre-scale rules, API tokens, alert
receivers) take the same filters as the API: several values for one field, `<field>__ic`, `q`,
`ordering`, and an unknown or malformed parameter named on the page (the overview's way: the
notice, no rows), in a number of queries that does not grow with the rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from scaling.alerts.models import Alert, Receiver
from scaling.models import PrescaleRule
from tests.factories import ApiTokenFactory, ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db

WORDS = ("alpha", "beta", "gamma")  # created in this order; each page's `ordering` sorts them so


def _alert(word: str, index: int) -> str:
    deployment = ModelDeploymentFactory(namespace=f"ns-{word}", name=f"{word}-model")
    Alert.objects.create(cluster=deployment.cluster, rule="slo_burn_page", severity="page", deployment=deployment,
                         fingerprint=f"fp-{word}", summary=f"{word} TTFT burning",
                         started_at=timezone.now() - timedelta(hours=10 - index))  # fmt: skip
    return f"{word} TTFT burning"


def _rule(word: str, index: int) -> str:
    deployment = ModelDeploymentFactory(namespace=f"ns-{word}", name=f"{word}-model")
    PrescaleRule.objects.create(deployment=deployment, cron="0 9 * * 1-5", timezone="UTC", min_replicas=2,
                                duration_minutes=60)  # fmt: skip
    return f"ns-{word}/{word}-model"


def _token(word: str, index: int) -> str:
    ApiTokenFactory(name=f"{word}-bot", user=UserFactory(username=f"{word}-user"))
    return f"<td>{word}-bot</td>"


def _receiver(word: str, index: int) -> str:
    Receiver.objects.create(name=f"{word}-hook", kind="webhook", url_hint=f"https://{word}.example.com",
                            events=["alerts"])  # fmt: skip
    return f"<td>{word}-hook</td>"


@dataclass(frozen=True)
class PageFilters:
    path: str
    role: str
    make: object  # (word, index) -> the text only that row shows on the page
    several: str  # the field given two values
    several_values: tuple[str, str]
    contains: str  # the `__ic` parameter
    ordering: str  # sorts alpha, beta, gamma ascending
    api: str  # the API list that shares the page's FilterSet


PAGES = {
    "alerts": PageFilters(
        "/scaling/alerts/?state=all&",
        "viewer",
        _alert,
        "namespace",
        ("ns-alpha", "ns-beta"),
        "deployment__ic",
        "started_at",
        "/api/v1/alerts/",
    ),
    "rules": PageFilters(
        "/scaling/rules/?",
        "viewer",
        _rule,
        "namespace",
        ("ns-alpha", "ns-beta"),
        "name__ic",
        "name",
        "/api/v1/prescale-rules/",
    ),
    "tokens": PageFilters(
        "/tokens/?", "admin", _token, "user", ("alpha-user", "beta-user"), "name__ic", "name", "/api/v1/tokens/"
    ),
    "receivers": PageFilters(
        "/scaling/alerts/receivers/?",
        "admin",
        _receiver,
        "name",
        ("alpha-hook", "beta-hook"),
        "name__ic",
        "name",
        "/api/v1/receivers/",
    ),
}


@pytest.fixture(params=sorted(PAGES))
def page(request):
    spec = PAGES[request.param]
    markers = [spec.make(word, index) for index, word in enumerate(WORDS)]
    client = Client()
    client.force_login(UserFactory(username="looker", role=spec.role))

    def get(query: str) -> tuple[int, str]:
        response = client.get(spec.path + query)
        return response.status_code, response.content.decode()

    return spec, dict(zip(WORDS, markers, strict=True)), get


def _shown(html: str, markers: dict[str, str]) -> list[str]:
    """The words whose rows the page shows, in the order it shows them."""
    found = [(html.find(marker), word) for word, marker in markers.items() if marker in html]
    return [word for _, word in sorted(found)]


def test_several_values_for_one_field_match_either(page):
    spec, markers, get = page
    a, b = spec.several_values

    status, html = get(f"{spec.several}={a}&{spec.several}={b}")

    assert status == 200 and sorted(_shown(html, markers)) == ["alpha", "beta"]


def test_contains_in_any_case(page):
    spec, markers, get = page

    assert _shown(get(f"{spec.contains}=LPH")[1], markers) == ["alpha"]


def test_free_text_search(page):
    spec, markers, get = page

    assert _shown(get("q=GAMM")[1], markers) == ["gamma"]


def test_ordering_both_ways(page):
    spec, markers, get = page

    assert _shown(get(f"ordering={spec.ordering}")[1], markers) == ["alpha", "beta", "gamma"]
    assert _shown(get(f"ordering=-{spec.ordering}")[1], markers) == ["gamma", "beta", "alpha"]


def test_an_unknown_parameter_is_named_and_nothing_is_listed(page):
    spec, markers, get = page

    status, html = get("namspace=ns-alpha")

    assert status == 400  # as the API; the page names it in place of the rows
    assert "Filter not applied" in html and "namspace: Unknown filter" in html
    assert _shown(html, markers) == []


def test_a_malformed_value_is_named(page):
    spec, markers, get = page

    status, html = get("ordering=colour")

    assert "ordering: Select a valid choice." in html and _shown(html, markers) == []


def test_the_query_count_does_not_grow_with_the_rows(page):
    spec, markers, get = page
    with CaptureQueriesContext(connection) as three:
        get("")
    for index, word in enumerate(("delta", "epsilon", "zeta"), start=len(WORDS)):
        spec.make(word, index)

    with CaptureQueriesContext(connection) as six:
        html = get("")[1]

    assert "zeta" in html
    assert len(six) == len(three), [q["sql"] for q in six.captured_queries]


def test_the_api_list_takes_the_same_filters(page):
    spec, markers, get = page
    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(name='admin-bot', role='admin').raw}")
    a, b = spec.several_values

    def count(query: str) -> int:
        response = bot.get(f"{spec.api}?{query}")
        assert response.status_code == 200, response.content
        return response.json()["count"]

    assert count(f"{spec.several}={a}&{spec.several}={b}") == 2
    assert count(f"{spec.contains}=LPH") == 1
    assert count("q=GAMM") == 1
    refused = bot.get(f"{spec.api}?namspace=ns-alpha")
    assert refused.status_code == 400 and list(refused.json()) == ["namspace"]


def test_an_htmx_fragment_with_a_refused_filter_is_a_400_htmx_still_swaps_in(db):
    client = Client()
    client.force_login(UserFactory(username="looker", role="viewer"))

    response = client.get(reverse("scaling:audit"), {"status": "nope"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 400 and response["X-ScaleDeck-Filter-Errors"] == "1"
    html = response.content.decode()
    assert "<html" not in html and "status: Select a valid choice" in html
