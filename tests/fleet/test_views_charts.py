"""The deployment page's charts and tiles: latency beyond TTFT, request errors, preemptions, replicas."""

from datetime import timedelta

import pytest
import time_machine

from core.templatetags.scaledeck import latency, pct
from fleet.backends.base import DeploymentMetrics
from fleet.models import ReplicaChange
from tests.factories import ModelDeploymentFactory
from tests.fleet.test_views_deployment import NOW, charts, panels_of, series

pytestmark = pytest.mark.django_db


def trace(panels: dict[str, dict], name: str) -> dict:
    return next(t for panel in panels.values() for t in panel["data"] if t["name"] == name)


def panel_of(panels: dict[str, dict], name: str) -> str:
    """The title of the panel (one figure each) a trace is drawn in."""
    return next(title for title, panel in panels.items() if any(t["name"] == name for t in panel["data"]))


def unit_of(panels: dict[str, dict], name: str) -> str:
    return panels[panel_of(panels, name)]["layout"]["yaxis"]["title"]["text"]


def test_it_charts_itl_e2e_errors_and_preemptions(viewer_client, fake_metrics):
    deployment = ModelDeploymentFactory()
    fake_metrics.series = {
        "itl_p50": series("itl_p50", "s", [0.020, 0.021, None, 0.030]),
        "itl_p95": series("itl_p95", "s", [0.031, 0.035, None, 0.060]),
        "e2e_p50": series("e2e_p50", "s", [2.0, 2.5, None, 3.0]),
        "e2e_p95": series("e2e_p95", "s", [6.0, 7.5, None, 9.0]),
        "requests_per_second": series("requests_per_second", "requests/s", [10, 12, 11, 9]),
        "errors_per_second": series("errors_per_second", "requests/s", [0.1, 0.0, 1.1, 0.9]),
        "error_rate": series("error_rate", "fraction", [0.01, 0.0, 0.1, 0.1]),
        "preemptions_per_second": series("preemptions_per_second", "preemptions/s", [0, 0, 2.5, 1]),
    }

    with time_machine.travel(NOW, tick=False):
        panels = panels_of(viewer_client.get(charts(deployment)).content.decode())

    assert trace(panels, "ITL p95 (s)")["y"] == [0.031, 0.035, None, 0.060]
    assert trace(panels, "E2E p95 (s)")["y"][3] == 9.0
    assert trace(panels, "error rate (%)")["y"] == [1.0, 0.0, 10.0, 10.0]
    assert trace(panels, "preemptions (/s)")["y"] == [0, 0, 2.5, 1]
    assert unit_of(panels, "ITL p50 (s)") == unit_of(panels, "E2E p50 (s)") == "seconds (s)"
    assert panel_of(panels, "ITL p50 (s)") != panel_of(panels, "E2E p50 (s)")  # own panels, own scales
    assert unit_of(panels, "errors: aborted or failed (req/s)") == "per second (/s)"
    assert unit_of(panels, "error rate (%)") == "% of finished"


def test_it_shows_the_tiles_for_latency_and_errors(viewer_client, fake_metrics):
    deployment = ModelDeploymentFactory()
    fake_metrics.metrics = {(deployment.namespace, deployment.name): DeploymentMetrics(
        itl_p95_seconds=0.0234, e2e_p95_seconds=4.9, error_rate=0.062, requests_per_second=12.5,
        preemptions_per_second=0.5, ttft_p95_seconds=0.8)}  # fmt: skip

    html = viewer_client.get(charts(deployment)).content.decode()

    assert "23 ms" in html and "end to end p95 4.90 s per request" in html
    assert "6.2 %" in html and "of 12.5 req/s finished" in html and "preemptions 0.5 /s" in html
    assert 'class="tile breach" title="Requests vLLM finished as aborted or failed' in html


def test_it_draws_recorded_replicas_above_todays_count_without_kube_state_metrics(viewer_client, fake_metrics):
    deployment = ModelDeploymentFactory(replicas_desired=1, replicas_ready=1)
    ReplicaChange.objects.create(deployment=deployment, at=NOW - timedelta(hours=2), desired=4, ready=4)
    ReplicaChange.objects.create(deployment=deployment, at=NOW - timedelta(minutes=1, seconds=30), desired=1, ready=1)
    fake_metrics.series = {"queue_depth": series("queue_depth", "requests", [1, 2, 3, 4])}

    with time_machine.travel(NOW, tick=False):
        panels = panels_of(viewer_client.get(charts(deployment)).content.decode())

    assert trace(panels, "desired (replicas)")["y"] == [4.0, 4.0, 1.0, 1.0]
    assert trace(panels, "ready (replicas)")["y"] == [4.0, 4.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("value", "text"), [(None, "—"), (0.0234, "23 ms"), (0.0042, "4.2 ms"), (0.999, "999 ms"), (4.9, "4.90 s")]
)
def test_it_writes_latencies_in_milliseconds_under_a_second(value, text):
    assert latency(value) == text


@pytest.mark.parametrize(("value", "text"), [(0.0042, "0.4 %"), (0.062, "6.2 %"), (0.25, "25 %"), (0.0, "0.0 %")])
def test_it_keeps_a_decimal_for_small_error_rates(value, text):
    assert pct(value, "fine") == text


@pytest.mark.parametrize(("range_key", "said"), [("1h", "one point every 15 s"), ("24h", "one point every 5 min")])
def test_it_says_on_the_time_axis_which_resolution_is_drawn(viewer_client, fake_metrics, range_key, said):
    deployment = ModelDeploymentFactory()
    fake_metrics.series = {"queue_depth": series("queue_depth", "requests", [1, None, 3])}

    with time_machine.travel(NOW, tick=False):
        panels = panels_of(viewer_client.get(charts(deployment, f"?range={range_key}")).content.decode())

    *above, bottom = panels.values()
    assert bottom["layout"]["xaxis"]["title"]["text"] == f"time (UTC), {said}"
    assert all("title" not in p["layout"]["xaxis"] for p in above)
    assert len({tuple(p["layout"]["xaxis"]["range"]) for p in panels.values()}) == 1  # one time range
    queue = trace(panels, "waiting (req)")
    assert queue["y"] == [1, None, 3] and queue["connectgaps"] is False
