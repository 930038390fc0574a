"""A fake Kubernetes API server over real HTTP, for the official `kubernetes` client to talk to.

It serves plain dicts the way a real API server does (JSON lists with `kind: <Kind>List`,
`metadata.resourceVersion`, paging with `limit`/`continue`, metadata-only lists for
`Accept: ...;as=PartialObjectMetadataList`), answers GET and PATCH (merge patch, JSON patch,
strategic merge on built-in types only, 409 on a stale `metadata.resourceVersion`), POST and PUT
(create and replace whole objects; 409 when created twice or replaced from a stale version), and
records every request so tests can assert on paths, verbs, content types and bodies.

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

import copy
import itertools
import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.fakekube.patching import (
    _default_message,
)
from tests.fakekube.resources import (
    _BY_KIND,
    _REASONS,
    RESOURCES,
    Resource,
    _ApiError,
    _Entry,
)
from tests.fakekube.routes import ApiRoutes
from tests.fakekube.watch import WatchHub


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


class FakeKubeApi(ApiRoutes):
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
