"""The SLO counts minutes, not requests: "p95 TTFT within the objective in 99 % of minutes".

Three hours of one-pod deployments are written into a real Prometheus (scrapes every 15 s):

* `tail`: in every minute 10 % of the requests take 5 s, the rest 0.3 s. Only a tenth of the
  requests miss a 2.5 s objective (10x a 1 % budget if requests were counted: no page), but
  every minute's p95 does (100 % of minutes: a page);
* `few`: 4 % of the requests take 5 s: every minute's p95 is within 2.5 s;
* `hourly`, twice (objectives 2 s and 2.5 s): in the last 12 minutes of every hour every
  request takes 1.5 s. Those minutes' p95 is 2.425 s (interpolated in the 1-2.5 s bucket),
  over 2 s but within 2.5 s: 20 % of the minutes are bad against 2 s, none against 2.5 s;
* `recovered`: every request takes 5 s until 10 minutes before the end, then 0.3 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scaling.alerts.evaluation import alerts_evaluate
from scaling.alerts.models import Alert, ClusterEvaluation, SloHour, SloTarget
from tests.factories import ClusterFactory, ModelDeploymentFactory
from tests.metrics.backfill import openmetrics, start_backfilled, ttft_histogram

pytestmark = [pytest.mark.prometheus]

NS = "slo-minutes"
SCRAPE, HOURS, RPS = 15, 3, 2.0
BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
POD = "{}-6d5f7c8b9-abcde"


def _minute(t: int, start: int) -> int:
    """The minute (from the start) a sample at `t` closes: a sample on a minute boundary holds
    the requests of the minute that just ended."""
    return (t - start - 1) // 60


def _served(name: str, start: int):
    per_scrape = RPS * SCRAPE

    def requests_at(t: int) -> dict[float, float]:
        if name == "tail":
            return {0.3: per_scrape * 0.9, 5.0: per_scrape * 0.1}
        if name == "few":
            return {0.3: per_scrape * 0.96, 5.0: per_scrape * 0.04}
        if name == "recovered":
            return {5.0 if _minute(t, start) < HOURS * 60 - 10 else 0.3: per_scrape}
        slow = _minute(t, start) % 60 >= 48
        return {1.5 if slow else 0.3: per_scrape}

    return requests_at


@pytest.fixture(scope="module")
def history(exporter, tmp_path_factory):
    end = (int(datetime.now(UTC).timestamp()) - 120) // 3600 * 3600  # three whole clock hours
    start = end - HOURS * 3600
    times = range(start, end + 1, SCRAPE)
    lines = []
    for name in ("tail", "few", "hourly", "recovered"):
        lines += ttft_histogram(f'namespace="{NS}",pod="{POD.format(name)}"', times, _served(name, start), BUCKETS)
    text = openmetrics({"vllm:time_to_first_token_seconds": ("histogram", lines)})
    server = start_backfilled(text, tmp_path_factory.mktemp("slo-minutes"), exporter.address)
    try:
        yield server.url, datetime.fromtimestamp(end, UTC)
    finally:
        server.cleanup()


@pytest.mark.django_db
def test_it_counts_slow_minutes_against_each_deployments_own_objective(history):
    url, end = history
    cluster = ClusterFactory(name="slo-minutes", prometheus_url=url, namespaces=[NS])
    tail = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="tail", ttft_slo_seconds=2.5)
    few = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="few", ttft_slo_seconds=2.5)
    strict = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="hourly", ttft_slo_seconds=2.0)

    alerts_evaluate(now=end)

    assert ClusterEvaluation.objects.get(cluster=cluster).status == "ok"
    firing = dict(Alert.objects.filter(state="firing").values_list("deployment__name", "rule"))
    assert firing == {"tail": "slo_burn_page", "hourly": "slo_burn_page"}
    budgets = {t.deployment.name: t for t in SloTarget.objects.select_related("deployment")}
    # Every minute of `tail` missed: 100x the budget, although 90 % of its requests were fast.
    assert budgets["tail"].attained == pytest.approx(0.0, abs=0.01)
    assert budgets["tail"].burn_rate_1h == pytest.approx(100.0, rel=0.02)
    assert budgets["few"].attained == pytest.approx(1.0)
    assert budgets["few"].burn_rate_1h == pytest.approx(0.0)
    # 36 of 180 minutes over 2 s; 12 of the last hour's 60 (20x).
    assert budgets["hourly"].attained == pytest.approx(0.8, abs=0.01)
    assert budgets["hourly"].burn_rate_1h == pytest.approx(20.0, rel=0.1)
    assert budgets["hourly"].budget_remaining == pytest.approx(1 - 20.0, rel=0.05)
    assert {tail.id, few.id, strict.id} == set(SloTarget.objects.values_list("deployment_id", flat=True))

    # Each clock hour is judged once and stored; the 30-day budget adds the stored hours up.
    assert list(SloHour.objects.filter(deployment=strict).values_list("minutes", "slow_minutes")) == [(60, 12)] * 3
    assert SloHour.objects.count() == 9
    evaluation = ClusterEvaluation.objects.get(cluster=cluster)
    assert (evaluation.slo_hours_since, evaluation.slo_hours_through) == (end - timedelta(hours=5), end)
    # The next pass: no hour ended since, so it reads six older ones (none of them served).
    alerts_evaluate(now=end + timedelta(minutes=1))
    evaluation.refresh_from_db()
    assert (evaluation.slo_hours_since, evaluation.slo_hours_through) == (end - timedelta(hours=11), end)
    assert SloHour.objects.count() == 9
    assert SloTarget.objects.get(deployment=strict).attained == pytest.approx(0.8, abs=0.01)


@pytest.mark.django_db
def test_the_same_minutes_are_within_a_looser_objective(history):
    url, end = history
    cluster = ClusterFactory(name="slo-minutes-loose", prometheus_url=url, namespaces=[NS])
    loose = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="hourly", ttft_slo_seconds=2.5)

    alerts_evaluate(now=end)

    assert not Alert.objects.filter(deployment=loose).exists()
    target = SloTarget.objects.get(deployment=loose)
    assert (target.attained, target.burn_rate_1h, target.budget_remaining) == (1.0, 0.0, 1.0)


@pytest.mark.django_db
def test_it_resolves_once_five_minutes_are_within_the_objective_again(history):
    url, end = history
    cluster = ClusterFactory(name="slo-minutes-recovery", prometheus_url=url, namespaces=[NS])
    recovered = ModelDeploymentFactory(cluster=cluster, namespace=NS, name="recovered", ttft_slo_seconds=2.5)

    alerts_evaluate(now=end - timedelta(minutes=12))
    alert = Alert.objects.get(deployment=recovered)
    assert (alert.rule, alert.state) == ("slo_burn_page", "firing")
    alerts_evaluate(now=end - timedelta(minutes=7))  # 3 good minutes of the last 5: still burning
    alert.refresh_from_db()
    assert alert.state == "firing"

    alerts_evaluate(now=end)  # the last 5 minutes are good; the last hour had 50 slow of 60
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert SloTarget.objects.get(deployment=recovered).burn_rate_1h == pytest.approx(50 / 60 * 100, rel=0.05)
