"""Running PromQL against one Prometheus: the client, one deadline for each batch of queries run
side by side, the label selectors of a cluster's settings, and every failure turned into a
one-line BackendError that names the URL without credentials. See the package docstring."""

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
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.exceptions import NameResolutionError, ReadTimeoutError
from urllib3.util.retry import Retry

from fleet.backends.base import BackendError, one_line
from fleet.backends.prometheus import promql
from fleet.backends.prometheus.answers import Sample, parse_matrix, parse_vector

logger = logging.getLogger(__name__)

DEFAULT_RATE_WINDOW_SECONDS = 300
MAX_CONCURRENT_QUERIES = 10  # requests' default connection pool size per host

_HTTP_STATUS = re.compile(r"HTTP Status Code (\d{3})")
_BODY_REPR = re.compile(r"\((b(['\"]).*\2)\)\s*$", re.DOTALL)  # "HTTP Status Code 400 (b'...')"

Key = tuple[str, str]  # (namespace, name) of a deployment, or (namespace, pod) of a pod


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- pure helpers


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


class PrometheusQueries:
    """The query half of `PrometheusMetricsBackend`: settings, the client and how queries run."""

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
                suffix = ": " + one_line(error)
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

    def _instant(self, queries: Mapping[str, str], at: datetime) -> dict[str, list[Sample]]:
        when = at.timestamp()

        def job(query: str) -> Callable[[float], list[Sample]]:
            def run(left: float) -> list[Sample]:
                params = {"time": f"{when:.3f}", "timeout": f"{left:.3f}"}
                return parse_vector(self._client.custom_query(query, params=params, timeout=left))

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
                return parse_matrix(result)

            return run

        return self._run({name: job(query) for name, query in queries.items()})

    def instant_vectors(
        self, queries: Mapping[str, str], at: datetime
    ) -> dict[str, list[tuple[dict[str, str], float | None]]]:
        """Catalogue queries (`promql`, `alert_promql`) answered at `at` as (labels, value) pairs, run
        concurrently under one deadline. Raises BackendError. Used by alert evaluation."""
        return {name: [(s.labels, s.value) for s in samples] for name, samples in self._instant(queries, at).items()}

    def range_vectors(
        self, queries: Mapping[str, str], *, start: datetime, end: datetime, step_seconds: int
    ) -> dict[str, list[tuple[dict[str, str], dict[int, float | None]]]]:
        """Catalogue queries answered at every step in [start, end] (epoch seconds -> value, None
        for NaN), run concurrently under one deadline. Raises BackendError. Used by the timeline."""
        return self._range(queries, int(start.timestamp()), int(end.timestamp()), step_seconds)

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

    def _by_pod(self, samples: Iterable[Sample], *, gpu: bool = False) -> dict[Key, list[Sample]]:
        ns_label = self.gpu_namespace_label if gpu else self.namespace_label
        pod_label = self.gpu_pod_label if gpu else self.pod_label
        grouped: dict[Key, list[Sample]] = defaultdict(list)
        for sample in samples:
            ns, pod = sample.labels.get(ns_label), sample.labels.get(pod_label)
            if ns is not None and pod is not None:
                grouped[(ns, pod)].append(sample)
        return grouped

    # ------------------------------------------------------------------- deployment_metrics
