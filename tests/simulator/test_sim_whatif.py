from datetime import timedelta

import pytest

from simulator import Constant, Policy, Spike, TraceReplay, Traffic, compare_policies


def _spiky(world) -> Traffic:
    return Traffic(Constant(15), (Spike(world.t + 1800, 2.5, ramp_seconds=300, hold_seconds=1200),))


def test_it_returns_one_summary_per_candidate_and_a_bigger_floor_trades_gpu_hours_for_slo(demo):
    before = demo.to_dict()
    floors = [
        Policy(f"floor {n}", min_replicas=n, max_replicas=12, scale_down_max_pods=1, scale_down_period_s=120)
        for n in (2, 6)
    ]
    low, high = compare_policies(demo, "llm-prod/llama-3-8b", _spiky(demo), floors, hours=3, slo_ttft_p95_seconds=2.0)
    assert [low.policy.label, high.policy.label] == ["floor 2", "floor 6"]
    assert high.slo_violation_minutes < low.slo_violation_minutes
    assert high.gpu_hours > low.gpu_hours
    assert high.cost_usd == pytest.approx(high.gpu_hours * 40.97 / 8, abs=0.05)
    assert low.scale_reversals >= 1 and high.scale_reversals == 0
    assert len(low.series["at"]) == 180 == len(low.series["ttft_p95_seconds"])
    assert low.series["at"][0] == demo.now + timedelta(minutes=1)
    assert demo.to_dict() == before  # the world compared on is left alone


def test_it_runs_a_fixed_replica_count_and_hpa_candidates(demo):
    summaries = compare_policies(
        demo.to_dict(),
        ("llm-prod", "llama-3-8b"),
        None,
        [
            Policy("fixed 3", kind="none", min_replicas=3),
            Policy(
                "gpu 70%",
                kind="hpa",
                min_replicas=2,
                max_replicas=8,
                metric="gpu_utilization",
                target_value=0.7,
                polling_interval_s=15,
            ),
        ],
        hours=1,
    )
    fixed, hpa = summaries
    assert fixed.peak_replicas == 3 and fixed.scale_reversals == 0
    assert fixed.gpu_hours == pytest.approx(3.0, abs=0.01)
    assert hpa.requests_served > 0


def test_it_refuses_a_run_longer_than_the_history_it_keeps(demo):
    with pytest.raises(ValueError):
        compare_policies(demo, "llm-prod/llama-3-8b", None, [Policy("x")], hours=30)


def test_it_replays_a_recorded_trace_against_the_candidates(demo, azure_trace):
    trace = Traffic(TraceReplay.from_csv(azure_trace, scale=3.0))
    (summary,) = compare_policies(
        demo, "llm-prod/llama-3-8b", trace, [Policy("keda", min_replicas=2, max_replicas=12)], hours=1
    )
    mean_rate = sum(summary.series["arrivals_per_second"]) / 60
    assert 13.5 < mean_rate < 15.5  # 2,867 requests in ten minutes, looped for the hour, three times over
    assert summary.requests_served > 0.9 * mean_rate * 3600
