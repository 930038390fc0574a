"""`PrometheusMetricsBackend`: a deployment's current values in a fixed number of queries, its chart
series over every pod it ran, per-GPU readings, token counts for costing, and a what-if's history.
See the package docstring for the design decisions."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from fleet.backends.base import (
    BackendError,
    DeploymentMetrics,
    DeploymentRef,
    GpuUtilization,
    Series,
)
from fleet.backends.prometheus import promql
from fleet.backends.prometheus.alert_signals import read_alert_signals
from fleet.backends.prometheus.answers import Sample, error_rate, mean, request_outcomes
from fleet.backends.prometheus.histograms import bucket_bound, histogram_quantile
from fleet.backends.prometheus.queries import Key, PrometheusQueries
from fleet.backends.signals import AlertSignals

logger = logging.getLogger(__name__)

NO_SERIES_REASON = "no vLLM series for these pods"
NO_PODS_REASON = "no pods to read metrics from"

SERIES_UNITS: dict[str, str] = {
    "ttft_p50": "s",
    "ttft_p95": "s",
    "ttft_p99": "s",
    "itl_p50": "s",
    "itl_p95": "s",
    "e2e_p50": "s",
    "e2e_p95": "s",
    "queue_depth": "requests",
    "running": "requests",
    "kv_cache_usage": "fraction",
    "gpu_utilization": "fraction",
    "generation_tokens_per_second": "tokens/s",
    "prompt_tokens_per_second": "tokens/s",
    "requests_per_second": "requests/s",
    "errors_per_second": "requests/s",
    "error_rate": "fraction",
    "preemptions_per_second": "preemptions/s",
    "replicas": "replicas",  # pods reporting vLLM metrics
    "replicas_desired": "replicas",  # kube-state-metrics, when installed
    "replicas_ready": "replicas",
}
# Histogram series of the charts: (query name, series prefix, quantiles).
_CHART_QUANTILES = (
    ("ttft", "ttft", (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))),
    ("itl", "itl", (("p50", 0.50), ("p95", 0.95))),
    ("e2e", "e2e", (("p50", 0.50), ("p95", 0.95))),
)


class PrometheusMetricsBackend(PrometheusQueries):
    """MetricsBackend over the Prometheus HTTP API. See the package docstring."""

    def deployment_metrics(self, refs: Sequence[DeploymentRef]) -> dict[Key, DeploymentMetrics]:
        """Current metrics for every ref in a fixed number of queries. Never raises."""
        refs = list(refs)
        self.last_error = None
        try:
            return self._deployment_metrics(refs)
        except Exception:  # a bug here must degrade the tiles, not the page
            logger.exception("reading deployment metrics from %s failed", self.display_url)
            reason = "metrics could not be read (see the server log)"
            return {(r.namespace, r.name): DeploymentMetrics(unavailable_reason=reason) for r in refs}

    def _deployment_metrics(self, refs: list[DeploymentRef]) -> dict[Key, DeploymentMetrics]:
        try:
            self._check_config()
        except BackendError as exc:
            return {(r.namespace, r.name): DeploymentMetrics(unavailable_reason=str(exc)) for r in refs}
        out: dict[Key, DeploymentMetrics] = {}
        with_pods = []
        for ref in refs:
            if ref.pods:
                with_pods.append(ref)
            else:
                out[(ref.namespace, ref.name)] = DeploymentMetrics(unavailable_reason=NO_PODS_REASON)
        if not with_pods:
            return out

        pairs = {(ref.namespace, pod) for ref in with_pods for pod in ref.pods}
        sel, gsel, w = self._pod_selector(pairs), self._gpu_selector(pairs), self.rate_window_seconds
        queries = {
            "queue_depth": promql.queue_depth_by_pod(sel),
            "running": promql.running_by_pod(sel),
            "kv_cache_usage": promql.kv_cache_usage_by_pod(sel),
            "ttft": promql.ttft_buckets_by_pod(sel, w),
            "itl": promql.itl_buckets_by_pod(sel, w),
            "e2e": promql.e2e_buckets_by_pod(sel, w),
            "prompt_tps": promql.prompt_tokens_rate_by_pod(sel, w),
            "generation_tps": promql.generation_tokens_rate_by_pod(sel, w),
            "preemptions": promql.preemptions_rate_by_pod(sel, w),
            "finished": promql.finished_requests_rate_by_pod(sel, w),
            "gpu": promql.gpu_utilization_by_device(gsel),
        }
        as_of = self._clock()
        try:
            answers = self._instant(queries, at=as_of)
        except BackendError as exc:
            self.last_error = exc
            reason = str(exc)
            for ref in with_pods:
                out[(ref.namespace, ref.name)] = DeploymentMetrics(unavailable_reason=reason)
            return out

        by_pod = {name: self._by_pod(samples, gpu=name == "gpu") for name, samples in answers.items()}

        for ref in with_pods:
            pods = [(ref.namespace, pod) for pod in dict.fromkeys(ref.pods)]

            def values(name: str, pods: list[Key] = pods) -> list[float]:
                return [s.value for p in pods for s in by_pod[name].get(p, ()) if s.value is not None]

            def present(name: str, pods: list[Key] = pods) -> bool:
                return any(p in by_pod[name] for p in pods)

            def total(name: str) -> float | None:
                return math.fsum(values(name)) if present(name) else None

            def merged(name: str, pods: list[Key] = pods) -> dict[float, float]:
                buckets: dict[float, float] = defaultdict(float)
                for p in pods:
                    for s in by_pod[name].get(p, ()):
                        le = bucket_bound(s.labels)
                        if le is not None and s.value is not None:
                            buckets[le] += s.value
                return buckets

            seen = any(present(name) for name in queries if name != "gpu")
            gpu = mean(values("gpu"))
            if not seen:
                out[(ref.namespace, ref.name)] = DeploymentMetrics(
                    gpu_utilization=gpu, as_of=as_of, unavailable_reason=NO_SERIES_REASON
                )
                continue
            ttft = merged("ttft")
            requests, errors = request_outcomes(
                (s.labels.get(promql.FINISHED_REASON_LABEL, ""), s.value)
                for p in pods
                for s in by_pod["finished"].get(p, ())
                if s.value is not None
            )
            finished = present("finished")
            out[(ref.namespace, ref.name)] = DeploymentMetrics(
                queue_depth=total("queue_depth"),
                running=total("running"),
                ttft_p50_seconds=histogram_quantile(0.50, ttft),
                ttft_p95_seconds=histogram_quantile(0.95, ttft),
                ttft_p99_seconds=histogram_quantile(0.99, ttft),
                itl_p95_seconds=histogram_quantile(0.95, merged("itl")),
                e2e_p95_seconds=histogram_quantile(0.95, merged("e2e")),
                e2e_p99_seconds=histogram_quantile(0.99, merged("e2e")),
                kv_cache_usage=mean(values("kv_cache_usage")),
                gpu_utilization=gpu,
                prompt_tokens_per_second=total("prompt_tps"),
                generation_tokens_per_second=total("generation_tps"),
                preemptions_per_second=total("preemptions"),
                requests_per_second=requests if finished else None,
                error_rate=error_rate(requests, errors) if finished else None,
                as_of=as_of,
            )
        return out

    # ------------------------------------------------------------------- deployment_series

    def deployment_series(
        self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int
    ) -> dict[str, Series]:
        """Chart series of every pod the Deployment ran in the range, not only its live pods.

        Pods are selected by the names its ReplicaSets give them (`promql.deployment_selector`),
        so a chart still shows the pods a rollout or a scale-down replaced, and a Deployment
        scaled to zero still has its history; `ref.pods` is not used. Desired and ready replicas
        come from kube-state-metrics; where it is not installed they are all gaps and the caller
        fills them from ScaleDeck's own samples. One range query per chart quantity.
        """
        self._check_config()
        step = max(1, int(step_seconds))
        start_s, end_s = round(start.timestamp()), round(end.timestamp())
        if end_s < start_s:
            raise ValueError("end is before start")
        grid = list(range(start_s, end_s + 1, step))
        timestamps = tuple(datetime.fromtimestamp(t, UTC) for t in grid)

        def series(name: str, points: Mapping[int, float | None]) -> Series:
            return Series(name, SERIES_UNITS[name], timestamps, tuple(points.get(t) for t in grid))

        sel = promql.deployment_selector(
            ref.namespace, ref.name, namespace_label=self.namespace_label, pod_label=self.pod_label
        )
        gsel = promql.deployment_selector(
            ref.namespace, ref.name, namespace_label=self.gpu_namespace_label, pod_label=self.gpu_pod_label
        )
        w = self.rate_window_seconds
        single = {  # aggregations without `by`: at most one series each
            "queue_depth": promql.queue_depth_for_deployment(sel),
            "running": promql.running_for_deployment(sel),
            "kv_cache_usage": promql.kv_cache_usage_for_deployment(sel),
            "gpu_utilization": promql.gpu_utilization_for_deployment(gsel),
            "generation_tokens_per_second": promql.generation_tokens_rate_for_deployment(sel, w),
            "prompt_tokens_per_second": promql.prompt_tokens_rate_for_deployment(sel, w),
            "preemptions_per_second": promql.preemptions_rate_for_deployment(sel, w),
            "replicas": promql.replicas_for_deployment(sel),
            "replicas_desired": promql.desired_replicas_of_deployment(ref.namespace, ref.name),
            "replicas_ready": promql.ready_replicas_of_deployment(ref.namespace, ref.name),
        }
        answers = self._range(
            {
                **single,
                "ttft": promql.ttft_buckets_for_deployment(sel, w),
                "itl": promql.itl_buckets_for_deployment(sel, w),
                "e2e": promql.e2e_buckets_for_deployment(sel, w),
                "finished": promql.finished_requests_rate_for_deployment(sel, w),
            },
            start_s,
            end_s,
            step,
        )

        out: dict[str, Series] = {name: series(name, answers[name][0][1] if answers[name] else {}) for name in single}
        for query, prefix, quantiles in _CHART_QUANTILES:
            per_time: dict[int, dict[float, float]] = defaultdict(dict)
            for labels, points in answers[query]:
                le = bucket_bound(labels)
                if le is None:
                    continue
                for t, v in points.items():
                    if v is not None:
                        per_time[t][le] = per_time[t].get(le, 0.0) + v
            for suffix, q in quantiles:
                name = f"{prefix}_{suffix}"
                out[name] = series(name, {t: histogram_quantile(q, b) for t, b in per_time.items()})

        finished: dict[int, list[tuple[str, float]]] = defaultdict(list)
        for labels, points in answers["finished"]:
            reason = labels.get(promql.FINISHED_REASON_LABEL, "")
            for t, v in points.items():
                if v is not None:
                    finished[t].append((reason, v))
        outcomes = {t: request_outcomes(rates) for t, rates in finished.items()}
        out["requests_per_second"] = series("requests_per_second", {t: o[0] for t, o in outcomes.items()})
        out["errors_per_second"] = series("errors_per_second", {t: o[1] for t, o in outcomes.items()})
        out["error_rate"] = series("error_rate", {t: error_rate(*o) for t, o in outcomes.items()})
        return {name: out[name] for name in SERIES_UNITS}

    # ------------------------------------------------------------------- gpu_utilization

    def gpu_utilization(self, node_names: Sequence[str]) -> list[GpuUtilization]:
        self._check_config()
        nodes = sorted({n for n in node_names if n})
        if not nodes:
            return []
        sel = promql.node_selector(nodes)
        answers = self._instant(
            {
                "util": promql.gpu_util_whole_by_node(sel),
                "gr": promql.gr_engine_active_by_node(sel),
                "fb": promql.fb_used_by_node(sel),
                "power": promql.power_by_node(sel),
                "temp": promql.temperature_by_node(sel),
            },
            at=self._clock(),
        )
        wanted = set(nodes)
        DeviceKey = tuple[str, int, str | None, int | None]

        def device(labels: Mapping[str, str]) -> DeviceKey | None:
            node = next((labels[n] for n in promql.DCGM_HOSTNAME_LABELS if labels.get(n)), None)
            try:
                gpu = int(labels.get(promql.DCGM_GPU_LABEL, ""))
            except ValueError:
                return None
            if node not in wanted:
                return None
            profile = labels.get(promql.DCGM_MIG_PROFILE_LABEL) or None
            instance: int | None = None
            if profile is not None:
                try:
                    instance = int(labels.get(promql.DCGM_MIG_ID_LABEL, ""))
                except ValueError:
                    instance = None
            return (node, gpu, profile, instance)

        maps: dict[str, dict[DeviceKey, float | None]] = {}
        holders: dict[DeviceKey, tuple[str, str]] = {}  # (namespace, pod) on the DCGM series, when mapped
        for name, samples in answers.items():
            found: dict[DeviceKey, float | None] = {}
            for s in samples:
                key = device(s.labels)
                if key is not None and found.get(key) is None:
                    found[key] = s.value
                ns, pod = s.labels.get(self.gpu_namespace_label), s.labels.get(self.gpu_pod_label)
                if key is not None and ns and pod:
                    holders.setdefault(key, (ns, pod))
            maps[name] = found

        keys = {k for found in maps.values() for k in found}
        mig_parents = {(k[0], k[1]) for k in keys if k[2] is not None}
        keys = {k for k in keys if k[2] is not None or (k[0], k[1]) not in mig_parents}

        def field(name: str, key: DeviceKey) -> float | None:
            value = maps[name].get(key)
            if value is None and key[2] is not None:  # slice without its own reading: the GPU's
                value = maps[name].get((key[0], key[1], None, None))
            return value

        result = []
        for key in sorted(keys, key=lambda k: (k[0], k[1], k[3] if k[3] is not None else -1, k[2] or "")):
            node, gpu, profile, instance = key
            if profile is None:
                util = maps["util"].get(key)
                utilization = util / 100.0 if util is not None else maps["gr"].get(key)
            else:
                utilization = maps["gr"].get(key)  # GPU_UTIL reads 0 on a MIG slice
            result.append(
                GpuUtilization(
                    node_name=node,
                    gpu_index=gpu,
                    mig_profile=profile,
                    mig_instance_id=instance,
                    utilization=utilization,
                    memory_used_mib=maps["fb"].get(key),
                    power_watts=field("power", key),
                    temperature_c=field("temp", key),
                    namespace=holders.get(key, (None, None))[0],
                    pod=holders.get(key, (None, None))[1],
                )
            )
        return result

    # ------------------------------------------------------------------- tokens (for costing)

    def _tokens(self, refs: Sequence[DeploymentRef], prompt_q: Callable, gen_q: Callable, at: datetime):
        self._check_config()
        refs = list(refs)
        out: dict[Key, tuple[float | None, float | None]] = {(ref.namespace, ref.name): (None, None) for ref in refs}
        pairs = {(ref.namespace, pod) for ref in refs for pod in ref.pods}
        if not pairs:
            return out
        sel = self._pod_selector(pairs)
        answers = self._instant({"prompt": prompt_q(sel), "generation": gen_q(sel)}, at=at)
        prompt, generation = self._by_pod(answers["prompt"]), self._by_pod(answers["generation"])

        def total(grouped: dict[Key, list[Sample]], ref: DeploymentRef) -> float | None:
            pods = [(ref.namespace, pod) for pod in dict.fromkeys(ref.pods)]
            if not any(p in grouped for p in pods):
                return None
            return math.fsum(s.value for p in pods for s in grouped.get(p, ()) if s.value is not None)

        for ref in refs:
            out[(ref.namespace, ref.name)] = (total(prompt, ref), total(generation, ref))
        return out

    def token_counters(self, refs: Sequence[DeploymentRef]) -> dict[Key, tuple[float | None, float | None]]:
        """(prompt tokens, generation tokens) counter totals now, summed over each deployment's pods.

        Every ref gets an entry; None where none of its pods report. Counters restart with their
        pod, so totals are only meaningful as differences within one pod's life: for tokens over
        a window use `token_increase`. Raises BackendError when Prometheus is unavailable.
        """
        return self._tokens(
            refs, promql.prompt_tokens_total_by_pod, promql.generation_tokens_total_by_pod, self._clock()
        )

    def token_increase(
        self, refs: Sequence[DeploymentRef], start: datetime, end: datetime
    ) -> dict[Key, tuple[float | None, float | None]]:
        """(prompt tokens, generation tokens) counted in [start, end], per deployment.

        `increase(...[end - start])` evaluated at `end`, both to the millisecond, so consecutive
        windows neither overlap nor leave gaps (counter resets handled, values extrapolated to
        the window edges the way Prometheus does). Every ref gets an entry; None where none of
        its pods report. Raises BackendError when unavailable.
        """
        range_seconds = (end - start).total_seconds()
        if range_seconds < 1:
            raise ValueError("the window must be at least one second long")
        return self._tokens(
            refs,
            lambda sel: promql.prompt_tokens_increase_by_pod(sel, range_seconds),
            lambda sel: promql.generation_tokens_increase_by_pod(sel, range_seconds),
            end,
        )

    # ------------------------------------------------------------------- alert evaluation

    def alert_signals(self, objectives: Mapping[Key, float], at: datetime) -> AlertSignals:
        """One batch of instant queries (prometheus/alert_signals.py). Raises BackendError."""
        return read_alert_signals(self, objectives, at)

    # ------------------------------------------------------------------- deployment_history

    def deployment_history(
        self, ref: DeploymentRef, *, start: datetime, end: datetime, step_seconds: int = 60
    ) -> dict[int, dict[str, float | None]]:
        """Per step (epoch seconds): `arrivals_per_second`, `requests_per_second` (served),
        `prompt_tokens_per_second`, `generation_tokens_per_second`, `queue_depth`,
        `ttft_p95_seconds` and `replicas`, for every pod the Deployment ran (a what-if's inputs).

        Rates use a window of two steps: at 1-minute steps a point is its minute and the one
        before, close to the minute's own figure yet still two samples wide when Prometheus
        scrapes only once a minute. Six range queries, run concurrently; only steps where some
        pod reported are returned. Raises BackendError.
        """
        self._check_config()
        step = max(1, int(step_seconds))
        start_s, end_s = round(start.timestamp()), round(end.timestamp())
        if end_s < start_s:
            raise ValueError("end is before start")
        sel = promql.deployment_selector(
            ref.namespace, ref.name, namespace_label=self.namespace_label, pod_label=self.pod_label
        )
        window = 2 * step
        answers = self._range(promql.deployment_history_queries(sel, window), start_s, end_s, step)
        out: dict[int, dict[str, float | None]] = defaultdict(dict)
        for name, key in (
            ("prompt_tokens", "prompt_tokens_per_second"),
            ("generation_tokens", "generation_tokens_per_second"),
            ("queue_depth", "queue_depth"),
            ("replicas", "replicas"),
        ):
            for _labels, points in answers[name][:1]:
                for t, v in points.items():
                    out[t][key] = v
        finished: dict[int, list[tuple[str, float]]] = defaultdict(list)
        for labels, points in answers["finished"]:
            for t, v in points.items():
                if v is not None:
                    finished[t].append((labels.get(promql.FINISHED_REASON_LABEL, ""), v))
        for t, rates in finished.items():
            total, errors = request_outcomes(rates)
            out[t]["arrivals_per_second"] = total
            out[t]["requests_per_second"] = total - errors
        buckets: dict[int, dict[float, float]] = defaultdict(dict)
        for labels, points in answers["ttft"]:
            le = bucket_bound(labels)
            for t, v in points.items():
                if le is not None and v is not None:
                    buckets[t][le] = buckets[t].get(le, 0.0) + v
        for t, b in buckets.items():
            out[t]["ttft_p95_seconds"] = histogram_quantile(0.95, b)
        return {t: out[t] for t in sorted(out)}
