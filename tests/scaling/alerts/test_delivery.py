"""Sending deliveries to real local HTTP receivers: answers, failures, retries, no URL in errors."""

import socket

import pytest

from scaling.alerts.delivery import MAX_ATTEMPTS, deliveries_attempt_now, deliveries_create, delivery_attempt
from scaling.alerts.models import Delivery
from scaling.alerts.receivers import receiver_create


def _queue(name: str, url: str, kind: str = "webhook") -> Delivery:
    receiver_create(actor="admin", data={"name": name, "kind": kind, "url": url})
    body = {
        "event": "alert_firing",
        "alert": {
            "id": 1,
            "rule": "slo_burn_page",
            "severity": "page",
            "state": "firing",
            "started_at": "2026-01-01T00:00:00+00:00",
            "node": None,
        },
        "deployment": "llm/llama",
        "cluster": "prod",
        "summary": "burning",
        "url": "http://sd/scaling/alerts/1/",
    }
    deliveries_create(event="alert_firing", dedup_key="alert:1:firing", body=body, severity="page", namespace="llm")
    return Delivery.objects.get(receiver__name=name)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.mark.django_db(transaction=True)
def test_it_posts_the_generic_body_and_records_the_answer(webhook):
    delivery = _queue("hook", webhook.url)
    assert delivery_attempt(delivery_id=delivery.id).status == "sent"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("sent", 200, 1)
    assert webhook.bodies()[0]["deployment"] == "llm/llama"
    # A second attempt of a sent delivery sends nothing.
    assert delivery_attempt(delivery_id=delivery.id).status == "skipped"
    assert len(webhook.bodies()) == 1


@pytest.mark.django_db(transaction=True)
def test_it_sends_slack_blocks_to_a_slack_receiver(webhook):
    delivery = _queue("slack", webhook.url, kind="slack")
    delivery_attempt(delivery_id=delivery.id)
    body = webhook.bodies()[0]
    assert body["blocks"][0]["type"] == "header"
    assert "[FIRING] slo_burn_page llm/llama" in body["blocks"][0]["text"]["text"]
    assert body["blocks"][2]["elements"][0]["url"] == "http://sd/scaling/alerts/1/"


@pytest.mark.django_db(transaction=True)
def test_it_retries_a_500_with_backoff_and_gives_up_after_the_last_attempt(webhook):
    webhook.answer = 500
    delivery = _queue("broken", webhook.url)
    outcome = delivery_attempt(delivery_id=delivery.id)
    assert (outcome.status, outcome.retry_in_seconds) == ("retry", 10)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_code, delivery.last_error) == ("pending", 500, "answered HTTP 500")
    for _ in range(MAX_ATTEMPTS - 1):
        outcome = delivery_attempt(delivery_id=delivery.id)
    delivery.refresh_from_db()
    assert (outcome.status, delivery.status, delivery.attempts) == ("failed", "failed", MAX_ATTEMPTS)
    assert len(webhook.bodies()) == MAX_ATTEMPTS


@pytest.mark.django_db(transaction=True)
def test_it_records_an_unreachable_receiver_without_its_url():
    url = _closed_port_url()
    delivery = _queue("gone", url)
    assert delivery_attempt(delivery_id=delivery.id).status == "retry"
    delivery.refresh_from_db()
    assert delivery.last_error == "could not connect"
    assert url not in delivery.last_error


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_times_out_does_not_hold_up_the_others(webhook, settings):
    from tests.scaling.alerts.webhook_receiver import WebhookReceiver

    settings.SCALEDECK_WEBHOOK_TIMEOUT_SECONDS = 0.5
    slow = WebhookReceiver().start()
    slow.delay = 3.0
    try:
        receiver_create(actor="admin", data={"name": "good", "kind": "webhook", "url": webhook.url})
        slow_delivery = _queue("slow", slow.url)  # queued for both receivers
        good_delivery = Delivery.objects.get(receiver__name="good")
        outcomes = {o.delivery_id: o.status for o in deliveries_attempt_now([slow_delivery.id, good_delivery.id])}
    finally:
        slow.stop()
    assert outcomes == {slow_delivery.id: "retry", good_delivery.id: "sent"}
    slow_delivery.refresh_from_db()
    assert slow_delivery.last_error == "no answer within 0.5 s"
