"""The fake Kubernetes API's answers to reads, lists, evictions, patches and whole writes (a mixin of FakeKubeApi,
which holds the store, the lock and the resourceVersion counter)."""

from __future__ import annotations

import base64
import copy
import json
import uuid

from tests.fakekube.patching import (
    _apply_json_patch,
    _check_replicas,
    _labels_match,
    _merge_patch,
    _node_name_selector,
    _scale_of,
    _validate,
)
from tests.fakekube.resources import (
    _BY_KIND,
    _BY_PATH,
    JSON_PATCH,
    MERGE_PATCH,
    PARTIAL_METADATA,
    STRATEGIC_MERGE_PATCH,
    Resource,
    _ApiError,
    _Entry,
)


class ApiRoutes:
    """Routes a request to the stored objects; FakeKubeApi provides `_store`, `_lock` and `_next_rv`."""

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
        if method in ("POST", "PUT") and sub is None and (name is None) == (method == "POST"):
            stored = self._write(resource, namespace, name, body)
            return (201 if method == "POST" else 200), json.dumps(stored).encode()
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
                raise _stale(resource, name)
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

    def _write(self, resource: Resource, namespace: str | None, name: str | None, body: object) -> dict:
        """A create (POST, `name` None) or a replace (PUT of `name`) of a whole object, with the API
        server's optimistic concurrency: 409 when created twice or replaced from a stale version."""
        if resource.namespaced and namespace is None:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        meta = body.get("metadata") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or not meta.get("name"):
            raise _ApiError(422, "Invalid", "metadata.name: Required value")
        if name is not None and meta["name"] != name:
            raise _ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        key = (namespace or "", meta["name"])
        with self._lock:
            current = self._store[resource].get(key)
            if name is None and current is not None:
                raise _ApiError(409, "AlreadyExists", f'{resource.qualified} "{meta["name"]}" already exists')
            if name is not None:
                self._find(resource, namespace, name)  # 404 when absent
                if meta.get("resourceVersion") != current.obj["metadata"]["resourceVersion"]:
                    raise _stale(resource, name)
            stored = copy.deepcopy(body)
            stored.update(apiVersion=resource.api_version, kind=resource.kind)
            _validate(resource, stored)
            stored_meta = stored["metadata"]
            if resource.namespaced:
                stored_meta["namespace"] = namespace
            stored_meta["uid"] = current.obj["metadata"]["uid"] if current else str(uuid.uuid4())
            stored_meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
            stored_meta["resourceVersion"] = self._next_rv()
            self._store[resource][key] = _Entry(stored, resource)
            self.watches.record("MODIFIED" if current else "ADDED", resource, stored)
            return copy.deepcopy(stored)


def _stale(resource: Resource, name: str) -> _ApiError:
    """The API server's 409 for a write computed from an old resourceVersion."""
    return _ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details={"name": name, "group": resource.group, "kind": resource.plural},
    )
