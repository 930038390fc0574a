"""What alert evaluation reads from a metrics source: plain values per deployment and per node.

`read_alert_signals` runs one batch of instant queries against a cluster's Prometheus (all
PromQL from the catalogue, `alert_promql`), whatever the number of deployments or nodes: per-deployment
grouping is done in PromQL (`label_replace` from pod names), per-node grouping by the DCGM
hostname label. The SLO is "p95 TTFT within the objective in 99 % of minutes", so the TTFT
queries count minutes, per window and distinct objective: the burn windows' shares of slow
minutes, and the slow and counted minutes of the clock hour so far. The 30-day window is not
asked here (43,200 minutes a pass would cost Prometheus minutes at fleet scale): evaluation adds
up stored hours (`hour_minutes_queries`, once per hour). fleet/backends/simulated/alert_signals.py
gives the same values from a simulated world's per-minute history. Pure values come back; the
rules that judge them live in scaling/alerts/rules.py.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from fleet.backends.prometheus import alert_promql, promql
from fleet.backends.signals import (
    BURN_WINDOWS_SECONDS,
    ERROR_RATE_WINDOW_SECONDS,
    GPU_UTIL_WINDOW_SECONDS,
    QUEUE_WINDOW_SECONDS,
    AlertSignals,
    DeploymentSignals,
    NodeSignals,
)
from fleet.slo import TTFT_BUCKETS_SECONDS

HOUR_FIELDS = {"hour_slow": "hour_slow_minutes", "hour_minutes": "hour_minutes"}  # query name -> field


def _slow_minutes(ns: str, namespace_label: str, pod_label: str, window: int, objective: float, over_time: str):
    return alert_promql.ttft_slow_minutes_by_deployment(ns, namespace_label, pod_label, window,
                                                        objective_seconds=objective, boundaries=TTFT_BUCKETS_SECONDS,
                                                        over_time=over_time)  # fmt: skip


def alert_queries(
    namespaces: Sequence[str], *, namespace_label: str, pod_label: str, objectives: Iterable[float] = (),
    hour_so_far_seconds: int = 0,
) -> dict[str, str]:  # fmt: skip
    """Every query of one evaluation, named. With no namespaces, deployment queries are left out.
    Per distinct TTFT objective (a fleet has a few, not one per deployment): the share of slow
    minutes per burn window (`slow:<window>:<objective>`), and, once the clock hour has a whole
    minute, its slow and counted minutes (`hour_slow:<objective>`, `hour_minutes:<objective>`)."""
    queries: dict[str, str] = {}
    if namespaces:
        ns = alert_promql.alert_namespaces(namespace_label, namespaces)
        for objective in sorted(set(objectives)):
            for window in BURN_WINDOWS_SECONDS:
                queries[f"slow:{window}:{objective!r}"] = _slow_minutes(ns, namespace_label, pod_label, window,
                                                                        objective, "avg")  # fmt: skip
            if hour_so_far_seconds >= 60:
                for name, over_time in (("hour_slow", "sum"), ("hour_minutes", "count")):
                    queries[f"{name}:{objective!r}"] = _slow_minutes(
                        ns, namespace_label, pod_label, hour_so_far_seconds, objective, over_time
                    )
        queries["finished"] = alert_promql.finished_rate_by_deployment(
            ns, namespace_label, pod_label, ERROR_RATE_WINDOW_SECONDS
        )
        queries["kv_cache"] = alert_promql.kv_cache_max_by_deployment(ns, namespace_label, pod_label)
        queries["queue"] = alert_promql.queue_floor_by_deployment(ns, namespace_label, pod_label, QUEUE_WINDOW_SECONDS)
    queries["gpu_util"] = alert_promql.gpu_util_floor_by_node(GPU_UTIL_WINDOW_SECONDS)
    queries["fb_used"] = alert_promql.fb_used_fraction_by_node()
    queries["temperature"] = alert_promql.temperature_max_by_node()
    queries["power"] = alert_promql.power_max_by_node()
    queries["power_over"] = alert_promql.power_over_limit_by_node()
    queries["mem_copy"] = alert_promql.mem_copy_util_max_by_node()
    return queries


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def signals_from_vectors(
    vectors: dict[str, list[tuple[dict[str, str], float | None]]],
    *,
    namespace_label: str,
    objectives: Mapping[tuple[str, str], float] | None = None,
) -> AlertSignals:
    """Fold the answers of `alert_queries` into per-deployment and per-node values. A deployment
    takes the slow-minute shares of its own objective (`objectives`, by (namespace, name))."""
    dep: dict[tuple[str, str], dict] = defaultdict(lambda: {"slow_minute_share": {}})
    label = alert_promql.ALERT_DEPLOYMENT_LABEL
    for name, samples in vectors.items():
        signal, _, objective = name.rpartition(":")
        if signal.startswith("slow:"):
            window = int(signal.removeprefix("slow:"))
        elif signal not in HOUR_FIELDS:
            continue
        for labels, value in samples:
            key = (labels.get(namespace_label), labels.get(label))
            if None in key or _finite(value) is None or (objectives or {}).get(key) != float(objective):
                continue
            if signal.startswith("slow:"):
                dep[key]["slow_minute_share"][window] = value
            else:
                dep[key][HOUR_FIELDS[signal]] = value
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for labels, value in vectors.get("finished", ()):
        key = (labels.get(namespace_label), labels.get(label))
        if None in key or _finite(value) is None:
            continue
        totals[key][0] += value
        if labels.get(promql.FINISHED_REASON_LABEL) not in promql.SERVED_FINISH_REASONS:
            totals[key][1] += value
    for key, (total, errors) in totals.items():
        dep[key]["requests_per_second"] = total
        dep[key]["errors_per_second"] = errors
    for name, attr in (("kv_cache", "kv_cache_max"), ("queue", "queue_floor")):
        for labels, value in vectors.get(name, ()):
            key = (labels.get(namespace_label), labels.get(label))
            if None not in key and _finite(value) is not None:
                dep[key][attr] = value
    nodes: dict[str, dict] = defaultdict(dict)
    for name, attr in (("gpu_util", "gpu_util_floor"), ("fb_used", "fb_used_fraction"),
                       ("temperature", "temperature_c"), ("power", "power_watts"),
                       ("power_over", "power_over_limit_watts"), ("mem_copy", "mem_copy_util")):  # fmt: skip
        for labels, value in vectors.get(name, ()):
            node = next((labels[h] for h in promql.DCGM_HOSTNAME_LABELS if labels.get(h)), None)
            if node is None or _finite(value) is None:
                continue
            nodes[node][attr] = value
            nodes[node].setdefault("model_name", labels.get(alert_promql.DCGM_MODEL_LABEL, ""))
    return AlertSignals(
        deployments={k: DeploymentSignals(**v) for k, v in dep.items()},
        nodes={k: NodeSignals(**v) for k, v in nodes.items()},
        queries=len(vectors),
    )


def read_alert_signals(backend, objectives: Mapping[tuple[str, str], float], at: datetime) -> AlertSignals:
    """One batch of instant queries against `backend` (a PrometheusMetricsBackend) at `at`, for
    the deployments of `objectives` ((namespace, name) -> TTFT objective in seconds) and every
    GPU node. Raises BackendError when Prometheus cannot answer: the caller reports "unknown"."""
    hour_so_far = int(at.timestamp()) % 3600
    queries = alert_queries(sorted({ns for ns, _ in objectives}), namespace_label=backend.namespace_label,
                            pod_label=backend.pod_label, objectives=objectives.values(),
                            hour_so_far_seconds=hour_so_far)  # fmt: skip
    answers = backend.instant_vectors(queries, at)
    return signals_from_vectors(answers, namespace_label=backend.namespace_label, objectives=objectives)


def hour_minutes_queries(
    namespaces: Sequence[str], *, namespace_label: str, pod_label: str, objectives: Iterable[float]
) -> dict[str, str]:
    """Range queries (one step per clock hour, at its end) of each hour's counted and slow minutes
    per deployment, per distinct objective: `minutes:<objective>`, `slow:<objective>`."""
    ns = alert_promql.alert_namespaces(namespace_label, namespaces)
    queries = {}
    for objective in sorted(set(objectives)):
        queries[f"minutes:{objective!r}"] = _slow_minutes(ns, namespace_label, pod_label, 3600, objective, "count")
        queries[f"slow:{objective!r}"] = _slow_minutes(ns, namespace_label, pod_label, 3600, objective, "sum")
    return queries
