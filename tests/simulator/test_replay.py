"""The 1-second replay: the same serving model as the World, pods that take time to start,
deterministic loads, warm pools and pre-scale floors."""

from array import array

import pytest

from simulator import Diurnal, Policy, ReplicaCapacity, Traffic
from simulator.capacity import serve
from simulator.replay import DeploymentModel, Load, PrescaleRule, _Pods, replay
from simulator.replay_inputs import load_from_traffic

CAP = ReplicaCapacity(128, 20_000, 60, 1150, 210, 420_000)
START = 1_749_038_400  # 2025-06-04 12:00 UTC


def model(**overrides) -> DeploymentModel:
    values = dict(
        capacity=CAP,
        gpus_per_replica=1.0,
        price_per_gpu_hour_usd=5.0,
        pod_start_seconds=200,
        node_start_seconds=600,
        replicas_per_node=8,
        gpus_per_node=8.0,
        free_replica_slots=4,
        max_new_nodes=2,
    )
    values.update(overrides)
    return DeploymentModel(**values)


def constant_load(rate: float, seconds: int, start: int = START) -> Load:
    minutes = -(-seconds // 60)
    return Load(start, array("d", [rate] * seconds), array("d", [0.0] * minutes), array("d", [0.0] * minutes))


@pytest.mark.parametrize("replicas,rate", [(2, 1.0), (1, 12.0), (3, 30.0)])
def test_it_serves_each_second_as_the_worlds_serving_model_does(replicas, rate):
    seconds = 180
    outcome = replay(
        model(),
        constant_load(rate, seconds),
        Policy("static", "none", replicas),
        slo_ttft_p95_seconds=1000.0,
        warmup_seconds=0,
    )
    queue, expected = 0.0, []
    for _minute in range(seconds // 60):
        weighted = served = 0.0
        for _ in range(60):
            out = serve(CAP, replicas=replicas, queue=queue, arrivals=rate, dt=1)
            queue = out.queue
            weighted += out.ttft_p95 * out.served
            served += out.served
        expected.append(round(weighted / served, 3))
    assert outcome.ttft_p95_per_minute == expected


def test_it_counts_a_minute_over_the_slo_and_gpu_hours_of_bound_pods():
    overloaded = replay(
        model(), constant_load(30.0, 3600), Policy("static", "none", 1), slo_ttft_p95_seconds=2.0, warmup_seconds=0
    )
    ample = replay(
        model(), constant_load(1.0, 3600), Policy("static", "none", 3), slo_ttft_p95_seconds=2.0, warmup_seconds=0
    )
    assert overloaded.slo_violation_minutes > 50 and overloaded.attainment < 0.2
    assert ample.slo_violation_minutes == 0 and ample.attainment == 1.0
    assert ample.gpu_hours == 3.0 and ample.cost_usd == 15.0
    assert ample.requests_served == pytest.approx(3600.0) and ample.requests_abandoned == 0
    assert overloaded.requests_abandoned > 0 and overloaded.requests_served < 30 * 3600


def test_it_starts_pods_with_room_after_the_pod_start_and_others_after_a_new_node():
    pods = _Pods(model(free_replica_slots=1), 1, 0, START)
    pods.scale_to(3, START)
    assert (pods.ready, len(pods.starting), pods.pending, len(pods.launching)) == (1, 1, 1, 1)
    pods.tick(START + 200)
    assert pods.ready == 2
    pods.tick(START + 600)  # the node is Ready: the last pod starts now
    assert (pods.ready, pods.pending, len(pods.starting)) == (2, 0, 1)
    pods.tick(START + 800)
    assert pods.ready == 3


def test_it_removes_unscheduled_then_starting_pods_before_ready_ones():
    pods = _Pods(model(free_replica_slots=1), 2, 0, START)
    pods.scale_to(4, START)
    pods.scale_to(2, START + 1)
    assert (pods.ready, len(pods.starting), pods.pending) == (2, 0, 0)


def test_it_keeps_a_warm_pool_whose_spare_node_skips_the_node_start_and_is_paid_for():
    no_room = model(free_replica_slots=0)
    cold = _Pods(no_room, 1, 0, START)
    warm = _Pods(no_room, 1, 1, START)
    cold.scale_to(2, START)
    warm.scale_to(2, START)
    cold.tick(START + 200)
    warm.tick(START + 200)
    assert (cold.ready, warm.ready) == (1, 2)
    # The pod took the spare node's room (its pause pods preempted): a replacement node launches.
    assert (len(cold.launching), len(warm.launching)) == (1, 1)
    paid = replay(
        no_room,
        constant_load(1.0, 600),
        Policy("static", "none", 1, warm_pool_nodes=1),
        slo_ttft_p95_seconds=2.0,
        warmup_seconds=0,
    )
    assert paid.gpu_hours == pytest.approx((1 + 8) * 600 / 3600, abs=1e-3)


def test_it_raises_the_floor_inside_a_prescale_window_only():
    rules = (PrescaleRule(START % 86400 + 600, START % 86400 + 1200, 3),)
    outcome = replay(
        model(),
        constant_load(0.5, 1800),
        Policy("static", "none", 1, prescale=rules),
        slo_ttft_p95_seconds=2.0,
        warmup_seconds=0,
    )
    ready = outcome.ready_per_minute
    assert ready[5] == 1 and ready[14] == 3 and ready[25] == 1


def test_it_scales_up_with_keda_when_the_queue_grows():
    outcome = replay(
        model(),
        constant_load(20.0, 1800),
        Policy("keda", "keda", 1, 8, "queue_depth", 5.0, 15, 300),
        slo_ttft_p95_seconds=2.0,
        warmup_seconds=0,
    )
    # One replica serves ~10 requests/s of this model: KEDA asks for more, which serve from 200 s on.
    assert outcome.ready_per_minute[:3] == [1, 1, 1] and max(outcome.ready_per_minute) >= 3


def test_it_builds_the_same_load_and_outcome_every_time():
    traffic = Traffic(Diurnal(19, 0.3, 14, -5, noise=0.1, bursts_per_hour=0.35))
    first = load_from_traffic(traffic, seed=7, key="llm-prod/llama-3-8b", start=START, seconds=1200)
    second = load_from_traffic(traffic, seed=7, key="llm-prod/llama-3-8b", start=START, seconds=1200)
    other_seed = load_from_traffic(traffic, seed=8, key="llm-prod/llama-3-8b", start=START, seconds=1200)
    assert first == second and first.arrivals != other_seed.arrivals
    assert sum(first.arrivals) / 1200 == pytest.approx(traffic.rate(7, "llm-prod/llama-3-8b", START + 600), rel=0.2)
    policy = Policy("keda", "keda", 1, 8, "queue_depth_avg", 8.0, 30, 180)
    runs = [replay(model(), first, policy, slo_ttft_p95_seconds=2.0, warmup_seconds=300) for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].scored_minutes == 15


@pytest.mark.parametrize("embedding", [False, True])
def test_quiet_stretches_give_the_second_by_second_replay_s_outcome(embedding):
    """The shortcut over quiet seconds (nothing queued, nothing starting, within capacity) is exact:
    each candidate's outcome matches the one replayed one second at a time."""
    from dataclasses import replace as copy

    from simulator.replay import ReplayCache
    from simulator.traffic import Spike

    traffic = Traffic(Diurnal(19, 0.3, 14, -5, noise=0.1, bursts_per_hour=0.35)).with_spike(
        Spike(start=START + 5400, multiplier=6, ramp_seconds=300, hold_seconds=900, decay_seconds=300)
    )
    load = load_from_traffic(traffic, seed=7, key="llm-prod/llama-3-8b", start=START, seconds=4 * 3600 + 450)
    m = model(embedding=embedding, capacity=copy(CAP, mean_output_tokens=0) if embedding else CAP)
    rules = (PrescaleRule(START % 86400 + 7200, START % 86400 + 9000, 6),)
    candidates = [
        Policy("static 2", "none", 2),
        Policy("static 1 + pre-scale", "none", 1, prescale=rules),
        Policy("keda queue 5", "keda", 1, 12, "queue_depth", 5.0, 15, 300, scale_down_stabilization_s=120),
        Policy("seed", "keda", 1, 8, "queue_depth_avg", 8.0, 30, 180),
        Policy("hpa gpu", "hpa", 2, 12, "gpu_utilization", 0.6, 15, warm_pool_nodes=1),
        Policy(
            "hpa every second",
            "hpa",
            1,
            12,
            "gpu_utilization",
            0.8,
            0,
            scale_down_stabilization_s=20,
            scale_down_max_pods=1,
        ),
        Policy("keda to zero", "keda", 0, 12, "queue_depth", 2.0, 10, 60),
    ]
    quick, slow = ReplayCache(m, load), ReplayCache(m, load, quiet_stretches=False)
    for candidate in candidates:
        one_by_one = replay(m, load, candidate, slo_ttft_p95_seconds=2.0, warmup_seconds=450, cache=slow)
        for _ in range(2):  # the second time from the memo filled by the first
            fast = replay(m, load, candidate, slo_ttft_p95_seconds=2.0, warmup_seconds=450, cache=quick)
            assert fast.slo_violation_minutes == one_by_one.slo_violation_minutes, candidate.label
            assert fast.ready_per_minute == one_by_one.ready_per_minute, candidate.label
            assert fast.desired_per_minute == one_by_one.desired_per_minute, candidate.label
            assert fast.ttft_p95_per_minute == pytest.approx(one_by_one.ttft_p95_per_minute, abs=0.0011)
            assert fast.gpu_hours == pytest.approx(one_by_one.gpu_hours, abs=0.0011)
            assert fast.requests_served == pytest.approx(one_by_one.requests_served, rel=1e-9)
            assert fast.requests_abandoned == pytest.approx(one_by_one.requests_abandoned, rel=1e-9)
    assert len(quick._weighted) > 100  # the shortcut was taken
    assert max(one_by_one.ttft_p95_per_minute) > 2.0 or embedding  # and the spike did queue
