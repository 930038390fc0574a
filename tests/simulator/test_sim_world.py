import json
from datetime import UTC, datetime, timedelta

import pytest

from simulator import Constant, SimConflict, SimInvalid, SimNotFound, Spike, Traffic, World, demo_world
from simulator.history import HISTORY_MINUTES

KEY_8B = "llm-prod/llama-3-8b"


def test_it_is_deterministic_for_a_seed(now):
    first = demo_world(seed=3, now=now, warmup_hours=0.5).to_dict()
    second = demo_world(seed=3, now=now, warmup_hours=0.5).to_dict()
    other = demo_world(seed=4, now=now, warmup_hours=0.5).to_dict()
    assert first == second
    assert first["history"] != other["history"]


def test_it_continues_identically_after_a_round_trip(demo, now):
    demo.advance_to(now + timedelta(seconds=45))  # mid-minute: the minute being built is saved too
    restored = World.from_dict(json.loads(json.dumps(demo.to_dict())))
    later = now + timedelta(minutes=40)
    demo.advance_to(later)
    restored.advance_to(later)
    assert restored.to_dict() == demo.to_dict()
    assert restored.rng.random() == demo.rng.random()


@pytest.fixture(scope="module")
def full_day():
    """The demo world after a whole day of warm-up (seconds to simulate: built once for the module),
    with `now` deliberately not on a whole minute. Read it, never advance it."""
    return demo_world(seed=7, now=datetime(2026, 11, 27, 12, 34, 56, 789000, tzinfo=UTC), warmup_hours=24)


def test_it_serializes_the_full_demo_day_compactly(full_day):
    size = len(json.dumps(full_day.to_dict()))
    assert size < 400_000
    assert len(full_day.history.rows(KEY_8B)) == HISTORY_MINUTES


def test_it_jumps_over_a_long_gap_without_simulating_it(demo, now):
    before = demo.deployment("llm-prod", "llama-3-8b").generation_tokens_total
    demo.advance_to(now + timedelta(days=3))
    rows = demo.history.rows(KEY_8B)
    assert demo.now == now + timedelta(days=3)
    assert 0 < len(rows) <= 60
    assert rows[0]["generation_tokens_total"] >= before
    assert any(e[1] == "TimeJump" for e in demo.events)


def test_it_keeps_time_still_when_asked_to_go_back(demo, now):
    demo.advance_to(now - timedelta(hours=1))
    assert demo.now == now


def test_it_looks_alive_minute_to_minute(demo, now):
    demo.advance_to(now + timedelta(minutes=30))
    arrivals = [r["arrivals_per_second"] for r in demo.history.rows(KEY_8B)[-30:]]
    assert len(set(arrivals)) > 20
    for row in demo.history.rows(KEY_8B)[-30:]:
        assert row["ttft_p95_seconds"] > row["ttft_p50_seconds"]
        assert row["ttft_p99_seconds"] >= row["ttft_p95_seconds"]
        assert 0 <= row["kv_cache_usage"] <= 1 and 0 <= row["gpu_utilization"] <= 1


def test_it_raises_conflict_on_a_stale_resource_version(demo):
    autoscaler = demo.autoscaler("llm-prod", "llama-3-8b")
    stale = autoscaler.resource_version
    new = demo.set_autoscaler("llm-prod", "llama-3-8b", min_replicas=3, expected_resource_version=stale)
    assert new > stale
    with pytest.raises(SimConflict):
        demo.set_autoscaler("llm-prod", "llama-3-8b", min_replicas=4, expected_resource_version=stale)
    assert autoscaler.min_replicas == 3
    with pytest.raises(SimNotFound):
        demo.set_autoscaler("llm-prod", "nope", min_replicas=4)
    with pytest.raises(SimInvalid):
        demo.set_autoscaler("llm-prod", "llama-3-8b", min_replicas=9, max_replicas=4)


def test_it_pins_and_unpins_with_paused_replicas(demo, now):
    demo.set_autoscaler("llm-prod", "llama-3-8b", paused_replicas=5)
    demo.advance_to(now + timedelta(minutes=1))
    assert demo.deployment("llm-prod", "llama-3-8b").replicas == 5
    demo.set_autoscaler("llm-prod", "llama-3-8b", min_replicas=3)  # KEEP leaves the pin alone
    assert demo.autoscaler("llm-prod", "llama-3-8b").paused_replicas == 5
    demo.clear_paused_replicas("llm-prod", "llama-3-8b")
    assert demo.autoscaler("llm-prod", "llama-3-8b").paused_replicas is None


def test_it_overwrites_a_manual_scale_of_an_autoscaled_deployment(demo, now):
    demo.scale_deployment("llm-prod", "llama-3-8b", 9)
    demo.advance_to(now + timedelta(minutes=1))
    assert demo.deployment("llm-prod", "llama-3-8b").replicas < 9


def test_it_scales_a_deployment_without_an_autoscaler_newest_pods_first(demo, now):
    demo.advance_to(now + timedelta(minutes=1))
    demo.scale_deployment("team-search", "mistral-7b", 3)
    demo.advance_to(now + timedelta(minutes=2))
    pods = demo.pods_of("team-search", "mistral-7b")
    assert len(pods) == 3
    newest = max(pods, key=lambda p: p.created_at)
    demo.scale_deployment("team-search", "mistral-7b", 2)
    demo.advance_to(now + timedelta(minutes=3))
    assert newest.key not in {p.key for p in demo.pods_of("team-search", "mistral-7b")}


def test_it_lowers_queue_and_ttft_after_the_floor_is_raised_and_its_cold_start_passes(demo, now):
    demo.set_traffic("llm-prod", "llama-3-8b", Traffic(Constant(26)))  # two replicas serve ~21/s
    raised = World.from_dict(demo.to_dict())
    raised.set_autoscaler("llm-prod", "llama-3-8b", min_replicas=8)
    minutes = {"kept": [], "raised": []}
    for minute in range(1, 46):
        for name, world in (("kept", demo), ("raised", raised)):
            world.advance_to(now + timedelta(minutes=minute))
            minutes[name].append(world.history.rows(KEY_8B)[-1])
    # Before the cold start has passed, new pods are still loading: nothing has changed yet.
    assert minutes["raised"][0]["replicas_ready"] == 2
    assert minutes["raised"][0]["queue_depth"] == minutes["kept"][0]["queue_depth"] > 0
    assert minutes["raised"][0]["ttft_p95_seconds"] == minutes["kept"][0]["ttft_p95_seconds"]
    # After it, the raised floor holds enough replicas; the kept one scales down and queues again.
    after = slice(5, None)
    kept, raised_rows = minutes["kept"][after], minutes["raised"][after]
    assert max(r["queue_depth"] for r in raised_rows) == 0
    assert max(r["queue_depth"] for r in kept) > 20
    assert max(r["ttft_p95_seconds"] for r in raised_rows) < 1.0 < max(r["ttft_p95_seconds"] for r in kept)
    assert min(r["replicas_ready"] for r in raised_rows) >= 8


def test_it_queues_under_a_viral_spike_and_keda_reacts(demo, now):
    demo.add_spike("llm-prod", "llama-3-8b", Spike(demo.t + 60, multiplier=4.0, ramp_seconds=120))
    demo.advance_to(now + timedelta(minutes=12))
    rows = demo.history.rows(KEY_8B)[-12:]
    assert max(r["queue_depth"] for r in rows) > 10
    assert any(e[1] == "ScaledUp" and KEY_8B in e[2] for e in demo.events)
    assert rows[-1]["replicas_ready"] > 2


def test_it_counts_tokens_and_an_embedding_model_generates_none(demo, now):
    demo.advance_to(now + timedelta(minutes=10))
    embed = demo.deployment("team-search", "bge-embed")
    chat = demo.deployment("llm-prod", "llama-3-8b")
    assert embed.prompt_tokens_total > 0 and embed.generation_tokens_total == 0
    assert chat.generation_tokens_total > 0
    rows = demo.history.rows("team-search/bge-embed")
    assert all(r["generation_tokens_per_second"] == 0 and r["itl_p95_seconds"] is None for r in rows)
    totals = [r["prompt_tokens_total"] for r in rows]
    assert totals == sorted(totals) and totals[-1] == int(embed.prompt_tokens_total)
    assert demo.history.rows("team-search/bge-embed", last=3) == rows[-3:]


def test_it_keeps_a_full_day_of_warmup_when_now_is_not_on_a_whole_minute(full_day):
    assert [e for e in full_day.events if e[1] == "TimeJump"] == []
    assert len(full_day.history.rows("llm-prod/llama-3-8b")) >= 24 * 60 - 1
