"""MetricsBackend over Prometheus (or anything speaking its HTTP API: Thanos, Mimir, VictoriaMetrics).

The only module that imports `prometheus_api_client`. Every PromQL string comes from
`fleet.promql`; this module runs the queries and turns the answers into the plain dataclasses of
`fleet.backends.base`.

Design decisions worth knowing:

* Batching. `deployment_metrics` issues a fixed number of instant queries (one per metric) for
  any number of deployments: each query covers every pod of every deployment, grouped by
  (namespace, pod) -- by (le, namespace, pod) for histograms -- and the per-deployment values
  are summed/averaged here. TTFT/ITL/E2E quantiles merge the pods' bucket rates per deployment
  and interpolate exactly like PromQL's `histogram_quantile` (`histogram_quantile` below).
* Rate window. Rates and histogram quantiles use a 5-minute window (`rate_window_seconds`),
  the window of the dashboards people already use. There is no fallback to a shorter window: a
  window with no samples in the last 5 minutes has none in the last minute either. A pod younger
  than the window is under-reported by `rate()` until the window fills (standard Prometheus
  behaviour); quantiles, being ratios, are not affected.
* One deadline. The queries of a call run concurrently on a small thread pool and share one
  deadline of `timeout_seconds` (Prometheus is also asked to give up then, `timeout=`): a dead
  or slow Prometheus costs one timeout per call, not one per query. No retries.
* Failure. `deployment_metrics` never raises: if any of its queries fails, every deployment gets
  None values and the same one-line reason (the snapshot is all-or-nothing, so a tile never
  mixes fresh and missing numbers silently), and `last_error` keeps the BackendError so the
  caller can tell a source that is down from pods without series. The other methods raise
  `BackendError`. Messages name the Prometheus URL without credentials and never include
  tokens. Bad cluster settings (URL, label names, timeout) do not raise in the constructor:
  every call reports them.
* Pods. Current values match exactly the (namespace, pod) pairs of a `DeploymentRef`'s live
  pods. Charts match every pod the Deployment ran over the range, by the names its
  ReplicaSets give pods (`promql.deployment_selector`): after a rollout or a scale-down, or
  at zero replicas, the history of the pods gone stays on the chart. Both with the label
  names configured for the cluster.
* Request errors: `vllm:request_success_total` counts every finished request by
  `finished_reason`; "stop" and "length" were served, anything else ("abort", "error") is an
  error (`request_outcomes`).
"""

from __future__ import annotations

import ast
import json
import logging
import math
import re
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.exceptions import NameResolutionError, ReadTimeoutError
from urllib3.util.retry import Retry

from fleet import promql
from fleet.backends.base import (
    BackendError,
    DeploymentMetrics,
    DeploymentRef,
    GpuUtilization,
    Series,
)

logger = logging.getLogger(__name__)

DEFAULT_RATE_WINDOW_SECONDS = 300
MAX_CONCURRENT_QUERIES = 10  # requests' default connection pool size per host
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

_NICE_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_HTTP_STATUS = re.compile(r"HTTP Status Code (\d{3})")
_BODY_REPR = re.compile(r"\((b(['\"]).*\2)\)\s*$", re.DOTALL)  # "HTTP Status Code 400 (b'...')"

Key = tuple[str, str]  # (namespace, name) of a deployment, or (namespace, pod) of a pod


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- pure helpers


def step_for_range(seconds: float, max_points: int = 240) -> int:
    """A chart step for a range: at most `max_points` points, at least 15 s, a "nice" value.

    Nice values are 15 s, 30 s, 1/2/5/10/15/30 min, 1/2/3/6/12 h, then whole days.
    """
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    if not math.isfinite(seconds) or seconds <= 0:
        return _NICE_STEPS[0]
    raw = seconds / max_points
    for step in _NICE_STEPS:
        if step >= raw:
            return step
    day = _NICE_STEPS[-1]
    return int(math.ceil(raw / day)) * day


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """PromQL's `histogram_quantile` over {upper bound: cumulative count (or rate)}.

    Same algorithm as Prometheus (classic histograms): buckets sorted by upper bound, counts
    forced monotonic, linear interpolation inside the bucket holding the rank, the lower bound
    of the first bucket taken as 0, and a rank in the +Inf bucket answered with the highest
    finite bound. None where PromQL gives NaN (no +Inf bucket, fewer than two buckets, or no
    observations in the window).
    """
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    items = sorted((le, c) for le, c in buckets.items() if not math.isnan(c))
    if len(items) < 2 or items[-1][0] != math.inf:
        return None
    bounds = [le for le, _ in items]
    counts: list[float] = []
    for _, c in items:  # ensure monotonic, as Prometheus does
        counts.append(max(c, counts[-1]) if counts else c)
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    if count <= 0:
        return start
    return start + (end - start) * (rank / count)


def request_outcomes(rates_by_reason: Iterable[tuple[str, float]]) -> tuple[float, float]:
    """(finished requests/s, errors/s) from rates by vLLM `finished_reason`.

    A request that stopped or hit its length limit was served; "abort" (client gone, engine
    aborted it), "error" and any reason a later vLLM adds count as errors.
    """
    total = errors = 0.0
    for reason, rate in rates_by_reason:
        total += rate
        if reason not in promql.SERVED_FINISH_REASONS:
            errors += rate
    return total, errors


def error_rate(total: float, errors: float) -> float | None:
    """Errors as a 0-1 share of finished requests; None (unknown) when nothing finished."""
    return errors / total if total > 0 else None


def _redact_url(url: str) -> str:
    """scheme://host[:port][/path] -- no user info, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _format_seconds(value: float) -> str:
    return f"{value:.1f}" if abs(value * 10 - round(value * 10)) < 1e-9 else f"{value:g}"


def _number(raw: Any) -> float | None:
    """A Prometheus sample value ("1.5", "NaN", "+Inf") as a finite float, else None."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps: requests and urllib3 nest the socket error a few levels down."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend(
            c
            for c in (getattr(current, "reason", None), current.__cause__, current.__context__)
            if isinstance(c, BaseException)
        )
    return seen


def _prometheus_error(exception_text: str) -> str | None:
    """The `error` of the JSON body the client library quotes in its exception, if any."""
    match = _BODY_REPR.search(exception_text)
    if not match:
        return None
    try:
        body = json.loads(ast.literal_eval(match.group(1)))
    except (ValueError, SyntaxError, TypeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


# --------------------------------------------------------------------------- parsed answers


@dataclass(frozen=True)
class _Sample:
    labels: dict[str, str]
    value: float | None


def _parse_vector(result: Any) -> list[_Sample]:
    if not isinstance(result, list):
        raise ValueError("instant query answer is not a vector")
    samples = []
    for item in result:
        metric, value = item["metric"], item["value"]
        if not isinstance(metric, dict) or not isinstance(value, list) or len(value) != 2:
            raise ValueError("malformed sample")
        samples.append(_Sample(metric, _number(value[1])))
    return samples


def _parse_matrix(result: Any) -> list[tuple[dict[str, str], dict[int, float | None]]]:
    if not isinstance(result, list):
        raise ValueError("range query answer is not a matrix")
    series = []
    for item in result:
        metric, values = item["metric"], item["values"]
        if not isinstance(metric, dict) or not isinstance(values, list):
            raise ValueError("malformed series")
        series.append((metric, {round(float(ts)): _number(v) for ts, v in values}))
    return series


def _le(labels: Mapping[str, str]) -> float | None:
    try:
        return float(labels["le"])
    except (KeyError, ValueError):
        return None


# --------------------------------------------------------------------------- the backend


class PrometheusMetricsBackend:
    """MetricsBackend over the Prometheus HTTP API. See the module docstring."""

    def __init__(
        self,
        *,
        url: str,
        bearer_token: str = "",
        basic_auth: tuple[str, str] | None = None,
        timeout_seconds: float = 3.0,
        namespace_label: str = "namespace",
        pod_label: str = "pod",
        clock: Callable[[], datetime] = _utcnow,
        disable_ssl: bool = False,
        gpu_namespace_label: str = "namespace",
        gpu_pod_label: str = "pod",
        rate_window_seconds: int = DEFAULT_RATE_WINDOW_SECONDS,
    ):
        # Cluster settings come from an admin form: a bad one must not break a page, so it is
        # recorded and reported by every call (as the reason / a BackendError), not raised here.
        problems: list[str] = []
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append("the Prometheus URL must be http:// or https:// with a host")
        if bearer_token and basic_auth:
            problems.append("configure a bearer token or basic auth for Prometheus, not both")
        try:
            timeout = float(timeout_seconds)
        except (TypeError, ValueError):
            timeout = math.nan
        if not (timeout > 0 and math.isfinite(timeout)):
            problems.append("the Prometheus timeout must be a positive number of seconds")
            timeout = 3.0
        for label in (namespace_label, pod_label, gpu_namespace_label, gpu_pod_label):
            try:
                promql.check_label_name(label)
            except ValueError as exc:
                problems.append(str(exc))
        if int(rate_window_seconds) < 1:
            raise ValueError("rate_window_seconds must be at least 1")

        self.url = (url or "").rstrip("/")
        self.display_url = _redact_url(self.url) if parts.hostname else "(no valid URL)"
        self.config_error: str | None = "; ".join(problems) or None
        self.timeout_seconds = timeout
        self.namespace_label = namespace_label
        self.pod_label = pod_label
        self.gpu_namespace_label = gpu_namespace_label
        self.gpu_pod_label = gpu_pod_label
        self.rate_window_seconds = int(rate_window_seconds)
        self._clock = clock
        # The failure behind the last `deployment_metrics` answer (which never raises), so a
        # caller can tell "Prometheus is down" from "these pods have no series".
        self.last_error: BackendError | None = None
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else None
        self._client = PrometheusConnect(
            url=self.url or "http://invalid",
            headers=headers,
            auth=tuple(basic_auth) if basic_auth else None,
            disable_ssl=disable_ssl,
            # No retries: one deadline per call is the contract, and a retry of a timed-out
            # query only doubles the wait. (The library's default retries 503s with backoff.)
            retry=Retry(total=0, read=False),
            timeout=self.timeout_seconds,
        )

    def __repr__(self) -> str:  # never show credentials
        return f"PrometheusMetricsBackend(url={self.display_url!r})"

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------- running queries

    def _error(self, exc: BaseException) -> BackendError:
        """A one-line, credential-free BackendError for whatever a query raised."""
        where = f"Prometheus at {self.display_url}"
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, TimeoutError | requests.exceptions.Timeout):
            return BackendError(
                f"{where} did not answer within {_format_seconds(self.timeout_seconds)} s", transient=True
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return BackendError(f"{where} failed the TLS handshake (certificate not trusted?)")
        if isinstance(exc, requests.exceptions.ConnectionError):
            causes = _causes(exc)
            if any(isinstance(c, ReadTimeoutError | TimeoutError) for c in causes):  # while reading the body
                return BackendError(
                    f"{where} did not answer within {_format_seconds(self.timeout_seconds)} s", transient=True
                )
            if any(isinstance(c, ConnectionRefusedError) or "Connection refused" in str(c) for c in causes):
                return BackendError(f"{where} refused the connection", transient=True)
            if any(isinstance(c, NameResolutionError | socket.gaierror) for c in causes):
                return BackendError(f"{where} could not be found (host name does not resolve)", transient=True)
            return BackendError(f"{where} could not be reached", transient=True)
        if isinstance(exc, PrometheusApiClientException):
            text = str(exc)
            match = _HTTP_STATUS.search(text)
            status = int(match.group(1)) if match else None
            if status in (401, 403):
                return BackendError(
                    f"{where} answered HTTP {status} (check the bearer token or basic auth)", status=status
                )
            if status is None:
                return BackendError(f"{where} answered an error", transient=True)
            suffix = ""
            if 400 <= status < 500 and (error := _prometheus_error(text)):
                suffix = ": " + _one_line(error)
            return BackendError(
                f"{where} answered HTTP {status}{suffix}", transient=status >= 500 or status == 429, status=status
            )
        if isinstance(exc, ValueError | KeyError | TypeError | IndexError):
            # requests' JSONDecodeError is a ValueError; a missing "data" key a KeyError.
            return BackendError(f"{where} answered with something that is not a Prometheus API response")
        return BackendError(f"{where} query failed ({type(exc).__name__})", transient=True)

    def _check_config(self) -> None:
        if self.config_error:
            raise BackendError(f"Prometheus is misconfigured: {self.config_error}")

    def _run(self, jobs: Mapping[str, Callable[[float], Any]]) -> dict[str, Any]:
        """Run `jobs` (name -> fn(seconds_left)) concurrently under one deadline.

        Returns name -> result, or raises the BackendError of the first failure. A job that is
        still running at the deadline is abandoned (its socket timeout ends it shortly after).
        """
        self._check_config()
        if not jobs:
            return {}
        deadline = time.monotonic() + self.timeout_seconds

        def call(fn: Callable[[float], Any]) -> Any:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            return fn(left)

        pool = ThreadPoolExecutor(max_workers=min(len(jobs), MAX_CONCURRENT_QUERIES), thread_name_prefix="promql")
        try:
            futures = {pool.submit(call, fn): name for name, fn in jobs.items()}
            done, not_done = wait(futures, timeout=self.timeout_seconds + 0.2, return_when=FIRST_EXCEPTION)
            for future in done:
                exc = future.exception()
                if exc is not None:
                    error = self._error(exc)
                    logger.warning("prometheus query %s failed: %s", futures[future], error)
                    raise error
            if not_done:
                raise self._error(TimeoutError())
            return {futures[future]: future.result() for future in done}
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _instant(self, queries: Mapping[str, str], at: datetime) -> dict[str, list[_Sample]]:
        when = at.timestamp()

        def job(query: str) -> Callable[[float], list[_Sample]]:
            def run(left: float) -> list[_Sample]:
                params = {"time": f"{when:.3f}", "timeout": f"{left:.3f}"}
                return _parse_vector(self._client.custom_query(query, params=params, timeout=left))

            return run

        return self._run({name: job(query) for name, query in queries.items()})

    def _range(
        self, queries: Mapping[str, str], start: int, end: int, step: int
    ) -> dict[str, list[tuple[dict[str, str], dict[int, float | None]]]]:
        start_dt = datetime.fromtimestamp(start, UTC)
        end_dt = datetime.fromtimestamp(end, UTC)

        def job(query: str) -> Callable[[float], Any]:
            def run(left: float) -> Any:
                result = self._client.custom_query_range(
                    query, start_dt, end_dt, str(step), params={"timeout": f"{left:.3f}"}, timeout=left
                )
                return _parse_matrix(result)

            return run

        return self._run({name: job(query) for name, query in queries.items()})

    def instant_vectors(
        self, queries: Mapping[str, str], at: datetime
    ) -> dict[str, list[tuple[dict[str, str], float | None]]]:
        """Catalogue queries (fleet/promql.py) answered at `at` as (labels, value) pairs, run
        concurrently under one deadline. Raises BackendError. Used by alert evaluation."""
        return {name: [(s.labels, s.value) for s in samples] for name, samples in self._instant(queries, at).items()}

    # ------------------------------------------------------------------- selectors

    def _pod_selector(self, pairs: Iterable[Key], *, exact: bool = False) -> promql.PodSelector:
        """`exact` for queries aggregated in PromQL (no Python-side filtering of pods)."""
        return promql.pod_selector(
            pairs,
            namespace_label=self.namespace_label,
            pod_label=self.pod_label,
            max_pod_regex_chars=sys.maxsize if exact else promql.MAX_POD_REGEX_CHARS,
        )

    def _gpu_selector(self, pairs: Iterable[Key], *, exact: bool = False) -> promql.PodSelector:
        return promql.pod_selector(
            pairs,
            namespace_label=self.gpu_namespace_label,
            pod_label=self.gpu_pod_label,
            max_pod_regex_chars=sys.maxsize if exact else promql.MAX_POD_REGEX_CHARS,
        )

    def _by_pod(self, samples: Iterable[_Sample], *, gpu: bool = False) -> dict[Key, list[_Sample]]:
        ns_label = self.gpu_namespace_label if gpu else self.namespace_label
        pod_label = self.gpu_pod_label if gpu else self.pod_label
        grouped: dict[Key, list[_Sample]] = defaultdict(list)
        for sample in samples:
            ns, pod = sample.labels.get(ns_label), sample.labels.get(pod_label)
            if ns is not None and pod is not None:
                grouped[(ns, pod)].append(sample)
        return grouped

    # ------------------------------------------------------------------- deployment_metrics

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
                        le = _le(s.labels)
                        if le is not None and s.value is not None:
                            buckets[le] += s.value
                return buckets

            seen = any(present(name) for name in queries if name != "gpu")
            gpu = _mean(values("gpu"))
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
                kv_cache_usage=_mean(values("kv_cache_usage")),
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
                le = _le(labels)
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

        def total(grouped: dict[Key, list[_Sample]], ref: DeploymentRef) -> float | None:
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
        for name, key in (("prompt_tokens", "prompt_tokens_per_second"),
                          ("generation_tokens", "generation_tokens_per_second"),
                          ("queue_depth", "queue_depth"), ("replicas", "replicas")):
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
            le = _le(labels)
            for t, v in points.items():
                if le is not None and v is not None:
                    buckets[t][le] = buckets[t].get(le, 0.0) + v
        for t, b in buckets.items():
            out[t]["ttft_p95_seconds"] = histogram_quantile(0.95, b)
        return {t: out[t] for t in sorted(out)}
