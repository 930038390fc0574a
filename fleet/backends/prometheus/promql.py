"""The one catalogue of PromQL, with `alert_promql` (its alert evaluation queries). Nothing else in
ScaleDeck builds a PromQL string.

Every query is a named function of

* a selector (`PodSelector` / `NodeSelector`) that already holds the escaped label matchers,
  so the cluster-supplied names (namespaces, pod names, node names) are never pasted raw;
* the label names the cluster uses: vLLM series carry `namespace`/`pod` by default, but behind a
  ServiceMonitor they are often `exported_namespace`/`exported_pod`; DCGM series carry the pod
  mapping of dcgm-exporter in labels named separately for the same reason;
* a rate window in whole seconds where the query takes one.

Escaping. Label values are quoted as PromQL double-quoted strings (backslash, double quote and
newlines escaped). Regex alternations (`pod=~"a|b"`) additionally escape every RE2
metacharacter in each value, so a pod named `x.*` matches only itself. Label *names* cannot be
quoted in PromQL, so they are validated instead (`check_label_name`).

Old and new vLLM names. Clusters run mixed vLLM versions, so the queries for renamed metrics
prefer the new name per pod and fall back to the removed older one for pods that only have it:
`vllm:kv_cache_usage_perc` (older `vllm:gpu_cache_usage_perc`) and
`vllm:inter_token_latency_seconds` (older `vllm:time_per_output_token_seconds`). vLLM 0.10
exports both names at once; the new one wins and nothing is counted twice.

Histograms. The per-pod bucket queries return `sum by (le, namespace, pod) (rate(...))` so the
backend can merge the buckets of any set of pods and interpolate the quantile itself, exactly as
`histogram_quantile` does; that keeps the overview to one query per metric for all deployments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------- metric names

VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_KV_CACHE = "vllm:kv_cache_usage_perc"
VLLM_KV_CACHE_OLD = "vllm:gpu_cache_usage_perc"  # removed in newer vLLM
VLLM_TTFT = "vllm:time_to_first_token_seconds"
VLLM_ITL = "vllm:inter_token_latency_seconds"
VLLM_ITL_OLD = "vllm:time_per_output_token_seconds"  # removed in newer vLLM
VLLM_E2E = "vllm:e2e_request_latency_seconds"
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_PREEMPTIONS = "vllm:num_preemptions_total"
VLLM_REQUESTS_FINISHED = "vllm:request_success_total"  # every finished request, by `finished_reason`
FINISHED_REASON_LABEL = "finished_reason"
# Finish reasons of a request that was served: it hit a stop condition or its length limit.
# Anything else ("abort": client gone or engine aborted it, "error") is a request error.
SERVED_FINISH_REASONS = ("stop", "length")

# kube-state-metrics: desired (`spec.replicas`) and ready replicas of each Deployment.
KSM_SPEC_REPLICAS = "kube_deployment_spec_replicas"
KSM_READY_REPLICAS = "kube_deployment_status_replicas_ready"
KSM_DEPLOYMENT_LABEL = "deployment"
# kube-state-metrics is normally scraped with honor_labels (its `namespace` is the object's);
# without it Prometheus renames the label to `exported_namespace`.
KSM_NAMESPACE_LABELS = ("namespace", "exported_namespace")

DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # 0-100; reads 0 on a MIG slice
DCGM_GR_ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"  # 0-1; MIG-aware
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"  # MiB
DCGM_POWER = "DCGM_FI_DEV_POWER_USAGE"  # W
DCGM_TEMP = "DCGM_FI_DEV_GPU_TEMP"  # C
DCGM_MIG_PROFILE_LABEL = "GPU_I_PROFILE"
DCGM_MIG_ID_LABEL = "GPU_I_ID"
DCGM_GPU_LABEL = "gpu"
DCGM_HOSTNAME_LABELS = ("Hostname", "hostname")  # older exporters / newer exporters

# A selector whose pod alternation grows past this many characters drops the pod matcher and
# keeps only the namespace one; the backend then keeps the pods it asked for in Python. A GET
# URL of tens of kilobytes is refused by many proxies in front of Prometheus.
MAX_POD_REGEX_CHARS = 6000

# --------------------------------------------------------------------------- escaping

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RE2_META = frozenset(r"\.+*?()|[]{}^$")


def check_label_name(name: str) -> str:
    """Return `name` if it is a valid Prometheus label name, else raise ValueError."""
    if not isinstance(name, str) or not _LABEL_NAME.match(name):
        raise ValueError(f"not a Prometheus label name: {name!r}")
    return name


def escape_label_value(value: str) -> str:
    """The body of a PromQL double-quoted string holding `value` (quotes not included)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def quote_regex(value: str) -> str:
    """`value` as an RE2 pattern matching exactly that text (Go's regexp.QuoteMeta)."""
    return "".join("\\" + ch if ch in _RE2_META else ch for ch in value)


def equal_matcher(label: str, value: str) -> str:
    """`label="value"`, escaped."""
    return f'{check_label_name(label)}="{escape_label_value(value)}"'


def any_of_matcher(label: str, values: Iterable[str]) -> str:
    """`label="v"` for one value, `label=~"v1|v2"` (each regex-quoted) for several.

    Refuses an empty set: `label=~""` would match every series *without* the label.
    """
    unique = sorted(set(values))
    if not unique:
        raise ValueError(f"no values to match for label {label!r}")
    if len(unique) == 1:
        return equal_matcher(label, unique[0])
    alternation = "|".join(quote_regex(v) for v in unique)
    return f'{check_label_name(label)}=~"{escape_label_value(alternation)}"'


# --------------------------------------------------------------------------- a deployment's pods over time
# A Deployment's pods are named by its ReplicaSets: `<deployment>-<pod-template-hash>-<5 random>`,
# the hash (at most 10 characters) changing with every rollout. Matching that shape selects
# every pod the Deployment ever ran -- replaced, scaled away or alive -- and no other
# Deployment's: the two `[a-z0-9]` runs hold no dash, so `llama` never matches `llama-8b-...`.
# Kubernetes cuts a generated name's base (`<deployment>-<hash>-`) to 58 characters, so a long
# Deployment name has pods of exactly 63 characters with the hash partly or wholly cut off.

POD_TEMPLATE_HASH_PATTERN = "[a-z0-9]{1,10}"
POD_SUFFIX_PATTERN = "[a-z0-9]{5}"
MAX_GENERATED_NAME_BASE = 58  # apiserver: maxNameLength 63 - randomLength 5


def deployment_pods_pattern(deployment: str) -> str:
    """An RE2 pattern (unescaped for PromQL) matching the names of every pod the Deployment's
    ReplicaSets created, past and present."""
    if not deployment:
        raise ValueError("a deployment name is required")
    whole = f"{quote_regex(deployment)}-{POD_TEMPLATE_HASH_PATTERN}-{POD_SUFFIX_PATTERN}"
    if len(deployment) + 2 + 10 <= MAX_GENERATED_NAME_BASE:
        return whole
    base = (deployment + "-")[:MAX_GENERATED_NAME_BASE]
    cut = f"{quote_regex(base)}[a-z0-9-]{{{MAX_GENERATED_NAME_BASE - len(base)}}}{POD_SUFFIX_PATTERN}"
    return f"{whole}|{cut}"


# --------------------------------------------------------------------------- selectors


@dataclass(frozen=True)
class PodSelector:
    """Label matchers for a set of (namespace, pod) pairs, with the label names that hold them.

    `exact` is False when the pod alternation was too long and only namespaces are matched: the
    caller must then keep only the pairs it asked for (it should always do so anyway, since
    matching namespaces and pods separately also lets ns-a/pod-of-ns-b through).
    """

    namespace_label: str
    pod_label: str
    matchers: tuple[str, ...]
    exact: bool = True

    @property
    def by(self) -> str:
        return f"{self.namespace_label}, {self.pod_label}"

    def braces(self, *extra: str) -> str:
        return "{" + ", ".join((*self.matchers, *extra)) + "}"


def pod_selector(
    pairs: Iterable[tuple[str, str]],
    *,
    namespace_label: str = "namespace",
    pod_label: str = "pod",
    max_pod_regex_chars: int = MAX_POD_REGEX_CHARS,
) -> PodSelector:
    """Matchers for the given (namespace, pod) pairs. Raises ValueError for an empty set."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no pods to select")
    ns_matcher = any_of_matcher(namespace_label, (ns for ns, _ in pairs))
    pod_matcher = any_of_matcher(pod_label, (pod for _, pod in pairs))
    if len(pod_matcher) > max_pod_regex_chars:
        return PodSelector(namespace_label, pod_label, (ns_matcher,), exact=False)
    return PodSelector(namespace_label, pod_label, (ns_matcher, pod_matcher))


def deployment_selector(
    namespace: str, deployment: str, *, namespace_label: str = "namespace", pod_label: str = "pod"
) -> PodSelector:
    """Matchers for every pod a Deployment ran in `namespace` (`deployment_pods_pattern`), for charts
    that must show the pods a rollout or a scale-down replaced, and a Deployment scaled to zero."""
    pods = f'{check_label_name(pod_label)}=~"{escape_label_value(deployment_pods_pattern(deployment))}"'
    return PodSelector(namespace_label, pod_label, (equal_matcher(namespace_label, namespace), pods))


@dataclass(frozen=True)
class NodeSelector:
    """Node-name matchers for DCGM series, one per hostname label spelling."""

    matchers: tuple[str, ...]  # one matcher per label in DCGM_HOSTNAME_LABELS


def node_selector(node_names: Sequence[str]) -> NodeSelector:
    return NodeSelector(tuple(any_of_matcher(label, node_names) for label in DCGM_HOSTNAME_LABELS))


# --------------------------------------------------------------------------- helpers


NOT_MIG = f'{DCGM_MIG_PROFILE_LABEL}=""'  # matches series without the label: whole GPUs
_IS_MIG = f'{DCGM_MIG_PROFILE_LABEL}!=""'


def range_window(seconds: float) -> str:
    """A range selector: whole seconds as `[300s]`, anything finer in milliseconds (`[4500ms]`),
    so a window between two accruals is exactly that window, not rounded to the second."""
    milliseconds = round(float(seconds) * 1000)
    if milliseconds <= 0:
        raise ValueError(f"a range must be positive, got {seconds}")
    return f"[{milliseconds // 1000}s]" if milliseconds % 1000 == 0 else f"[{milliseconds}ms]"


def prefer_new_name(new: str, old: str, on: str) -> str:
    """`new`, plus the series of `old` for the pods (the `on` labels) that `new` lacks."""
    return f"({new}) or (({old}) unless on ({on}) ({new}))"


def _rate_by_pod(metric: str, sel: PodSelector, window_seconds: int) -> str:
    return f"sum by ({sel.by}) (rate({metric}{sel.braces()}{range_window(window_seconds)}))"


def _buckets_by_pod(metric: str, sel: PodSelector, window_seconds: int) -> str:
    return f"sum by (le, {sel.by}) (rate({metric}_bucket{sel.braces()}{range_window(window_seconds)}))"


# --------------------------------------------------------------------------- per pod (instant, batched)
# Each returns one series per (namespace, pod) -- per (le, namespace, pod) for bucket queries --
# for every pod the selector matches, so one query serves every deployment on a page.


def queue_depth_by_pod(sel: PodSelector) -> str:
    return f"sum by ({sel.by}) ({VLLM_WAITING}{sel.braces()})"


def running_by_pod(sel: PodSelector) -> str:
    return f"sum by ({sel.by}) ({VLLM_RUNNING}{sel.braces()})"


def kv_cache_usage_by_pod(sel: PodSelector) -> str:
    """0-1, averaged over a pod's engines; new name preferred, old name for old pods."""
    new = f"avg by ({sel.by}) ({VLLM_KV_CACHE}{sel.braces()})"
    old = f"avg by ({sel.by}) ({VLLM_KV_CACHE_OLD}{sel.braces()})"
    return prefer_new_name(new, old, sel.by)


def ttft_buckets_by_pod(sel: PodSelector, window_seconds: int) -> str:
    return _buckets_by_pod(VLLM_TTFT, sel, window_seconds)


def itl_buckets_by_pod(sel: PodSelector, window_seconds: int) -> str:
    new = _buckets_by_pod(VLLM_ITL, sel, window_seconds)
    old = _buckets_by_pod(VLLM_ITL_OLD, sel, window_seconds)
    return prefer_new_name(new, old, sel.by)


def e2e_buckets_by_pod(sel: PodSelector, window_seconds: int) -> str:
    return _buckets_by_pod(VLLM_E2E, sel, window_seconds)


def prompt_tokens_rate_by_pod(sel: PodSelector, window_seconds: int) -> str:
    return _rate_by_pod(VLLM_PROMPT_TOKENS, sel, window_seconds)


def generation_tokens_rate_by_pod(sel: PodSelector, window_seconds: int) -> str:
    return _rate_by_pod(VLLM_GENERATION_TOKENS, sel, window_seconds)


def preemptions_rate_by_pod(sel: PodSelector, window_seconds: int) -> str:
    return _rate_by_pod(VLLM_PREEMPTIONS, sel, window_seconds)


def finished_requests_rate_by_pod(sel: PodSelector, window_seconds: int) -> str:
    """Finished requests/s per pod and `finished_reason` (see SERVED_FINISH_REASONS)."""
    metric = f"{VLLM_REQUESTS_FINISHED}{sel.braces()}{range_window(window_seconds)}"
    return f"sum by ({sel.by}, {FINISHED_REASON_LABEL}) (rate({metric}))"


def prompt_tokens_total_by_pod(sel: PodSelector) -> str:
    return f"sum by ({sel.by}) ({VLLM_PROMPT_TOKENS}{sel.braces()})"


def generation_tokens_total_by_pod(sel: PodSelector) -> str:
    return f"sum by ({sel.by}) ({VLLM_GENERATION_TOKENS}{sel.braces()})"


def prompt_tokens_increase_by_pod(sel: PodSelector, range_seconds: float) -> str:
    """Tokens counted over the `range_seconds` (millisecond precision) before the query time."""
    return f"sum by ({sel.by}) (increase({VLLM_PROMPT_TOKENS}{sel.braces()}{range_window(range_seconds)}))"


def generation_tokens_increase_by_pod(sel: PodSelector, range_seconds: float) -> str:
    return f"sum by ({sel.by}) (increase({VLLM_GENERATION_TOKENS}{sel.braces()}{range_window(range_seconds)}))"


def gpu_utilization_by_device(gpu_sel: PodSelector) -> str:
    """One 0-1 series per GPU or MIG slice attached to the selected pods (DCGM pod mapping).

    Whole GPUs (no GPU_I_PROFILE label): DCGM_FI_DEV_GPU_UTIL / 100. MIG slices:
    DCGM_FI_PROF_GR_ENGINE_ACTIVE, because GPU_UTIL reads 0 on a slice.
    """
    whole = f"{DCGM_GPU_UTIL}{gpu_sel.braces(NOT_MIG)} / 100"
    mig = f"{DCGM_GR_ENGINE_ACTIVE}{gpu_sel.braces(_IS_MIG)}"
    return f"({whole}) or ({mig})"


# --------------------------------------------------------------------------- per deployment (range)
# One series per query for one deployment's pods, for charts.


def first_tokens_by_pod(sel: PodSelector) -> str:
    """Requests that got their first token, per pod since it started (TTFT histogram count, the
    same name in every vLLM release): the timeline's "first token served" is its first non-zero."""
    return f"sum by ({sel.by}) ({VLLM_TTFT}_count{sel.braces()})"


def queue_depth_for_deployment(sel: PodSelector) -> str:
    return f"sum({VLLM_WAITING}{sel.braces()})"


def running_for_deployment(sel: PodSelector) -> str:
    return f"sum({VLLM_RUNNING}{sel.braces()})"


def kv_cache_usage_for_deployment(sel: PodSelector) -> str:
    """Mean over pods of each pod's 0-1 KV-cache usage."""
    return f"avg({kv_cache_usage_by_pod(sel)})"


def ttft_buckets_for_deployment(sel: PodSelector, window_seconds: int) -> str:
    """The deployment's merged TTFT histogram (bucket rates by `le`); quantiles are taken from it."""
    return f"sum by (le) (rate({VLLM_TTFT}_bucket{sel.braces()}{range_window(window_seconds)}))"


def ttft_quantile_for_deployment(q: float, sel: PodSelector, window_seconds: int) -> str:
    """PromQL's own TTFT quantile of the deployment (for "open in Prometheus" links and checks);
    the backend computes the same number from `ttft_buckets_for_deployment`."""
    if not 0 <= q <= 1:
        raise ValueError(f"a quantile is between 0 and 1, got {q}")
    return f"histogram_quantile({q:g}, {ttft_buckets_for_deployment(sel, window_seconds)})"


def gpu_utilization_for_deployment(gpu_sel: PodSelector) -> str:
    """Mean 0-1 utilization over the deployment's GPUs and MIG slices."""
    return f"avg({gpu_utilization_by_device(gpu_sel)})"


def prompt_tokens_rate_for_deployment(sel: PodSelector, window_seconds: int) -> str:
    return f"sum(rate({VLLM_PROMPT_TOKENS}{sel.braces()}{range_window(window_seconds)}))"


def generation_tokens_rate_for_deployment(sel: PodSelector, window_seconds: int) -> str:
    return f"sum(rate({VLLM_GENERATION_TOKENS}{sel.braces()}{range_window(window_seconds)}))"


def itl_buckets_for_deployment(sel: PodSelector, window_seconds: int) -> str:
    """The merged inter-token-latency histogram (old name for pods that only have it)."""
    return f"sum by (le) ({itl_buckets_by_pod(sel, window_seconds)})"


def e2e_buckets_for_deployment(sel: PodSelector, window_seconds: int) -> str:
    return f"sum by (le) (rate({VLLM_E2E}_bucket{sel.braces()}{range_window(window_seconds)}))"


def finished_requests_rate_for_deployment(sel: PodSelector, window_seconds: int) -> str:
    """Finished requests/s by `finished_reason`; errors and the error rate are taken from it."""
    metric = f"{VLLM_REQUESTS_FINISHED}{sel.braces()}{range_window(window_seconds)}"
    return f"sum by ({FINISHED_REASON_LABEL}) (rate({metric}))"


def preemptions_rate_for_deployment(sel: PodSelector, window_seconds: int) -> str:
    return f"sum(rate({VLLM_PREEMPTIONS}{sel.braces()}{range_window(window_seconds)}))"


def replicas_for_deployment(sel: PodSelector) -> str:
    """How many of the pods report vLLM metrics (pods, not engines)."""
    return f"count(count by ({sel.by}) ({VLLM_WAITING}{sel.braces()}))"


def _kube_state(metric: str, namespace: str, deployment: str) -> str:
    # max: an HA pair of Prometheus (or two kube-state-metrics shards) gives duplicate series.
    parts = [
        f"max({metric}{{{equal_matcher(label, namespace)}, {equal_matcher(KSM_DEPLOYMENT_LABEL, deployment)}}})"
        for label in KSM_NAMESPACE_LABELS
    ]
    return " or ".join(parts)


def desired_replicas_of_deployment(namespace: str, deployment: str) -> str:
    """spec.replicas over time, from kube-state-metrics (no series where it is not installed)."""
    return _kube_state(KSM_SPEC_REPLICAS, namespace, deployment)


def ready_replicas_of_deployment(namespace: str, deployment: str) -> str:
    return _kube_state(KSM_READY_REPLICAS, namespace, deployment)


# --------------------------------------------------------------------------- per GPU (instant, by node)


def _on_nodes(metric: str, nodes: NodeSelector, *extra: str) -> str:
    parts = [f"{metric}{{{', '.join((m, *extra))}}}" for m in nodes.matchers]
    return " or ".join(parts)


def gpu_util_whole_by_node(nodes: NodeSelector) -> str:
    """DCGM_FI_DEV_GPU_UTIL (0-100) of whole GPUs on the nodes (MIG slices excluded)."""
    return _on_nodes(DCGM_GPU_UTIL, nodes, NOT_MIG)


def gr_engine_active_by_node(nodes: NodeSelector) -> str:
    """DCGM_FI_PROF_GR_ENGINE_ACTIVE (0-1) of every GPU and MIG slice on the nodes."""
    return _on_nodes(DCGM_GR_ENGINE_ACTIVE, nodes)


def fb_used_by_node(nodes: NodeSelector) -> str:
    return _on_nodes(DCGM_FB_USED, nodes)


def power_by_node(nodes: NodeSelector) -> str:
    return _on_nodes(DCGM_POWER, nodes)


def temperature_by_node(nodes: NodeSelector) -> str:
    return _on_nodes(DCGM_TEMP, nodes)


# --------------------------------------------------------------------------- deployment history (what-if)


def deployment_history_queries(sel: PodSelector, window_seconds: int) -> dict[str, str]:
    """The range queries a what-if replay's model is built from, one batch: finished requests/s by
    `finished_reason` (every request that arrived ends as one: arrivals), prompt and generation
    tokens/s, requests waiting, TTFT buckets and the pods reporting. `sel` is a
    `deployment_selector`, so replaced pods' history counts."""
    return {
        "finished": finished_requests_rate_for_deployment(sel, window_seconds),
        "prompt_tokens": prompt_tokens_rate_for_deployment(sel, window_seconds),
        "generation_tokens": generation_tokens_rate_for_deployment(sel, window_seconds),
        "queue_depth": queue_depth_for_deployment(sel),
        "ttft": ttft_buckets_for_deployment(sel, window_seconds),
        "replicas": replicas_for_deployment(sel),
    }
