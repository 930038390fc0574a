"""A fake Kubernetes API server over real HTTP, for the official `kubernetes` client to talk to.

It serves plain dicts the way a real API server does (JSON lists with `kind: <Kind>List`,
`metadata.resourceVersion`, paging with `limit`/`continue`, metadata-only lists for
`Accept: ...;as=PartialObjectMetadataList`), answers GET and PATCH (merge patch, JSON patch,
strategic merge on built-in types only, 409 on a stale `metadata.resourceVersion`), and records
every request so tests can assert on paths, verbs, content types and bodies.

Switches make it misbehave: `fail()` answers a path with a status (401/403/500/410...),
`uninstall()` removes an API group (a missing CRD answers 404), `delay()` stalls answers (for
timeouts; `after_applying=True` applies a PATCH first and stalls only its answer), and `token`
turns on Bearer token checks.

Watches (`?watch=true`, with bookmarks, 410 Gone and dropped connections) are served by
`tests.fakekube.watch.WatchHub` (`api.watches`); `bytes_served` counts every byte answered.

Evictions (`POST .../pods/{name}/eviction`, policy/v1) honour loaded PodDisruptionBudgets
(`status.disruptionsAllowed`; 429 naming the budget, as the API server does); `reactors` are
called after every request, to play a controller (tests/fakekube/mig_manager.py).

What it does not model: label selectors, field selectors other than `spec.nodeName` on pods,
server-side apply, admission webhooks,
and the object-specific semantics of strategic merge (it applies a strategic merge patch as a
JSON merge patch, which is exact for the scalar fields ScaleDeck writes).
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.fakekube.watch import WatchHub


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    custom: bool = False  # a CRD: no strategic merge, list items keep kind/apiVersion

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = (
    Resource("", "v1", "nodes", "Node", namespaced=False),
    Resource("", "v1", "pods", "Pod", namespaced=True),
    Resource("", "v1", "resourcequotas", "ResourceQuota", namespaced=True),
    Resource("", "v1", "namespaces", "Namespace", namespaced=False),
    Resource("", "v1", "configmaps", "ConfigMap", namespaced=True),
    Resource("apps", "v1", "deployments", "Deployment", namespaced=True),
    Resource("apps", "v1", "replicasets", "ReplicaSet", namespaced=True),
    Resource("apps", "v1", "statefulsets", "StatefulSet", namespaced=True),
    Resource("apps", "v1", "daemonsets", "DaemonSet", namespaced=True),
    Resource("batch", "v1", "jobs", "Job", namespaced=True),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", namespaced=True),
    Resource("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", namespaced=True, custom=True),
    Resource("karpenter.sh", "v1", "nodepools", "NodePool", namespaced=False, custom=True),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", namespaced=True),
    Resource("events.k8s.io", "v1", "events", "Event", namespaced=True),
    Resource("", "v1", "events", "Event", namespaced=True),
    Resource("karpenter.sh", "v1", "nodeclaims", "NodeClaim", namespaced=False, custom=True),
)
_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PARTIAL_METADATA = "as=PartialObjectMetadataList"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]  # last value of each query parameter
    content_type: str  # "" when the request had none
    body: object  # the parsed JSON body, or None
    authorization: str  # the Authorization header as sent ("" when none)
    accept: str = ""


@dataclass
class _Rule:
    path: str  # prefix of the request path
    status: int
    method: str | None = None
    query_contains: str | None = None
    times: int | None = None  # None: forever
    message: str = ""

    def matches(self, method: str, path: str, raw_query: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method != method:
            return False
        if self.query_contains is not None and self.query_contains not in raw_query:
            return False
        return path.startswith(self.path)


@dataclass
class _Delay:
    path: str
    seconds: float
    method: str | None = None
    after_applying: bool = False  # stall the answer of a request already applied (a write "in flight")


@dataclass
class _Entry:
    obj: dict
    resource: Resource
    raw: bool = False  # loaded as-is: served in lists exactly as given, no bookkeeping
    _item_json: bytes | None = field(default=None, repr=False)

    def item_json(self) -> bytes:
        # Serialised once, then reused by every list page: a 20,000-pod list stays cheap to serve.
        if self._item_json is None:
            item = self.obj
            if not self.raw and not self.resource.custom and isinstance(item, dict):
                # Built-in list items carry no kind/apiVersion, as from a real API server.
                item = {k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
            self._item_json = json.dumps(item, separators=(",", ":")).encode()
        return self._item_json


class _ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}

    def body(self) -> dict:
        return status_body(self.status, self.reason, self.message, self.details)


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class FakeKubeApi:
    """A fake Kubernetes API server on 127.0.0.1:<free port>. Use as a context manager or
    call `start()` / `stop()`. Objects are plain dicts (as `kubectl get -o json` shows them)."""

    def __init__(self, *, token: str | None = "fake-token-0123456789"):
        self.token = token  # None: accept any request, with or without credentials
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._store: dict[Resource, dict[tuple[str, str], _Entry]] = {r: {} for r in RESOURCES}
        self._rv = itertools.count(1000)
        self._last_rv = "999"
        self._raw = itertools.count()
        self._rules: list[_Rule] = []
        self._delays: list[_Delay] = []
        self._uninstalled: set[str] = set()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.watches = WatchHub(self)
        self.bytes_served = 0
        # Called after every answered request as reactor(api, method, path): a controller acting on
        # what was written (tests.fakekube.mig_manager plays the GPU operator's mig-manager).
        self.reactors: list = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeKubeApi:
        handler = type("_BoundHandler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-kube-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeKubeApi:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeKubeApi is not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: str | Path, token: str | None = None, *, context: str = "fake") -> Path:
        """Write a kubeconfig pointing at this server (token defaults to the server's token)."""
        return write_kubeconfig(path, self.url, token if token is not None else (self.token or ""), context=context)

    # ------------------------------------------------------------------ objects

    def load(self, objects: Iterable[dict] | dict, *more: dict) -> None:
        """Store objects (dicts with apiVersion, kind, metadata). Missing resourceVersion, uid,
        creationTimestamp and (for namespaced kinds) namespace are filled in."""
        items = [objects] if isinstance(objects, dict) else list(objects)
        items.extend(more)
        with self._lock:
            for obj in items:
                obj = copy.deepcopy(obj)
                resource = _BY_KIND.get((obj.get("apiVersion"), obj.get("kind")))
                if resource is None:
                    raise ValueError(f"FakeKubeApi does not serve {obj.get('apiVersion')} {obj.get('kind')}")
                meta = obj.setdefault("metadata", {})
                if resource.namespaced:
                    meta.setdefault("namespace", "default")
                meta.setdefault("resourceVersion", self._next_rv())
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
                key = (meta.get("namespace", "") if resource.namespaced else "", meta["name"])
                self.watches.record("MODIFIED" if key in self._store[resource] else "ADDED", resource, obj)
                self._store[resource][key] = _Entry(obj, resource)

    def load_raw(self, kind: str, item: object, *, namespace: str = "default", api_version: str = "") -> None:
        """Serve `item` verbatim in lists of `kind`, however broken it is (for odd-object tests)."""
        resource = next(
            (r for r in RESOURCES if r.kind == kind and (not api_version or r.api_version == api_version)), None
        )
        if resource is None:
            raise ValueError(f"FakeKubeApi does not serve kind {kind}")
        with self._lock:
            key = (namespace if resource.namespaced else "", f"\x00raw-{next(self._raw)}")
            self._store[resource][key] = _Entry(item, resource, raw=True)  # type: ignore[arg-type]

    def get(self, kind: str, namespace: str, name: str) -> dict:
        """The stored object (a copy), e.g. to assert what a PATCH changed."""
        resource = next(r for r in RESOURCES if r.kind == kind)
        with self._lock:
            entry = self._store[resource].get((namespace if resource.namespaced else "", name))
            if entry is None:
                raise KeyError(f"{kind} {namespace}/{name}")
            return copy.deepcopy(entry.obj)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        resource = next(r for r in RESOURCES if r.kind == kind)
        with self._lock:
            removed = self._store[resource].pop((namespace if resource.namespaced else "", name), None)
            if removed is not None and not removed.raw:
                self.watches.record("DELETED", resource, removed.obj)

    def touch(self, kind: str, namespace: str, name: str) -> str:
        """Bump an object's resourceVersion, as another writer would. Returns the new one."""
        obj = self.get(kind, namespace, name)
        with self._lock:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            resource = next(r for r in RESOURCES if r.kind == kind)
            self._store[resource][(namespace if resource.namespaced else "", name)] = _Entry(obj, resource)
            self.watches.record("MODIFIED", resource, obj)
        return obj["metadata"]["resourceVersion"]

    # ------------------------------------------------------------------ switches

    def fail(
        self,
        path: str,
        status: int,
        *,
        method: str | None = None,
        times: int | None = None,
        query_contains: str | None = None,
        message: str = "",
    ) -> None:
        """Answer requests whose path starts with `path` with `status` (a Kubernetes Status body)."""
        with self._lock:
            self._rules.append(_Rule(path, status, method, query_contains, times, message))

    def delay(
        self, seconds: float, *, path: str = "/", method: str | None = None, after_applying: bool = False
    ) -> None:
        """Stall answers to matching requests for `seconds` (interrupted by stop()).

        By default the request waits before it is handled. With `after_applying` it is handled at once
        (a PATCH changes the object and its resourceVersion) and only the answer waits: a client
        killed or timing out meanwhile wrote without ever hearing so."""
        with self._lock:
            self._delays.append(_Delay(path, seconds, method, after_applying))

    def uninstall(self, group: str) -> None:
        """Remove an API group (e.g. "keda.sh"): every path under it answers 404."""
        with self._lock:
            self._uninstalled.add(group)

    def reset_switches(self) -> None:
        with self._lock:
            self._rules.clear()
            self._delays.clear()
            self._uninstalled.clear()

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix) and (method is None or r.method == method)]

    # ------------------------------------------------------------------ request handling

    def _next_rv(self) -> str:
        self._last_rv = str(next(self._rv))
        return self._last_rv

    def _handle(self, method: str, raw_path: str, headers, body: bytes) -> tuple[int, bytes]:
        split = urlsplit(raw_path)
        path, raw_query = split.path, split.query
        query = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        content_type = headers.get("Content-Type", "") or ""
        parsed_body = None
        body_error = False
        if body:
            try:
                parsed_body = json.loads(body)
            except ValueError:
                body_error = True
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=method,
                    path=path,
                    query=query,
                    content_type=content_type,
                    body=parsed_body,
                    authorization=headers.get("Authorization", "") or "",
                    accept=headers.get("Accept", "") or "",
                )
            )
            matching = [d for d in self._delays if path.startswith(d.path) and d.method in (None, method)]
        delays = [d.seconds for d in matching if not d.after_applying]
        answer_delays = [d.seconds for d in matching if d.after_applying]
        for seconds in delays:
            if self._stopping.wait(seconds):
                break
        try:
            self._check_rules(method, path, raw_query)
            self._check_auth(headers.get("Authorization", "") or "")
            if body_error:
                raise _ApiError(400, "BadRequest", "the request body is not valid JSON")
            answer = self._route(method, path, query, content_type, parsed_body, headers.get("Accept", "") or "")
        except _ApiError as exc:
            answer = exc.status, json.dumps(exc.body()).encode()
        for reactor in list(self.reactors):
            reactor(self, method, path)
        for seconds in answer_delays:
            if self._stopping.wait(seconds):
                break
        return answer

    def _check_rules(self, method: str, path: str, raw_query: str) -> None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, raw_query):
                    if rule.times is not None:
                        rule.times -= 1
                    raise _ApiError(
                        rule.status,
                        _REASONS.get(rule.status, "Unknown"),
                        rule.message or _default_message(rule.status, method, path),
                    )

    def _check_auth(self, authorization: str) -> None:
        if self.token is None:
            return
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or credential.strip() != self.token:
            raise _ApiError(401, "Unauthorized", "Unauthorized")

    def _route(self, method, path, query, content_type, body, accept) -> tuple[int, bytes]:
        segments = [s for s in path.split("/") if s]
        if segments[:1] == ["api"] and len(segments) >= 2:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[:1] == ["apis"] and len(segments) >= 3:
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        if group in self._uninstalled:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        resource = _BY_PATH.get((group, version, rest[0]))
        if resource is None or (namespace is not None and not resource.namespaced):
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub == "eviction" and resource.kind == "Pod" and method == "POST" and name is not None:
            return 201, json.dumps(self._evict(namespace, name, body)).encode()
        if sub not in (None, "scale") or (sub == "scale" and resource.kind != "Deployment"):
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource.namespaced and name is not None and namespace is None:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")

        if method == "GET" and name is None:
            return 200, self._list(resource, namespace, query, accept)
        if method == "GET":
            obj = self._find(resource, namespace, name)
            return 200, json.dumps(_scale_of(obj) if sub else obj).encode()
        if method == "PATCH" and name is not None:
            return 200, json.dumps(self._patch(resource, namespace, name, sub, content_type, body)).encode()
        raise _ApiError(405, "MethodNotAllowed", f"the fake API server does not support {method} on {path}")

    def _find(self, resource: Resource, namespace: str | None, name: str) -> dict:
        with self._lock:
            entry = self._store[resource].get((namespace or "", name))
            if entry is None or entry.raw:
                raise _ApiError(
                    404,
                    "NotFound",
                    f'{resource.qualified} "{name}" not found',
                    details={"name": name, "group": resource.group, "kind": resource.plural},
                )
            return copy.deepcopy(entry.obj)

    def _list(self, resource: Resource, namespace: str | None, query: dict, accept: str) -> bytes:
        with self._lock:
            entries = sorted(
                ((key, entry) for key, entry in self._store[resource].items() if namespace in (None, key[0])),
                key=lambda pair: pair[0],
            )
            node_name = _node_name_selector(query.get("fieldSelector", ""))
            if node_name is not None and resource.kind == "Pod":
                entries = [
                    (k, e)
                    for k, e in entries
                    if isinstance(e.obj, dict) and (e.obj.get("spec") or {}).get("nodeName") == node_name
                ]
            list_rv = self._last_rv
        start = 0
        if query.get("continue"):
            try:
                start = int(json.loads(base64.urlsafe_b64decode(query["continue"]))["start"])
            except (ValueError, KeyError, TypeError):
                raise _ApiError(400, "BadRequest", "continue key is not valid") from None
        limit = int(query["limit"]) if query.get("limit", "").isdigit() and int(query["limit"]) > 0 else 0
        page = entries[start : start + limit] if limit else entries[start:]
        more = bool(limit) and start + limit < len(entries)
        meta: dict = {"resourceVersion": list_rv}
        if more:
            token = json.dumps({"start": start + limit, "rv": list_rv}).encode()
            meta["continue"] = base64.urlsafe_b64encode(token).decode()
            meta["remainingItemCount"] = len(entries) - start - limit
        if PARTIAL_METADATA in accept:
            head = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
            items = [
                json.dumps(
                    {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": e.obj.get("metadata")}
                    if isinstance(e.obj, dict)
                    else e.obj,
                    separators=(",", ":"),
                ).encode()
                for _, e in page
            ]
        else:
            head = {"kind": f"{resource.kind}List", "apiVersion": resource.api_version, "metadata": meta}
            items = [e.item_json() for _, e in page]
        head_json = json.dumps(head, separators=(",", ":")).encode()
        return head_json[:-1] + b',"items":[' + b",".join(items) + b"]}"

    def _evict(self, namespace: str, name: str, body: object) -> dict:
        """policy/v1 Eviction: refused with 429 while a matching PodDisruptionBudget's
        `status.disruptionsAllowed` is 0 (as the API server does), else the pod is gone (its
        graceful termination is instant here) and the budget allows one disruption fewer."""
        if not isinstance(body, dict) or body.get("kind") != "Eviction":
            raise _ApiError(400, "BadRequest", "the body of an eviction must be an Eviction")
        pods = self._store[_BY_KIND[("v1", "Pod")]]
        budgets = self._store[_BY_KIND[("policy/v1", "PodDisruptionBudget")]]
        with self._lock:
            pod = self._find(_BY_KIND[("v1", "Pod")], namespace, name)
            labels = (pod.get("metadata") or {}).get("labels") or {}
            for (ns, budget_name), entry in sorted(budgets.items()):
                budget = entry.obj
                if ns != namespace or not _labels_match((budget.get("spec") or {}).get("selector") or {}, labels):
                    continue
                allowed = int((budget.get("status") or {}).get("disruptionsAllowed") or 0)
                if allowed <= 0:
                    raise _ApiError(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        details={
                            "causes": [
                                {
                                    "reason": "DisruptionBudget",
                                    "message": f"The disruption budget {budget_name} needs "
                                    f"{(budget.get('spec') or {}).get('minAvailable', 1)} healthy pods and "
                                    "has 1 currently",
                                }
                            ]
                        },
                    )
                budget = copy.deepcopy(budget)
                budget.setdefault("status", {})["disruptionsAllowed"] = allowed - 1
                budgets[(ns, budget_name)] = _Entry(budget, entry.resource)
            del pods[(namespace, name)]
            self.watches.record("DELETED", _BY_KIND[("v1", "Pod")], pod)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}

    def _patch(self, resource, namespace, name, sub, content_type, body) -> dict:
        media = content_type.split(";")[0].strip().lower()
        if media == STRATEGIC_MERGE_PATCH and resource.custom:
            raise _ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            )
        if media not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH):
            raise _ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - {media or 'no content type'} "
                "is not supported by the fake API server",
            )
        with self._lock:
            current = self._find(resource, namespace, name)
            current_rv = current["metadata"]["resourceVersion"]
            old_spec = json.dumps(current.get("spec"), sort_keys=True)
            target = _scale_of(current) if sub else current
            if media == JSON_PATCH:
                if not isinstance(body, list):
                    raise _ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
                patched = _apply_json_patch(target, body)
            else:
                if not isinstance(body, dict):
                    raise _ApiError(400, "BadRequest", "a merge patch must be a JSON object")
                patched = _merge_patch(target, body)
            if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
                raise _ApiError(422, "Invalid", "metadata: Required value")
            sent_rv = patched["metadata"].get("resourceVersion")
            if sent_rv not in (None, current_rv):
                raise _ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    details={"name": name, "group": resource.group, "kind": resource.plural},
                )
            if patched["metadata"].get("name") != name or patched["metadata"].get("namespace", namespace) != namespace:
                raise _ApiError(422, "Invalid", "metadata.name: Invalid value: field is immutable")
            if sub:
                replicas = (patched.get("spec") or {}).get("replicas")
                _check_replicas(replicas, "spec.replicas")
                current.setdefault("spec", {})["replicas"] = replicas
                stored = current
            else:
                _validate(resource, patched)
                stored = patched
            if resource.kind == "Deployment" and json.dumps(stored.get("spec"), sort_keys=True) != old_spec:
                stored["metadata"]["generation"] = int(stored["metadata"].get("generation") or 1) + 1
            if resource.kind == "ResourceQuota":
                # The quota controller copies spec.hard to status.hard; done at once here.
                stored.setdefault("status", {})["hard"] = copy.deepcopy((stored.get("spec") or {}).get("hard", {}))
            stored["metadata"]["resourceVersion"] = self._next_rv()
            self._store[resource][(namespace or "", name)] = _Entry(stored, resource)
            self.watches.record("MODIFIED", resource, stored)
            return _scale_of(stored) if sub else copy.deepcopy(stored)


def _node_name_selector(selector: str) -> str | None:
    """The node of `fieldSelector=spec.nodeName=X` (the only field selector modelled)."""
    key, _, value = selector.partition("=")
    return value if key == "spec.nodeName" else None


def _labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _default_message(status: int, method: str, path: str) -> str:
    if status == 403:
        segments = [s for s in path.split("/") if s]
        namespace = segments[segments.index("namespaces") + 1] if "namespaces" in segments[:-1] else ""
        if segments[-1] == "scale":
            plural = f"{segments[-3]}/scale"
        else:
            plural = segments[-1] if method == "GET" else segments[-2] if len(segments) >= 2 else "resource"
        verb = {"GET": "list", "PATCH": "patch"}.get(method, method.lower())
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        return (
            f'{plural} is forbidden: User "system:serviceaccount:scaledeck:scaledeck" cannot {verb} '
            f'resource "{plural}" in API group ""{where}'
        )
    if status == 401:
        return "Unauthorized"
    if status == 410:
        return "The provided continue parameter is too old to display a consistent list result."
    return f"fake failure {status}"


def _scale_of(deployment: dict) -> dict:
    meta = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": (deployment.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        },
    }


def _merge_patch(target: object, patch: object) -> object:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply_json_patch(target: dict, ops: list) -> dict:
    """RFC 6902 JSON patch: add, remove, replace, test."""
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "path" not in op:
            raise _ApiError(422, "Invalid", "a JSON patch operation needs op and path")
        parts = _pointer(op["path"])
        if not parts:
            raise _ApiError(422, "Invalid", "the fake API server cannot patch the document root")
        parent = doc
        for part in parts[:-1]:
            if isinstance(parent, dict) and part in parent:
                parent = parent[part]
            elif isinstance(parent, list) and part.isdigit() and int(part) < len(parent):
                parent = parent[int(part)]
            else:
                raise _ApiError(422, "Invalid", f"path {op['path']} does not exist")
        last = parts[-1]
        kind = op.get("op")
        if kind == "test":
            actual = parent.get(last) if isinstance(parent, dict) else None
            if actual != op.get("value"):
                raise _ApiError(422, "Invalid", f"test operation failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, dict):
                if kind == "replace" and last not in parent:
                    raise _ApiError(422, "Invalid", f"replace operation does not apply: {op['path']} is missing")
                parent[last] = copy.deepcopy(op.get("value"))
            elif isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, copy.deepcopy(op.get("value")))
                else:
                    parent[index] = copy.deepcopy(op.get("value"))
        elif kind == "remove":
            if isinstance(parent, dict) and last in parent:
                del parent[last]
            elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
                del parent[int(last)]
            else:
                raise _ApiError(422, "Invalid", f"remove operation does not apply: {op['path']} is missing")
        else:
            raise _ApiError(422, "Invalid", f"the fake API server does not support JSON patch op {kind!r}")
    return doc


def _check_replicas(value: object, field_name: str, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _ApiError(
            422,
            "Invalid",
            f"{field_name}: Invalid value: {json.dumps(value)}: must be greater than or equal to {minimum}",
        )


def _validate(resource: Resource, obj: dict) -> None:
    spec = obj.get("spec") or {}
    if resource.kind == "Deployment" and "replicas" in spec:
        _check_replicas(spec["replicas"], "spec.replicas")
    elif resource.kind == "HorizontalPodAutoscaler":
        _check_replicas(spec.get("minReplicas", 1), "spec.minReplicas", 1)
        _check_replicas(spec.get("maxReplicas"), "spec.maxReplicas", 1)
        if spec["maxReplicas"] < spec.get("minReplicas", 1):
            raise _ApiError(
                422, "Invalid", "spec.maxReplicas: Invalid value: must be greater than or equal to minReplicas"
            )
    elif resource.kind == "ScaledObject":
        if "minReplicaCount" in spec:
            _check_replicas(spec["minReplicaCount"], "spec.minReplicaCount")
        if "maxReplicaCount" in spec:
            _check_replicas(spec["maxReplicaCount"], "spec.maxReplicaCount", 1)
    elif resource.kind == "ResourceQuota":
        for key, value in (spec.get("hard") or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise _ApiError(422, "Invalid", f"spec.hard[{key}]: Invalid value: must be a quantity")


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeApi  # set on the bound subclass
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pool expects
    # Without it every response waits ~40 ms for the client's delayed ACK (Nagle).
    disable_nagle_algorithm = True

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet in tests
        pass

    def _serve(self) -> None:
        if self.command == "GET" and self.api.watches.wants(self.path):
            self.api.watches.serve(self)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.api._handle(self.command, self.path, self.headers, body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.api.bytes_served += len(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _serve


def write_kubeconfig(path: str | Path, server: str, token: str, *, context: str = "fake") -> Path:
    """A kubeconfig with one cluster, one token user and one context (the current one)."""
    path = Path(path)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": f"{context}-cluster", "cluster": {"server": server}}],
        "users": [{"name": f"{context}-user", "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": f"{context}-cluster", "user": f"{context}-user", "namespace": "default"},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
