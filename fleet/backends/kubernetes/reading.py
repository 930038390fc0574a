"""Reading a cluster: the snapshot a full sync stores, the scaling events, and the lists and
watches `fleet.watch` keeps its informers with (list calls and watches only)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from fleet.backends.base import BackendError, ClusterSnapshot, GpuAssignment, KnownOwners, ScalingEventFacts
from fleet.backends.kubernetes.connection import (
    KARPENTER,
    KEDA,
    METADATA_ONLY,
    NODECLAIMS,
    ApiCall,
    KubernetesConnection,
)
from fleet.backends.kubernetes.events import RawEventLists, read_events
from fleet.backends.kubernetes.objects import RawLists, read_snapshot
from fleet.backends.kubernetes.values import Warnings
from fleet.backends.kubernetes.watch import WatchGone, WatchStream


class KubernetesReading(KubernetesConnection):
    """Lists for the sync and the watcher; see `KubernetesClusterBackend`."""

    def snapshot(self) -> ClusterSnapshot:
        """List everything the sync needs (list calls only). Raises BackendError."""
        taken_at = datetime.now(UTC)
        api = self._api()
        core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
        autoscaling = k8s.AutoscalingV2Api(api)
        missing: list[str] = []

        def workloads() -> tuple[list, list, list]:
            # Pods before ReplicaSets before Deployments: every listed pod's owners exist by then.
            pods = self._list_namespaced("pods", core.list_pod_for_all_namespaces, core.list_namespaced_pod)
            replicasets = self._list_optional(
                "replicasets",
                missing,
                lambda: self._list_namespaced(
                    "replicasets",
                    apps.list_replica_set_for_all_namespaces,
                    apps.list_namespaced_replica_set,
                    _headers={"Accept": METADATA_ONLY},
                ),
            )
            deployments = self._list_namespaced(
                "deployments", apps.list_deployment_for_all_namespaces, apps.list_namespaced_deployment
            )
            return pods, replicasets, deployments

        # The lists are independent, and on a big cluster the API server's time dominates: fetch
        # them side by side. The first failure (in this order) is the one reported.
        jobs = {
            "workloads": workloads,
            "nodes": lambda: self._list(ApiCall("list", "nodes", cluster_scoped=True), core.list_node),
            "hpas": lambda: self._list_optional(
                "horizontalpodautoscalers",
                missing,
                lambda: self._list_namespaced(
                    "horizontalpodautoscalers",
                    autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                    autoscaling.list_namespaced_horizontal_pod_autoscaler,
                ),
            ),
            "scaledobjects": lambda: self._list_custom(*KEDA, namespaced=True),
            "quotas": lambda: self._list_optional(
                "resourcequotas",
                missing,
                lambda: self._list_namespaced(
                    "resourcequotas", core.list_resource_quota_for_all_namespaces, core.list_namespaced_resource_quota
                ),
            ),
            "nodepools": lambda: self._list_custom(*KARPENTER, namespaced=False),
            "events": lambda: self._list_events(missing),
            "nodeclaims": lambda: self._list_custom(*NODECLAIMS, namespaced=False),
        }
        raw = self._run_all(jobs)
        raw_pods, raw_replicasets, raw_deployments = raw["workloads"]

        raw_lists = RawLists(
            nodes=raw["nodes"],
            pods=raw_pods,
            replicasets=raw_replicasets,
            deployments=raw_deployments,
            hpas=raw["hpas"],
            scaledobjects=raw["scaledobjects"],
            quotas=raw["quotas"],
            nodepools=raw["nodepools"],
        )
        snapshot, warnings = read_snapshot(raw_lists, taken_at=taken_at)
        event_warnings = Warnings()
        events = read_events(
            RawEventLists(raw["events"], raw_pods, raw_replicasets, raw["nodeclaims"]), snapshot, event_warnings
        )
        self._warnings = missing + warnings + event_warnings.result()
        return dataclasses.replace(snapshot, events=tuple(events))

    def scaling_events(self, known: KnownOwners) -> tuple[list[ScalingEventFacts], list[str]]:
        """Only the Events and NodeClaims (two list calls), for a cluster whose watcher keeps the
        inventory current: the beat's turn stores them without a full sync. Returns the facts and
        the warnings (odd objects skipped). Raises BackendError."""
        missing: list[str] = []
        raw = self._run_all(
            {
                "events": lambda: self._list_events(missing),
                "nodeclaims": lambda: self._list_custom(*NODECLAIMS, namespaced=False),
            }
        )
        warnings = Warnings()
        facts = read_events(RawEventLists(raw["events"], [], [], raw["nodeclaims"]), known, warnings)
        return facts, missing + warnings.result()

    def _list_events(self, missing: list[str]) -> list:
        """Events from events.k8s.io/v1, or core/v1 where that group is not served (one list)."""
        api = self._api()
        modern = k8s.EventsV1Api(api)
        try:
            return self._list_namespaced(
                "events.events.k8s.io", modern.list_event_for_all_namespaces, modern.list_namespaced_event
            )
        except BackendError as exc:
            if exc.status != 404:
                raise
        core = k8s.CoreV1Api(api)
        return self._list_optional(
            "events",
            missing,
            lambda: self._list_namespaced("events", core.list_event_for_all_namespaces, core.list_namespaced_event),
        )

    def _run_all(self, jobs: dict[str, Callable]) -> dict:
        pool = ThreadPoolExecutor(max_workers=self.list_concurrency, thread_name_prefix="k8s-list")
        try:
            futures = {key: pool.submit(job) for key, job in jobs.items()}
            return {key: future.result() for key, future in futures.items()}
        finally:
            # On failure, lists not started yet are dropped, and the ones in flight are waited
            # for (each is bounded by the timeout): a list left running would outlive the sync,
            # hold the client's connections and log its retries after the failure was reported.
            pool.shutdown(wait=True, cancel_futures=True)

    def last_warnings(self) -> list[str]:
        """What the last snapshot skipped or could not read, one line each (untrusted text, cut)."""
        return list(self._warnings)

    def gpu_assignments(self) -> list[GpuAssignment] | None:
        """None: the API server does not say which device a pod holds (only the kubelet's
        pod-resources API does), so the sync infers it from the pods' requests."""
        return None

    # ------------------------------------------------------------------ watching (fleet.watch)

    def _kind_calls(self, kind: str) -> tuple[str, Callable, Callable | None, dict]:
        """(resource, list in all namespaces, list in one namespace or None if cluster-scoped,
        extra arguments) for each kind `fleet.watch.state.KINDS` names."""
        api = self._api()
        core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
        autoscaling, custom = k8s.AutoscalingV2Api(api), k8s.CustomObjectsApi(api)

        def crd(group: str, version: str, plural: str, namespaced: bool):
            every = functools.partial(custom.list_cluster_custom_object, group, version, plural)
            if not namespaced:
                return f"{plural}.{group}", every, None, {}
            return (
                f"{plural}.{group}",
                every,
                (lambda namespace, **kw: custom.list_namespaced_custom_object(group, version, namespace, plural, **kw)),
                {},
            )

        calls = {
            "nodes": lambda: ("nodes", core.list_node, None, {}),
            "pods": lambda: ("pods", core.list_pod_for_all_namespaces, core.list_namespaced_pod, {}),
            "replicasets": lambda: (
                "replicasets",
                apps.list_replica_set_for_all_namespaces,
                apps.list_namespaced_replica_set,
                {"_headers": {"Accept": METADATA_ONLY}},
            ),
            "deployments": lambda: (
                "deployments",
                apps.list_deployment_for_all_namespaces,
                apps.list_namespaced_deployment,
                {},
            ),
            "hpas": lambda: (
                "horizontalpodautoscalers",
                autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                autoscaling.list_namespaced_horizontal_pod_autoscaler,
                {},
            ),
            "scaledobjects": lambda: crd(*KEDA, namespaced=True),
            "quotas": lambda: (
                "resourcequotas",
                core.list_resource_quota_for_all_namespaces,
                core.list_namespaced_resource_quota,
                {},
            ),
            "nodepools": lambda: crd(*KARPENTER, namespaced=False),
        }
        return calls[kind]()

    def watch_scopes(self, kind: str, namespaced: bool) -> list[str | None]:
        """Where to list and watch `kind`: each allow-listed namespace, or everywhere (None)."""
        return list(self.namespaces) if namespaced and self.namespaces else [None]

    def list_for_watch(self, kind: str, namespace: str | None) -> tuple[list, str] | None:
        """Every object of `kind` (in `namespace`, or everywhere) and the list's resourceVersion;
        None when the API server does not serve the kind (404: a CRD not installed)."""
        resource, every, one, extra = self._kind_calls(kind)
        action = ApiCall("list", resource, namespace, cluster_scoped=one is None)
        try:
            if namespace is None:
                return self._list_versioned(action, every, **extra)
            return self._list_versioned(action, one, namespace=namespace, **extra)
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise

    def open_watch(
        self, kind: str, namespace: str | None, resource_version: str, *, timeout_seconds: int
    ) -> WatchStream:
        """A watch of `kind` from `resource_version`, with bookmarks; the server ends it after
        `timeout_seconds` (then resume from the last resourceVersion seen). Raises `WatchGone`
        on 410, `BackendError` otherwise."""
        resource, every, one, extra = self._kind_calls(kind)
        action = ApiCall("watch", resource, namespace, cluster_scoped=one is None)
        method, where = (every, {}) if namespace is None else (one, {"namespace": namespace})
        try:
            response = method(
                **where,
                **extra,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=resource_version,
                timeout_seconds=int(timeout_seconds),
                _preload_content=False,
                # Silence longer than the server's own timeout means the connection died.
                _request_timeout=(self.timeout_seconds, timeout_seconds + 30),
            )
        except ApiException as exc:
            if exc.status == 410:
                raise WatchGone(f"the watch of {resource} is too old to resume (410)") from None
            raise self._api_error(exc, action) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from None
        return WatchStream(response, what=resource, transport_error=self._transport_error)

    # ------------------------------------------------------------------ writing
