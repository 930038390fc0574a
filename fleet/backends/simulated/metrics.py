"""The simulated metrics backend: what a `simulator.World` reports, read from a copy of it advanced
to now and never saved, so reading metrics cannot race a write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from fleet.backends.base import BackendError, DeploymentMetrics, DeploymentRef, GpuUtilization, NotSupported, Series
from fleet.backends.signals import AlertSignals
from fleet.backends.simulated.alert_signals import world_alert_signals
from fleet.backends.simulated.store import Clock, WorldStore, utc_now
from simulator import World
from simulator.world import from_epoch

SERIES_UNITS = {
    "ttft_p50": ("ttft_p50_seconds", "s"),
    "ttft_p95": ("ttft_p95_seconds", "s"),
    "ttft_p99": ("ttft_p99_seconds", "s"),
    "itl_p50": ("itl_p50_seconds", "s"),
    "itl_p95": ("itl_p95_seconds", "s"),
    "e2e_p50": ("e2e_p50_seconds", "s"),
    "e2e_p95": ("e2e_p95_seconds", "s"),
    "queue_depth": ("queue_depth", "requests"),
    "running": ("running", "requests"),
    "kv_cache_usage": ("kv_cache_usage", "fraction"),
    "gpu_utilization": ("gpu_utilization", "fraction"),
    "generation_tokens_per_second": ("generation_tokens_per_second", "tokens/s"),
    "prompt_tokens_per_second": ("prompt_tokens_per_second", "tokens/s"),
    "arrivals_per_second": ("arrivals_per_second", "requests/s"),
    "requests_per_second": ("requests_per_second", "requests/s"),
    "errors_per_second": ("errors_per_second", "requests/s"),
    "preemptions_per_second": ("preemptions_per_second", "preemptions/s"),
    "replicas_desired": ("replicas_desired", "replicas"),
    "replicas_ready": ("replicas_ready", "replicas"),
}


def _error_rate(requests: float | None, errors: float | None) -> float | None:
    """Errors as a 0-1 share of finished requests; None when nothing finished (or unknown)."""
    if requests is None or errors is None or requests <= 0:
        return None
    return round(min(1.0, errors / requests), 6)


def downsample(rows: list[dict], column: str, start: int, end: int, step: int) -> tuple[list[int], list]:
    """Points at start, start+step, ... <= end. Each is the mean of the minutes ending in
    (point - step, point]; with a step under a minute, the latest minute at or before the point.
    None where no minute falls in the window."""
    values_at = {r["at"]: r[column] for r in rows}
    points, values = [], []
    at = start
    while at <= end:
        if step < 60:
            value = values_at.get(at // 60 * 60)
        else:
            first_minute = (at - step) // 60 + 1
            window = [values_at.get(m * 60) for m in range(first_minute, at // 60 + 1)]
            window = [v for v in window if v is not None]
            value = sum(window) / len(window) if window else None
        points.append(at)
        values.append(None if value is None else round(value, 6))
        at += step
    return points, values


def _counters_at(points: list[tuple[float, float, float]], at: float) -> tuple[float, float]:
    """(prompt, generation) counter values at `at`, linear between points, clamped at the ends."""
    if at <= points[0][0]:
        return points[0][1], points[0][2]
    for (t0, p0, g0), (t1, p1, g1) in zip(points, points[1:], strict=False):
        if at <= t1:
            share = (at - t0) / (t1 - t0) if t1 > t0 else 1.0
            return p0 + (p1 - p0) * share, g0 + (g1 - g0) * share
    return points[-1][1], points[-1][2]


class SimulatedMetricsBackend:
    """MetricsBackend over a simulated world. Read-only: it advances a copy and never saves."""

    def __init__(self, store: WorldStore, *, clock: Clock = utc_now):
        self.store = store
        self.clock = clock
        self.last_error: BackendError | None = None  # a world always answers: never set

    def close(self) -> None:
        """Nothing to close: the world is read from its store on each call."""

    def _world(self) -> World:
        world = self.store.load()
        world.advance_to(self.clock())
        return world

    def alert_signals(self, objectives: Mapping[tuple[str, str], float], at: datetime) -> AlertSignals:
        """What alert evaluation judges, from the world's history (fleet/backends/simulated/alert_signals.py)."""
        return world_alert_signals(self._world(), objectives, at)

    def deployment_metrics(self, refs: Sequence[DeploymentRef]) -> dict[tuple[str, str], DeploymentMetrics]:
        world = self._world()
        result = {}
        for ref in refs:
            dep = world.deployments.get(f"{ref.namespace}/{ref.name}")
            if dep is None:
                result[(ref.namespace, ref.name)] = DeploymentMetrics(
                    as_of=world.now, unavailable_reason="no such deployment in the simulated cluster"
                )
                continue
            rows = world.history.rows(dep.key, last=1)
            minute = rows[-1] if rows else {}
            last = dep.last
            # vLLM's gauges come from its pods: with none ready there is nothing to scrape.
            serving = dep.ready_replicas > 0
            result[(ref.namespace, ref.name)] = DeploymentMetrics(
                queue_depth=round(last.get("queue", 0.0), 3) if serving else None,
                running=round(last.get("running", 0.0), 3) if serving else None,
                ttft_p50_seconds=minute.get("ttft_p50_seconds"),
                ttft_p95_seconds=minute.get("ttft_p95_seconds"),
                ttft_p99_seconds=minute.get("ttft_p99_seconds"),
                itl_p95_seconds=minute.get("itl_p95_seconds"),
                e2e_p95_seconds=minute.get("e2e_p95_seconds"),
                kv_cache_usage=round(last.get("kv_cache_usage", 0.0), 4) if serving else None,
                gpu_utilization=round(last.get("gpu_utilization", 0.0), 4) if serving else None,
                prompt_tokens_per_second=minute.get("prompt_tokens_per_second"),
                generation_tokens_per_second=None if dep.is_embedding else minute.get("generation_tokens_per_second"),
                preemptions_per_second=minute.get("preemptions_per_second"),
                requests_per_second=minute.get("requests_per_second"),
                error_rate=_error_rate(minute.get("requests_per_second"), minute.get("errors_per_second")),
                as_of=world.now,
            )
        return result

    def deployment_series(
        self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int
    ) -> dict[str, Series]:
        if step_seconds <= 0:
            raise BackendError("step_seconds must be positive", status=400)
        world = self._world()
        key = f"{ref.namespace}/{ref.name}"
        if key not in world.deployments:
            raise BackendError(f"deployment {key} not found in the simulated cluster", status=404)
        rows = world.history.rows(key)
        first, last = int(start.timestamp()), int(end.timestamp())
        series = {}
        for name, (column, unit) in SERIES_UNITS.items():
            points, values = downsample(rows, column, first, last, step_seconds)
            series[name] = Series(name, unit, tuple(from_epoch(p) for p in points), tuple(values))
        requests, errors = series["requests_per_second"], series["errors_per_second"]
        series["error_rate"] = Series(
            "error_rate",
            "fraction",
            requests.timestamps,
            tuple(_error_rate(r, e) for r, e in zip(requests.values, errors.values, strict=True)),
        )
        return series

    def gpu_utilization(self, node_names: Sequence[str]) -> list[GpuUtilization]:
        world = self._world()
        return [
            GpuUtilization(
                r.node,
                r.gpu_index,
                r.mig_profile,
                r.mig_instance_id,
                r.utilization,
                r.memory_used_mib,
                r.power_watts,
                r.temperature_c,
            )
            for r in world.gpu_readings(list(node_names))
        ]

    def token_increase(
        self, refs: Sequence[DeploymentRef], start: datetime, end: datetime
    ) -> dict[tuple[str, str], tuple[float | None, float | None]]:
        """Tokens counted in [start, end], from the cumulative counters of the per-minute history
        (interpolated linearly inside a minute, and up to the world's now from its live counters).
        Moments before the kept history count from its oldest value."""
        world = self._world()
        lo, hi = start.timestamp(), end.timestamp()
        result: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        for ref in refs:
            key = f"{ref.namespace}/{ref.name}"
            dep = world.deployments.get(key)
            if dep is None:
                result[(ref.namespace, ref.name)] = (None, None)
                continue
            points = []  # (epoch seconds, prompt total, generation total), in time order
            rows = world.history.rows(key)
            if rows:  # the counters as the oldest kept minute began
                first = rows[0]
                points.append(
                    (
                        first["at"] - 60,
                        first["prompt_tokens_total"] - first["prompt_tokens_per_second"] * 60,
                        first["generation_tokens_total"] - first["generation_tokens_per_second"] * 60,
                    )
                )
            points += [(r["at"], r["prompt_tokens_total"], r["generation_tokens_total"]) for r in rows]
            now = world.now.timestamp()
            if not points or now > points[-1][0]:
                points.append((now, dep.prompt_tokens_total, dep.generation_tokens_total))
            at_start, at_end = _counters_at(points, lo), _counters_at(points, hi)
            result[(ref.namespace, ref.name)] = (max(0.0, at_end[0] - at_start[0]), max(0.0, at_end[1] - at_start[1]))
        return result

    def deployment_token_counters(self, namespace: str, name: str) -> tuple[int, int]:
        """(vllm:prompt_tokens_total, vllm:generation_tokens_total) summed over the deployment, now."""
        world = self._world()
        dep = world.deployments.get(f"{namespace}/{name}")
        if dep is None:
            raise BackendError(f"deployment {namespace}/{name} not found in the simulated cluster", status=404)
        return int(dep.prompt_tokens_total), int(dep.generation_tokens_total)

    def deployment_history(
        self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int = 60
    ) -> dict[int, dict[str, float | None]]:
        """Not here: a simulated deployment's what-if replays its world, not a measured history."""
        raise NotSupported("a simulated cluster keeps no Prometheus history: its what-if replays the simulated world")

    def deployment_minutes(self, namespace: str, name: str) -> list[dict]:
        """Per-minute rows for the last 24 h, oldest first: "at" (aware datetime, the minute's
        end) and every history series, plus cumulative prompt/generation token counters and
        `gpus_allocated` / `cost_per_hour_usd` for costing."""
        world = self._world()
        if f"{namespace}/{name}" not in world.deployments:
            raise BackendError(f"deployment {namespace}/{name} not found in the simulated cluster", status=404)
        return [dict(row, at=from_epoch(row["at"])) for row in world.history.rows(f"{namespace}/{name}")]

    def node_pool_history(self) -> dict[str, list[dict]]:
        """Per pool, per minute: {"at", "nodes", "nodes_ready"}."""
        world = self._world()
        return {
            name: [dict(row, at=from_epoch(row["at"])) for row in world.history.pool_rows(name)] for name in world.pools
        }
