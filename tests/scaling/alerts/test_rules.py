import pytest

from fleet.backends.signals import DeploymentSignals, NodeSignals
from scaling.alerts import rules


def _signals(short: float, long: float, **windows) -> DeploymentSignals:
    """Shares of slow minutes: `short` in the last 5 min, `long` in the last hour."""
    return DeploymentSignals(slow_minute_share={300: short, 3600: long, **windows})


def test_it_pages_when_both_page_windows_burn_at_14_4x():
    # A fifth of the minutes over the objective: 20x a budget of 1 % of minutes.
    found = rules.deployment_findings(deployment_id=1, signals=_signals(0.2, 0.2), objective=2.5, attainment=0.99)
    assert [(f.rule, f.severity) for f in found] == [("slo_burn_page", "page")]
    assert "20.0x over 60 min" in found[0].summary


def test_it_does_not_page_when_the_short_window_has_recovered():
    found = rules.deployment_findings(deployment_id=1, signals=_signals(0.0, 0.2), objective=2.5, attainment=0.99)
    assert found == []


def test_it_does_not_page_without_a_minute_with_requests():
    assert rules.deployment_findings(deployment_id=1, signals=DeploymentSignals(), objective=2.5,
                                     attainment=0.99) == []  # fmt: skip


def test_it_opens_a_ticket_for_a_slower_burn_in_the_long_windows():
    signals = DeploymentSignals(slow_minute_share={300: 0.08, 1800: 0.08, 3600: 0.08, 21600: 0.08})
    found = rules.deployment_findings(deployment_id=1, signals=signals, objective=2.5, attainment=0.99)
    assert [(f.rule, f.severity) for f in found] == [("slo_burn_ticket", "ticket")]


def test_it_uses_the_attainment_target_for_the_budget():
    # 2 % of minutes slow is 2x a 1 % budget but 20x a 0.1 % budget.
    calm = rules.deployment_findings(deployment_id=1, signals=_signals(0.02, 0.02), objective=2.5, attainment=0.99)
    assert calm == []
    found = rules.deployment_findings(deployment_id=1, signals=_signals(0.02, 0.02), objective=2.5, attainment=0.999)
    assert [f.rule for f in found] == ["slo_burn_page"]


def test_it_reports_the_budget_left_and_the_minutes_attained_over_30_days():
    # 108 slow minutes of 43,200: a quarter of the 432-minute budget spent.
    signals = DeploymentSignals(slow_minute_share={30 * 86400: 108 / 43200})
    assert rules.budget_remaining(signals, 0.99) == pytest.approx(0.75)
    assert rules.attained(signals) == pytest.approx(0.9975)
    assert rules.budget_remaining(DeploymentSignals(), 0.99) is None


def test_it_applies_the_vllm_thresholds():
    signals = DeploymentSignals(kv_cache_max=0.95, requests_per_second=10.0, errors_per_second=0.2, queue_floor=12.0)
    found = rules.deployment_findings(deployment_id=1, signals=signals, objective=2.0, attainment=0.99,
                                      at_max_replicas=True, queue_target_value=5.0)  # fmt: skip
    assert {f.rule for f in found} == {"kv_cache_full", "error_rate_high", "queue_at_max"}
    calm = rules.deployment_findings(deployment_id=1, signals=signals, objective=2.0, attainment=0.99,
                                     at_max_replicas=False, queue_target_value=5.0)  # fmt: skip
    assert "queue_at_max" not in {f.rule for f in calm}


def test_it_reads_the_queue_target_from_the_autoscaler_metric():
    assert rules.queue_target('prometheus: sum(vllm:num_requests_waiting{namespace="a"}) > 5') == 5.0
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
