"""What-if replay speed: today's World-stepping what-if against the 1-second replay.

    .venv/bin/python bench/whatif_speed.py [--today-hours 1]

Replays the demo cluster's KEDA-scaled deployment (llm-prod/llama-3-8b) against the seed's
ScaledObject. Today's engine (`simulator.compare_policies`, the whole World in 15 s steps, and
the same World at 1 s steps) is timed over `--today-hours` simulated hours and extrapolated to
7 days (it refuses more than 24 hours). The new engine (`simulator.replay`) is timed over the
full 7 days at 1-second resolution: building the arrivals once, then one candidate's replay.
Prints wall seconds on this machine, its load average beside them (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator import Policy, compare_policies, demo_world  # noqa: E402
from simulator.replay import replay  # noqa: E402
from simulator.replay_inputs import load_from_traffic, model_from_world  # noqa: E402

WEEK_SECONDS = 7 * 86400
NOW = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)
KEY = ("llm-prod", "llama-3-8b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--today-hours", type=float, default=1.0)
    args = parser.parse_args()
    world = demo_world(now=NOW, warmup_hours=1)
    base = world.to_dict()
    seed_policy = Policy("keda seed", "keda", 1, 8, "queue_depth_avg", 8.0, 30, 180)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    for step in (15, 1):
        state = dict(base, step_seconds=step) if step != 15 else base
        began = time.perf_counter()
        compare_policies(state, KEY, None, [seed_policy], args.today_hours)
        spent = time.perf_counter() - began
        week = spent * WEEK_SECONDS / (args.today_hours * 3600)
        print(
            f"today, World at {step:>2} s steps: {spent:.2f} s for {args.today_hours:g} h "
            f"-> {week:,.0f} s for 7 days (extrapolated)"
        )

    model = model_from_world(world, *KEY)
    dep = world.deployment(*KEY)
    warmup = model.longest_cold_start_seconds
    began = time.perf_counter()
    load = load_from_traffic(dep.traffic, seed=world.seed, key=dep.key, start=world.t, seconds=warmup + WEEK_SECONDS)
    built = time.perf_counter() - began
    candidate = seed_policy
    began = time.perf_counter()
    outcome = replay(model, load, candidate, slo_ttft_p95_seconds=2.0, warmup_seconds=warmup)
    spent = time.perf_counter() - began
    print(
        f"new, 1 s replay: arrivals for 7 days built in {built:.2f} s (once per advice, shared by candidates); "
        f"one candidate replayed in {spent:.2f} s; total {built + spent:.2f} s "
        f"({outcome.scored_minutes} minutes scored, {outcome.slo_violation_minutes} over the SLO)"
    )


if __name__ == "__main__":
    main()
