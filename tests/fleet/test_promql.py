"""The PromQL catalogue: a deployment's pods over time, request outcomes, kube-state-metrics.

Patterns are checked with Python's `re.fullmatch`: PromQL anchors regex matchers, and the
patterns use only syntax RE2 and Python read alike. (They run against a real Prometheus in
tests/metrics/test_deployment_history.py.)
"""

import re

import pytest

from fleet.backends.prometheus import promql
from fleet.backends.prometheus.answers import error_rate, request_outcomes

LONG = "meta-llama-3-1-70b-instruct-fp8-tensor-parallel-4-prod"  # 54 characters


@pytest.mark.parametrize(
    ("deployment", "pod", "matches"),
    [
        ("llama", "llama-7d9f8c6b4-x2b5q", True),  # a ReplicaSet's pod
        ("llama", "llama-5c7d8b9f6a-4hfxx", True),  # another revision's (10-character hash)
        ("llama", "llama-8b-7d9f8c6b4-x2b5q", False),  # the `llama-8b` Deployment's
        ("llama-8b", "llama-7d9f8c6b4-x2b5q", False),
        ("llama", "llama-0", False),  # a StatefulSet's
        ("llama", "llama-7d9f8c6b4-x2b5", False),  # the suffix is 5 characters
        ("llama", "llama-7d9f8c6b4-x2b5qz", False),
        ("llama", "xllama-7d9f8c6b4-x2b5q", False),
        ("a.b", "a.b-7d9f8c6b4-x2b5q", True),
        ("a.b", "axb-7d9f8c6b4-x2b5q", False),  # the dot is literal
        # Kubernetes cuts `<deployment>-<hash>-` to 58 characters before the 5-character suffix.
        (LONG, f"{LONG}-7d9f8c6b4-x2b5q", True),
        (LONG, f"{LONG}-7d9f-x2b5q", True),
        (LONG, (f"{LONG}-7d9f8c6b4-")[:58] + "x2b5q", True),
        (LONG, f"{LONG[:-1]}x-7d9-x2b5q", False),
        ("x" * 60, "x" * 58 + "x2b5q", True),
        ("x" * 60, "x" * 57 + "y" + "x2b5q", False),
    ],
)
def test_it_matches_every_pod_of_a_deployment_and_no_other(deployment, pod, matches):
    assert bool(re.fullmatch(promql.deployment_pods_pattern(deployment), pod)) is matches


def test_it_escapes_the_deployment_selector():
    sel = promql.deployment_selector('we"ird', "llama.x", namespace_label="exported_namespace")
    assert sel.braces() == ('{exported_namespace="we\\"ird", pod=~"llama\\\\.x-[a-z0-9]{1,10}-[a-z0-9]{5}"}')
    with pytest.raises(ValueError):
        promql.deployment_selector("ns", "")
    with pytest.raises(ValueError):
        promql.deployment_selector("ns", "llama", pod_label="pod name")


def test_it_reads_replicas_from_kube_state_metrics_under_either_namespace_label():
    query = promql.desired_replicas_of_deployment("llm", 'we"ird')
    assert query == (
        'max(kube_deployment_spec_replicas{namespace="llm", deployment="we\\"ird"})'
        ' or max(kube_deployment_spec_replicas{exported_namespace="llm", deployment="we\\"ird"})'
    )
    assert "kube_deployment_status_replicas_ready" in promql.ready_replicas_of_deployment("llm", "x")


def test_it_counts_every_finish_reason_but_stop_and_length_as_an_error():
    total, errors = request_outcomes([("stop", 8.0), ("length", 1.0), ("abort", 0.5), ("error", 0.5)])
    assert (total, errors) == (10.0, 1.0)
    assert error_rate(total, errors) == 0.1
    assert error_rate(0.0, 0.0) is None  # nothing finished: unknown, not 0 %
    assert request_outcomes([]) == (0.0, 0.0)
