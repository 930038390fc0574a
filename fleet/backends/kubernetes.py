"""The Kubernetes cluster backend: the only module in ScaleDeck that imports `kubernetes`.

It builds the client, lists and patches, and maps the client's errors to one-line
`BackendError`s; what the listed objects mean is read by `fleet.backends.k8s_objects` (plain
dicts in, `fleet.backends.base` dataclasses out). Writes are JSON merge patches that carry the
resourceVersion they were computed from. Each backend has its own ApiClient (never the client's
global default configuration), so one process can talk to many clusters.

Reading: responses are taken raw (`_preload_content=False`) and parsed with `json.loads`;
deserialising a 20,000-pod list into the client's model objects costs many times more (see
`bench/sync_kubernetes.py`). Lists are paged (`limit`/`continue`, as kubectl does) so a big
cluster never asks the API server for one huge response; ReplicaSets are listed as metadata
only (all we need is their owner). An object that cannot be understood is skipped and named in
`last_warnings()`, never allowed to fail the whole snapshot.

RBAC the ServiceAccount needs (ClusterRole, or Roles per allow-listed namespace):
  get/list, and watch for `cluster_watch` (`open_watch`): nodes (cluster), pods, resourcequotas,
  apps deployments, apps replicasets, autoscaling horizontalpodautoscalers, keda.sh scaledobjects,
  karpenter.sh nodepools (cluster);
  get/patch for writes: apps deployments/scale, keda.sh scaledobjects, autoscaling
  horizontalpodautoscalers, resourcequotas.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException, OpenApiException

from fleet.backends.base import (
    UNCHANGED,
    BackendError,
    ClusterSnapshot,
    ConflictError,
    EvictionRefused,
    ObjectState,
    ScalingEventFacts,
)
from fleet.backends.k8s_autoscaling import parse_scaledobject, quota_entries
from fleet.backends.k8s_events import KnownOwners, RawEventLists, read_events
from fleet.backends.k8s_objects import RawLists, read_snapshot
from fleet.backends.k8s_patches import check_target, hpa_patch, quota_patch, scale_patch, scaledobject_patch
from fleet.backends.k8s_values import OddObject, Warnings, as_dict, as_str, json_int, one_line
from fleet.backends.k8s_watch import WatchGone, WatchStream
from fleet.secret_files import path_within

MERGE_PATCH = "application/merge-patch+json"
# Ask for metadata only; a server that cannot do it falls back to full objects.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
KARPENTER = ("karpenter.sh", "v1", "nodepools")
NODECLAIMS = ("karpenter.sh", "v1", "nodeclaims")


@dataclass(frozen=True)
class _Action:
    verb: str  # list | get | patch
    resource: str  # pods, deployments/scale, scaledobjects.keda.sh, ...
    namespace: str | None = None  # None: all namespaces (or cluster-scoped)
    name: str = ""
    cluster_scoped: bool = False

    def __str__(self) -> str:
        what = f"{self.verb} {self.resource}" + (f" {self.name}" if self.name else "")
        if self.cluster_scoped:
            return what
        return what + (f" in namespace {self.namespace}" if self.namespace else " in all namespaces")


_SERVICEACCOUNT = re.compile(r'User "system:serviceaccount:([^":]+):([^"]+)"')
_USER = re.compile(r'User "([^"]+)"')
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")


class KubernetesClusterBackend:
    """A Kubernetes cluster through the official client. Implements `ClusterBackend` (snapshot)
    and `ClusterWriter` (read_object, scale_deployment, patch_*).

    Nothing is loaded or contacted until the first call, so building one never fails; every
    failure later is a `BackendError` with a one-line reason (a `ConflictError` on 409).
    `namespaces` is the allow-list: empty reads every namespace and allows no writes.
    """

    page_size = 500  # list chunk size (kubectl's)
    list_concurrency = 4  # lists fetched side by side during a snapshot

    def __init__(
        self,
        *,
        kubeconfig_path: str = "",
        context: str = "",
        in_cluster: bool = False,
        timeout_seconds: float = 10.0,
        namespaces: tuple[str, ...] = (),
        secret_dirs: list[Path] | None = None,
    ):
        self.kubeconfig_path = kubeconfig_path
        # Folders a kubeconfig named by a cluster row may be read from (fleet/secret_files.py);
        # None for a backend built by hand (tests, benches).
        self.secret_dirs = secret_dirs
        self.context = context
        self.in_cluster = in_cluster
        self.timeout_seconds = float(timeout_seconds) if timeout_seconds and timeout_seconds > 0 else 10.0
        self.namespaces = tuple(namespaces)
        self._client: k8s.ApiClient | None = None
        self._client_lock = threading.Lock()
        self._warnings: list[str] = []

    # ------------------------------------------------------------------ connection

    def _api(self) -> k8s.ApiClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> k8s.ApiClient:
        configuration = k8s.Configuration()
        # Retry a refused/failed connection once (nothing was sent); never re-send after a read
        # timeout, so a stalled API server fails in timeout_seconds, not a multiple of it.
        configuration.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
        if self.in_cluster:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except Exception:  # noqa: BLE001 - the loader's messages name token paths; say it plainly
                raise BackendError(
                    "in-cluster config is unavailable: not running in a pod with a ServiceAccount token"
                ) from None
            return k8s.ApiClient(configuration)
        path = self._kubeconfig_file()
        if self.kubeconfig_path and self.secret_dirs is not None and not path_within(path, self.secret_dirs):
            raise BackendError(
                f"kubeconfig {path}: is outside the folders ScaleDeck reads secrets from; "
                "move it there or add its folder to SCALEDECK_SECRET_DIRS"
            )
        self._check_kubeconfig(path)
        try:
            api = k8s_config.new_client_from_config(
                config_file=path,
                context=self.context or None,
                persist_config=False,  # never write tokens back into someone's kubeconfig
                client_configuration=configuration,
            )
        except Exception as exc:  # noqa: BLE001 - its messages can carry commands and paths; never echo them
            hint = ""
            text = str(exc)
            if "exec" in text or "cmd-path" in text:
                hint = " (its credential plugin failed)"
            elif "File does not exist" in text:
                hint = " (a certificate or key file it names does not exist)"
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig{hint}") from None
        server = urlsplit(api.configuration.host or "")
        if server.scheme not in ("http", "https") or not server.hostname:
            api.close()
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (its cluster has no server URL)")
        return api

    def _kubeconfig_file(self) -> str:
        path = self.kubeconfig_path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
        return os.path.expanduser(path)

    def _check_kubeconfig(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(5_000_000)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not text"
            raise BackendError(f"kubeconfig {path}: cannot be read ({reason})") from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError:
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (not YAML)") from None
        if not isinstance(config, dict) or not isinstance(config.get("contexts"), list):
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (no contexts)")
        names = {as_str(as_dict(c).get("name")) for c in config["contexts"]}
        context = self.context or as_str(config.get("current-context"))
        if not context:
            raise BackendError(f"kubeconfig {path}: has no current-context; name a context")
        if context not in names:
            raise BackendError(f"kubeconfig {path}: has no context '{one_line(context, 100)}'")

    @property
    def host(self) -> str:
        """The API server, as scheme://host:port (no credentials, no path)."""
        raw = self._client.configuration.host if self._client is not None else ""
        try:
            parts = urlsplit(raw)
            return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        except ValueError:
            return "the configured server"

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------------ calls and errors

    def _call(self, action: _Action, method: Callable, *args, **kwargs) -> dict:
        try:
            response = method(*args, _preload_content=False, _request_timeout=self.timeout_seconds, **kwargs)
            try:
                data = response.data
            finally:
                response.release_conn()
        except ApiException as exc:
            raise self._api_error(exc, action) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from None
        except OpenApiException:
            raise BackendError(f"cannot {action}: the request is not valid") from None
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise BackendError(
                f"the Kubernetes API at {self.host} answered {action} with something that is not JSON", transient=True
            )
        return doc

    def _transport_error(self, exc: Exception) -> BackendError:
        reason = getattr(exc, "reason", None) or exc
        text = str(reason).lower()
        transient = True
        # Order matters: in urllib3 2, NameResolutionError < NewConnectionError < ConnectTimeoutError.
        if isinstance(reason, urllib3.exceptions.NameResolutionError) or "name or service not known" in text:
            why = "DNS lookup failed"
        elif isinstance(reason, urllib3.exceptions.NewConnectionError) or "refused" in text:
            why = "connection refused" if "refused" in text else "cannot connect"
        elif isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
            why = f"connection timed out after {self.timeout_seconds:g} s"
        elif isinstance(reason, urllib3.exceptions.SSLError):
            why, transient = "TLS failed (is the server certificate trusted?)", False
        elif isinstance(reason, (urllib3.exceptions.ReadTimeoutError, TimeoutError)) or "timed out" in text:
            why = f"no answer within {self.timeout_seconds:g} s"
        elif isinstance(reason, urllib3.exceptions.ProxyError):
            why = "the proxy failed"
        else:
            why = "the connection broke"
        return BackendError(f"cannot reach the Kubernetes API at {self.host}: {why}", transient=transient)

    def _redact(self, text: str) -> str:
        """Take credentials out of server-supplied text (a proxy or webhook may echo them)."""
        configuration = self._client.configuration if self._client is not None else None
        secrets = []
        if configuration is not None:
            for value in [*configuration.api_key.values(), configuration.password]:
                if isinstance(value, str):
                    secrets.append(value.split(" ", 1)[-1] if value.lower().startswith("bearer ") else value)
        for secret in secrets:
            if len(secret) >= 6:
                text = text.replace(secret, "***")
        return _BEARER.sub("Bearer ***", text)

    def _api_error(self, exc: ApiException, action: _Action) -> BackendError:
        error = self._describe_api_error(exc, action)
        error.args = (self._redact(str(error)),)
        return error

    def _describe_api_error(self, exc: ApiException, action: _Action) -> BackendError:
        status = exc.status or 0
        try:
            message = one_line(as_str(as_dict(json.loads(exc.body or "")).get("message")), 200)
        except (ValueError, TypeError):
            message = ""
        if status == 401:
            return BackendError(f"credentials refused (401) by the Kubernetes API at {self.host}", status=401)
        if status == 403:
            account = _SERVICEACCOUNT.search(message)
            user = _USER.search(message)
            if account:
                who = f"the ServiceAccount {account.group(1)}/{account.group(2)}"
            elif user:
                who = f'user "{one_line(user.group(1), 80)}"'
            else:
                who = "the ServiceAccount" if self.in_cluster else "these credentials"
            hint = ""
            if action.namespace is None and not action.cluster_scoped:
                hint = "; list the namespaces it may read in the cluster's settings"
            return BackendError(f"forbidden: {who} may not {action} (403){hint}", status=403)
        if status == 409:
            return ConflictError(f"{action.resource} {action.namespace}/{action.name} changed since it was read (409)")
        if status == 404:
            return BackendError(f"not found: {action} (404)", status=404)
        if status == 429 or status >= 500:
            return BackendError(
                f"the Kubernetes API at {self.host} failed to {action}: {status} {one_line(exc.reason or '', 60)}",
                transient=True,
                status=status,
            )
        detail = f": {message}" if message else ""
        return BackendError(f"the Kubernetes API refused to {action} ({status}){detail}", status=status)

    def _list(self, action: _Action, method: Callable, *args, **kwargs) -> list:
        return self._list_versioned(action, method, *args, **kwargs)[0]

    def _list_versioned(self, action: _Action, method: Callable, *args, **kwargs) -> tuple[list, str]:
        """Every item of a list, page by page, and the list's resourceVersion (where a watch
        starts). An expired continue token restarts the list once."""
        for _attempt in range(2):
            items: list = []
            token = None
            try:
                for _page in range(100_000):
                    doc = self._call(action, method, *args, limit=self.page_size, _continue=token, **kwargs)
                    page = doc.get("items") or []
                    if not isinstance(page, list):
                        raise BackendError(f"the Kubernetes API at {self.host} answered {action} without a list")
                    items += page
                    meta = as_dict(doc.get("metadata"))
                    token = meta.get("continue")
                    if not token or not isinstance(token, str):
                        return items, as_str(meta.get("resourceVersion"))
                raise BackendError(f"cannot {action}: the API server kept sending more pages")
            except BackendError as exc:
                if exc.status == 410 and token:
                    continue
                raise
        raise BackendError(f"cannot {action}: the list kept changing under us (410)", transient=True)

    def _list_namespaced(self, resource: str, every: Callable, one: Callable, *args, **kwargs) -> list:
        if not self.namespaces:
            return self._list(_Action("list", resource), every, *args, **kwargs)
        items: list = []
        for namespace in self.namespaces:
            items += self._list(_Action("list", resource, namespace), one, *args, namespace=namespace, **kwargs)
        return items

    def _list_custom(self, group: str, version: str, plural: str, *, namespaced: bool) -> list | None:
        """A custom resource list; None when its CRD is not installed (404)."""
        custom = k8s.CustomObjectsApi(self._api())
        resource = f"{plural}.{group}"

        def every(**kw):
            return custom.list_cluster_custom_object(group, version, plural, **kw)

        def one(namespace, **kw):
            return custom.list_namespaced_custom_object(group, version, namespace, plural, **kw)

        try:
            if namespaced:
                return self._list_namespaced(resource, every, one)
            return self._list(_Action("list", resource, cluster_scoped=True), every)
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise

    def _list_optional(self, resource: str, missing: list[str], lister: Callable[[], list]) -> list:
        """A list a real API server always serves, but a partial one (an aggregating proxy, a
        minimal test API) may answer 404 for: read as none, with a warning, rather than failing
        the sync. Only for lists whose absence loses detail, not safety: ReplicaSets (pod owners
        then come from the pod-template-hash name), HPAs, ResourceQuotas."""
        try:
            return lister()
        except BackendError as exc:
            if exc.status != 404:
                raise
            missing.append(f"the API server does not serve {resource} (404): read as none")
            return []

    # ------------------------------------------------------------------ reading

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
            replicasets = self._list_optional("replicasets", missing, lambda: self._list_namespaced(
                "replicasets",
                apps.list_replica_set_for_all_namespaces,
                apps.list_namespaced_replica_set,
                _headers={"Accept": METADATA_ONLY},
            ))
            deployments = self._list_namespaced(
                "deployments", apps.list_deployment_for_all_namespaces, apps.list_namespaced_deployment
            )
            return pods, replicasets, deployments

        # The lists are independent, and on a big cluster the API server's time dominates: fetch
        # them side by side. The first failure (in this order) is the one reported.
        jobs = {
            "workloads": workloads,
            "nodes": lambda: self._list(_Action("list", "nodes", cluster_scoped=True), core.list_node),
            "hpas": lambda: self._list_optional("horizontalpodautoscalers", missing, lambda: self._list_namespaced(
                "horizontalpodautoscalers",
                autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                autoscaling.list_namespaced_horizontal_pod_autoscaler,
            )),
            "scaledobjects": lambda: self._list_custom(*KEDA, namespaced=True),
            "quotas": lambda: self._list_optional("resourcequotas", missing, lambda: self._list_namespaced(
                "resourcequotas", core.list_resource_quota_for_all_namespaces, core.list_namespaced_resource_quota
            )),
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
        events = read_events(RawEventLists(raw["events"], raw_pods, raw_replicasets, raw["nodeclaims"]),
                             snapshot, event_warnings)
        self._warnings = missing + warnings + event_warnings.result()
        return dataclasses.replace(snapshot, events=tuple(events))

    def scaling_events(self, known: KnownOwners) -> tuple[list[ScalingEventFacts], list[str]]:
        """Only the Events and NodeClaims (two list calls), for a cluster whose watcher keeps the
        inventory current: the beat's turn stores them without a full sync. Returns the facts and
        the warnings (odd objects skipped). Raises BackendError."""
        missing: list[str] = []
        raw = self._run_all({
            "events": lambda: self._list_events(missing),
            "nodeclaims": lambda: self._list_custom(*NODECLAIMS, namespaced=False),
        })
        warnings = Warnings()
        facts = read_events(RawEventLists(raw["events"], [], [], raw["nodeclaims"]), known, warnings)
        return facts, missing + warnings.result()

    def _list_events(self, missing: list[str]) -> list:
        """Events from events.k8s.io/v1, or core/v1 where that group is not served (one list)."""
        api = self._api()
        modern = k8s.EventsV1Api(api)
        try:
            return self._list_namespaced("events.events.k8s.io", modern.list_event_for_all_namespaces,
                                         modern.list_namespaced_event)
        except BackendError as exc:
            if exc.status != 404:
                raise
        core = k8s.CoreV1Api(api)
        return self._list_optional("events", missing, lambda: self._list_namespaced(
            "events", core.list_event_for_all_namespaces, core.list_namespaced_event))

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
            return f"{plural}.{group}", every, (
                lambda namespace, **kw: custom.list_namespaced_custom_object(group, version, namespace, plural, **kw)
            ), {}

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
                "deployments", apps.list_deployment_for_all_namespaces, apps.list_namespaced_deployment, {}
            ),
            "hpas": lambda: (
                "horizontalpodautoscalers",
                autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                autoscaling.list_namespaced_horizontal_pod_autoscaler,
                {},
            ),
            "scaledobjects": lambda: crd(*KEDA, namespaced=True),
            "quotas": lambda: (
                "resourcequotas", core.list_resource_quota_for_all_namespaces, core.list_namespaced_resource_quota, {}
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
        action = _Action("list", resource, namespace, cluster_scoped=one is None)
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
        action = _Action("watch", resource, namespace, cluster_scoped=one is None)
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

    def _check_target(self, namespace: str, name: str, *, write: bool) -> None:
        check_target(namespace, name, allow_list=self.namespaces, write=write)

    def _patch(self, action: _Action, method: Callable, *args, body: dict) -> str:
        doc = self._call(action, method, *args, body, _content_type=MERGE_PATCH)
        return as_str(as_dict(doc.get("metadata")).get("resourceVersion"))

    def scale_deployment(self, namespace: str, name: str, replicas: int, *, resource_version: str) -> str:
        """Set a Deployment's replicas through its /scale subresource. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = scale_patch(replicas, resource_version=resource_version)
        apps = k8s.AppsV1Api(self._api())
        action = _Action("patch", "deployments/scale", namespace, name)
        return self._patch(action, apps.patch_namespaced_deployment_scale, name, namespace, body=body)

    def patch_scaledobject(
        self,
        namespace: str,
        name: str,
        *,
        resource_version: str,
        min_replicas=UNCHANGED,
        max_replicas=UNCHANGED,
        paused_replicas=UNCHANGED,
    ) -> str:
        """Change a ScaledObject's floor/ceiling and its paused-replicas pin (None removes the pin).
        min/max left UNCHANGED (or None) are not touched. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = scaledobject_patch(
            f"scaledobject {namespace}/{name}",
            resource_version=resource_version,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            paused_replicas=paused_replicas,
        )
        custom = k8s.CustomObjectsApi(self._api())
        action = _Action("patch", "scaledobjects.keda.sh", namespace, name)
        group, version, plural = KEDA
        return self._patch(
            action, custom.patch_namespaced_custom_object, group, version, namespace, plural, name, body=body
        )

    def patch_hpa(
        self,
        namespace: str,
        name: str,
        *,
        resource_version: str,
        min_replicas=UNCHANGED,
        max_replicas=UNCHANGED,
    ) -> str:
        """Change an HPA's minReplicas / maxReplicas. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = hpa_patch(
            f"hpa {namespace}/{name}",
            resource_version=resource_version,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
        )
        autoscaling = k8s.AutoscalingV2Api(self._api())
        action = _Action("patch", "horizontalpodautoscalers", namespace, name)
        return self._patch(action, autoscaling.patch_namespaced_horizontal_pod_autoscaler, name, namespace, body=body)

    def patch_quota(self, namespace: str, name: str, hard: dict[str, int], *, resource_version: str) -> str:
        """Set GPU entries of a ResourceQuota's spec.hard (other entries are kept). Returns the new
        resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = quota_patch(hard, resource_version=resource_version)
        core = k8s.CoreV1Api(self._api())
        action = _Action("patch", "resourcequotas", namespace, name)
        return self._patch(action, core.patch_namespaced_resource_quota, name, namespace, body=body)

    def _autoscaler_call(self, verb: str, kind: str, namespace: str, name: str, **body) -> dict:
        if kind == "scaledobject":
            custom = k8s.CustomObjectsApi(self._api())
            group, version, plural = KEDA
            method = custom.get_namespaced_custom_object if verb == "get" else custom.patch_namespaced_custom_object
            args, action = (group, version, namespace, plural, name), _Action(verb, "scaledobjects.keda.sh",
                                                                                namespace, name)
        elif kind == "hpa":
            autoscaling = k8s.AutoscalingV2Api(self._api())
            method = (autoscaling.read_namespaced_horizontal_pod_autoscaler if verb == "get"
                      else autoscaling.patch_namespaced_horizontal_pod_autoscaler)
            args, action = (name, namespace), _Action(verb, "horizontalpodautoscalers", namespace, name)
        else:
            raise BackendError(f"{one_line(kind, 40)!r} is not an autoscaler kind")
        if verb == "get":
            return self._call(action, method, *args)
        return self._call(action, method, *args, body["body"], _content_type=MERGE_PATCH)

    def read_autoscaler_spec(self, kind: str, namespace: str, name: str) -> ObjectState:
        """A ScaledObject's or HPA's whole `spec`, with its labels and annotations (GitOps marks), for
        a policy edit: values {"spec", "labels", "annotations"}."""
        self._check_target(namespace, name, write=False)
        doc = self._autoscaler_call("get", kind, namespace, name)
        meta = as_dict(doc.get("metadata"))
        values = {"spec": as_dict(doc.get("spec")), "labels": as_dict(meta.get("labels")),
                  "annotations": as_dict(meta.get("annotations"))}
        return ObjectState(kind=kind, namespace=namespace, name=name, values=values,
                           resource_version=as_str(meta.get("resourceVersion")))

    def patch_autoscaler_spec(self, kind: str, namespace: str, name: str, spec_patch: dict, *,
                              resource_version: str) -> str:
        """Send `{"metadata": {"resourceVersion"}, "spec": spec_patch}` as one JSON merge patch (a policy
        edit, built and validated by scaling/autoscaler_policy.py). Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = {"metadata": {"resourceVersion": resource_version}, "spec": spec_patch}
        doc = self._autoscaler_call("patch", kind, namespace, name, body=body)
        return as_str(as_dict(doc.get("metadata")).get("resourceVersion"))

    # ------------------------------------------------------------------ re-reads

    def _get(self, action: _Action, method: Callable, *args) -> tuple[dict, str]:
        doc = self._call(action, method, *args)
        return doc, as_str(as_dict(doc.get("metadata")).get("resourceVersion"))

    def _value(self, what: str, parse: Callable, *args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except OddObject as exc:
            raise BackendError(f"{what}: {exc}") from None

    def get_deployment_scale(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"replicas"}, resourceVersion) of a Deployment, from its /scale subresource."""
        self._check_target(namespace, name, write=False)
        apps = k8s.AppsV1Api(self._api())
        doc, rv = self._get(
            _Action("get", "deployments/scale", namespace, name), apps.read_namespaced_deployment_scale, name, namespace
        )
        spec = as_dict(doc.get("spec"))
        what = f"deployment {namespace}/{name}"
        replicas = self._value(what, json_int, spec.get("replicas"), "spec.replicas", default=0)
        return {"replicas": replicas}, rv

    def get_scaledobject(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"min_replicas", "max_replicas", "paused_replicas"}, resourceVersion) of a ScaledObject."""
        self._check_target(namespace, name, write=False)
        custom = k8s.CustomObjectsApi(self._api())
        doc, rv = self._get(
            _Action("get", "scaledobjects.keda.sh", namespace, name),
            custom.get_namespaced_custom_object,
            *KEDA[:2],
            namespace,
            KEDA[2],
            name,
        )
        warnings = Warnings()
        facts = self._value(f"scaledobject {namespace}/{name}", parse_scaledobject, doc, namespace, name, warnings)
        if facts is None:
            raise BackendError(f"scaledobject {namespace}/{name} does not target a Deployment")
        if warnings.items:
            raise BackendError(warnings.items[0])
        return {
            "min_replicas": facts.min_replicas,
            "max_replicas": facts.max_replicas,
            "paused_replicas": facts.paused_replicas,
        }, rv

    def get_hpa(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"min_replicas", "max_replicas"}, resourceVersion) of an HPA."""
        self._check_target(namespace, name, write=False)
        autoscaling = k8s.AutoscalingV2Api(self._api())
        doc, rv = self._get(
            _Action("get", "horizontalpodautoscalers", namespace, name),
            autoscaling.read_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
        )
        spec = as_dict(doc.get("spec"))
        what = f"hpa {namespace}/{name}"
        return {
            "min_replicas": self._value(what, json_int, spec.get("minReplicas"), "spec.minReplicas", default=1),
            "max_replicas": self._value(what, json_int, spec.get("maxReplicas"), "spec.maxReplicas", minimum=1),
        }, rv

    def get_quota(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"hard", "used"}, resourceVersion) of a ResourceQuota, GPU entries only. `hard` is
        spec.hard (what a write sets; status.hard lags behind it)."""
        self._check_target(namespace, name, write=False)
        core = k8s.CoreV1Api(self._api())
        doc, rv = self._get(
            _Action("get", "resourcequotas", namespace, name), core.read_namespaced_resource_quota, name, namespace
        )
        what = f"resourcequota {namespace}/{name}"
        hard = self._value(what, quota_entries, as_dict(doc.get("spec")).get("hard"), "hard")
        used = self._value(what, quota_entries, as_dict(doc.get("status")).get("used"), "used")
        return {"hard": hard, "used": used}, rv

    def read_object(self, kind: str, namespace: str, name: str) -> ObjectState:
        """Current values and resourceVersion of "deployment" | "scaledobject" | "hpa" | "quota"."""
        readers = {
            "deployment": self.get_deployment_scale,
            "scaledobject": self.get_scaledobject,
            "hpa": self.get_hpa,
            "quota": self.get_quota,
        }
        if kind not in readers:
            raise BackendError(f"cannot read objects of kind {one_line(kind, 40)!r}")
        values, rv = readers[kind](namespace, name)
        return ObjectState(kind=kind, namespace=namespace, name=name, values=values, resource_version=rv)

    # ------------------------------------------------------------------ nodes (MIG repartitioning)

    def get_node(self, name: str) -> dict:
        """{"unschedulable", "labels", "capacity", "resource_version"} of a node, read now."""
        core = k8s.CoreV1Api(self._api())
        doc, rv = self._get(_Action("get", "nodes", name=name, cluster_scoped=True), core.read_node, name)
        labels = as_dict(as_dict(doc.get("metadata")).get("labels"))
        capacity = as_dict(as_dict(doc.get("status")).get("capacity"))
        return {
            "unschedulable": as_dict(doc.get("spec")).get("unschedulable") is True,
            "labels": {str(k): as_str(v) for k, v in labels.items()},
            "capacity": {str(k): as_str(v) for k, v in capacity.items()},
            "resource_version": rv,
        }

    def patch_node(self, name: str, body: dict) -> str:
        """Merge-patch a node (cordon, uncordon, a label). Returns the new resourceVersion."""
        core = k8s.CoreV1Api(self._api())
        return self._patch(_Action("patch", "nodes", name=name, cluster_scoped=True), core.patch_node, name, body=body)

    def node_pods(self, name: str) -> list[dict]:
        """The pods bound to a node: {"namespace", "name", "owner_kind", "phase", "mirror"}."""
        core = k8s.CoreV1Api(self._api())
        items = self._list(_Action("list", "pods"), core.list_pod_for_all_namespaces,
                           field_selector=f"spec.nodeName={name}")
        pods = []
        for item in items:
            meta = as_dict(as_dict(item).get("metadata"))
            owners = [as_dict(o) for o in meta.get("ownerReferences") or [] if isinstance(o, dict)]
            pods.append({
                "namespace": as_str(meta.get("namespace")),
                "name": as_str(meta.get("name")),
                "owner_kind": as_str(owners[0].get("kind")) if owners else "",
                "phase": as_str(as_dict(as_dict(item).get("status")).get("phase")),
                "mirror": "kubernetes.io/config.mirror" in as_dict(meta.get("annotations")),
            })
        return pods

    def evict_pod(self, namespace: str, name: str) -> None:
        """Ask the eviction API (policy/v1) to remove a pod, honouring its PodDisruptionBudgets and
        its own terminationGracePeriodSeconds. Never a delete. 429: `EvictionRefused`."""
        self._check_target(namespace, name, write=True)
        core = k8s.CoreV1Api(self._api())
        action = _Action("create", "pods/eviction", namespace, name)
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        try:
            response = core.create_namespaced_pod_eviction(
                name, namespace, body, _preload_content=False, _request_timeout=self.timeout_seconds)
            try:
                response.data  # noqa: B018 - read the answer whole, or the pooled connection breaks the next call
            finally:
                response.release_conn()
        except ApiException as exc:
            if exc.status == 429:
                raise _eviction_refused(exc.body, namespace, name) from None
            raise self._api_error(exc, action) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from None


_BUDGET = re.compile(r"disruption budget ([a-z0-9]([-a-z0-9.]*[a-z0-9])?)")


def _eviction_refused(body: str | bytes | None, namespace: str, name: str) -> EvictionRefused:
    """The PodDisruptionBudget a 429 names (in `details.causes`, reason DisruptionBudget), if any."""
    try:
        doc = as_dict(json.loads(body or ""))
    except (ValueError, TypeError):
        doc = {}
    causes = [as_dict(c) for c in as_dict(doc.get("details")).get("causes") or [] if isinstance(c, dict)]
    texts = [as_str(c.get("message")) for c in causes] + [as_str(doc.get("message"))]
    budget = next((m.group(1) for m in map(_BUDGET.search, texts) if m), "")
    which = f"PodDisruptionBudget {namespace}/{budget}" if budget else "a PodDisruptionBudget"
    return EvictionRefused(f"{which} refused to evict pod {namespace}/{name} (429)", budget=budget)
