"""`/scaledeck scale ns/name N [for 2h] "reason"`: a dry run with buttons; Confirm applies it in the
worker through the API's service and posts the result to the response_url; Cancel changes nothing."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import Client

from chatops.slack import expected_signature
from scaling.models import ScaleAction
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SECRET = "test-signing-secret"


def signed_post(url: str, fields: dict, *, secret: str = SECRET):
    body = urlencode(fields)
    timestamp = str(int(time.time()))
    signature = expected_signature(secret=secret, timestamp=timestamp, body=body.encode())
    return Client(enforce_csrf_checks=True).post(
        url,
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def command(text: str, *, user_id: str = "U1", hook: str = "http://127.0.0.1:9/"):
    return signed_post(
        "/chatops/slack/",
        {"command": "/scaledeck", "text": text, "user_id": user_id, "team_id": "T1", "response_url": hook},
    )


def press(button: dict, *, user_id: str = "U1", hook: str, secret: str = SECRET):
    payload = {
        "type": "block_actions",
        "user": {"id": user_id},
        "response_url": hook + "actions/1",
        "actions": [{"action_id": button["action_id"], "value": button["value"]}],
    }
    return signed_post("/chatops/slack/interactive/", {"payload": json.dumps(payload)}, secret=secret)


@pytest.fixture
def keda_chat(world):
    deployment = world.deployment("chat", replicas=2)
    world.keda(deployment, min_replicas=1, max_replicas=8)
    world.quota(hard=16, used=4)
    UserFactory(username="alice", role="operator")
    call_command("chatops_link", "--slack-user", "U1", "--user", "alice")
    return deployment


def buttons(message: dict) -> dict:
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    return {e["action_id"]: e for e in actions["elements"]}


def test_it_answers_a_dry_run_with_cost_quota_and_buttons_and_writes_nothing(keda_chat, slack_hooks, world):
    response = command('scale llm/chat 4 for 2h "launch day"')

    assert response.status_code == 200
    message = response.json()
    assert "*Dry run* prod llm/chat: at least 4 replicas for 120 min" in message["text"]
    assert "Cost" in message["text"] and "gpu-quota needs" in message["text"]
    assert set(buttons(message)) == {"scale_confirm", "scale_cancel"}
    assert world.so_spec("chat")["spec"]["minReplicaCount"] == 1
    assert not ScaleAction.objects.exclude(status=ScaleAction.Status.PENDING).filter(request__dry_run=False).exists()


def test_confirm_applies_it_in_the_worker_and_posts_the_result(keda_chat, slack_hooks, world, run_on_commit):
    hook, received = slack_hooks
    confirm = buttons(command('scale llm/chat 4 for 2h "launch day"').json())["scale_confirm"]

    response = run_on_commit(press, confirm, hook=hook)

    assert response.status_code == 200 and "sent to the worker" in response.json()["text"]
    action = ScaleAction.objects.get(request__dry_run=False)
    assert (action.actor_label, action.reason, action.status) == ("alice", "launch day", ScaleAction.Status.SUCCEEDED)
    assert world.so_spec("chat")["spec"]["minReplicaCount"] == 4
    assert len(received) == 1 and f"#{action.id}" in received[0]["text"] and "succeeded" in received[0]["text"]


def test_cancel_changes_nothing(keda_chat, slack_hooks, world, run_on_commit):
    hook, received = slack_hooks
    cancel = buttons(command('scale llm/chat 4 "launch"').json())["scale_cancel"]

    response = run_on_commit(press, cancel, hook=hook)

    assert "Cancelled" in response.json()["text"]
    assert world.so_spec("chat")["spec"]["minReplicaCount"] == 1 and received == []


def test_a_viewer_may_not_scale_from_slack(keda_chat, slack_hooks):
    UserFactory(username="vera", role="viewer")
    call_command("chatops_link", "--slack-user", "U2", "--user", "vera")

    assert "may not scale" in command('scale llm/chat 4 "launch"', user_id="U2").json()["text"]


def test_a_badly_signed_confirm_does_nothing(keda_chat, slack_hooks, world, run_on_commit):
    hook, received = slack_hooks
    confirm = buttons(command('scale llm/chat 4 "launch"').json())["scale_confirm"]

    response = run_on_commit(press, confirm, hook=hook, secret="forged")

    assert response.status_code == 401
    assert world.so_spec("chat")["spec"]["minReplicaCount"] == 1 and received == []


def test_it_refuses_a_response_url_that_is_not_slacks(keda_chat, slack_hooks, world, run_on_commit):
    confirm = buttons(command('scale llm/chat 4 "launch"').json())["scale_confirm"]

    response = run_on_commit(press, confirm, hook="http://169.254.169.254/")

    assert response.status_code == 400 and world.so_spec("chat")["spec"]["minReplicaCount"] == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("scale llm/chat", "Usage"),
        ('scale llm/chat many "x"', "not a number of replicas"),
        ('scale llm/chat 4 for ever "x"', "30m, 2h or 1h30m"),
        ("scale llm/chat 4", "Usage"),
        ('scale llm/nothing 4 "x"', "No deployment llm/nothing"),
        ('scale llm/chat 40 "way over"', "Refused:"),
    ],
)
def test_it_explains_a_malformed_or_refused_scale(keda_chat, slack_hooks, text, says):
    assert says in command(text).json()["text"]
