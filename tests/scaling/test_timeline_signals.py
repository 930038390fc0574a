"""Timeline rows from a real Prometheus's history: the queue crossing the autoscaler's target and
a new replica's first token served.

One hour of scrapes (every 15 s) is written into a real Prometheus. Deployment `chat` scales on
`vllm:num_requests_waiting > 5` per replica. Pod A waits 2 requests, 9 from minute 20, 3 from
minute 40. Pod B is created at minute 25, its vLLM reports from minute 28 (9 waiting, 3 from
minute 40), it turns Ready at minute 30 and serves its first token at minute 32.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from fleet.models import ScalingEvent
from scaling.timeline_signals import timeline_signals_record
from tests.factories import ApiTokenFactory, AutoscalerFactory, ClusterFactory, ModelDeploymentFactory
from tests.metrics.backfill import openmetrics, start_backfilled

pytestmark = [pytest.mark.prometheus]

NS = "tl"
POD_A, POD_B = "chat-6d5f7c8b9-aaaaa", "chat-6d5f7c8b9-bbbbb"
SCRAPE = 15


def _history(start: int, end: int) -> str:
    waiting, counts = [], []
    for t in range(start, end + 1, SCRAPE):
        minute = (t - start) / 60
        later = 3 if minute >= 40 else 9
        waiting.append(f'vllm:num_requests_waiting{{namespace="{NS}",pod="{POD_A}"}} '
                       f"{2 if minute < 20 else later} {t}")  # fmt: skip
        if minute >= 28:
            waiting.append(f'vllm:num_requests_waiting{{namespace="{NS}",pod="{POD_B}"}} {later} {t}')
            served = 0 if minute < 32 else (t - start - 32 * 60) // SCRAPE + 1
            labels = f'namespace="{NS}",pod="{POD_B}"'
            counts += [f'vllm:time_to_first_token_seconds_bucket{{{labels},le="+Inf"}} {served} {t}',
                       f"vllm:time_to_first_token_seconds_count{{{labels}}} {served} {t}"]  # fmt: skip
    waiting.sort(key=lambda line: line.split("}")[0])  # one series after the other
    counts.sort(key=lambda line: line.split(" ")[0])
    return openmetrics({"vllm:num_requests_waiting": ("gauge", waiting),
                        "vllm:time_to_first_token_seconds": ("histogram", counts)})  # fmt: skip


@pytest.fixture(scope="module")
def history(exporter, tmp_path_factory):
    end = int(datetime.now(UTC).timestamp()) // 60 * 60 - 120
    start = end - 3600
    server = start_backfilled(_history(start, end), tmp_path_factory.mktemp("timeline"), exporter.address)
    try:
        yield server.url, start, end
    finally:
        server.cleanup()


@pytest.mark.django_db
def test_the_timeline_tells_the_queue_crossings_and_the_first_token_in_order(history):
    url, start, end = history
    at = lambda minutes: datetime.fromtimestamp(start, UTC) + timedelta(minutes=minutes)  # noqa: E731
    cluster = ClusterFactory(name="tl", prometheus_url=url, namespaces=[NS])
    chat = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="chat")
    AutoscalerFactory(deployment=chat, metric="vllm:num_requests_waiting > 5 per replica")
    for minutes, kind, reason in ((25, "pod_created", "Created"), (30, "pod_ready", "Ready")):
        ScalingEvent.objects.create(cluster=cluster, uid=f"pod:{POD_B}:{reason}", at=at(minutes), kind=kind,
                                    reason=reason, namespace=NS, object_kind="Pod", object_name=POD_B,
                                    source="pod", deployment=chat)  # fmt: skip

    now = datetime.fromtimestamp(end, UTC)
    assert timeline_signals_record(cluster=cluster, now=now) == 3
    assert timeline_signals_record(cluster=cluster, now=now + timedelta(minutes=1)) == 0  # read again: stored once

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(role=Role.VIEWER).raw}")
    answer = client.get(f"/api/v1/deployments/{chat.id}/timeline/",
                        {"start": at(0).isoformat(), "end": now.isoformat()})  # fmt: skip
    assert answer.status_code == 200, answer.content
    rows = [(r["at"], r["kind"], r["object"], r["source"]) for r in answer.json()["results"]]
    iso = lambda minutes: at(minutes).isoformat().replace("+00:00", "Z")  # noqa: E731
    assert rows == [
        (iso(20), "metric_above_target", "Deployment/chat", "prometheus"),
        (iso(25), "pod_created", f"Pod/{POD_B}", "pod"),
        (iso(30), "pod_ready", f"Pod/{POD_B}", "pod"),
        (iso(32), "first_token", f"Pod/{POD_B}", "prometheus"),
        (iso(40), "metric_below_target", "Deployment/chat", "prometheus"),
    ]
    messages = {r["kind"]: r["message"] for r in answer.json()["results"]}
    assert messages["first_token"] == "first token served, 120 s after Ready"
    assert messages["metric_above_target"] == ("9.0 requests waiting per pod, over the autoscaler's target of 5")
    assert messages["metric_below_target"] == (
        "3.0 requests waiting per pod, back at or under the autoscaler's target of 5"
    )
