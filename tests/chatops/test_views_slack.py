"""POST /chatops/slack/: only Slack-signed, fresh, first-time requests from a linked user get an answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from chatops.models import SlackUserLink
from chatops.slack import expected_signature
from fleet.backends.base import DeploymentMetrics
from tests.factories import AutoscalerFactory, ClusterFactory, ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/chatops/slack/"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture(autouse=True)
def _signing_secret(settings):
    settings.SCALEDECK_SLACK_SIGNING_SECRET = SECRET


@pytest.fixture
def linked(db):
    user = UserFactory(username="alice", role="operator")
    call_command("chatops_link", "--slack-user", "U123", "--user", "alice")
    return user


def post(text: str, *, user_id="U123", timestamp=None, secret=SECRET, signature=None, client=None):
    body = urlencode(
        {
            "command": "/scaledeck",
            "text": text,
            "user_id": user_id,
            "team_id": "T1",
            "response_url": "http://127.0.0.1:9/hook",
        }
    )
    timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
    signature = signature or expected_signature(secret=secret, timestamp=timestamp, body=body.encode())
    return (client or Client()).post(
        URL,
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def test_it_answers_a_correctly_signed_status_command_without_login_or_csrf(linked, fake_metrics):
    cluster = ClusterFactory(name="prod")
    ModelDeploymentFactory(cluster=cluster, name="chat", ttft_slo_seconds=2.0)
    fake_metrics.metrics[("llm", "chat")] = DeploymentMetrics(ttft_p95_seconds=3.0)

    response = post("status", client=Client(enforce_csrf_checks=True))

    assert response.status_code == 200
    text = response.json()["text"]
    assert "*prod*: 1 deployments" in text and "llm/chat (3.00 s > 2.00 s)" in text


def test_it_explains_one_deployment_with_why(linked, fake_metrics):
    dep = ModelDeploymentFactory(cluster=ClusterFactory(name="prod"), name="chat", replicas_desired=3, replicas_ready=2)
    AutoscalerFactory(deployment=dep, name="chat-so", min_replicas=2, max_replicas=8)
    fake_metrics.metrics[("llm", "chat")] = DeploymentMetrics(ttft_p95_seconds=0.5, queue_depth=4)

    text = post("why llm/chat").json()["text"]

    assert "2/3 replicas ready" in text and "KEDA chat-so, 2-8 replicas" in text
    assert "TTFT p95 0.50 s" in text and "queue 4 requests" in text
    # the "why this many replicas" panel of the deployment page, in words
    assert "Set by free GPU capacity; the metric (vllm:num_requests_waiting > 5 per replica) is at 4 " in text
    assert "against a target of 5, asking for 1 replica." in text
    assert "More replicas blocked by: No free GPU now" in text
    assert post("why llm/nothing").json()["text"] == "No deployment llm/nothing."


def test_it_refuses_a_stale_request_even_correctly_signed(linked):
    response = post("status", timestamp=int(time.time()) - 301)

    assert response.status_code == 401 and "5 minutes" in response.json()["detail"]


def test_it_refuses_a_replayed_request(linked):
    timestamp = int(time.time())
    first = post("status", timestamp=timestamp)
    again = post("status", timestamp=timestamp)

    assert first.status_code == 200
    assert again.status_code == 401 and "already received" in again.json()["detail"]


@pytest.mark.parametrize("signature", ["v0=" + "0" * 64, "v1=abc", ""])
def test_it_refuses_a_bad_signature(linked, signature):
    response = post("status", signature=signature or "x", secret="another-secret")

    assert response.status_code == 401
    assert "text" not in response.json()


def test_it_refuses_a_request_signed_with_another_secret(linked):
    assert post("status", secret="not-the-secret").status_code == 401


def test_it_refuses_everything_without_a_configured_secret(linked, settings):
    settings.SCALEDECK_SLACK_SIGNING_SECRET = ""

    response = post("status", secret="")

    assert response.status_code == 401 and "not configured" in response.json()["detail"]


def test_it_tells_an_unlinked_slack_user_to_ask_an_admin(linked):
    text = post("status", user_id="U999").json()["text"]

    assert "not linked" in text


def test_it_answers_usage_to_an_unknown_subcommand(linked):
    assert "Usage" in post("dance").json()["text"]


def test_chatops_link_refuses_an_unknown_user_or_a_malformed_id(db):
    with pytest.raises(CommandError, match="No ScaleDeck user"):
        call_command("chatops_link", "--slack-user", "U1", "--user", "nobody")
    UserFactory(username="bob")
    with pytest.raises(CommandError, match="not a Slack user id"):
        call_command("chatops_link", "--slack-user", "U1 x", "--user", "bob")
    assert not SlackUserLink.objects.exists()


def test_the_signing_secret_is_read_from_the_file_named_by_the_FILE_variable(tmp_path):
    secret_file = tmp_path / "slack-signing-secret"
    secret_file.write_text("from-a-mounted-secret\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEDECK_SLACK")}
    env["SCALEDECK_SLACK_SIGNING_SECRET_FILE"] = str(secret_file)

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.SCALEDECK_SLACK_SIGNING_SECRET)",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "from-a-mounted-secret"
