"""A quota entry can be removed (null in the API): a merge patch deleting the key, audited."""

from __future__ import annotations

from rest_framework.test import APIClient

from fleet.backends.kubernetes.patches import quota_patch
from scaling.decisions import plan_quota_change
from scaling.models import ScaleAction
from scaling.templatetags.scaling_pages import request_summary
from tests.factories import ApiTokenFactory, NamespaceQuotaFactory
from tests.fakekube import objects as k

MIG = "requests.nvidia.com/mig-1g.10gb"
GPU = "requests.nvidia.com/gpu"


def admin() -> APIClient:
    token = ApiTokenFactory(role="admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client


def test_it_plans_a_removal_without_force_even_in_use():
    before, after, notes = plan_quota_change(
        current_hard={GPU: 16, MIG: 7}, used={MIG: 3}, requested={MIG: None}, force=False
    )

    assert (before, after) == ({MIG: 7}, {MIG: None})
    assert notes == [f"removes the {MIG} limit (7); 3 in use"]


def test_it_sends_null_in_the_merge_patch():
    assert quota_patch({MIG: None, GPU: 8}, resource_version="5")["spec"] == {"hard": {MIG: None, GPU: "8"}}


def test_it_removes_an_entry_from_the_cluster_and_keeps_the_others(world, run_on_commit):
    world.kube.load(k.resource_quota("llm", "gpu-quota", hard={GPU: "16", MIG: "7"}, used={GPU: "4", MIG: "3"}))
    quota = NamespaceQuotaFactory(
        cluster=world.cluster, namespace="llm", name="gpu-quota", hard={GPU: 16, MIG: 7}, used={GPU: 4, MIG: 3}
    )

    response = run_on_commit(
        admin().patch, f"/api/v1/quotas/{quota.id}/", {"hard": {MIG: None}, "reason": "slices retired"}, format="json"
    )

    assert response.status_code == 202, response.json()
    action = ScaleAction.objects.get(id=response.json()["id"])
    assert action.status == ScaleAction.Status.SUCCEEDED, action.error
    assert (action.before, action.after) == ({"hard": {MIG: 7}}, {"hard": {MIG: None}})
    [patch] = world.patches()
    assert patch.body["spec"]["hard"][MIG] is None
    assert world.kube.get("ResourceQuota", "llm", "gpu-quota")["spec"]["hard"] == {GPU: "16"}
    assert request_summary(action) == "MIG 1g.10gb quota removed"


def test_removing_an_entry_the_quota_lacks_writes_nothing(world, run_on_commit):
    quota = world.quota(hard=16, used=4)

    response = run_on_commit(
        admin().patch, f"/api/v1/quotas/{quota.id}/", {"hard": {MIG: None}, "reason": "tidy"}, format="json"
    )

    assert response.status_code == 202
    assert world.patches() == []
    assert ScaleAction.objects.get(id=response.json()["id"]).status == ScaleAction.Status.SUCCEEDED
