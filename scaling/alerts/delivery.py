"""Queueing and sending notifications.

A Delivery row is created in the same transaction as the event it announces (an alert's insert
or resolve, an action's end), so a crash cannot lose it; it is then sent by the `deliver` task
(retries with backoff) or by `manage.py alerts_tick`, and picked up again by each tick while
due. Sending claims the row with a conditional UPDATE, so two senders never post it twice at
once. A receiver's URL is a secret: errors are recorded in words without it, and nothing here
logs it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from core.errors import ApplicationError
from scaling.alerts.models import Alert, Delivery, Receiver
from scaling.alerts.receivers import receiver_url, receivers_for

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = (10, 30, 90, 270)  # before attempts 2..5
STUCK_SENDING_SECONDS = 120  # a sender killed mid-post: its row is sent again after this

SEVERITY_EMOJI = {"page": ":rotating_light:", "ticket": ":warning:", "info": ":information_source:"}


def timeout_seconds() -> float:
    return float(getattr(settings, "SCALEDECK_WEBHOOK_TIMEOUT_SECONDS", 5.0))


def link_base_url() -> str:
    """Where links in notifications point (SCALEDECK_BASE_URL), without a trailing slash."""
    return (getattr(settings, "SCALEDECK_BASE_URL", "") or "http://localhost:8000").rstrip("/")


def alert_body(alert: Alert, *, event: str, base_url: str) -> dict:
    """The generic webhook body (the API contract) for an alert event."""
    deployment = alert.deployment
    return {
        "event": event,
        "alert": {
            "id": alert.id,
            "rule": alert.rule,
            "severity": alert.severity,
            "state": alert.state,
            "started_at": alert.started_at.isoformat(),
            "ended_at": alert.ended_at.isoformat() if alert.ended_at else None,
            "node": alert.node_name or None,
        },
        "deployment": f"{deployment.namespace}/{deployment.name}" if deployment else None,
        "cluster": alert.cluster.name,
        "summary": alert.summary,
        "url": f"{base_url.rstrip('/')}/scaling/alerts/{alert.id}/",
    }


def slack_body(body: dict) -> dict:
    """Slack's incoming-webhook JSON with blocks, from the generic body."""
    subject = body.get("deployment") or (body.get("alert") or {}).get("node") or ""
    alert = body.get("alert")
    if alert:
        state = "RESOLVED" if body["event"] == "alert_resolved" else "FIRING"
        head = f"{SEVERITY_EMOJI.get(alert['severity'], '')} [{state}] {alert['rule']} {subject}".strip()
    else:
        head = f"{body['event'].replace('_', ' ')}: {subject}"
    return {
        "text": f"{head}: {body['summary']}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{body['summary']}\ncluster {body['cluster']}"}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open in ScaleDeck"}, "url": body["url"]},
            ]},
        ],
    }  # fmt: skip


@dataclass(frozen=True)
class Notification:
    event: str
    dedup_key: str
    body: dict
    severity: str | None
    namespace: str | None

    @property
    def receiver_event(self) -> str:
        if self.event.startswith("alert_"):
            return Receiver.Event.ALERTS
        return Receiver.Event.PRESCALE if self.event == "prescale_fired" else Receiver.Event.ACTIONS


def deliveries_create_many(notifications: list[Notification], *, receivers: list[Receiver] | None = None) -> list[int]:
    """One Delivery per notification and opted-in receiver, in one INSERT; a (receiver, dedup_key)
    queued already (another worker, a re-run) is left alone. Returns the ids of the deliveries
    of these keys still pending. Call inside the transaction that records the events."""
    if not notifications:
        return []
    receivers = list(Receiver.objects.all()) if receivers is None else receivers
    rows = [
        Delivery(receiver=r, event=n.event, dedup_key=n.dedup_key, payload=n.body)
        for n in notifications
        for r in receivers_for(receivers, event=n.receiver_event, severity=n.severity, namespace=n.namespace)
    ]
    if not rows:
        return []
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    return list(Delivery.objects.filter(dedup_key__in={n.dedup_key for n in notifications},
                                        status=Delivery.Status.PENDING).values_list("id", flat=True))  # fmt: skip


def deliveries_create(*, event: str, dedup_key: str, body: dict, severity: str | None, namespace: str | None
                      ) -> list[int]:  # fmt: skip
    """`deliveries_create_many` for one event."""
    return deliveries_create_many([Notification(event, dedup_key, body, severity, namespace)])


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    status: str  # sent | retry | failed | skipped
    retry_in_seconds: int = 0


def _describe(exc: requests.RequestException) -> str:
    """In words, without the URL (requests puts it into most messages)."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout_seconds():g} s"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return f"request failed ({type(exc).__name__})"


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> Outcome:
    """Send one delivery once, if it is pending (claimed with a conditional UPDATE)."""
    now = now or timezone.now()
    claimed = Delivery.objects.filter(id=delivery_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=now
    )
    if claimed != 1:
        return Outcome(delivery_id, "skipped")
    delivery = Delivery.objects.select_related("receiver").get(id=delivery_id)
    receiver = delivery.receiver
    code, error = None, ""
    try:
        url = receiver_url(receiver)
        body = slack_body(delivery.payload) if receiver.kind == Receiver.Kind.SLACK else delivery.payload
        response = requests.post(url, json=body, timeout=timeout_seconds(), allow_redirects=False)
        code = response.status_code
        if not 200 <= code < 300:
            error = f"answered HTTP {code}"
    except ApplicationError as exc:
        error = exc.message
    except requests.RequestException as exc:
        error = _describe(exc)
    if not error:
        Delivery.objects.filter(id=delivery_id).update(status=Delivery.Status.SENT, response_code=code,
                                                       last_error="", finished_at=timezone.now())  # fmt: skip
        return Outcome(delivery_id, "sent")
    attempts = delivery.attempts
    logger.warning("delivery %s to receiver %s failed (attempt %s): %s", delivery_id, receiver.name, attempts, error)
    if attempts >= MAX_ATTEMPTS:
        Delivery.objects.filter(id=delivery_id).update(status=Delivery.Status.FAILED, response_code=code,
                                                       last_error=error[:300], finished_at=timezone.now())  # fmt: skip
        return Outcome(delivery_id, "failed")
    wait = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
    Delivery.objects.filter(id=delivery_id).update(
        status=Delivery.Status.PENDING,
        response_code=code,
        last_error=error[:300],
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
    )
    return Outcome(delivery_id, "retry", wait)


def deliveries_due(*, now: datetime) -> list[int]:
    """Pending deliveries whose time has come, after freeing rows a killed sender left `sending`."""
    Delivery.objects.filter(
        status=Delivery.Status.SENDING, next_attempt_at__lt=now - timedelta(seconds=STUCK_SENDING_SECONDS)
    ).update(status=Delivery.Status.PENDING)
    return list(Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at").values_list("id", flat=True)[:500])  # fmt: skip


def deliveries_attempt_now(ids: list[int]) -> list[Outcome]:
    """Attempt each once, side by side, so a slow receiver delays no other (alerts_tick)."""
    if not ids:
        return []

    def one(delivery_id: int) -> Outcome:
        from django.db import connection

        try:
            return delivery_attempt(delivery_id=delivery_id)
        finally:
            connection.close()  # each thread has its own connection

    with ThreadPoolExecutor(max_workers=min(8, len(ids)), thread_name_prefix="delivery") as pool:
        return list(pool.map(one, ids))
