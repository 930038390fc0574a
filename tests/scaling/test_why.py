"""Table tests of the pure "why this many replicas" decision (scaling/why.py)."""

import pytest

from scaling.why import ScalingFacts, metric_target, scaling_why


def facts(**changes) -> ScalingFacts:
    base = dict(
        metric="vllm:num_requests_waiting > 5 per replica",
        metric_value=14.0,
        target_value=5.0,
        metric_summed=True,
        desired=3,
        ready=3,
        min_replicas=1,
        max_replicas=6,
        gpu_per_replica=1,
        gpu_resource="nvidia.com/gpu",
        fits_now=True,
    )
    return ScalingFacts(**{**base, **changes})


@pytest.mark.parametrize(
    "summary, attribute, summed, target",
    [
        ("vllm:num_requests_waiting > 5 per replica", "queue_depth", True, 5.0),
        ('prometheus: sum(vllm:num_requests_waiting{model="x"}) > 2.5', "queue_depth", True, 2.5),
        ("DCGM_FI_DEV_GPU_UTIL avg 70%", "gpu_utilization", False, 0.7),
        ("prometheus: avg(vllm:gpu_cache_usage_perc) > 0.8", "kv_cache_usage", False, 0.8),
        ("cpu > 80% utilization", None, True, 0.8),
        ("cron: 0 8 * * * to 0 18 * * * -> 4 replicas", None, True, None),
        ("", None, True, None),
    ],
)
def test_it_reads_the_metric_and_its_target_from_the_autoscaler_summary(summary, attribute, summed, target):
    t = metric_target(summary)
    assert (t.attribute, t.summed) == (attribute, summed)
    assert t.target_value == (pytest.approx(target) if target is not None else None)


@pytest.mark.parametrize(
    "changes, binding, implied, blockers",
    [
        ({}, "autoscaler", 3, []),
        ({"metric_value": 40.0, "desired": 6}, "max", 8, ["Maximum reached: 6 of at most 6 replicas."]),
        ({"metric_value": 2.0, "floor": 4, "desired": 4}, "floor", 1, []),
        ({"metric_value": 0.0, "min_replicas": 2, "desired": 2}, "min", 0, []),
        ({"pinned": 2, "desired": 2}, "pin", 3, ["Pinned at 2 replicas: the autoscaler cannot move them."]),
        ({"paused": True, "pinned": 2, "desired": 2}, "pin", 3, ["Autoscaling is paused at 2 replicas."]),
        ({"paused": True}, "paused", 3, ["Autoscaling is paused."]),
        (
            {"min_replicas": None, "max_replicas": None, "metric": "", "metric_value": None, "target_value": None},
            "manual",
            None,
            [],
        ),
        (
            {
                "metric_value": 30.0,
                "desired": 6,
                "ready": 4,
                "pending_replicas": 2,
                "quota_name": "gpu-quota",
                "quota_left": 0,
            },
            "quota",
            6,
            [
                "Maximum reached: 6 of at most 6 replicas.",
                "Namespace quota gpu-quota has 0 nvidia.com/gpu left; one more replica needs 1.",
            ],
        ),
        (
            {
                "metric_value": 25.0,
                "desired": 5,
                "ready": 2,
                "pending_replicas": 3,
                "fits_now": False,
                "pool": "a100",
                "pool_limit_allows": True,
            },
            "capacity",
            5,
            ["No free GPU now: one more replica waits for a new node from pool a100."],
        ),
        (
            {"fits_now": False, "pool": "a100", "pool_limit_allows": False},
            "autoscaler",
            3,
            ["No free GPU now, and node pool a100 has reached its GPU limit."],
        ),
        (
            {"fits_now": False, "pool_offers": False, "device": "MIG 3g.40gb slice"},
            "autoscaler",
            3,
            ["No free MIG 3g.40gb slice now, and no node pool launches nodes with one."],
        ),
        (
            {"metric_value": 4.0, "stabilizing_until": "03:07 UTC"},
            "autoscaler",
            1,
            ["Stabilization window: the autoscaler keeps 3 replicas until 03:07 UTC."],
        ),
        ({"metric_value": 20.0, "stabilizing_until": "03:07 UTC"}, "autoscaler", 4, []),
        (
            {"conflict": "Two autoscalers target this deployment."},
            "autoscaler",
            3,
            ["Two autoscalers target this deployment."],
        ),
    ],
)
def test_it_says_which_bound_binds_and_what_blocks_more(changes, binding, implied, blockers):
    why = scaling_why(facts(**changes))
    assert (why.binding, why.implied_replicas, why.blockers) == (binding, implied, blockers)


def test_it_scales_an_average_metric_by_the_ready_replicas():
    # 4 ready replicas at 90% KV cache against an 80% target: ceil(4 * 0.9 / 0.8) = 5
    why = scaling_why(facts(metric_value=0.9, target_value=0.8, metric_summed=False, ready=4, desired=4))
    assert why.implied_replicas == 5


def test_it_answers_in_the_api_shape():
    assert set(scaling_why(facts()).as_dict()) == {
        "metric",
        "metric_value",
        "target_value",
        "implied_replicas",
        "min_replicas",
        "max_replicas",
        "floor",
        "pinned",
        "binding",
        "blockers",
    }
