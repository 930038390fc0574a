"""The advisor's search: pre-scale windows from the daily profile, the static baseline, cancelling,
and candidate worker processes started cleanly from a threaded process."""

import threading
from array import array

import pytest

from simulator import ReplicaCapacity
from simulator.advisor import Cancelled, Objective, advise, policy_json, prescale_windows
from simulator.replay import DeploymentModel, Load

CAP = ReplicaCapacity(128, 20_000, 60, 1150, 210, 420_000)
MODEL = DeploymentModel(
    CAP,
    1.0,
    5.0,
    pod_start_seconds=120,
    node_start_seconds=300,
    replicas_per_node=8,
    gpus_per_node=8.0,
    free_replica_slots=16,
    max_new_nodes=2,
)
DAY = 1_749_081_600  # 2025-06-05 00:00 UTC


def two_level_load(seconds: int, *, busy_hours=range(9, 17), busy=20.0, quiet=4.0, warmup=0) -> Load:
    rates = [busy if ((i - warmup) // 3600) % 24 in busy_hours else quiet for i in range(seconds)]
    minutes = -(-seconds // 60)
    return Load(DAY - warmup, array("d", rates), array("d", [0.0] * minutes), array("d", [0.0] * minutes))


def test_it_derives_prescale_windows_from_the_daily_profile_led_by_the_cold_start():
    load = two_level_load(86400)
    rules = prescale_windows(load, 0, rate=CAP.requests_per_second(), lead_seconds=420, fraction=1.0)
    busy = [r for r in rules if r.replicas > 1]
    assert len(busy) == 1
    assert (busy[0].start_second, busy[0].end_second) == (9 * 3600 - 420, 17 * 3600)
    assert busy[0].replicas == 3  # 20 requests/s over ~10.4 per replica at 85 %


@pytest.fixture(scope="module")
def advice():
    warmup = MODEL.longest_cold_start_seconds
    load = two_level_load(warmup + 6 * 3600, busy_hours=range(2, 4), busy=40.0, warmup=warmup)
    return advise(MODEL, load, Objective(2.0, 0.99), warmup_seconds=warmup, workers=2)


def test_it_recommends_the_cheapest_policy_meeting_the_objective_from_at_least_40(advice):
    assert len(advice.candidates) >= 40 and advice.meets_objective
    meeting = [t for t in advice.candidates if t.meets(advice.objective)]
    assert advice.recommended.outcome.gpu_hours == min(t.outcome.gpu_hours for t in meeting)
    assert advice.recommended.outcome.gpu_hours < advice.static_peak.outcome.gpu_hours  # busy 2 h of 6


def test_it_sizes_static_peak_as_the_fewest_static_replicas_meeting_it(advice):
    n = advice.static_peak.policy.min_replicas
    statics = {t.policy.min_replicas: t for t in advice.candidates if t.policy.kind == "none"}
    assert statics[n].meets(advice.objective) and not statics[n - 1].meets(advice.objective)
    assert policy_json(advice.static_peak.policy) == {
        "kind": "static",
        "replicas": n,
        "prescale": [],
        "warm_pool_nodes": 0,
    }


def test_it_stops_when_cancelled():
    load = two_level_load(1200)
    with pytest.raises(Cancelled):
        advise(MODEL, load, Objective(2.0), warmup_seconds=0, workers=1, cancelled=lambda: True)


def test_it_runs_candidate_processes_from_a_threaded_process():
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)  # another thread alive, as in a Celery threads pool
    busy.start()
    try:
        load = two_level_load(600 + 1800)
        advice = advise(MODEL, load, Objective(2.0), warmup_seconds=600, workers=2)
    finally:
        stop.set()
        busy.join()
    assert len(advice.candidates) >= 40


def test_it_refines_the_cheap_near_misses_on_the_pareto_front_too():
    from simulator.advisor import Tried, _to_refine, pareto_front
    from simulator.replay import Outcome
    from simulator.whatif import Policy

    def tried(label, gpu_hours, violations):
        return Tried(Policy(label, "none", 1), Outcome(1440, violations, gpu_hours, gpu_hours * 5, 1))

    objective = Objective(2.0, 0.99)  # 14 violation minutes of 1440 allowed
    meets = [tried("meets dear", 400, 10), tried("meets dearer", 450, 5), tried("meets dearest", 500, 0)]
    near, near_dominated = tried("near miss", 110, 25), tried("near but dominated", 120, 26)
    far, costly_miss = tried("far miss", 90, 300), tried("costly miss", 600, 20)
    coarse = [*meets, near, near_dominated, far, costly_miss]

    front = pareto_front(
        coarse, cost=lambda t: t.outcome.gpu_hours, violations=lambda t: t.outcome.slo_violation_minutes
    )
    assert [t.policy.label for t in front] == ["far miss", "near miss", "meets dear", "meets dearer", "meets dearest"]
    assert [t.policy.label for t in _to_refine(coarse, objective)] == [*(t.policy.label for t in meets), "near miss"]
