"""What a cluster's connection settings may be: one set of checks for `cluster_add` and the admin.

Checks what can be checked without contacting the cluster: names, the kubeconfig and secret
files (present, and inside the folders secrets may be read from), the Prometheus URL, auth,
timeout and join labels. Refusals are ApplicationErrors whose `field` names the
`cluster_add` option at fault; the admin maps them to its own fields (`ADMIN_FIELDS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug

from core.errors import ApplicationError
from fleet.models import Cluster, validate_service_url
from fleet.secret_files import secret_path_error

NAMESPACE_MAX = 63
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_REQUEST_TIMEOUT_SECONDS = 300.0
MAX_PROMETHEUS_TIMEOUT_SECONDS = 60.0

# ApplicationError.field (cluster_add's option names) -> the Cluster field the admin shows it on.
ADMIN_FIELDS = {
    "kubeconfig": "kubeconfig_path",
    "prometheus_token_file": "prometheus_bearer_token_file",
    "prometheus_user": "prometheus_basic_auth_user",
    "prometheus_password_file": "prometheus_basic_auth_password_file",
    "prometheus_timeout": "prometheus_timeout_seconds",
    "request_timeout": "request_timeout_seconds",
}


@dataclass(frozen=True)
class ClusterConnection:
    backend: str
    kubeconfig_path: str = ""
    in_cluster: bool = False
    namespaces: list[str] = field(default_factory=list)
    prometheus_url: str = ""
    prometheus_bearer_token_file: str = ""
    prometheus_basic_auth_user: str = ""
    prometheus_basic_auth_password_file: str = ""
    prometheus_timeout_seconds: float = 3.0
    request_timeout_seconds: float = 10.0
    labels: dict[str, str] = field(default_factory=dict)  # prometheus_*_label field -> label name


def cluster_name_check(name: str) -> None:
    try:
        validate_slug(name)
    except ValidationError:
        raise ApplicationError(f"{name!r} is not a valid cluster name (letters, digits, - and _)", field="name")
    if len(name) > 63:
        raise ApplicationError("a cluster name is at most 63 characters", field="name")


def secret_file_check(path: str, *, what: str, field: str) -> None:
    """A secret file named by a cluster: inside the allowed folders, and there now."""
    problem = secret_path_error(path, what=what)
    if problem:
        raise ApplicationError(problem, field=field)
    if not Path(path).expanduser().is_file():
        raise ApplicationError(f"{what} {path} does not exist", field=field)


def cluster_connection_check(c: ClusterConnection) -> list[str]:
    """Refuse settings ScaleDeck could not use safely; returns the namespaces, cleaned."""
    if c.backend not in Cluster.Backend.values:
        raise ApplicationError(f"unknown backend {c.backend!r}", field="backend")
    if c.backend == Cluster.Backend.KUBERNETES and not c.in_cluster:
        if not c.kubeconfig_path:
            raise ApplicationError("a Kubernetes cluster needs --kubeconfig or --in-cluster", field="kubeconfig")
        secret_file_check(c.kubeconfig_path, what="kubeconfig", field="kubeconfig")
    if not 0 < c.request_timeout_seconds <= MAX_REQUEST_TIMEOUT_SECONDS:  # also NaN
        raise ApplicationError(
            f"the Kubernetes request timeout must be above 0 and at most {MAX_REQUEST_TIMEOUT_SECONDS:g} s",
            field="request_timeout",
        )
    if c.prometheus_url:
        try:
            validate_service_url(c.prometheus_url)
        except ValidationError as exc:
            raise ApplicationError(exc.messages[0], field="prometheus_url") from None
    if c.prometheus_bearer_token_file and c.prometheus_basic_auth_user:
        raise ApplicationError("use a bearer token or basic auth for Prometheus, not both", field="prometheus")
    for path, what, option in (
        (c.prometheus_bearer_token_file, "the Prometheus token file", "prometheus_token_file"),
        (c.prometheus_basic_auth_password_file, "the Prometheus password file", "prometheus_password_file"),
    ):
        if path:
            secret_file_check(path, what=what, field=option)
    if c.prometheus_basic_auth_password_file and not c.prometheus_basic_auth_user:
        raise ApplicationError("a Prometheus password file needs a user", field="prometheus_user")
    timeout = c.prometheus_timeout_seconds
    if not 0 < timeout <= MAX_PROMETHEUS_TIMEOUT_SECONDS:
        raise ApplicationError(
            f"Prometheus timeout {timeout} s must be between 0 and {MAX_PROMETHEUS_TIMEOUT_SECONDS:g} s",
            field="prometheus_timeout",
        )
    for name, label in c.labels.items():
        if not LABEL_NAME.match(label or ""):
            raise ApplicationError(f"{label!r} is not a Prometheus label name", field=name)
    return namespaces_check(c.namespaces)


def namespaces_check(namespaces: list[str]) -> list[str]:
    if not isinstance(namespaces, list) or not all(isinstance(ns, str) for ns in namespaces):
        raise ApplicationError("namespaces is a list of namespace names", field="namespaces")
    for ns in namespaces:
        if len(ns) > NAMESPACE_MAX or not NAMESPACE.match(ns):
            raise ApplicationError(f"{ns[:80]!r} is not a valid namespace name", field="namespaces")
    return sorted(set(namespaces))
