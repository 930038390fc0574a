"""The alert evaluation part of the PromQL catalogue (`promql` holds the rest): one query per signal
for all of a cluster's deployments or nodes. Its expressions are also what the PrometheusRule in
deploy/ evaluates (`scaling.alerts.prometheus_rule`)."""

from __future__ import annotations

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


def ttft_bucket_increase_by_deployment(
    ns_matcher: str, namespace_label: str, pod_label: str, window_seconds: int, *, le: str | None = None,
    les: Sequence[str] = (),
) -> str:
    """Requests counted per TTFT bucket (`le`) per deployment over the window: the burn-rate input.
    `le` keeps one bucket, `les` several (as vLLM spells them: "2.5", "+Inf"), so a fleet only
    reads the buckets around its objectives instead of all 22."""
    matchers = ns_matcher + (f", {equal_matcher('le', le)}" if le is not None else "")
    matchers += f", {any_of_matcher('le', les)}" if les else ""
    inner = _by_deployment(f"increase({VLLM_TTFT}_bucket{{{matchers}}}{range_window(window_seconds)})", pod_label)
    return f"sum by (le, {check_label_name(namespace_label)}, {ALERT_DEPLOYMENT_LABEL}) ({inner})"


def ttft_slow_ratio_by_deployment(
    ns_matcher: str, namespace_label: str, pod_label: str, window_seconds: int, *, objective_le: str
) -> str:
    """Share of requests slower than the bucket `objective_le` per deployment (the PrometheusRule's SLI)."""
    good = ttft_bucket_increase_by_deployment(ns_matcher, namespace_label, pod_label, window_seconds, le=objective_le)
    total = ttft_bucket_increase_by_deployment(ns_matcher, namespace_label, pod_label, window_seconds, le="+Inf")
    return f"1 - (({good}) / ignoring (le) ({total}))"


def finished_rate_by_deployment(ns_matcher: str, namespace_label: str, pod_label: str, window_seconds: int) -> str:
    """Finished requests per second per deployment and `finished_reason` (errors = not stop/length)."""
    inner = _by_deployment(
        f"rate({VLLM_REQUESTS_FINISHED}{{{ns_matcher}}}{range_window(window_seconds)})", pod_label
    )
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
