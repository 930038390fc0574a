from datetime import UTC, datetime, timedelta

import pytest

from simulator import Constant, Diurnal, Spike, TraceReplay, Traffic
from simulator.autoscalers import Autoscaler, Reading
from simulator.capacity import ReplicaCapacity, serve


def _epoch(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def test_it_peaks_in_the_local_afternoon():
    shape = Diurnal(100, trough_fraction=0.2, peak_hour=14, utc_offset_hours=-5, noise=0)
    wednesday = _epoch(2025, 6, 4, 0, 0)
    rates = {hour: shape.rate(7, "d", wednesday + hour * 3600) for hour in range(24)}
    assert max(rates, key=rates.get) == 19  # 14:00 in UTC-5
    assert rates[19] == pytest.approx(100)
    assert min(rates.values()) == pytest.approx(20)
    assert shape.rate(7, "d", _epoch(2025, 6, 7, 19)) == pytest.approx(70)  # Saturday


def test_it_draws_the_same_noise_for_the_same_seed_and_key():
    traffic = Traffic(Diurnal(50, noise=0.2, bursts_per_hour=0.5))
    t = _epoch(2025, 6, 4, 15)
    assert traffic.arrivals(7, "a/b", t, 15) == traffic.arrivals(7, "a/b", t, 15)
    assert traffic.arrivals(7, "a/b", t, 15) != traffic.arrivals(8, "a/b", t, 15)
    assert traffic.arrivals(7, "a/b", t, 15) != traffic.arrivals(7, "a/c", t, 15)


def test_it_ramps_a_spike_up_holds_it_and_lets_it_decay():
    t0 = _epoch(2025, 6, 4, 15)
    spike = Spike(t0, multiplier=5, ramp_seconds=100, hold_seconds=100, decay_seconds=100)
    assert [spike.factor(t0 + s) for s in (0, 50, 150, 250, 300)] == [1, 3, 5, 3, 1]
    assert Traffic(Constant(2)).with_spike(spike).rate(7, "k", t0 + 150) == 10


def test_it_replays_the_azure_trace_per_minute_and_round_trips(azure_trace):
    trace = TraceReplay.from_csv(azure_trace)
    assert sum(trace.counts) == 2867 and len(trace.counts) == 10
    assert trace.counts[:3] == (191, 265, 329)
    assert trace.rate(7, "k", 120) == trace.counts[2] / 60
    assert trace.rate(7, "k", 600) == trace.counts[0] / 60  # the replay loops
    assert 4.5 < sum(trace.counts) / len(trace.counts) / 60 < 5
    prompt, output = trace.tokens(0)
    assert 500 < prompt < 2000 and 100 < output < 400
    traffic = Traffic(trace)
    assert Traffic.from_dict(traffic.to_dict()) == traffic


def test_it_serves_more_with_more_replicas_and_queues_beyond_capacity():
    cap = ReplicaCapacity(128, 20_000, 60, 1150, 210, 420_000)
    per_replica = cap.requests_per_second()
    over = serve(cap, replicas=2, queue=0, arrivals=per_replica * 3 * 15, dt=15)
    under = serve(cap, replicas=4, queue=0, arrivals=per_replica * 3 * 15, dt=15)
    assert over.queue > 0 and under.queue == 0
    assert over.ttft_p95 > under.ttft_p95 > under.ttft_p50
    assert over.gpu_utilization > under.gpu_utilization
    idle = serve(cap, replicas=0, queue=10, arrivals=30, dt=15)
    assert idle.ttft_p95 is None and idle.queue < 40 and idle.abandoned > 0


def test_it_fills_the_kv_cache_and_preempts_when_it_binds():
    cap = ReplicaCapacity(512, 40_000, 35, 4000, 1000, 400_000)  # KV holds ~89 sequences, not 512
    full = serve(cap, replicas=1, queue=500, arrivals=100, dt=15)
    assert full.kv_cache_usage > 0.95 and full.preemptions > 0


def _keda(**kw) -> Autoscaler:
    return Autoscaler(
        "keda",
        "ns",
        "a",
        "d",
        kw.pop("min_replicas", 2),
        kw.pop("max_replicas", 12),
        "queue_depth",
        5.0,
        polling_interval_s=30,
        **kw,
    )


def _reading(current, queue, ready=None) -> Reading:
    return Reading(current, current if ready is None else ready, queue, 0.5, 0.1)


def test_it_scales_keda_on_queue_depth_and_limits_each_step_up():
    keda = _keda()
    assert keda.evaluate(0, _reading(2, 10.5)) == 2  # within the 10% tolerance
    assert keda.evaluate(30, _reading(2, 23)) == 5
    assert keda.evaluate(60, _reading(2, 500)) == 6  # max(2x, +4) per evaluation


def test_it_waits_out_the_stabilization_window_before_scaling_down():
    keda = _keda(scale_down_stabilization_s=300)
    assert keda.evaluate(0, _reading(2, 40)) == 6
    assert keda.evaluate(60, _reading(6, 0)) == 6
    assert keda.evaluate(290, _reading(6, 0)) == 6
    assert keda.evaluate(330, _reading(6, 0)) == 2


def test_it_goes_to_zero_only_after_the_cooldown():
    keda = _keda(min_replicas=0, cooldown_s=300, scale_down_stabilization_s=0)
    assert keda.evaluate(0, _reading(0, 3)) == 1
    assert keda.evaluate(30, _reading(1, 0)) == 1
    assert keda.evaluate(400, _reading(1, 0)) == 0


def test_it_scales_an_hpa_on_gpu_utilization():
    hpa = Autoscaler("hpa", "ns", "a", "d", 1, 4, "gpu_utilization", 0.7, polling_interval_s=15)
    assert hpa.evaluate(0, Reading(2, 2, 0.0, 0.98, 0.1)) == 3
    assert hpa.evaluate(15, Reading(3, 3, 0.0, 0.72, 0.1)) == 3
    assert hpa.evaluate(30, Reading(3, 1, 0.0, None, None)) == 3  # no metrics: hold


def test_an_hpa_counts_pods_without_metrics_at_the_target_on_the_way_down_and_at_nothing_up():
    """As Kubernetes does: pods that cannot start (no room for them) damp a scale down, never block it."""
    hpa = Autoscaler(
        "hpa", "ns", "a", "d", 1, 40, "gpu_utilization", 0.8, polling_interval_s=15, scale_down_stabilization_s=0
    )
    # 28 ready at 20 % and 12 pending: the 12 count as at 80 %, the 28 need 7 -> 19
    assert hpa.evaluate(0, Reading(40, 28, 0.0, 0.2, 0.1)) == 19
    # busy, with 10 starting: 20 ready at 96 % want 24, fewer than the 30 asked already: hold
    assert hpa.evaluate(15, Reading(30, 20, 0.0, 0.96, 0.1)) == 30
    # and more than the 30 when the ready ones alone need more: 28 at 100 % want 35
    assert hpa.evaluate(30, Reading(30, 28, 0.0, 1.0, 0.1)) == 35


def test_it_round_trips_times_as_aware_datetimes(now):
    from simulator.world import from_epoch, to_epoch

    assert from_epoch(to_epoch(now + timedelta(seconds=5))) == now + timedelta(seconds=5)
    with pytest.raises(ValueError):
        to_epoch(datetime(2025, 1, 1))
