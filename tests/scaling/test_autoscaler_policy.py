"""Autoscaler policy edits: checked against KEDA's CRD schema and the autoscaling/v2 rules, turned
into a merge patch with the resourceVersion and a before/after diff; advisor candidates as edits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaling.autoscaler_policy import (
    PolicyEditError,
    changes_for_candidate,
    gitops_warning,
    hpa_edit,
    scaledobject_edit,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vllm"
pytestmark = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/vllm is not beside the repository")


def spec_of(name: str) -> dict:
    return yaml.safe_load((SHARED / name).read_text())["spec"]


def test_it_patches_only_the_changed_scaledobject_fields_with_the_resource_version():
    spec = spec_of("keda-scaled-object.yaml")
    edit = scaledobject_edit(
        spec,
        {
            "min_replicas": 2,
            "max_replicas": 12,
            "polling_interval_seconds": 10,
            "cooldown_seconds": 300,
            "triggers": [{"index": 0, "threshold": 4, "activation_threshold": "0.5"}],
        },
        resource_version="4711",
    )
    assert edit.patch["metadata"] == {"resourceVersion": "4711"}
    assert edit.patch["spec"]["minReplicaCount"] == 2 and edit.patch["spec"]["pollingInterval"] == 10
    trigger = edit.patch["spec"]["triggers"][0]  # the list goes whole: a merge patch replaces lists
    assert trigger["metadata"]["threshold"] == "4" and trigger["metadata"]["activationThreshold"] == "0.5"
    assert trigger["metadata"]["query"] == "vllm:num_requests_waiting" and "scaleTargetRef" not in edit.patch["spec"]
    assert {"path": "spec.maxReplicaCount", "before": 2, "after": 12} in edit.diff
    assert {"path": "spec.triggers[0].metadata.threshold", "before": "5", "after": "4"} in edit.diff
    assert spec["minReplicaCount"] == 1  # the current spec is left as it was


def test_it_puts_keda_behavior_under_advanced_horizontal_pod_autoscaler_config():
    behavior = {
        "scaleDown": {
            "stabilizationWindowSeconds": 120,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }
    }
    edit = scaledobject_edit(spec_of("keda-scaled-object.yaml"), {"behavior": behavior}, resource_version="1")
    assert edit.patch["spec"] == {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}}}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"min_replicas": -1}, "min_replicas", "min replicas must be a whole number within 0-1000"),
        ({"min_replicas": 5, "max_replicas": 3}, "min_replicas", "min replicas 5 is above max replicas 3"),
        ({"polling_interval_seconds": 2.5}, "polling_interval_seconds", "whole number"),
        ({"triggers": [{"index": 3, "threshold": 1}]}, "triggers", "index must be within 0-0"),
        ({"triggers": [{"index": 0, "threshold": "lots"}]}, "triggers", "threshold must be a number above 0"),
        ({"triggers": [{"index": 0, "query": ""}]}, "triggers", "query must be PromQL text"),
        ({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 7200}}}, "behavior", "within 0-3600"),
        (
            {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}},
            "behavior",
            "value must be a whole number above 0",
        ),
        (
            {"behavior": {"scaleUp": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 15}]}}},
            "behavior",
            "type must be Pods or Percent",
        ),
        ({"paused": True}, "paused", "paused is not a KEDA ScaledObject setting"),
    ],
)
def test_it_refuses_a_scaledobject_edit_naming_the_field(changes, field, message):
    with pytest.raises(PolicyEditError) as refused:
        scaledobject_edit(spec_of("keda-scaled-object.yaml"), changes, resource_version="1")
    assert refused.value.field == field and message in refused.value.message


def test_it_refuses_what_kedas_crd_schema_refuses():
    spec = spec_of("keda-scaled-object.yaml")
    spec["triggers"][0]["metadata"]["threshold"] = 5  # metadata values are strings in the CRD
    with pytest.raises(PolicyEditError, match=r"spec.triggers\[0\].metadata.threshold must be a string"):
        scaledobject_edit(spec, {"min_replicas": 1}, resource_version="1")
    spec = spec_of("keda-scaled-object.yaml")
    spec["fallbackk"] = {}
    with pytest.raises(PolicyEditError, match="spec.fallbackk is not a field"):
        scaledobject_edit(spec, {"min_replicas": 1}, resource_version="1")


def test_it_edits_an_hpa_target_and_behavior():
    spec = spec_of("hpa-10.yaml")
    edit = hpa_edit(
        spec,
        {
            "max_replicas": 6,
            "metrics": [{"index": 0, "target_value": 3}],
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}},
        },
        resource_version="9",
    )
    assert edit.patch["spec"]["maxReplicas"] == 6 and edit.patch["spec"]["metrics"][0]["object"]["target"] == {
        "type": "Value",
        "value": "3",
    }
    assert edit.patch["spec"]["behavior"] == {"scaleUp": {"stabilizationWindowSeconds": 0}}
    assert {"path": "spec.maxReplicas", "before": 2, "after": 6} in edit.diff


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"min_replicas": 0}, "min_replicas"),
        ({"metrics": [{"index": 0, "target_value": -2}]}, "metrics"),
        ({"metrics": [{"index": 1, "target_value": 2}]}, "metrics"),
        ({"behavior": {"scaleDown": {"selectPolicy": "Sometimes"}}}, "behavior"),
        ({"triggers": []}, "triggers"),
    ],
)
def test_it_refuses_an_hpa_edit_naming_the_field(changes, field):
    with pytest.raises(PolicyEditError) as refused:
        hpa_edit(spec_of("hpa-10.yaml"), changes, resource_version="1")
    assert refused.value.field == field


def test_it_warns_that_gitops_may_revert_an_edit():
    assert gitops_warning({}, {}) == ""
    assert gitops_warning({"app.kubernetes.io/name": "x"}, {}) == ""
    warning = gitops_warning({}, {"argocd.argoproj.io/tracking-id": "llm:keda.sh/ScaledObject:llm/x"})
    assert "next sync may put the old values back" in warning
    edit = scaledobject_edit(
        spec_of("keda-scaled-object.yaml"),
        {"min_replicas": 2},
        resource_version="1",
        labels={"kustomize.toolkit.fluxcd.io/name": "apps"},
    )
    assert "kustomize.toolkit.fluxcd.io/name" in edit.warning


def test_it_turns_an_advisor_candidate_into_a_valid_scaledobject_edit():
    policy = {
        "kind": "keda",
        "metric": "queue_depth",
        "target": 4.0,
        "min_replicas": 2,
        "max_replicas": 12,
        "polling_interval_seconds": 10,
        "cooldown_seconds": 300,
        "scale_down_stabilization_seconds": 120,
        "scale_down_max_pods_per_period": 1,
        "scale_down_period_seconds": 120,
        "prescale": [],
        "warm_pool_nodes": 0,
    }
    edit = scaledobject_edit(
        spec_of("keda-scaled-object.yaml"), changes_for_candidate("scaledobject", policy), resource_version="3"
    )
    spec = edit.patch["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["pollingInterval"]) == (2, 12, 10)
    assert spec["triggers"][0]["metadata"]["threshold"] == "4"
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 120,
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
    }
