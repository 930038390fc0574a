"""The Prometheus metrics backend (or anything speaking its HTTP API: Thanos, Mimir, VictoriaMetrics).

The only package that imports `prometheus_api_client`. Every PromQL string comes from the
catalogue (`promql`, and `alert_promql` for alert evaluation); the backend runs the queries and
turns the answers into the plain dataclasses of `fleet.backends.base`.

Modules:
  backend        `PrometheusMetricsBackend`: tiles, charts, GPUs, tokens, a what-if's history
  queries        the client, one deadline per batch of queries, failures as one-line BackendErrors
  answers        Prometheus answers parsed into samples; finished requests into requests and errors
  histograms     PromQL's `histogram_quantile`, computed here over merged buckets
  promql         the catalogue of PromQL (pods, deployments, GPUs, what-if history)
  alert_promql   the catalogue's alert evaluation queries, per deployment and per node
  alert_signals  one batch of alert queries read into plain values per deployment and node

This `__init__` imports nothing, so the catalogue can be read without loading the client.

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
