"""The rules page's "floor now": what the deployment's replicas' owner holds as its minimum."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.autoscalers import ReplicaOwnerKind
from scaling.models import PrescaleRule
from scaling.selectors import rule_queryset, rule_rows
from tests.factories import AutoscalerFactory, ModelDeploymentFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
HPA = ReplicaOwnerKind.HPA


def _rule(deployment) -> PrescaleRule:
    return PrescaleRule.objects.create(deployment=deployment, cron="0 9 * * 1-5", min_replicas=6, duration_minutes=60)


def test_the_floor_now_is_the_owners_min_else_the_replicas():
    keda = ModelDeploymentFactory(name="keda", replicas_desired=2)
    AutoscalerFactory(deployment=keda, min_replicas=3)
    AutoscalerFactory(deployment=keda, kind=HPA, name="keda-hpa-keda", min_replicas=1, owned_by_scaledobject="keda")
    manual = ModelDeploymentFactory(name="manual", cluster=keda.cluster, replicas_desired=4)
    fighting = ModelDeploymentFactory(name="fighting", cluster=keda.cluster, replicas_desired=5)
    AutoscalerFactory(deployment=fighting, min_replicas=1)
    AutoscalerFactory(deployment=fighting, kind=HPA, name="fighting-cpu", min_replicas=9)
    for d in (keda, manual, fighting):
        _rule(d)

    with CaptureQueriesContext(connection) as queries:
        rows = rule_rows(rule_queryset(), now=NOW)

    # Two autoscalers in conflict hold no floor of their own: the Deployment's replicas are shown.
    assert {r.rule.deployment.name: r.floor_now for r in rows} == {"keda": 3, "manual": 4, "fighting": 5}
    assert sum("fleet_autoscaler" in q["sql"] for q in queries.captured_queries) == 1
