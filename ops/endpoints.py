"""/healthz, /readyz and /metrics, answered before Django looks at the Host header or the scheme.

The kubelet probes a pod at its IP over plain http, and Prometheus scrapes it the same way;
neither can send a Host that ALLOWED_HOSTS lists, and neither follows the https redirect. So
these three paths are answered by the first middleware, before SecurityMiddleware and
CommonMiddleware ever call `request.get_host()`. Nothing else is: every other path, from any
client, still gets 400 for a foreign Host and the redirect to https. The answers do not
depend on the Host and carry no user data; /metrics takes a bearer token when one is set.
"""

from __future__ import annotations

import hmac
import logging

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST

from core.env import env
from ops import metrics

logger = logging.getLogger(__name__)


class OpsEndpoints:
    """Middleware; first in MIDDLEWARE."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.views = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}

    def __call__(self, request):
        view = self.views.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse("GET only\n", status=405, content_type="text/plain")
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)


def healthz(request) -> HttpResponse:
    """Liveness: the process answers. Deliberately no database: a database outage must not
    make the kubelet restart every web pod."""
    return HttpResponse("ok\n", content_type="text/plain")


_migrated = False


def readyz(request) -> HttpResponse:
    """Readiness: the database answers, and holds every migration this code needs (a new
    version's pods stay out of the Service until the migrate Job has run)."""
    global _migrated
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not _migrated:
            executor = MigrationExecutor(connection)
            unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if unapplied:
                return HttpResponse(
                    f"database needs {len(unapplied)} migration(s): run `scaledeck migrate`\n",
                    status=503,
                    content_type="text/plain",
                )
            _migrated = True  # migrations are never unapplied under a running version
    except DatabaseError as exc:
        logger.warning("readiness: the database does not answer: %s", type(exc).__name__)
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ready\n", content_type="text/plain")


def metrics_token() -> str:
    return env("SCALEDECK_METRICS_TOKEN") or ""


def metrics_view(request) -> HttpResponse:
    """Prometheus text format; with SCALEDECK_METRICS_TOKEN(_FILE) set, only for `Bearer <token>`."""
    token = metrics_token()
    if token:
        sent = request.headers.get("Authorization", "")
        scheme, _, value = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(metrics.exposition(with_state=True), content_type=CONTENT_TYPE_LATEST)
