"""A token's scope: the clusters and namespaces it may see and change.

One rule, applied in two places every API request passes through:
- reads: `TokenScopeFilter` is a default DRF filter backend, so every list and every detail
  (`get_object` filters too) of a scoped token leaves out other namespaces' rows: they are 404,
  as if they did not exist;
- writes: `RoleRequired.has_object_permission` (accounts/permissions.py) asks `scope_allows`, so
  a write to an object outside the scope is 403, which tells the bot's author the token is the
  problem. Views that load their object by hand call `self.check_object_permissions`.

Which field holds a row's cluster and namespace is read from the model, not listed per model, so a
new model is scoped as soon as it has a `cluster`, a `namespace` or a `deployment` (a row with a
cluster and a deployment but no namespace of its own, such as an alert, takes its deployment's).
A model the rule cannot read declares its paths with `scope_paths_declare` when its app is ready
(fleet's Cluster: its own `name` is the cluster), so this module imports no app above accounts. Rows with no
namespace (nodes, clusters, MIG plans) are visible to a namespace-scoped token but cannot be
changed by it: a team's token does not repartition a shared node pool.

Views with no queryset (costs, findings, timeline, manifests, plan creation, advice requests) narrow
what they read with `scope_queryset` / `scope_contains`, and refuse writes with `scope_require`.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from rest_framework import filters, permissions
from rest_framework.exceptions import PermissionDenied

from accounts.models import ApiToken

# model -> (lookup of the cluster's name, lookup of the namespace), for models the rule cannot read.
_DECLARED_PATHS: dict[type, tuple[str | None, str | None]] = {}


def request_token(request) -> ApiToken | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiToken) else None


def _has_field(model, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def scope_paths_declare(model, *, cluster: str | None, namespace: str | None) -> None:
    """Say which lookups give `model`'s cluster name and namespace (None: it has none)."""
    _DECLARED_PATHS[model] = (cluster, namespace)


def scope_paths(model) -> tuple[str | None, str | None]:
    """(lookup of the cluster's name, lookup of the namespace) for rows of `model`; None where it has none."""
    if model in _DECLARED_PATHS:
        return _DECLARED_PATHS[model]
    if _has_field(model, "cluster"):
        if _has_field(model, "namespace"):
            return "cluster__name", "namespace"
        return "cluster__name", ("deployment__namespace" if _has_field(model, "deployment") else None)
    if _has_field(model, "deployment"):
        return "deployment__cluster__name", "deployment__namespace"
    return None, None


def scope_queryset(queryset, token: ApiToken | None):
    """`queryset` narrowed to what `token` may see (unchanged for an unscoped token or a session)."""
    if token is None or not token.scoped:
        return queryset
    cluster_path, namespace_path = scope_paths(queryset.model)
    if token.clusters and cluster_path:
        queryset = queryset.filter(**{f"{cluster_path}__in": token.clusters})
    if token.namespaces and namespace_path:
        queryset = queryset.filter(**{f"{namespace_path}__in": token.namespaces})
    return queryset


def _resolve(obj, path: str | None):
    for part in (path or "").split("__") if path else []:
        obj = getattr(obj, part, None)
    return obj if path else None


def scope_allows(token: ApiToken | None, obj) -> bool:
    """May `token` change `obj`? Everything outside its clusters or namespaces is refused."""
    if token is None or not token.scoped:
        return True
    cluster_path, namespace_path = scope_paths(type(obj))
    if token.clusters and (cluster_path is None or _resolve(obj, cluster_path) not in token.clusters):
        return False
    return not token.namespaces or (namespace_path is not None and _resolve(obj, namespace_path) in token.namespaces)


def scope_contains(token: ApiToken | None, *, cluster: str | None, namespace: str | None) -> bool:
    """Is a row of `cluster` and `namespace` (names; None where the row has none) inside `token`'s scope?
    For rows that are not model instances: cost groups, doctor findings."""
    if token is None or not token.scoped:
        return True
    if token.clusters and cluster not in token.clusters:
        return False
    return not token.namespaces or namespace in token.namespaces


SCOPE_REFUSED = "This token's scope does not include this cluster or namespace."


def scope_require(request, obj) -> None:
    """Refuse (403) a write to `obj` by a token whose scope does not include it."""
    if not scope_allows(request_token(request), obj):
        raise PermissionDenied(SCOPE_REFUSED)


class TokenScopeFilter(filters.BaseFilterBackend):
    """Default filter backend: reads of a scoped token see only their scope (writes: see module doc)."""

    def filter_queryset(self, request, queryset, view):
        if request.method not in permissions.SAFE_METHODS:
            # A write must find its object to answer 403 (not 404) when it is out of scope.
            return queryset
        return scope_queryset(queryset, request_token(request))
