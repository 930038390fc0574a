"""`/scaledeck status` and `why` answer within Slack's 3 seconds even when a Prometheus is slow or dead:
what the metrics cannot give in 2 s is posted to the response_url from the worker."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import Client

from chatops.slack import expected_signature
from tests.chatops.conftest import SECRET
from tests.factories import ClusterFactory, ModelDeploymentFactory, PodFactory, UserFactory
from tests.metrics.fake_http import EMPTY_VECTOR, FakeHTTP

pytestmark = pytest.mark.django_db
SLACK_LIMIT_SECONDS = 3.0


@pytest.fixture
def prometheus():
    """A real HTTP server standing in for Prometheus; `delay` seconds before each answer."""
    made: list[FakeHTTP] = []

    def start(delay: float) -> FakeHTTP:
        made.append(FakeHTTP(lambda path, headers: (200, EMPTY_VECTOR), delay=delay))
        return made[-1]

    yield start
    for server in made:
        server.close()


@pytest.fixture
def chat(db):
    UserFactory(username="alice", role="viewer")
    call_command("chatops_link", "--slack-user", "U1", "--user", "alice")


@pytest.fixture(autouse=True)
def _warm_server(db):
    """A first request loads every URLconf and view module: a server does that once, before Slack asks."""
    assert Client().get("/chatops/slack/").status_code == 405  # POST only; resolving it loads the URLconf


def command(text: str, hook: str):
    body = urlencode(
        {"command": "/scaledeck", "text": text, "user_id": "U1", "team_id": "T1", "response_url": hook + "commands/1"}
    )
    timestamp = str(int(time.time()))
    signature = expected_signature(secret=SECRET, timestamp=timestamp, body=body.encode())
    started = time.monotonic()
    response = Client().post(
        "/chatops/slack/",
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )
    return response, time.monotonic() - started


def _cluster(prometheus_url: str) -> None:
    cluster = ClusterFactory(name="prod", prometheus_url=prometheus_url, prometheus_timeout_seconds=3.0)
    PodFactory(deployment=ModelDeploymentFactory(cluster=cluster, namespace="llm", name="chat"))


@pytest.mark.parametrize("text", ["status", "why llm/chat"])
def test_a_dead_prometheus_is_answered_in_time_and_the_answer_follows_from_the_worker(
    chat, slack_hooks, prometheus, django_capture_on_commit_callbacks, text
):
    hook, received = slack_hooks
    dead = prometheus(delay=10)  # answers long after its 3 s timeout
    _cluster(dead.url)

    with django_capture_on_commit_callbacks() as later:
        response, seconds = command(text, hook)

    assert response.status_code == 200 and seconds < SLACK_LIMIT_SECONDS, seconds
    assert "Prometheus did not answer within 2 s: the answer follows here" in response.json()["text"]
    assert dead.requests  # it was asked
    assert received == [] and len(later) == 1
    later[0]()  # the worker's task (eager): waits for Prometheus's timeout, then posts
    (posted,) = received
    assert posted["replace_original"] is False
    assert "metrics unavailable: Prometheus at" in posted["text"] and "did not answer within 3.0 s" in posted["text"]
    assert ("*prod*: 1 deployments" if text == "status" else "*prod llm/chat*") in posted["text"]


def test_a_healthy_prometheus_is_answered_at_once_in_the_reply(
    chat, slack_hooks, prometheus, django_capture_on_commit_callbacks
):
    hook, received = slack_hooks
    _cluster(prometheus(delay=0.2).url)

    with django_capture_on_commit_callbacks() as later:
        response, seconds = command("status", hook)

    assert response.status_code == 200 and seconds < SLACK_LIMIT_SECONDS
    text = response.json()["text"]
    assert text.startswith("*prod*: 1 deployments") and "TTFT unknown for 1 deployment (metrics unavailable: no" in text
    assert later == [] and received == []
