"""Scale actions and pre-scale firings reach the receivers that opted in, once each."""

from datetime import UTC, datetime

import pytest

from scaling.alerts.notifications import action_notify, prescale_notify
from scaling.alerts.receivers import receiver_create
from scaling.models import PrescaleRule, ScaleAction
from scaling.services.prescale import Firing
from tests.factories import ClusterFactory, ModelDeploymentFactory


@pytest.fixture
def llama():
    return ModelDeploymentFactory(cluster=ClusterFactory(name="prod"), namespace="llm", name="llama")


def _action(deployment, status=ScaleAction.Status.SUCCEEDED, **kw) -> ScaleAction:
    return ScaleAction.objects.create(actor_label="alice", actor_key="user:1", source=ScaleAction.Source.API,
                                      cluster=deployment.cluster, namespace="llm", deployment=deployment,
                                      reason="launch", status=status, request={"replicas": 6}, **kw)  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_an_ended_action_goes_to_receivers_of_actions_only_once(webhook, llama):
    receiver_create(actor="admin", data={"name": "ops", "kind": "webhook", "url": webhook.url, "events": ["actions"]})
    receiver_create(
        actor="admin", data={"name": "pager", "kind": "webhook", "url": webhook.url + "?pager", "events": ["alerts"]}
    )
    action = _action(llama, status=ScaleAction.Status.FAILED, error="the cluster refused: quota exceeded")
    action_notify(action_id=action.id)
    action_notify(action_id=action.id)  # a redelivered task message
    [body] = webhook.bodies()
    assert body["event"] == "action_failed"
    assert body["deployment"] == "llm/llama" and body["cluster"] == "prod"
    assert body["action"]["id"] == action.id and body["action"]["replicas"] == 6
    assert "quota exceeded" in body["summary"]


@pytest.mark.django_db(transaction=True)
def test_a_running_action_sends_nothing(webhook, llama):
    receiver_create(actor="admin", data={"name": "ops", "kind": "webhook", "url": webhook.url, "events": ["actions"]})
    action_notify(action_id=_action(llama, status=ScaleAction.Status.RUNNING).id)
    assert webhook.bodies() == []


@pytest.mark.django_db(transaction=True)
def test_a_prescale_firing_goes_to_receivers_of_prescale(webhook, llama):
    receiver_create(actor="admin", data={"name": "ops", "kind": "webhook", "url": webhook.url, "events": ["prescale"],
                          "namespaces": ["llm"]})  # fmt: skip
    rule = PrescaleRule.objects.create(deployment=llama, cron="0 9 * * 1-5", timezone="Europe/Berlin",
                                       min_replicas=4, duration_minutes=120)  # fmt: skip
    action = _action(llama, status=ScaleAction.Status.PENDING, rule=rule)
    firing = Firing(rule_id=rule.id, at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC), action_id=action.id)
    prescale_notify(firings=[firing, Firing(rule_id=rule.id, at=firing.at, action_id=None, error="quota")])
    [body] = webhook.bodies()
    assert body["event"] == "prescale_fired"
    assert "raised the floor of llm/llama to 4 replicas for 120 min" in body["summary"]
