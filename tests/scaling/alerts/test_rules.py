import math

import pytest

from fleet.backends.prometheus.alert_signals import DeploymentSignals, NodeSignals
from scaling.alerts import rules


def _buckets(total: float, slow_share: float, *, slow_at: float = 5.0, fast_at: float = 0.5) -> dict[float, float]:
    """Cumulative buckets 1.0, 2.5, 10, +Inf for requests at `fast_at` and `slow_at` seconds."""
    les = (1.0, 2.5, 10.0, math.inf)
    return {le: total * ((1 - slow_share) * (fast_at <= le) + slow_share * (slow_at <= le)) for le in les}


@pytest.mark.parametrize(("objective", "expected"), [(2.5, 0.2), (10.0, 0.0), (1.0, 0.2)])
def test_it_counts_requests_slower_than_the_objective(objective, expected):
    assert rules.bad_share(_buckets(1000, 0.2), objective) == pytest.approx(expected)


def test_it_interpolates_inside_a_bucket_like_histogram_quantile():
    # 1000 requests between 2.5 and 10 s: an objective of 6.25 s (halfway) counts half as good.
    assert rules.bad_share({2.5: 0.0, 10.0: 1000.0, math.inf: 1000.0}, 6.25) == pytest.approx(0.5)


def test_it_has_no_share_without_requests():
    assert rules.bad_share({math.inf: 0.0}, 2.0) is None
    assert rules.bad_share(None, 2.0) is None


def _signals(short: float, long: float, **windows) -> DeploymentSignals:
    buckets = {300: _buckets(100, short), 3600: _buckets(1000, long)}
    buckets.update(windows)
    return DeploymentSignals(ttft_buckets=buckets)


def test_it_pages_when_both_page_windows_burn_at_14_4x():
    found = rules.deployment_findings(deployment_id=1, signals=_signals(0.2, 0.2), objective=2.5, attainment=0.99)
    assert [(f.rule, f.severity) for f in found] == [("slo_burn_page", "page")]
    assert "20.0x over 60 min" in found[0].summary


def test_it_does_not_page_when_the_short_window_has_recovered():
    found = rules.deployment_findings(deployment_id=1, signals=_signals(0.01, 0.2), objective=2.5, attainment=0.99)
    assert found == []


def test_it_opens_a_ticket_for_a_slower_burn_in_the_long_windows():
    signals = DeploymentSignals(ttft_buckets={300: _buckets(100, 0.08), 1800: _buckets(100, 0.08),
                                              3600: _buckets(100, 0.08), 21600: _buckets(100, 0.08)})  # fmt: skip
    found = rules.deployment_findings(deployment_id=1, signals=signals, objective=2.5, attainment=0.99)
    assert [(f.rule, f.severity) for f in found] == [("slo_burn_ticket", "ticket")]


def test_it_uses_the_attainment_target_for_the_budget():
    # 2 % slow is 2x a 1 % budget but 20x a 0.1 % budget.
    calm = rules.deployment_findings(deployment_id=1, signals=_signals(0.02, 0.02), objective=2.5, attainment=0.99)
    assert calm == []
    found = rules.deployment_findings(deployment_id=1, signals=_signals(0.02, 0.02), objective=2.5, attainment=0.999)
    assert [f.rule for f in found] == ["slo_burn_page"]


def test_it_reports_the_budget_left_over_30_days():
    signals = DeploymentSignals(ttft_buckets={30 * 86400: _buckets(1000, 0.0025)})
    assert rules.budget_remaining(signals, 2.5, 0.99) == pytest.approx(0.75)


def test_it_applies_the_vllm_thresholds():
    signals = DeploymentSignals(kv_cache_max=0.95, requests_per_second=10.0, errors_per_second=0.2, queue_floor=12.0)
    found = rules.deployment_findings(deployment_id=1, signals=signals, objective=2.0, attainment=0.99,
                                      at_max_replicas=True, queue_target_value=5.0)  # fmt: skip
    assert {f.rule for f in found} == {"kv_cache_full", "error_rate_high", "queue_at_max"}
    calm = rules.deployment_findings(deployment_id=1, signals=signals, objective=2.0, attainment=0.99,
                                     at_max_replicas=False, queue_target_value=5.0)  # fmt: skip
    assert "queue_at_max" not in {f.rule for f in calm}


def test_it_reads_the_queue_target_from_the_autoscaler_metric():
    assert rules.queue_target("prometheus: sum(vllm:num_requests_waiting{namespace=\"a\"}) > 5") == 5.0
    assert rules.queue_target("cpu > 80% utilization") is None


def test_it_applies_the_dcgm_thresholds_with_the_models_limits():
    hot = NodeSignals(model_name="NVIDIA H100 80GB HBM3", gpu_util_floor=95.0, fb_used_fraction=0.97,
                      temperature_c=84.0, power_watts=720.0, mem_copy_util=90.0)  # fmt: skip
    found = {f.rule for f in rules.node_findings(node_name="gpu-1", signals=hot)}
    # 84 C is under the H100's 85 C limit; 720 W is over its 700 W.
    assert found == {"gpu_util_sustained", "fb_nearly_full", "power_over_limit", "mem_copy_high"}
    a100 = NodeSignals(model_name="NVIDIA A100-SXM4-80GB", temperature_c=84.0, power_watts=390.0)
    assert {f.rule for f in rules.node_findings(node_name="gpu-2", signals=a100)} == {"gpu_too_hot"}
    exported_limit = NodeSignals(model_name="NVIDIA A100-SXM4-80GB", power_watts=390.0, power_over_limit_watts=15.0)
    assert {f.rule for f in rules.node_findings(node_name="gpu-3", signals=exported_limit)} == {"power_over_limit"}
