"""POST /api/v1/mig-plans/{id}/apply/ {node, reason}: 202 with the action and its steps, sent to
a worker once committed; refusals change nothing."""

from __future__ import annotations

import pytest

from accounts.models import Role
from mig.models import MigApplication
from tests.factories import GpuNodeFactory

pytestmark = pytest.mark.django_db


def test_it_answers_202_with_the_action_and_sends_it_to_a_worker(api_as, plan, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_as(Role.OPERATOR).post(
            f"/api/v1/mig-plans/{plan.id}/apply/", {"node": "a100-0", "reason": "pack"}, format="json"
        )

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["node"], body["to_config"], body["reason"]) == (
        "pending",
        "a100-0",
        "all-3g.40gb",
        "pack",
    )
    assert [(s["name"], s["status"]) for s in body["steps"]] == [
        ("cordon", "pending"),
        ("drain", "pending"),
        ("relabel", "pending"),
        ("wait", "pending"),
        ("uncordon", "pending"),
        ("verify", "pending"),
    ]
    assert len(callbacks) == 1
    detail = api_as(Role.VIEWER).get(f"/api/v1/mig-applications/{body['id']}/").json()
    assert detail["steps"] == body["steps"]


@pytest.mark.parametrize(
    ("role", "body", "status"),
    [
        (Role.VIEWER, {"node": "a100-0", "reason": "pack"}, 403),
        (Role.OPERATOR, {"node": "a100-0"}, 400),
        (Role.OPERATOR, {"node": "other", "reason": "pack"}, 400),
    ],
)
def test_it_refuses_and_stores_nothing(api_as, plan, role, body, status):
    response = api_as(role).post(f"/api/v1/mig-plans/{plan.id}/apply/", body, format="json")
    assert response.status_code == status
    assert not MigApplication.objects.exists()


def test_a_second_node_of_the_pool_waits_its_turn(api_as, plan):
    GpuNodeFactory(cluster=plan.cluster, node_pool=plan.node_pool, name="a100-1")
    plan.nodes.append(
        {
            "node": "a100-1",
            "from_config": "",
            "to_config": "all-1g.10gb",
            "devices_before": {},
            "devices_after": {"1g.10gb": 56},
            "freed": False,
            "gpu_count": 8,
        }
    )
    plan.save()
    operator = api_as(Role.OPERATOR)
    operator.post(f"/api/v1/mig-plans/{plan.id}/apply/", {"node": "a100-0", "reason": "pack"}, format="json")
    response = operator.post(f"/api/v1/mig-plans/{plan.id}/apply/", {"node": "a100-1", "reason": "pack"}, format="json")
    assert response.status_code == 409
    assert "one node at a time" in response.json()["detail"]
