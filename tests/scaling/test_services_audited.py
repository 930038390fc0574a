"""What scale and quota requests share (scaling/services/audited.py): the Idempotency-Key and the
audit row of a refusal, the same for both."""

from __future__ import annotations

import pytest

from core.errors import ApplicationError
from scaling.models import ScaleAction
from scaling.services import Actor, quota_update, scale_action_request
from tests.factories import NamespaceQuotaFactory

ALICE = Actor(label="alice", key="user:1")
GPU = "requests.nvidia.com/gpu"


def _quota(world):
    return NamespaceQuotaFactory(
        cluster=world.cluster, namespace="llm", name="gpu-quota", hard={GPU: 16}, used={GPU: 4}
    )


def test_a_quota_change_with_an_idempotency_key_too_long_to_store_is_refused_by_name(world):
    with pytest.raises(ApplicationError) as exc:
        quota_update(
            quota=_quota(world), hard={GPU: 20}, reason="more", actor=ALICE, source="api", idempotency_key="k" * 201
        )

    assert exc.value.field == "idempotency_key" and "at most 200 characters" in exc.value.message
    assert ScaleAction.objects.count() == 0


def test_a_retried_quota_change_answers_the_first_action_and_a_refusal_answers_its_refusal(world, run_on_commit):
    quota = _quota(world)

    first = run_on_commit(
        quota_update, quota=quota, hard={GPU: 20}, reason="more", actor=ALICE, source="api", idempotency_key="q-1"
    )
    again = quota_update(quota=quota, hard={GPU: 20}, reason="more", actor=ALICE, source="api", idempotency_key="q-1")
    with pytest.raises(ApplicationError) as refused:
        quota_update(quota=quota, hard={GPU: 2}, reason="less", actor=ALICE, source="api", idempotency_key="q-2")
    with pytest.raises(ApplicationError) as refused_again:
        quota_update(quota=quota, hard={GPU: 2}, reason="less", actor=ALICE, source="api", idempotency_key="q-2")

    assert (again.pk, again.replayed) == (first.pk, True)
    assert refused_again.value.extra == {"action_id": refused.value.extra["action_id"], "replayed": True}
    assert ScaleAction.objects.filter(status=ScaleAction.Status.REJECTED).count() == 1


def test_a_refused_dry_run_is_audited_only_when_asked(world, run_on_commit):
    dep = world.deployment()
    world.keda(dep, max_replicas=4)
    ask = dict(deployment=dep, replicas=9, reason="confirm first", actor=ALICE, source="ui", dry_run=True)

    with pytest.raises(ApplicationError):
        scale_action_request(**ask)
    assert ScaleAction.objects.count() == 0

    with pytest.raises(ApplicationError) as exc:
        scale_action_request(**ask, audit_refused_dry_run=True)
    action = ScaleAction.objects.get()
    assert (action.id, action.status) == (exc.value.extra["action_id"], ScaleAction.Status.REJECTED)
    assert "max (4)" in action.error and world.kube.requests == []
