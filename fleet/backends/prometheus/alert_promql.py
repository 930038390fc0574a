"""The alert evaluation part of the PromQL catalogue (`promql` holds the rest): one query per signal
for all of a cluster's deployments or nodes. Its expressions are also what the PrometheusRule in
deploy/ evaluates (`scaling.alerts.prometheus_rule`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from fleet.backends.prometheus.promql import (
    DCGM_FB_USED,
    DCGM_GPU_UTIL,
    DCGM_HOSTNAME_LABELS,
    DCGM_POWER,
    DCGM_TEMP,
    FINISHED_REASON_LABEL,
    NOT_MIG,
    POD_SUFFIX_PATTERN,
    POD_TEMPLATE_HASH_PATTERN,
    SERVED_FINISH_REASONS,
    VLLM_KV_CACHE,
    VLLM_KV_CACHE_OLD,
    VLLM_REQUESTS_FINISHED,
    VLLM_TTFT,
    VLLM_WAITING,
    any_of_matcher,
    check_label_name,
    equal_matcher,
    escape_label_value,
    prefer_new_name,
    range_window,
)

# --------------------------------------------------------------------------- alert evaluation (per cluster, batched)
# One query per signal for every deployment of a cluster: pods are matched by namespace and
# grouped by the Deployment their name comes from (`label_replace` strips the ReplicaSet hash
# and the pod suffix into ALERT_DEPLOYMENT_LABEL), so 500 deployments cost the same few
# queries as one. The PrometheusRule in deploy/ holds the same expressions, per deployment.

ALERT_DEPLOYMENT_LABEL = "scaledeck_deployment"
_POD_TO_DEPLOYMENT = f"^(.+)-{POD_TEMPLATE_HASH_PATTERN}-{POD_SUFFIX_PATTERN}$"
DCGM_MEM_COPY_UTIL = "DCGM_FI_DEV_MEM_COPY_UTIL"  # 0-100
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"  # MiB
DCGM_POWER_LIMIT = "DCGM_FI_DEV_POWER_MGMT_LIMIT"  # W; not in dcgm-exporter's default counters
DCGM_MODEL_LABEL = "modelName"


def _by_deployment(expr: str, pod_label: str) -> str:
    return (f'label_replace({expr}, "{ALERT_DEPLOYMENT_LABEL}", "$1", "{check_label_name(pod_label)}", '
            f'"{escape_label_value(_POD_TO_DEPLOYMENT)}")')  # fmt: skip


def alert_namespaces(namespace_label: str, namespaces: Iterable[str]) -> str:
    """The matcher of the namespaces whose deployments are evaluated."""
    return any_of_matcher(namespace_label, namespaces)


SLO_QUANTILE = 0.95  # the objective is on the p95 TTFT (ModelDeployment.ttft_slo_seconds)


def le_text(seconds: float) -> str:
    """A bucket boundary as vLLM's exposition spells its `le` label ("2.5", "1.0", "+Inf")."""
    return "+Inf" if math.isinf(seconds) else repr(float(seconds))


def _ttft_minute_count(ns_matcher: str, namespace_label: str, pod_label: str, le: float) -> str:
    """Requests counted in one TTFT bucket per deployment over the last minute."""
    inner = _by_deployment(
        f"increase({VLLM_TTFT}_bucket{{{ns_matcher}, {equal_matcher('le', le_text(le))}}}[60s])", pod_label
    )
    return f"sum by ({check_label_name(namespace_label)}, {ALERT_DEPLOYMENT_LABEL}) ({inner})"


def ttft_minute_over_objective_by_deployment(
    ns_matcher: str, namespace_label: str, pod_label: str, *, objective_seconds: float,
    boundaries: Sequence[float],
) -> str:  # fmt: skip
    """Per deployment, for the minute ending now: 1 when its p95 TTFT was over the objective, 0
    when within, and no sample at all for a minute without requests (neither good nor bad).

    "p95 <= objective" is tested as "at least 95 % of the minute's requests were counted at or
    under the objective", interpolated inside the bucket exactly as `histogram_quantile` does
    (the two are the same condition), so only the buckets around the objective are read, not
    all 22. An objective past the largest finite bucket is never missed: `histogram_quantile`
    cannot read a p95 above that bucket either."""
    total = _ttft_minute_count(ns_matcher, namespace_label, pod_label, math.inf)
    below = max((b for b in boundaries if b <= objective_seconds), default=None)
    above = min((b for b in boundaries if b >= objective_seconds), default=None)
    if above is None:
        return f"0 * (({total}) > 0)"
    upper = _ttft_minute_count(ns_matcher, namespace_label, pod_label, above)
    if below == above:
        good = upper
    elif below is None:
        good = f"({upper}) * {objective_seconds / above!r}"
    else:
        share = (objective_seconds - below) / (above - below)
        lower = _ttft_minute_count(ns_matcher, namespace_label, pod_label, below)
        good = f"({lower}) * {1 - share!r} + ({upper}) * {share!r}"
    return f"({good}) < bool ({SLO_QUANTILE!r} * (({total}) > 0))"


def ttft_slow_minutes_by_deployment(
    ns_matcher: str, namespace_label: str, pod_label: str, window_seconds: int, *, objective_seconds: float,
    boundaries: Sequence[float], over_time: str = "avg",
) -> str:  # fmt: skip
    """Per deployment, over the clock minutes that ended in the last `window_seconds` and served
    requests: `avg` the share (0-1) whose p95 TTFT was over the objective (the SLI of "p95 TTFT
    within the objective in 99 % of minutes"), `sum` how many were, `count` how many there were.
    One subquery step per clock minute; the range starts a second late, so a minute on its
    boundary belongs to the window before (the same in Prometheus 2 and 3)."""
    if over_time not in ("avg", "sum", "count"):
        raise ValueError(f"unknown aggregation over time {over_time!r}")
    minute = ttft_minute_over_objective_by_deployment(
        ns_matcher, namespace_label, pod_label, objective_seconds=objective_seconds, boundaries=boundaries
    )
    return f"{over_time}_over_time(({minute})[{int(window_seconds) - 1}s:60s])"


def ttft_p95_last_minute_by_deployment(ns_matcher: str, namespace_label: str, pod_label: str) -> str:
    """Per deployment, the p95 TTFT (seconds) of the last minute's requests; NaN without any
    (the PrometheusRule records it every minute, and compares it with each objective)."""
    inner = _by_deployment(f"rate({VLLM_TTFT}_bucket{{{ns_matcher}}}[60s])", pod_label)
    by = f"le, {check_label_name(namespace_label)}, {ALERT_DEPLOYMENT_LABEL}"
    return f"histogram_quantile({SLO_QUANTILE!r}, sum by ({by}) ({inner}))"


def scaledeck_gauge_by_deployment(metric: str, aggregation: str = "max") -> str:
    """A ScaleDeck /metrics gauge labelled `deployment_namespace`/`deployment` (scaling/alerts/
    slo_metrics.py), relabelled to the vLLM side's `namespace`/ALERT_DEPLOYMENT_LABEL so the two
    join; `aggregation` across clusters holding the same names (`min` for the strictest objective)."""
    relabelled = (
        f'label_replace(label_replace({check_label_name(metric)}, "namespace", "$1", '
        f'"deployment_namespace", "(.*)"), "{ALERT_DEPLOYMENT_LABEL}", "$1", "deployment", "(.*)")'
    )
    return f"{aggregation} by (namespace, {ALERT_DEPLOYMENT_LABEL}) ({relabelled})"


def finished_rate_by_deployment(ns_matcher: str, namespace_label: str, pod_label: str, window_seconds: int) -> str:
    """Finished requests per second per deployment and `finished_reason` (errors = not stop/length)."""
    inner = _by_deployment(f"rate({VLLM_REQUESTS_FINISHED}{{{ns_matcher}}}{range_window(window_seconds)})", pod_label)
    return (f"sum by ({check_label_name(namespace_label)}, {ALERT_DEPLOYMENT_LABEL}, {FINISHED_REASON_LABEL}) "
            f"({inner})")  # fmt: skip


def error_ratio_by_deployment(ns_matcher: str, namespace_label: str, pod_label: str, window_seconds: int) -> str:
    """Share of finished requests that were not served (finish reason other than stop/length)."""
    served = "|".join(SERVED_FINISH_REASONS)
    by = f"{check_label_name(namespace_label)}, {ALERT_DEPLOYMENT_LABEL}"
    errors = _by_deployment(f'rate({VLLM_REQUESTS_FINISHED}{{{ns_matcher}, {FINISHED_REASON_LABEL}!~"{served}"}}'
                            f"{range_window(window_seconds)})", pod_label)  # fmt: skip
    total = _by_deployment(f"rate({VLLM_REQUESTS_FINISHED}{{{ns_matcher}}}{range_window(window_seconds)})", pod_label)
    return f"sum by ({by}) ({errors}) / sum by ({by}) ({total})"


def kv_cache_max_by_deployment(ns_matcher: str, namespace_label: str, pod_label: str) -> str:
    """The fullest KV cache (0-1) among each deployment's pods, new name preferred per pod."""
    on = f"{check_label_name(namespace_label)}, {check_label_name(pod_label)}"
    usage = prefer_new_name(f"{VLLM_KV_CACHE}{{{ns_matcher}}}", f"{VLLM_KV_CACHE_OLD}{{{ns_matcher}}}", on)
    return f"max by ({namespace_label}, {ALERT_DEPLOYMENT_LABEL}) ({_by_deployment(usage, pod_label)})"


def queue_floor_by_deployment(ns_matcher: str, namespace_label: str, pod_label: str, window_seconds: int) -> str:
    """Per deployment, the mean over its pods of each pod's lowest queue in the window: above a
    target only when the queue stayed above it the whole window."""
    inner = _by_deployment(f"min_over_time({VLLM_WAITING}{{{ns_matcher}}}{range_window(window_seconds)})", pod_label)
    return f"avg by ({check_label_name(namespace_label)}, {ALERT_DEPLOYMENT_LABEL}) ({inner})"


def queue_per_pod_by_deployment(ns_matcher: str, namespace_label: str, pod_label: str) -> str:
    """Requests waiting per pod of each deployment (what a queue-depth autoscaler compares with its
    target): the timeline's "metric above / below target"."""
    inner = _by_deployment(f"{VLLM_WAITING}{{{ns_matcher}}}", pod_label)
    return f"avg by ({check_label_name(namespace_label)}, {ALERT_DEPLOYMENT_LABEL}) ({inner})"


def _per_node(aggregation: str, expr: str) -> str:
    by = ", ".join((*DCGM_HOSTNAME_LABELS, DCGM_MODEL_LABEL))
    return f"{aggregation} by ({by}) ({expr})"


def gpu_util_floor_by_node(window_seconds: int) -> str:
    """Per node, the busiest whole GPU's lowest utilisation (0-100) in the window: over 90 only
    when some GPU stayed over 90 the whole window. MIG slices read 0 here and are left out."""
    return _per_node("max", f"min_over_time({DCGM_GPU_UTIL}{{{NOT_MIG}}}{range_window(window_seconds)})")


def fb_used_fraction_by_node() -> str:
    """Per node, the fullest GPU's framebuffer used / (used + free), 0-1."""
    return _per_node("max", f"{DCGM_FB_USED} / ({DCGM_FB_USED} + {DCGM_FB_FREE})")


def temperature_max_by_node() -> str:
    return _per_node("max", DCGM_TEMP)


def power_over_limit_by_node() -> str:
    """Per node, the largest power draw minus its management limit (W), where the limit is exported."""
    return _per_node("max", f"{DCGM_POWER} - {DCGM_POWER_LIMIT}")


def power_max_by_node() -> str:
    return _per_node("max", DCGM_POWER)


def mem_copy_util_max_by_node() -> str:
    return _per_node("max", DCGM_MEM_COPY_UTIL)
