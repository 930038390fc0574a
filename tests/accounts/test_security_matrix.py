"""The security matrix: every endpoint and page form x anonymous, viewer, operator, admin, scoped,
expired and revoked credentials, each cell asserted.

Endpoints are read from the URL resolver, so a new one is covered the day it is added:
- known endpoints have an explicit row in EXPECTED (a status per identity);
- every endpoint, known or not, obeys the rules: anonymous gets 401 (API) or a redirect to the
  login page (pages); an expired or revoked token gets 401 saying so; a viewer never gets a 2xx
  on a write; nobody gets a 5xx; a session write without a CSRF token is refused (403); a token
  is never accepted from the query string, nor on a page.

Generic cells use an id that does not exist: the refusals asserted here must come before any
object is looked up. One test per rule, each sweeping every endpoint and listing every wrong cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from tests.factories import (
    ApiTokenFactory,
    AutoscalerFactory,
    ClusterFactory,
    ModelDeploymentFactory,
    NamespaceQuotaFactory,
    UserFactory,
)
from tests.fleet.conftest import fake_metrics  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

WRITES = ("post", "put", "patch", "delete")
MISSING = "999999"
# Answered without credentials on purpose: the login form, logout, the schema and its viewers.
OPEN = ("/accounts/login/", "/accounts/logout/", "/api/schema/", "/api/docs/", "/api/redoc/")
# Authenticated by their own signature (Slack), not by session or token: refused without one.
SIGNED = ("/chatops/",)
SKIP = ("/admin/", "/static/")  # Django's admin (its own login) and static files


@dataclass(frozen=True)
class Endpoint:
    path: str
    methods: tuple[str, ...]

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")


def _concrete(route: str) -> str:
    route = route.replace("^", "").replace("$", "")
    route = re.sub(r"\(\?P<\w+>[^)]*\)", MISSING, route)
    route = re.sub(r"<int:\w+>", MISSING, route)
    route = re.sub(r"<(str:)?\w+>", f"{MISSING}:x", route)
    return "/" + route


def _methods(callback) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)
    if actions:
        return tuple(m for m in ("get", *WRITES) if m in actions)
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None:
        return tuple(m for m in ("get", *WRITES) if hasattr(cls, m))
    return ("get", "post")  # a function view: try both (require_http_methods answers 405 to the other)


def endpoints() -> list[Endpoint]:
    found: dict[str, Endpoint] = {}

    def walk(patterns, prefix: str):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                path = _concrete(prefix + str(p.pattern))
                if not path.startswith(SKIP) and "(?P<format>" not in str(p.pattern) and "\\.(" not in path:
                    found.setdefault(path, Endpoint(path, _methods(p.callback)))

    walk(get_resolver().url_patterns, "")
    return sorted(found.values(), key=lambda e: e.path)


def call(client: Client, method: str, path: str, **extra):
    kwargs = {"content_type": "application/json", "data": "{}"} if method in ("put", "patch") else {}
    if method == "post":
        kwargs = {"data": {}}
    return getattr(client, method)(path, **kwargs, **extra)


class Identities:
    """Clients for each column. API columns use bearer tokens (bots); page columns use sessions."""

    def __init__(self):
        self._clients: dict[tuple, Client] = {}
        self.users = {
            role: UserFactory(username=f"matrix-{role}", role=role) for role in ("viewer", "operator", "admin")
        }
        self.tokens = {role: ApiTokenFactory(user=self.users[role], role=role) for role in self.users}
        self.tokens["scoped"] = ApiTokenFactory(
            user=self.users["operator"], role="operator", namespaces=["team-search"]
        )
        self.tokens["expired"] = ApiTokenFactory(
            user=self.users["admin"], role="admin", expires_at=timezone.now() - timedelta(minutes=1)
        )
        self.tokens["revoked"] = ApiTokenFactory(
            user=self.users["admin"], role="admin", revoked_at=timezone.now() - timedelta(minutes=1)
        )

    def client(self, identity: str, *, api: bool, csrf: bool = False) -> Client:
        key = (identity, api or identity in ("anonymous", "scoped", "expired", "revoked"), csrf)
        if key not in self._clients:
            self._clients[key] = self._client(identity, api=api, csrf=csrf)
        return self._clients[key]

    def _client(self, identity: str, *, api: bool, csrf: bool) -> Client:
        client = Client(enforce_csrf_checks=csrf, raise_request_exception=False)
        if identity == "anonymous":
            return client
        if api or identity in ("scoped", "expired", "revoked"):
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {self.tokens[identity].raw}"
        else:
            client.force_login(self.users[identity])
        return client


COLUMNS = ("anonymous", "viewer", "operator", "admin", "scoped", "expired", "revoked")


@pytest.fixture
def ids():
    return Identities()


@pytest.fixture
def fleet():
    cluster = ClusterFactory(name="prod")
    deployment = ModelDeploymentFactory(cluster=cluster, namespace="llm", name="llama")
    AutoscalerFactory(deployment=deployment, min_replicas=1, max_replicas=8)
    quota = NamespaceQuotaFactory(cluster=cluster, namespace="llm")
    return {"cluster": cluster, "deployment": deployment, "quota": quota}


def expected_table(fleet) -> dict[tuple[str, str], dict[str, int]]:
    """Known endpoints: (method, path) -> the status each column gets. Writes send an empty body, so
    a caller allowed past the checks gets 400 (the body is wrong), which is what proves they got past."""
    d, q, c = fleet["deployment"].id, fleet["quota"].id, fleet["cluster"].id
    read = {
        "anonymous": 401,
        "viewer": 200,
        "operator": 200,
        "admin": 200,
        "scoped": 200,
        "expired": 401,
        "revoked": 401,
    }
    hidden = {**read, "scoped": 404}  # an object in namespace llm: not the scoped token's team-search
    page = {
        "anonymous": 302,
        "viewer": 200,
        "operator": 200,
        "admin": 200,
        "scoped": 302,
        "expired": 302,
        "revoked": 302,
    }
    return {
        ("get", "/api/v1/clusters/"): read,
        ("get", f"/api/v1/clusters/{c}/"): read,
        ("get", "/api/v1/deployments/"): read,
        ("get", f"/api/v1/deployments/{d}/"): hidden,
        ("get", f"/api/v1/quotas/{q}/"): hidden,
        ("get", "/api/v1/actions/"): read,
        ("get", "/api/v1/audit/"): read,
        ("get", "/api/v1/tokens/"): read,
        ("post", f"/api/v1/deployments/{d}/scale/"): {
            **read,
            "viewer": 403,
            "operator": 400,
            "admin": 400,
            "scoped": 403,
        },
        ("post", "/api/v1/prescale-rules/"): {**read, "viewer": 403, "operator": 400, "admin": 400, "scoped": 400},
        ("patch", f"/api/v1/quotas/{q}/"): {**read, "viewer": 403, "operator": 403, "admin": 400, "scoped": 403},
        ("post", "/api/v1/tokens/"): {**read, "viewer": 403, "operator": 403, "admin": 400, "scoped": 403},
        ("get", "/"): page,
        ("get", f"/deployments/{d}/"): page,
        ("get", "/audit/"): page,
        ("get", "/tokens/"): page,
        ("post", "/tokens/"): {**page, "viewer": 403, "operator": 403, "admin": 400},
        ("get", "/scaling/rules/new/"): {**page, "viewer": 403},
        ("post", "/scaling/rules/new/"): {**page, "viewer": 403, "operator": 400, "admin": 400},
        ("get", f"/scaling/quotas/{q}/edit/"): {**page, "viewer": 403, "operator": 403},
    }


def test_each_known_endpoint_answers_each_identity_as_expected(ids, fleet):
    wrong = []
    for (method, path), row in expected_table(fleet).items():
        assert set(row) == set(COLUMNS), path
        for identity, status in row.items():
            got = call(ids.client(identity, api=path.startswith("/api/")), method, path).status_code
            if got != status:
                wrong.append(f"{method.upper()} {path} as {identity}: {got}, expected {status}")
    assert wrong == []


def test_the_sweep_finds_every_kind_of_endpoint():
    paths = {e.path for e in endpoints()}
    assert {"/api/v1/clusters/", f"/api/v1/deployments/{MISSING}/scale/", "/api/v1/audit/", "/tokens/", "/"} <= paths
    assert len(paths) > 50


def test_anonymous_is_asked_to_sign_in_everywhere(ids):
    anonymous = ids.client("anonymous", api=True)
    wrong = []
    for e in endpoints():
        if e.path.startswith(OPEN):
            continue
        for method in e.methods:
            response = call(anonymous, method, e.path)
            if e.path.startswith(SIGNED):  # Slack's endpoints: POST only, each signed
                ok = response.status_code in (401, 403) or (method != "post" and response.status_code == 405)
            elif e.api:
                ok = response.status_code == 401
            else:
                ok = response.status_code == 302 and response["Location"].startswith("/accounts/login/")
            if not ok:
                wrong.append(f"{method.upper()} {e.path}: {response.status_code}")
    assert wrong == []


@pytest.mark.parametrize("identity", ["expired", "revoked"])
def test_an_expired_or_revoked_token_gets_401_saying_so_on_every_api_endpoint(ids, identity):
    client = ids.client(identity, api=True)
    word = {"expired": "expired", "revoked": "revoked"}[identity]
    wrong = []
    for e in endpoints():
        if not e.api or e.path.startswith(OPEN):
            continue
        for method in e.methods:
            response = call(client, method, e.path)
            if response.status_code != 401 or word not in response.content.decode():
                wrong.append(f"{method.upper()} {e.path}: {response.status_code} {response.content[:80]!r}")
    assert wrong == []


@pytest.mark.parametrize("api", [True, False], ids=["token", "session"])
def test_a_viewer_never_gets_a_2xx_on_a_write(ids, api):
    client = ids.client("viewer", api=api)
    wrong = []
    for e in endpoints():
        if e.path.startswith(OPEN + SIGNED):
            continue
        for method in (m for m in e.methods if m in WRITES):
            status = call(client, method, e.path).status_code
            if 200 <= status < 300 or status >= 500:
                wrong.append(f"{method.upper()} {e.path}: {status}")
    assert wrong == []


@pytest.mark.parametrize("identity", ["viewer", "operator", "admin", "scoped"])
def test_nobody_gets_a_5xx_anywhere(ids, identity):
    wrong = []
    for e in endpoints():
        if e.path.startswith(OPEN + SIGNED):  # the schema's own tests run schemathesis over it
            continue
        client = ids.client(identity, api=e.api)
        for method in e.methods:
            status = call(client, method, e.path).status_code
            if status >= 500:
                wrong.append(f"{method.upper()} {e.path}: {status}")
    assert wrong == []


def test_a_session_write_without_a_csrf_token_is_refused(ids):
    admin = ids.client("admin", api=False, csrf=True)
    wrong = []
    for e in endpoints():
        if e.path.startswith(SIGNED):
            continue
        for method in (m for m in e.methods if m in WRITES):
            status = call(admin, method, e.path).status_code
            if status != 403:
                wrong.append(f"{method.upper()} {e.path}: {status}")
    assert wrong == []


def test_a_token_is_never_accepted_from_the_query_string_nor_on_a_page(ids):
    raw = ids.tokens["admin"].raw
    anonymous = Client(raise_request_exception=False)
    wrong = []
    for e in endpoints():
        if e.path.startswith(OPEN + SIGNED) or "get" not in e.methods:
            continue
        response = anonymous.get(e.path, {"token": raw})
        if response.status_code != (401 if e.api else 302):
            wrong.append(f"GET {e.path}?token=…: {response.status_code}")
        if not e.api:
            response = anonymous.get(e.path, HTTP_AUTHORIZATION=f"Bearer {raw}")
            if response.status_code != 302:
                wrong.append(f"GET {e.path} with a bearer token: {response.status_code}")
    assert wrong == []


# ---------------------------------------------------------------- scope on views without a queryset


@pytest.fixture
def two_teams(fake_metrics):  # noqa: F811 (the fixture imported above)
    """Cluster prod with a deployment of team-search and one of llm, each with a cost sample, a
    firing alert and a doctor finding (maxUnavailable 1), and a GPU node pool to plan."""
    from datetime import UTC, datetime

    from costing.models import CostSample
    from scaling.alerts.models import Alert
    from tests.factories import GpuNodeFactory, NodePoolFactory, PodFactory

    cluster = ClusterFactory(name="prod")
    pool = NodePoolFactory(cluster=cluster, name="a100")
    node = GpuNodeFactory(cluster=cluster, node_pool=pool, name="a100-0")
    made = {}
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    for namespace in ("team-search", "llm"):
        d = ModelDeploymentFactory(
            cluster=cluster, namespace=namespace, name=f"{namespace}-model", max_unavailable="1", replicas_desired=6
        )
        pod = PodFactory(deployment=d, node=node)
        CostSample.objects.create(
            cluster=cluster,
            cluster_name="prod",
            node=node,
            node_name=node.name,
            pod=pod,
            pod_name=pod.name,
            deployment=d,
            deployment_name=d.name,
            namespace=namespace,
            hour=start,
            start=start,
            end=start + timedelta(hours=1),
            gpus=Decimal(1),
            gpu_hours=Decimal(1),
            usd=Decimal("4.00"),
        )
        Alert.objects.create(
            cluster=cluster,
            rule="ttft_breach",
            severity="page",
            fingerprint=f"ttft/{namespace}",
            deployment=d,
            summary=f"{namespace} is slow",
        )
        made[namespace] = d
    return {"cluster": cluster, "pool": pool, **made}


def bearer(token) -> Client:
    client = Client(raise_request_exception=False)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token.raw}"
    return client


def test_a_namespace_scoped_token_sees_only_its_namespaces_on_views_without_a_queryset(ids, two_teams):
    scoped, full = bearer(ids.tokens["scoped"]), bearer(ids.tokens["operator"])
    search, llm = two_teams["team-search"], two_teams["llm"]

    def seen(client, path, field):
        response = client.get(path)
        assert response.status_code == 200, (path, response.content[:300])
        return sorted({row[field] for row in response.json()["results"]})

    assert seen(full, "/api/v1/costs/?group_by=namespace", "key") == ["llm", "team-search"]
    assert seen(scoped, "/api/v1/costs/?group_by=namespace", "key") == ["team-search"]
    assert seen(scoped, "/api/v1/costs/?group_by=deployment", "key") == ["team-search/team-search-model"]
    node_costs = scoped.get("/api/v1/costs/?group_by=node").json()["results"]
    assert [Decimal(r["usd"]) for r in node_costs] == [Decimal(4)]  # its share of the shared node, not the node's $8.00
    assert seen(full, "/api/v1/findings/?kind=max_unavailable", "namespace") == ["llm", "team-search"]
    assert seen(scoped, "/api/v1/findings/?kind=max_unavailable", "namespace") == ["team-search"]
    assert seen(full, "/api/v1/alerts/", "summary") == ["llm is slow", "team-search is slow"]
    assert seen(scoped, "/api/v1/alerts/", "summary") == ["team-search is slow"]
    assert scoped.get(f"/api/v1/deployments/{search.id}/timeline/").status_code == 200
    assert scoped.get(f"/api/v1/deployments/{llm.id}/timeline/").status_code == 404
    assert scoped.get(f"/api/v1/deployments/{search.id}/manifests/").status_code == 200
    assert scoped.get(f"/api/v1/deployments/{llm.id}/manifests/").status_code == 404


def test_a_scoped_token_cannot_write_outside_its_scope_on_views_without_a_queryset(ids, two_teams):
    from advice.models import AdviceRun
    from mig.models import FindingDismissal, MigPlan

    other_cluster = ApiTokenFactory(user=ids.users["operator"], role="operator", clusters=["staging"])
    llm = two_teams["llm"]
    plan_body = {"cluster": "prod", "node_pool": "a100"}
    dismiss = f"/api/v1/findings/{llm.id}:max_unavailable/dismiss/"
    for client in (bearer(other_cluster), bearer(ids.tokens["scoped"])):
        refused = client.post("/api/v1/mig-plans/", plan_body, content_type="application/json")
        assert refused.status_code == 403, refused.content
        assert "scope" in refused.json()["detail"]
        assert client.post(dismiss, {"reason": "fine"}, content_type="application/json").status_code in (403, 404)
        advice = client.post("/api/v1/advice/", {"deployment": llm.id}, content_type="application/json")
        assert advice.status_code == 403, advice.content
    assert not MigPlan.objects.exists() and not FindingDismissal.objects.exists() and not AdviceRun.objects.exists()
    assert (
        bearer(ids.tokens["scoped"]).post(dismiss, {"reason": "fine"}, content_type="application/json").status_code
        == 403
    )
    assert (
        bearer(ids.tokens["operator"])
        .post("/api/v1/mig-plans/", plan_body, content_type="application/json")
        .status_code
        == 201
    )
    assert bearer(other_cluster).get("/api/v1/mig-plans/").json()["count"] == 0
    assert bearer(ids.tokens["operator"]).get("/api/v1/mig-plans/").json()["count"] == 1
